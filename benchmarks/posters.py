"""Posters: fresh 1080x1920 posters of one item for many partners, each with its own name and tracked link.

The item has a 1600x1200 photo (made in a temporary folder: gradients, shapes and noise, so it encodes like a
photo) and a Chinese title; the partners' names mix Chinese, Latin and emoji. The first poster of the item
draws its layer (picture read, scaled and cropped, texts laid out) and is reported on its own; every poster
after it is "fresh" (not yet in Telegram's file cache) and is what partners wait for: name, QR code, JPEG.

The baseline, measured in the same run, is the bare cost of Pillow creating a 1080x1920 RGB image and
encoding it as JPEG at the template's quality: the floor any poster pays.

Posters rendered (quick / full): 100 / 1,000 (the quick rows say so).
"""

from __future__ import annotations

import asyncio
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

from PIL import Image, ImageDraw, ImageFilter

from benchmarks.report import Result
from bot.media.posters import PosterData, PosterRenderer, PosterTemplate, load_template

TARGET_P50_MS = 25.0
TARGET_P99_MS = 60.0
TITLE = "春季新品上市：天然草本精华面霜，温和保湿，敏感肌也能放心使用"
TAGLINE = "限时八折，转发给需要的朋友 🌸"
FOOTER = "Partner Assistant · 长按识别二维码"
NAMES = ("张三", "李小龙 🐉", "Anna Müller", "王芳芳 ✨", "陈 Chen", "O'Brien 🍀", "欧阳娜娜", "Đặng Thị Mai")


def _photo(folder: Path) -> Path:
    """A 1600x1200 JPEG with the detail of a real photo: a sky gradient, shapes, and sensor-like noise."""
    size = (1600, 1200)
    sky = Image.linear_gradient("L").resize(size)
    image = Image.merge("RGB", (sky.point(lambda v: 90 + v // 2), sky.point(lambda v: 140 + v // 3), sky))
    draw = ImageDraw.Draw(image)
    for i in range(40):
        x, y = (i * 397) % size[0], (i * 211) % size[1]
        draw.ellipse((x, y, x + 60 + i * 7, y + 40 + i * 5), fill=((i * 53) % 256, (i * 97) % 256, (i * 31) % 256))
    noise = Image.effect_noise(size, 24).convert("RGB")
    image = Image.blend(image.filter(ImageFilter.GaussianBlur(2)), noise, 0.12)
    path = folder / "item.jpg"
    image.save(path, format="JPEG", quality=90)
    return path


def _timed(action: Callable[[int], object], count: int) -> list[float]:
    latencies = []
    for i in range(count):
        started = time.perf_counter()
        action(i)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def _bare(template: PosterTemplate) -> Callable[[int], object]:
    def encode(_: int) -> bytes:
        image = Image.new("RGB", (template.width, template.height), template.background)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=template.jpeg_quality)
        return buffer.getvalue()

    return encode


def _measure(count: int) -> tuple[float, list[float], list[float], int]:
    """(first poster ms, fresh poster latencies, baseline latencies, item layers drawn), in one worker thread."""
    template = load_template("classic")
    with tempfile.TemporaryDirectory(prefix="pa-bench-posters-") as folder:
        photo = _photo(Path(folder))
        renderer = PosterRenderer(template)

        def poster(i: int) -> bytes:
            name = f"{NAMES[i % len(NAMES)]} {i}"
            link = f"http://127.0.0.1:8080/r/P{i:07d}"
            return renderer.render(PosterData(name, TITLE, TAGLINE, link, FOOTER, photo))

        first = _timed(poster, 1)[0]
        _timed(_bare(template), 5)  # warm the encoder
        fresh = _timed(lambda i: poster(i + 1), count)
        bare = _timed(_bare(template), count)
        return first, fresh, bare, renderer.layers_built


def _p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98]


async def run(quick: bool) -> list[Result]:
    count = 100 if quick else 1000
    first, fresh, bare, layers = await asyncio.to_thread(_measure, count)
    p50, p99 = statistics.median(fresh), _p99(fresh)
    scenario = f"posters (quick: {count} fresh)" if quick else "posters"
    return [
        Result(scenario, "first poster of an item", "report only", first, None, True, " ms"),
        Result(
            scenario,
            "fresh poster p50",
            f"<= {TARGET_P50_MS:.0f} ms",
            p50,
            statistics.median(bare),
            p50 <= TARGET_P50_MS,
            " ms",
        ),
        Result(
            scenario, "fresh poster p99", f"<= {TARGET_P99_MS:.0f} ms", p99, _p99(bare), p99 <= TARGET_P99_MS, " ms"
        ),
        Result(scenario, "item layers drawn", "== 1", float(layers), None, layers == 1),
    ]


async def repeat_posters(database_url: str, presses: int = 50) -> list[Result]:
    """[Poster] pressed again and again through the full dispatcher: only the first press renders; the rest
    send Telegram's stored file_id (the recording session hands out file ids like Telegram does)."""
    from aiogram import Bot
    from aiogram.client.default import DefaultBotProperties
    from aiogram.types import CallbackQuery, Chat, Message, Update, User

    from bot.app import build_dispatcher
    from bot.callbacks import ContentCallback
    from bot.clock import SystemClock
    from bot.delivery.sender import OutboxSender
    from bot.i18n import Translator
    from bot.sandbox.recording import RecordingSession
    from bot.services.context import ServiceContext
    from bot.services.menu import CommandMenu
    from bot.throttle import MemoryThrottle
    from storage.db import create_engine, create_sessionmaker
    from storage.migrate import upgrade_to_head
    from storage.models import ContentItem

    folder = Path(tempfile.mkdtemp(prefix="pa-bench-posters-"))
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    bot = Bot(
        "123456:BENCH-token", session=RecordingSession(record=False), default=DefaultBotProperties(parse_mode="HTML")
    )
    clock = SystemClock()
    translator = Translator.load("en")
    ctx = ServiceContext(clock, translator, frozenset(), ZoneInfo("Asia/Shanghai"), bot_username="bench_bot")
    sessionmaker = create_sessionmaker(engine)
    renderer = PosterRenderer(load_template("classic"))
    dp = build_dispatcher(
        ctx=ctx,
        sessionmaker=sessionmaker,
        throttle=MemoryThrottle(1.0),
        throttle_rate=1_000_000,
        on_outbox=OutboxSender(sessionmaker, bot, clock).wake,
        menu=CommandMenu(bot, translator),
        posters=renderer,
    )
    user = User(id=777, is_bot=False, first_name="李雷", language_code="zh")
    chat = Chat(id=777, type="private")
    try:
        async with sessionmaker() as session, session.begin():
            now = clock.now()
            item = ContentItem(
                title="春季新品上市 Spring is here", text="全场八折 {link}", url="https://shop.example.com/spring",
                tags=[], levels=[], segments=[], publish_on=[], weekdays=[], media_kind="photo",
                media_path=str(_photo(folder)), status="active", revision=1, created_at=now, updated_at=now,
            )  # fmt: skip
            session.add(item)
            await session.flush()
            item_id = item.id
        start = Message(message_id=1, date=clock.now(), chat=chat, from_user=user, text="/start")
        await dp.feed_update(bot, Update(update_id=1, message=start))
        data = ContentCallback(action="poster", id=item_id).pack()
        latencies = []
        for n in range(presses):
            query = CallbackQuery(id=f"cb{n}", from_user=user, chat_instance="ci", data=data, message=start)
            t0 = time.perf_counter()
            await dp.feed_update(bot, Update(update_id=100 + n, callback_query=query))
            latencies.append((time.perf_counter() - t0) * 1000)
            if n == 0:
                after_first = renderer.renders
        repeats = renderer.renders - after_first
    finally:
        await bot.session.close()
        await engine.dispose()
    return [
        Result("posters (repeat)", "renders for repeated posters", "== 0", float(repeats), None, repeats == 0),
        Result(
            "posters (repeat)",
            "repeat poster p50 (cached file_id)",
            "report only",
            statistics.median(latencies[1:]),
            latencies[0],
            True,
            " ms",
        ),
    ]
