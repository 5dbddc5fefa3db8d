"""Tier 3: content reach through the real bot process — import, /today, poster QR, tracked link clicks, shares,
inline mode, and the scheduled daily push."""

from __future__ import annotations

import asyncio
import io
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import select

from bot.callbacks import ContentCallback
from bot.sandbox.client import EmulatorClient, TgUser, wait_for
from bot.sandbox.emulator import BotAPIEmulator
from storage.db import create_engine
from storage.models import Event, TrackedLink
from tests.e2e.conftest import ADMIN_ID, ROOT, BotProcess, bot_env
from tests.e2e.test_bot_process import buttons, plain, say

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ALICE = TgUser(id=101, first_name="Alice", username="alice_w", language_code="en")
BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
LINK_RE = re.compile(r"(http://127\.0\.0\.1:\d+/r/[A-Za-z0-9]{8})")


def write_import_file(folder: Path) -> Path:
    Image.new("RGB", (1200, 900), (30, 120, 200)).save(folder / "tea.jpg", quality=85)
    path = folder / "items.yaml"
    path.write_text(
        "items:\n"
        "  - key: tea\n"
        "    title: 春茶上新 Spring tea\n"
        "    text: 'Fresh spring tea, 20% off this week: {link}'\n"
        "    url: https://shop.example.com/tea?lang=en\n"
        "    image: tea.jpg\n"
        "    tags: [tea]\n",
        encoding="utf-8",
    )
    return path


async def import_content(env: dict[str, str], path: Path) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "run_bot.py"), "content", "import", str(path),
        cwd=path.parent, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode()


async def wait_rows(database_url: str, check: Any, timeout: float = 10.0) -> Any:
    """Poll the bot's database until `check(session)` returns something truthy."""
    engine = create_engine(database_url)
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            async with engine.connect() as conn:
                result = await check(conn)
            if result or asyncio.get_running_loop().time() > deadline:
                return result
            await asyncio.sleep(0.2)
    finally:
        await engine.dispose()


async def test_import_today_poster_click_share_and_inline(
    emulator: BotAPIEmulator, client: EmulatorClient, e2e_database_url: str, tmp_path: Path
) -> None:
    env = bot_env(emulator, e2e_database_url, CONTENT_DIR=str(tmp_path / "content"))
    env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{env['WEB_PORT']}"
    bot = BotProcess(env, [], tmp_path / "bot.log")
    await bot.start()
    try:
        # 1. an admin imports an item
        report = await import_content(env, write_import_file(tmp_path))
        assert "1 new" in report, report

        # 2. a partner gets /today with their personal link
        await say(client, ALICE, "/start", "Welcome to Partner Assistant")
        sent = await client.send_message(ALICE, "/today")
        item = await client.wait_for_bot_message(
            ALICE.id, lambda m: m["message_id"] > sent["message_id"] and "Spring tea" in plain(m), timeout=15
        )
        assert item["kind"] == "photo", item  # the item's picture, with the text as caption
        match = LINK_RE.search(plain(item))
        assert match, plain(item)
        link = match.group(1)
        assert "Fresh spring tea, 20% off this week: " + link in plain(item)
        data = {b["text"]: b for b in buttons(item)}
        assert set(data) == {"🖼 Poster", "📤 Share", "📋 Copy text", "✅ Shared"}

        # 3. [Poster]: a 1080×1920 photo whose QR code decodes to the partner's link
        await client.press(ALICE, item["message_id"], data["🖼 Poster"]["callback_data"])
        poster = await client.wait_for_bot_message(ALICE.id, lambda m: "Your poster for" in plain(m), timeout=30)
        image = Image.open(io.BytesIO(await client.download(poster["photo_file_id"])))
        assert image.size == (1080, 1920)
        [code] = zxingcpp.read_barcodes(image)
        assert code.text == link

        # 4. the link redirects with ref and UTM parameters; two quick clicks count once
        async with aiohttp.ClientSession(headers={"User-Agent": BROWSER}) as http:
            for _ in range(2):
                async with http.get(link, allow_redirects=False) as response:
                    assert response.status == 302
                    target = urlsplit(response.headers["Location"])
        query = parse_qs(target.query)
        assert (target.netloc, target.path) == ("shop.example.com", "/tea")
        assert query["lang"] == ["en"]
        assert query["utm_source"] == ["partner"] and query["utm_medium"] == ["telegram"]
        assert query["utm_campaign"][0].isdigit()
        me = await say(client, ALICE, "/me", "Invite code")
        assert f"Invite code: {query['ref'][0]}" in plain(me)

        slug = link.rsplit("/", 1)[1]

        async def clicks(conn: Any) -> tuple[int, int] | None:
            events = (await conn.execute(select(Event.payload).where(Event.type == "link_clicked"))).scalars().all()
            counted = (await conn.execute(select(TrackedLink.clicks).where(TrackedLink.slug == slug))).scalar_one()
            return (len(events), counted) if len(events) == 2 else None

        assert await wait_rows(e2e_database_url, clicks) == (2, 1)

        # 5. [Shared ✓] counts once
        for _ in range(2):
            await client.press(ALICE, item["message_id"], data["✅ Shared"]["callback_data"])
        await asyncio.sleep(1.0)
        answers = [a.get("text") for a in await client.callback_answers()]
        assert "🙌 Thanks for sharing! That's 1 today." in answers
        assert "Already counted today. You've shared 1 today. 👍" in answers

        # 6. inline mode lists the partner's items with their link; choosing one counts an inline share
        await client.inline_query(ALICE, "")

        async def inline_answers() -> list[dict[str, Any]] | None:
            return await client.inline_answers() or None

        found = await wait_for(inline_answers, timeout=15)
        results = found[-1]["results"]
        article = next(r for r in results if r["type"] == "article")
        assert link in article["input_message_content"]["message_text"]
        await client.chosen_inline_result(ALICE, article["id"])

        async def inline_shares(conn: Any) -> list[dict[str, Any]]:
            rows = (await conn.execute(select(Event.payload).where(Event.type == "shared"))).scalars().all()
            return [dict(p) for p in rows if p.get("channel") == "inline"]

        [share] = await wait_rows(e2e_database_url, inline_shares)
        assert share["result"] == "text"
        assert ContentCallback.unpack(data["✅ Shared"]["callback_data"]).id == share["content_id"]
    finally:
        await bot.stop()


def zone_where_it_is(hour: int) -> str:
    """An Etc/GMT zone whose local hour is `hour` right now (Etc/GMT-3 is UTC+3)."""
    offset = (hour - datetime.now(UTC).hour) % 24
    if offset > 14:
        offset -= 24
    return f"Etc/GMT{'-' if offset >= 0 else '+'}{abs(offset)}"


@pytest.mark.parametrize("e2e_database_url", ["sqlite"], indirect=True)
async def test_the_scheduler_pushes_todays_pack_at_the_partners_hour(
    emulator: BotAPIEmulator, client: EmulatorClient, e2e_database_url: str, tmp_path: Path
) -> None:
    env = bot_env(emulator, e2e_database_url, CONTENT_DIR=str(tmp_path / "content"), TIMEZONE=zone_where_it_is(9))
    bot = BotProcess(env, [], tmp_path / "bot.log")
    await bot.start()
    try:
        await import_content(env, write_import_file(tmp_path))
        await say(client, ALICE, "/start", "Welcome to Partner Assistant")
        # The dispatch job runs every minute: Alice's default 09:00 has come in the deployment's zone.
        header = await client.wait_for_bot_message(ALICE.id, lambda m: "Today's content" in plain(m), timeout=90)
        item = await client.wait_for_bot_message(
            ALICE.id, lambda m: m["message_id"] > header["message_id"] and "Spring tea" in plain(m), timeout=15
        )
        assert LINK_RE.search(plain(item))
    finally:
        await bot.stop()


@pytest.mark.parametrize("e2e_database_url", ["sqlite"], indirect=True)
async def test_an_admin_adds_a_photo_item_in_chat_and_a_partner_gets_it(
    emulator: BotAPIEmulator, client: EmulatorClient, e2e_database_url: str, tmp_path: Path
) -> None:
    admin = TgUser(id=ADMIN_ID, first_name="Root", language_code="en")
    env = bot_env(emulator, e2e_database_url, CONTENT_DIR=str(tmp_path / "content"))
    bot = BotProcess(env, [], tmp_path / "bot.log")
    await bot.start()
    try:
        await say(client, admin, "/start", "Welcome")
        await say(client, admin, "/content add", "Send the material")
        picture = io.BytesIO()
        Image.new("RGB", (900, 600), (10, 160, 90)).save(picture, format="JPEG")
        sent = await client.send_message(admin, photo=picture.getvalue(), caption="Green tea, picked this week.")
        await client.wait_for_bot_message(
            admin.id, lambda m: m["message_id"] > sent["message_id"] and "Title?" in plain(m), timeout=15
        )
        await say(client, admin, "Green tea", "Share text?")
        await say(client, admin, "-", "Target link?")
        await say(client, admin, "ftp://nope", "not a web link")
        await say(client, admin, "https://shop.example.com/green", "Tags?")
        audience = await say(client, admin, "tea", "Who is it for?")
        await client.press(
            admin,
            audience["message_id"],
            next(b for b in buttons(audience) if b["text"] == "Everyone")["callback_data"],
        )
        await client.wait_for_bot_message(admin.id, lambda m: "When should partners get it?" in plain(m), timeout=15)
        confirm = await say(client, admin, "-", "Save it?")
        await client.press(
            admin, confirm["message_id"], next(b for b in buttons(confirm) if "Save" in b["text"])["callback_data"]
        )
        await client.wait_for_bot_message(admin.id, lambda m: "Saved as #" in plain(m), timeout=15)
        kept = list((tmp_path / "content").iterdir())
        assert len(kept) == 1 and Image.open(kept[0]).size == (900, 600)  # the original, downloaded

        await say(client, ALICE, "/start", "Welcome to Partner Assistant")
        item = await say(client, ALICE, "/today", "Green tea, picked this week.")
        assert item["kind"] == "photo" and LINK_RE.search(plain(item))
    finally:
        await bot.stop()
