"""Tier 1: the in-memory throttle window and the profile card renderer."""

from __future__ import annotations

import io

from PIL import Image

from bot.media.cards import CardData, render_profile_card, render_profile_card_async
from bot.throttle import MemoryThrottle

CARD = CardData(
    "张三 Zhang",
    "伙伴",
    "邀请码",
    "abCD2345",
    "团队",
    "L1 3 · L2 5",
    "扫码加入我的团队",
    "https://t.me/b?start=abCD2345",
)


async def test_memory_throttle_counts_per_window() -> None:
    now = [100.0]
    throttle = MemoryThrottle(3.0, monotonic=lambda: now[0])
    assert [await throttle.hit("u") for _ in range(3)] == [1, 2, 3]
    assert await throttle.hit("other") == 1
    now[0] += 3.0
    assert await throttle.hit("u") == 1


def test_card_is_a_png_with_a_qr_code() -> None:
    image = Image.open(io.BytesIO(render_profile_card(CARD)))
    assert image.format == "PNG" and image.size == (720, 1080)
    # the QR quiet zone is white and its finder pattern is black
    assert image.getpixel((150, 510)) == (255, 255, 255)
    assert image.getpixel((175, 535)) == (0, 0, 0)


async def test_card_renders_off_the_event_loop() -> None:
    assert (await render_profile_card_async(CARD)).startswith(b"\x89PNG")
