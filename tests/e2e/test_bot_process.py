"""Tier 3: several users talk to the real bot process over HTTP through the Bot API emulator."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.sandbox.client import EmulatorClient, TgUser
from bot.sandbox.emulator import BotAPIEmulator
from tests.e2e.conftest import ADMIN_ID, BotProcess, bot_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

ALICE = TgUser(id=101, first_name="Alice", username="alice_w", language_code="en")
BOB = TgUser(id=102, first_name="Bob", language_code="zh-hans")
ROOT_ADMIN = TgUser(id=ADMIN_ID, first_name="Root", language_code="en")


async def say(client: EmulatorClient, user: TgUser, text: str, expect: str) -> dict[str, Any]:
    """Send `text` as `user` and wait for the bot's answer containing `expect`."""
    sent = await client.send_message(user, text)
    return await client.wait_for_bot_message(
        user.id,
        lambda m: m["message_id"] > sent["message_id"] and expect in plain(m),
        timeout=15,
    )


def plain(message: dict[str, Any]) -> str:
    """What the user sees: text or caption after Telegram parsed the HTML."""
    return str(message.get("plain_text") or message.get("plain_caption") or "")


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    markup = message.get("reply_markup") or {}
    return [button for row in markup.get("inline_keyboard", []) for button in row]


async def test_partners_sign_up_refer_switch_language_and_get_a_card(
    emulator: BotAPIEmulator, client: EmulatorClient, e2e_database_url: str, tmp_path: Path
) -> None:
    bot = BotProcess(bot_env(emulator, e2e_database_url), [], tmp_path / "bot.log")
    await bot.start()
    try:
        await say(client, ALICE, "/start", "Welcome to Partner Assistant")
        me = await say(client, ALICE, "/me", "Invite code")
        match = re.search(r"\?start=([A-Za-z0-9_-]+)", plain(me))
        assert match, plain(me)
        code = match.group(1)
        assert "t.me/partner_assistant_bot?start=" in plain(me)  # username comes from getMe

        # a second user follows Alice's deep link; Alice is told through the outbox
        await say(client, BOB, f"/start {code}", "你已加入 Alice 的团队")
        await client.wait_for_bot_message(ALICE.id, lambda m: "Bob just joined your team" in plain(m), 15)
        bob_me = await say(client, BOB, "/me", "上级：Alice")
        assert "直属（一级）0 人" in plain(bob_me)

        # a button press: the callback is answered and the message edited in place
        prompt = await say(client, ALICE, "/lang", "Choose your language")
        zh_button = next(b for b in buttons(prompt) if b["text"] == "简体中文")
        await client.press(ALICE, prompt["message_id"], zh_button["callback_data"])
        await client.wait_idle()
        answers = await client.callback_answers()
        assert any(a.get("text") == "✅ 已切换为简体中文。" for a in answers)
        edited = next(m for m in await client.bot_messages(ALICE.id) if m["message_id"] == prompt["message_id"])
        assert plain(edited) == "✅ 已切换为简体中文。" and edited["edits"]

        # a photo the bot sends: the profile card with its QR code
        me_zh = await say(client, ALICE, "/me", "邀请码")
        card_button = next(b for b in buttons(me_zh) if "callback_data" in b)
        await client.press(ALICE, me_zh["message_id"], card_button["callback_data"])
        photo = await client.wait_for_bot_message(ALICE.id, lambda m: m["kind"] == "photo", 20)
        assert (await client.download(photo["photo_file_id"])).startswith(b"\x89PNG")

        # roles: a partner is refused, an admin grants, the new lead gets the lead command
        await say(client, BOB, "/grant @alice_w lead", "只有管理员可以使用这个命令")
        await say(client, ROOT_ADMIN, "/start", "Welcome")
        await say(client, ROOT_ADMIN, "/grant @alice_w lead", "Alice is now a Team lead")
        await client.wait_for_bot_message(ALICE.id, lambda m: "团队长" in plain(m), 15)
        await say(client, ALICE, "/team", "你的团队")

        # bad input gets a friendly answer, never a traceback
        await say(client, ALICE, "/nonsense", "我不认识这个命令")
        await say(client, ROOT_ADMIN, "/grant", "Usage: /grant")

        menus = await client.commands()
        assert menus, "setMyCommands was never called"
    finally:
        code_rc = await bot.stop()
    logs = bot.logs()
    assert code_rc == 0, logs
    assert "Traceback" not in logs, logs


async def test_webhook_mode_checks_the_secret_token(
    emulator: BotAPIEmulator, client: EmulatorClient, tmp_path: Path
) -> None:
    env = bot_env(emulator, f"sqlite+aiosqlite:///{tmp_path / 'hook.db'}")
    hook_url = f"http://127.0.0.1:{env['WEB_PORT']}/webhook"
    env.update(WEBHOOK_URL=hook_url, WEBHOOK_SECRET="s3cret-token")
    bot = BotProcess(env, ["--webhook"], tmp_path / "bot.log")
    await bot.start()
    try:
        info = await client.webhook()
        assert info.get("url") == hook_url
        await say(client, ALICE, "/start", "Welcome to Partner Assistant")
        update = {"update_id": 999, "message": {"message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"}}}
        async with aiohttp.ClientSession() as http:
            async with http.post(hook_url, json=update) as response:
                assert response.status == 401
            headers = {"X-Telegram-Bot-Api-Secret-Token": "wrong"}
            async with http.post(hook_url, json=update, headers=headers) as response:
                assert response.status == 401
    finally:
        rc = await bot.stop()
    assert rc == 0, bot.logs()
