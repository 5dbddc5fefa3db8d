"""Tier 3: an admin broadcast survives `kill -9` of the process that is sending it.

After the restart every recipient has the message, and no one got it more often than the number of
sends that were in flight at the moment of the kill allows.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.delivery.sender import default_in_flight
from bot.sandbox.client import EmulatorClient, TgUser, wait_for
from bot.sandbox.emulator import BotAPIEmulator
from tests.e2e.conftest import ADMIN_ID, BotProcess, bot_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

RECIPIENTS = 120
RATE = 20  # messages/s: the broadcast takes several seconds, so the kill lands mid-way
TEXT = "Big news for the whole network"
ROOT_ADMIN = TgUser(id=ADMIN_ID, first_name="Root", language_code="en")


def plain(message: dict[str, Any]) -> str:
    return str(message.get("plain_text") or message.get("plain_caption") or "")


async def deliveries(client: EmulatorClient) -> Counter[int]:
    """How many copies of the broadcast each chat received."""
    calls = await client.calls("sendMessage")
    delivered = [c for c in calls if c["params"].get("text") == TEXT and not c.get("error_code")]
    return Counter(int(c["params"]["chat_id"]) for c in delivered)


async def answered(client: EmulatorClient, user: TgUser, text: str, expect: str) -> dict[str, Any]:
    sent = await client.send_message(user, text)
    return await client.wait_for_bot_message(
        user.id, lambda m: m["message_id"] > sent["message_id"] and expect in plain(m), timeout=20
    )


def button(message: dict[str, Any], label: str) -> str:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return str(next(b["callback_data"] for row in rows for b in row if b["text"] == label))


async def test_kill_9_mid_broadcast_then_restart_delivers_to_everyone(
    emulator: BotAPIEmulator, client: EmulatorClient, e2e_database_url: str, tmp_path: Path
) -> None:
    env = bot_env(emulator, e2e_database_url, DELIVERY_RATE=str(RATE), OUTBOX_CLAIM_TIMEOUT_SECONDS="3")
    first = BotProcess(env, [], tmp_path / "first.log")
    await first.start()
    users = [TgUser(id=5000 + n, first_name=f"P{n}", language_code="en") for n in range(RECIPIENTS)]
    for user in users:
        await client.send_message(user, "/start")
    assert await client.wait_idle(quiet_ms=500, timeout=60)

    await answered(client, ROOT_ADMIN, "/start", "Welcome")
    await answered(client, ROOT_ADMIN, "/broadcast", "Send me the message")
    audience = await answered(client, ROOT_ADMIN, TEXT, "Who should receive it?")
    await client.press(ROOT_ADMIN, audience["message_id"], button(audience, "Everyone"))
    preview = await client.wait_for_bot_message(ROOT_ADMIN.id, lambda m: "Send it?" in plain(m), 20)
    assert f"Recipients: {RECIPIENTS + 1} " in plain(preview)
    await client.press(ROOT_ADMIN, preview["message_id"], button(preview, "✅ Send"))

    async def some_sent() -> bool | None:
        return True if sum((await deliveries(client)).values()) >= RECIPIENTS // 4 else None

    await wait_for(some_sent, timeout=60)
    assert first.process is not None
    first.process.send_signal(signal.SIGKILL)
    await first.process.wait()
    before_restart = sum((await deliveries(client)).values())
    assert before_restart < RECIPIENTS + 1, "the broadcast finished before the kill; lower RATE"

    second = BotProcess(env, [], tmp_path / "second.log")
    await second.start()
    try:

        async def everyone_has_it() -> bool | None:
            return True if len(await deliveries(client)) == RECIPIENTS + 1 else None

        await wait_for(everyone_has_it, timeout=90)
        await asyncio.sleep(1)  # anything still in flight lands now
        copies = await deliveries(client)
        duplicates = sum(n - 1 for n in copies.values())
        # A kill re-sends at most the calls in flight (the sender's slots, default_in_flight) and the sent ones whose
        # outcome was still waiting to be written: the recorder writes within record_linger (0.1 s) plus one
        # transaction, which under CI load has taken up to a few hundred ms: allow half a second of sending for it.
        in_flight_bound = default_in_flight(RATE) + RATE // 2
        assert duplicates <= in_flight_bound, copies.most_common(5)
        done = await client.wait_for_bot_message(ROOT_ADMIN.id, lambda m: "finished" in plain(m), 20)
        assert f"{RECIPIENTS + 1} of {RECIPIENTS + 1} delivered" in plain(done)
    finally:
        await second.stop()
    assert "Traceback" not in second.logs(), second.logs()
