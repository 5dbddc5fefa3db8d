"""Tier 3: relationship management and deal progression through the real bot process and the Bot API emulator.

A partner adds a prospect, logs a follow-up with "in 1d"; when the bot's clock moves a day (TEST_CLOCK_OFFSET_FILE)
the reminder arrives. The partner quotes, registers an order an admin confirms, and the ledger shows the
commission in /wallet. The prospect answers an event invitation on the RSVP page and the partner is told."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from bot.sandbox.client import EmulatorClient, TgUser
from bot.sandbox.emulator import BotAPIEmulator
from tests.e2e.conftest import ADMIN_ID, BotProcess, bot_env
from tests.e2e.test_bot_process import buttons, plain, say

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ADMIN = TgUser(id=ADMIN_ID, first_name="Root", language_code="en")
ALICE = TgUser(id=101, first_name="Alice", language_code="en")


async def test_lead_reminder_quote_order_wallet_and_rsvp(
    emulator: BotAPIEmulator, client: EmulatorClient, e2e_database_url: str, tmp_path: Path
) -> None:
    offset = tmp_path / "clock-offset"
    offset.write_text("0")
    env = bot_env(emulator, e2e_database_url, TEST_CLOCK_OFFSET_FILE=str(offset))
    port = env["WEB_PORT"]
    env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
    bot = BotProcess(env, [], tmp_path / "bot.log")
    await bot.start()
    try:
        await say(client, ADMIN, "/start", "Welcome to Partner Assistant")
        await say(client, ALICE, "/start", "Welcome to Partner Assistant")
        await say(client, ADMIN, "/product add TEA-1 150.00 https://shop.example/tea Oolong tea", "Added")

        # 1. a prospect, 2. a follow-up with a reminder in a day
        await say(client, ALICE, "/lead Wang 13800138000 met at the fair", "Prospect #1 added")
        await say(client, ALICE, "/followup 1 called, sending brochure in 1d", "Follow-up on #1 saved")

        # 3. a day later (the bot's clock moves), the reminder arrives with the lead card and its buttons
        offset.write_text(str(int(timedelta(days=1, minutes=5).total_seconds())))
        reminder = await client.wait_for_bot_message(
            ALICE.id, lambda m: "Time to follow up" in plain(m) and "Wang" in plain(m), timeout=120
        )
        labels = [b["text"] for b in buttons(reminder)]
        assert any("Done" in label for label in labels) and any("Snooze 1d" in label for label in labels)

        # 4. a quote: a card picture with the price for this customer
        quote = await say(client, ALICE, "/quote 1 TEA-1 2", "¥300.00")
        assert quote["kind"] == "photo", quote

        # 5. an offline order, confirmed by an admin
        await say(client, ALICE, "/order 1 TEA-1 1", "Order #1 registered")
        notice = await client.wait_for_bot_message(
            ADMIN.id, lambda m: any("Confirm" in b["text"] for b in buttons(m)), timeout=20
        )
        confirm = next(b for b in buttons(notice) if "Confirm" in b["text"])
        await client.press(ADMIN, notice["message_id"], confirm["callback_data"])
        await client.wait_for_bot_message(ALICE.id, lambda m: "Your order #1" in plain(m) and "confirmed" in plain(m))

        # 6. the ledger shows the commission
        wallet = await say(client, ALICE, "/wallet", "Your wallet")
        assert "+¥15.00 = 10% L1 (member) on order chat-1 ¥150.00" in plain(wallet), plain(wallet)

        # 7. an event invitation answered on the RSVP page
        starts = (datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(days=3)).strftime("%Y-%m-%d 19:30")
        await say(client, ADMIN, f"/event add Tea salon | {starts} | Shop 1 | 20", "Event #1")
        invitation = await say(client, ALICE, "/invite 1 1", "Invitation for Wang")
        url = re.search(r"http://127\.0\.0\.1:\d+/e/[\w-]+", plain(invitation))
        assert url is not None, plain(invitation)
        async with aiohttp.ClientSession() as http:
            async with http.get(url.group(0), headers={"Accept-Language": "en"}) as page:
                assert page.status == 200 and "Wang" in await page.text()
            form = {"name": "Wang Wei", "attending": "yes"}
            async with http.post(url.group(0), data=form, headers={"Accept-Language": "en"}) as answered:
                assert answered.status == 200, await answered.text()
        await client.wait_for_bot_message(ALICE.id, lambda m: "Wang Wei" in plain(m) and "will come" in plain(m))
    finally:
        await bot.stop()
