"""Tier 3: a signed order reaches the real bot's web server; the partner and their upline see the commission
explained in /wallet; a full refund reverses both; a bad signature is refused."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.domain.orders_api import sign
from bot.sandbox.client import EmulatorClient, TgUser
from bot.sandbox.emulator import BotAPIEmulator
from tests.e2e.conftest import BotProcess, bot_env
from tests.e2e.test_bot_process import plain, say

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SECRET = "e2e-shop-secret"
ALICE = TgUser(id=101, first_name="Alice", language_code="en")
BOB = TgUser(id=102, first_name="Bob", language_code="en")


async def signed_post(port: str, path: str, body: dict[str, Any], secret: str = SECRET) -> tuple[int, Any]:
    raw = json.dumps(body).encode()
    timestamp = int(time.time())
    headers = {"X-Timestamp": str(timestamp), "X-Signature": sign(secret.encode(), timestamp, raw)}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"http://127.0.0.1:{port}{path}", data=raw, headers=headers) as r,
    ):
        return r.status, await r.json()


async def test_signed_order_commission_in_wallet_then_refund(
    emulator: BotAPIEmulator, client: EmulatorClient, e2e_database_url: str, tmp_path: Path
) -> None:
    env = bot_env(emulator, e2e_database_url, ORDERS_API_SECRET=SECRET)
    bot = BotProcess(env, [], tmp_path / "bot.log")
    await bot.start()
    port = env["WEB_PORT"]
    try:
        me = await say(client, ALICE, "/start", "Welcome to Partner Assistant")
        alice_code = re.search(r"Your invite code: (\w+)", plain(me)).group(1)  # type: ignore[union-attr]
        welcome = await say(client, BOB, f"/start {alice_code}", "Welcome to Partner Assistant")
        bob_code = re.search(r"Your invite code: (\w+)", plain(welcome)).group(1)  # type: ignore[union-attr]

        order = {
            "order_id": "A1001",
            "partner_code": bob_code,
            "customer_id": "cust-77",
            "currency": "CNY",
            "amount": "150.00",
            "items": [{"sku": "TEA-1", "category": "tea", "quantity": 1, "unit_price": "150.00"}],
            "paid_at": datetime.now(UTC).isoformat(),
        }
        status, _ = await signed_post(port, "/api/orders", order, secret="not-the-secret")
        assert status == 401
        status, created = await signed_post(port, "/api/orders", order)
        assert status == 201, created

        bob_wallet = await say(client, BOB, "/wallet", "Your wallet")
        assert "+¥15.00 = 10% L1 (member) on order A1001 ¥150.00 · rules v1" in plain(bob_wallet)
        alice_wallet = await say(client, ALICE, "/wallet", "Your wallet")
        assert "+¥4.50 = 3% L2 (member) on order A1001 ¥150.00 · rules v1" in plain(alice_wallet)
        await client.wait_for_bot_message(BOB.id, lambda m: "You earned ¥15.00" in plain(m), timeout=15)

        status, refund = await signed_post(
            port, "/api/refunds", {"refund_id": "R1", "order_id": "A1001", "amount": "150.00", "currency": "CNY"}
        )
        assert (status, refund["status"]) == (201, "applied")
        after = await say(client, BOB, "/wallet", "refund of order A1001")
        assert "−¥15.00" in plain(after) or "-¥15.00" in plain(after)
    finally:
        await bot.stop()
