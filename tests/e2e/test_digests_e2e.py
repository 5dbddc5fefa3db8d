"""Tier 3: a team lead's digest view and the [Nudge dormant members] button through the real bot process and the
Bot API emulator. An admin makes Alice a team lead; Bob and Carol join through her link. Four days later (the bot's
clock moves, TEST_CLOCK_OFFSET_FILE) neither has done anything: /team shows them as dormant with the 14-day chart,
and the nudge button reminds both once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from bot.sandbox.client import EmulatorClient, TgUser
from bot.sandbox.emulator import BotAPIEmulator
from tests.e2e.conftest import ADMIN_ID, BotProcess, bot_env
from tests.e2e.test_bot_process import buttons, plain, say

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ADMIN = TgUser(id=ADMIN_ID, first_name="Root", language_code="en")
ALICE = TgUser(id=301, first_name="Alice", username="alice_lead", language_code="en")
BOB = TgUser(id=302, first_name="Bob", language_code="en")
CAROL = TgUser(id=303, first_name="Carol", language_code="zh")


async def test_team_digest_view_and_nudge_button(
    emulator: BotAPIEmulator, client: EmulatorClient, e2e_database_url: str, tmp_path: Path
) -> None:
    offset = tmp_path / "clock-offset"
    offset.write_text("0")
    bot = BotProcess(bot_env(emulator, e2e_database_url, TEST_CLOCK_OFFSET_FILE=str(offset)), [], tmp_path / "bot.log")
    await bot.start()
    try:
        await say(client, ADMIN, "/start", "Welcome to Partner Assistant")
        welcome = await say(client, ALICE, "/start", "Welcome to Partner Assistant")
        code = plain(welcome).split("Your invite code: ")[1].split()[0]
        await say(client, BOB, f"/start {code}", "Welcome to Partner Assistant")
        await say(client, CAROL, f"/start {code}", "欢迎")
        await say(client, ADMIN, "/grant @alice_lead lead", "Alice is now a Team lead")

        offset.write_text(str(int(timedelta(days=4).total_seconds())))
        await asyncio.sleep(0.5)  # the bot re-reads the offset file at most every 0.2 s
        digest = await say(client, ALICE, "/team", "Your team today")
        text = plain(digest)
        assert "No action for 3+ days (2)" in text and "Bob (no action yet)" in text, text
        assert "Carol (no action yet)" in text, text
        chart = await client.wait_for_bot_message(
            ALICE.id, lambda m: m["kind"] == "photo" and "last 14 days" in plain(m), timeout=20
        )
        assert chart["photo_file_id"]
        [nudge] = [b for b in buttons(digest) if "Nudge dormant members (2)" in b["text"]]

        await client.press(ALICE, digest["message_id"], nudge["callback_data"])
        await client.wait_for_bot_message(ALICE.id, lambda m: "Nudged 2 dormant members" in plain(m), timeout=20)
        await client.wait_for_bot_message(BOB.id, lambda m: "Alice from your team is cheering you on" in plain(m), 20)
        await client.wait_for_bot_message(CAROL.id, lambda m: "在为你加油" in plain(m), timeout=20)

        # pressed again the same week: nobody is nudged twice
        await client.press(ALICE, digest["message_id"], nudge["callback_data"])
        again = await client.wait_for_bot_message(
            ALICE.id, lambda m: "Nudged 0 dormant members" in plain(m), timeout=20
        )
        assert "2 were nudged in the last 7 days" in plain(again)
    finally:
        await bot.stop()
