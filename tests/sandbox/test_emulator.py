"""The Bot API emulator driven by a real aiogram bot over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import io
import signal
import sys
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.filters import CommandObject, CommandStart
from aiogram.methods import SendMessage
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BufferedInputFile,
    CallbackQuery,
    ChosenInlineResult,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQuery,
    InlineQueryResultArticle,
    InputMediaDocument,
    InputTextMessageContent,
    Message,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.sandbox.client import EmulatorClient, EmulatorError, TgUser
from bot.sandbox.emulator import SECRET_HEADER, BotAPIEmulator
from tests.sandbox.conftest import TOKEN, make_png, polling

ALICE = TgUser(id=1001, first_name="Alice", username="alice", language_code="ru")
BOB = TgUser(id=1002, first_name="Bob")
PNG = make_png(4, 3)


def menu() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text="Pick A", callback_data="pick:a"),
                InlineKeyboardButton(text="Site", url="https://example.org"),
            ],
            [InlineKeyboardButton(text="Pick B", callback_data="pick:b")],
        ]
    )


def flow_router(seen: dict[str, Any]) -> Router:
    """A tiny bot covering deep links, keyboards, callbacks, photos, documents, contacts, inline mode."""
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message, command: CommandObject) -> None:
        seen["args"] = command.args
        await message.answer(f"Welcome, <b>{message.chat.first_name}</b>!", reply_markup=menu())

    @router.callback_query(F.data.startswith("pick:"))
    async def pick(callback: CallbackQuery) -> None:
        choice = (callback.data or "").removeprefix("pick:")
        await callback.answer(f"Picked {choice}")
        assert isinstance(callback.message, Message)
        await callback.message.edit_text(f"You picked <i>{choice}</i>")

    @router.message(F.text == "photo")
    async def photo(message: Message) -> None:
        await message.answer_photo(BufferedInputFile(PNG, "x.png"), caption="QR <b>code</b>")

    @router.message(F.document)
    async def document(message: Message, bot: Bot) -> None:
        assert message.document is not None
        buffer = io.BytesIO()
        await bot.download(message.document, destination=buffer)
        seen["document"] = (message.document.file_name, buffer.getvalue())
        await message.answer("document received")

    @router.message(F.contact)
    async def contact(message: Message) -> None:
        assert message.contact is not None
        seen["phone"] = message.contact.phone_number
        await message.answer("thanks")

    @router.inline_query()
    async def inline(query: InlineQuery) -> None:
        await query.answer(
            [
                InlineQueryResultArticle(
                    id="invite",
                    title="Invite",
                    input_message_content=InputTextMessageContent(message_text=f"Join me: {query.query}"),
                    reply_markup=InlineKeyboardMarkup(
                        inline_keyboard=[[InlineKeyboardButton(text="Open", url="https://example.org")]]
                    ),
                )
            ],
            cache_time=1,
        )

    @router.chosen_inline_result()
    async def chosen(result: ChosenInlineResult) -> None:
        seen["chosen"] = (result.result_id, result.inline_message_id)

    return router


async def test_get_me_auth_and_error_shapes(emulator: BotAPIEmulator, bot: Bot, client: EmulatorClient) -> None:
    me = await bot.get_me()
    assert me.is_bot and me.id == 123456 and me.username == "partner_assistant_bot"
    base = emulator.base_url
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/botnot-a-token/getMe") as response:
            assert response.status == 401
            assert await response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        async with http.post(f"{base}/bot{TOKEN}/noSuchMethod") as response:
            assert response.status == 404
            assert (await response.json())["ok"] is False
        async with http.post(f"{base}/bot{TOKEN}/GETME") as response:
            assert (await response.json())["result"]["is_bot"] is True
        async with http.post(f"{base}/bot{TOKEN}/sendMessage", json={"chat_id": ALICE.id, "text": "x"}) as response:
            assert response.status == 400
            assert (await response.json())["description"] == "Bad Request: chat not found"
        await client.send_message(ALICE, "hello")
        async with http.post(f"{base}/bot{TOKEN}/sendMessage", data={"chat_id": str(ALICE.id)}) as response:
            assert response.status == 400
            assert (await response.json())["description"] == "Bad Request: message text is empty"
        form = aiohttp.FormData()
        form.add_field("chat_id", str(ALICE.id))
        form.add_field("document", b"%PDF-1.4 report", filename="report.pdf")
        async with http.post(f"{base}/bot{TOKEN}/sendDocument", data=form) as response:
            document = (await response.json())["result"]["document"]
    assert document["file_name"] == "report.pdf" and document["mime_type"] == "application/pdf"
    assert await client.download(document["file_id"]) == b"%PDF-1.4 report"
    assert [call["method"] for call in await client.calls()][:2] == ["getMe", "noSuchMethod"]


async def test_polling_flow_deep_link_keyboard_callback_and_edit(bot: Bot, client: EmulatorClient) -> None:
    seen: dict[str, Any] = {}
    dp = Dispatcher()
    dp.include_router(flow_router(seen))
    async with polling(dp, bot, client):
        sent = await client.send_message(ALICE, "/start ref_42")
        assert await client.wait_idle(quiet_ms=100)
        assert seen["args"] == "ref_42"
        [welcome] = await client.bot_messages(ALICE.id)
        assert welcome["text"] == "Welcome, <b>Alice</b>!"
        assert welcome["plain_text"] == "Welcome, Alice!"
        assert welcome["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "pick:a"
        assert welcome["message_id"] == sent["message_id"] + 1

        pressed = await client.press(ALICE, welcome["message_id"], "pick:a")
        assert await client.wait_idle(quiet_ms=100)
    [answer] = await client.callback_answers()
    assert answer["callback_query_id"] == pressed["callback_query_id"]
    assert answer["text"] == "Picked a" and answer["show_alert"] is False
    [edited] = await client.bot_messages(ALICE.id)
    assert edited["text"] == "You picked <i>a</i>" and edited["reply_markup"] is None
    assert edited["edits"][0]["plain_text"] == "Welcome, Alice!"
    assert edited["edits"][0]["reply_markup"] is not None
    updates = await client.calls("getUpdates")
    assert all(call["error_code"] is None for call in updates)


async def test_photo_upload_is_stored_and_downloadable(bot: Bot, client: EmulatorClient) -> None:
    dp = Dispatcher()
    dp.include_router(flow_router({}))
    async with polling(dp, bot, client):
        await client.send_message(ALICE, "photo")
        message = await client.wait_for_bot_message(ALICE.id, lambda m: m["kind"] == "photo")
        assert await client.wait_idle(quiet_ms=100)
    assert message["caption"] == "QR <b>code</b>" and message["plain_caption"] == "QR code"
    assert await client.download(message["photo_file_id"]) == PNG

    direct = await bot.send_photo(ALICE.id, BufferedInputFile(PNG, "y.png"))
    assert direct.photo is not None
    size = direct.photo[-1]
    assert (size.width, size.height) == (4, 3)
    buffer = io.BytesIO()
    await bot.download(size.file_id, destination=buffer)
    assert buffer.getvalue() == PNG
    again = await bot.send_photo(ALICE.id, size.file_id)
    assert again.photo is not None and again.photo[-1].file_unique_id == size.file_unique_id
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(ALICE.id, "no-such-file-id")


async def test_faults_raise_typed_aiogram_errors(bot: Bot, client: EmulatorClient) -> None:
    await client.send_message(ALICE, "hi")
    await client.send_message(BOB, "hi")
    await client.inject_fault("sendMessage", 429, retry_after=7)
    with pytest.raises(TelegramRetryAfter) as retry:
        await bot.send_message(ALICE.id, "x")
    assert retry.value.retry_after == 7
    await client.inject_fault("sendmessage", 403, chat_id=BOB.id)
    await bot.send_message(ALICE.id, "alice is fine")
    with pytest.raises(TelegramForbiddenError, match="blocked"):
        await bot.send_message(BOB.id, "x")
    await client.inject_fault("sendMessage", 502, times=2)
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await bot.send_message(ALICE.id, "x")
    await client.inject_fault("*", 400, description="Bad Request: boom", times=5)
    await client.clear_faults()
    await bot.send_message(ALICE.id, "after faults")
    texts = [message["text"] for message in await client.bot_messages(ALICE.id)]
    assert texts == ["alice is fine", "after faults"]
    failed = [call["error_code"] for call in await client.calls("sendMessage")]
    assert failed == [429, None, 403, 502, 502, None]


async def test_get_updates_offset_limit_and_long_poll(bot: Bot, client: EmulatorClient) -> None:
    ids = [(await client.send_message(ALICE, f"m{i}"))["update_id"] for i in range(3)]
    assert [update.update_id for update in await bot.get_updates()] == ids
    assert [update.update_id for update in await bot.get_updates(offset=ids[1])] == ids[1:]
    assert [update.update_id for update in await bot.get_updates()] == ids[1:]
    assert [update.update_id for update in await bot.get_updates(limit=1)] == ids[1:2]
    assert await bot.get_updates(offset=ids[2] + 1) == []

    waiting = asyncio.create_task(bot.get_updates(offset=ids[2] + 1, timeout=5))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    late = await client.send_message(ALICE, "late")
    updates = await asyncio.wait_for(waiting, 2)
    assert [update.update_id for update in updates] == [late["update_id"]]
    assert updates[0].message is not None and updates[0].message.text == "late"

    first = asyncio.create_task(bot.get_updates(offset=late["update_id"] + 1, timeout=5))
    await asyncio.sleep(0.1)
    assert await bot.get_updates(offset=late["update_id"] + 1) == []
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await first


async def test_html_entities_and_edit_rules(bot: Bot, client: EmulatorClient) -> None:
    await client.send_message(ALICE, "hi")
    sent = await bot.send_message(ALICE.id, 'Hi <b>bold</b> &amp; <a href="https://x.org">link</a> ✓')
    assert sent.text == "Hi bold & link ✓"
    assert sent.entities is not None
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [("bold", 3, 4), ("text_link", 10, 4)]
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(ALICE.id, "1 < 2")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(ALICE.id, "<b>open")
    raw = await bot.send_message(ALICE.id, "1 < 2", parse_mode=None)
    assert raw.text == "1 < 2"
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "Hi <b>bold</b> &amp; <a href='https://x.org'>link</a> ✓", chat_id=ALICE.id, message_id=sent.message_id
        )
    await bot.edit_message_reply_markup(chat_id=ALICE.id, message_id=sent.message_id, reply_markup=menu())
    assert await bot.delete_message(ALICE.id, sent.message_id) is True
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(ALICE.id, sent.message_id)
    deleted = (await client.messages(ALICE.id))[1]
    assert deleted["deleted"] is True and deleted["reply_markup"] is not None
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_text("x", chat_id=ALICE.id, message_id=1)


async def test_forward_copy_and_media_edits(bot: Bot, client: EmulatorClient) -> None:
    await client.send_message(ALICE, "hi")
    await client.send_message(BOB, "hello")
    photo = await bot.send_photo(ALICE.id, BufferedInputFile(PNG, "a.png"), caption="<b>one</b>", reply_markup=menu())
    assert photo.caption == "one" and photo.reply_markup is not None
    edited = await bot.edit_message_caption(
        chat_id=ALICE.id, message_id=photo.message_id, caption="two", reply_markup=menu()
    )
    assert isinstance(edited, Message) and edited.caption == "two"
    with pytest.raises(TelegramBadRequest, match="there is no text in the message to edit"):
        await bot.edit_message_text("x", chat_id=ALICE.id, message_id=photo.message_id)
    swapped = await bot.edit_message_media(
        InputMediaDocument(media=BufferedInputFile(b"col\n1\n", "t.csv"), caption="table"),
        chat_id=ALICE.id,
        message_id=photo.message_id,
    )
    assert isinstance(swapped, Message) and swapped.document is not None
    assert swapped.document.file_name == "t.csv" and swapped.reply_markup is None
    forwarded = await bot.forward_message(BOB.id, ALICE.id, photo.message_id)
    assert forwarded.document is not None and forwarded.forward_origin is not None
    copied = await bot.copy_message(BOB.id, ALICE.id, 1)
    [*_, last] = await client.messages(BOB.id)
    assert last["message_id"] == copied.message_id and last["text"] == "hi"
    [history] = [m for m in await client.messages(ALICE.id) if m["message_id"] == photo.message_id]
    assert [version["kind"] for version in history["edits"]] == ["photo", "photo"]
    assert history["kind"] == "document" and history["caption"] == "table"


async def test_commands_and_misc_settings(bot: Bot, client: EmulatorClient) -> None:
    scope = BotCommandScopeAllPrivateChats()
    await bot.set_my_commands([BotCommand(command="start", description="Начать")], scope=scope, language_code="ru")
    await bot.set_my_commands([BotCommand(command="help", description="Help")])
    stored = await client.commands()
    assert {(entry["scope"]["type"], entry["language_code"]) for entry in stored} == {
        ("all_private_chats", "ru"),
        ("default", ""),
    }
    [command] = await bot.get_my_commands(scope=scope, language_code="ru")
    assert command.command == "start"
    await bot.delete_my_commands(scope=scope, language_code="ru")
    assert await bot.get_my_commands(scope=scope, language_code="ru") == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad-Command", description="x")])
    await client.send_message(ALICE, "hi")
    assert await bot.send_chat_action(ALICE.id, "typing") is True
    assert await bot.set_chat_menu_button() is True
    chat = await bot.get_chat(ALICE.id)
    assert chat.first_name == "Alice"


async def test_documents_contacts_and_inline_mode(bot: Bot, client: EmulatorClient) -> None:
    seen: dict[str, Any] = {}
    dp = Dispatcher()
    dp.include_router(flow_router(seen))
    async with polling(dp, bot, client):
        await client.send_message(ALICE, document=("report.csv", b"a,b\n1,2\n", "text/csv"))
        await client.send_contact(ALICE, "+79990001122")
        sent = await client.inline_query(ALICE, "partner")
        assert await client.wait_idle(quiet_ms=100)
        [answer] = await client.inline_answers()
        assert answer["inline_query_id"] == sent["inline_query_id"]
        assert answer["results"][0]["id"] == "invite"
        chosen = await client.chosen_inline_result(ALICE, "invite", "partner")
        assert await client.wait_idle(quiet_ms=100)
    assert seen["document"] == ("report.csv", b"a,b\n1,2\n")
    assert seen["phone"] == "+79990001122"
    assert seen["chosen"] == ("invite", chosen["inline_message_id"])
    assert await bot.edit_message_text("Joined!", inline_message_id=chosen["inline_message_id"]) is True
    [inline_message] = await client.inline_messages()
    assert inline_message["text"] == "Joined!" and inline_message["edits"][0]["text"] == "Join me: partner"
    kinds = [(m["from_bot"], m["kind"]) for m in await client.messages(ALICE.id)]
    assert sorted(kinds) == [(False, "contact"), (False, "document"), (True, "text"), (True, "text")]


async def test_callback_answers_are_single_use(bot: Bot, client: EmulatorClient) -> None:
    await client.send_message(ALICE, "hi")
    message = await bot.send_message(ALICE.id, "menu", reply_markup=menu())
    with pytest.raises(EmulatorError) as missing:
        await client.press(ALICE, 999, "pick:a")
    assert missing.value.status == 404
    pressed = await client.press(ALICE, message.message_id, "pick:a")
    [_, update] = await bot.get_updates()
    assert update.callback_query is not None and update.callback_query.data == "pick:a"
    assert update.callback_query.message is not None
    assert update.callback_query.message.message_id == message.message_id
    assert await bot.answer_callback_query(pressed["callback_query_id"], text="ok", show_alert=True)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(pressed["callback_query_id"])
    assert (await client.callback_answers())[0]["show_alert"] is True


async def test_webhook_delivery_with_secret_header_and_retries(bot: Bot, client: EmulatorClient) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []
    failures = [500]

    async def hook(request: web.Request) -> web.Response:
        if failures:
            return web.Response(status=failures.pop())
        received.append((request.headers.get(SECRET_HEADER), await request.json()))
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        url = f"http://127.0.0.1:{port}/hook"
        await client.send_message(ALICE, "before webhook")
        assert await bot.set_webhook(url, secret_token="s3cr3t_token", drop_pending_updates=True)
        with pytest.raises(TelegramConflictError):
            await bot.get_updates()
        info = await bot.get_webhook_info()
        assert info.url == url
        sent = await client.send_message(ALICE, "via webhook")
        assert await client.wait_idle(quiet_ms=50)
        assert len(received) == 1
        secret, update = received[0]
        assert secret == "s3cr3t_token"
        assert update["update_id"] == sent["update_id"]
        assert update["message"]["text"] == "via webhook"
        assert (await bot.get_webhook_info()).last_error_message is not None
        assert await bot.delete_webhook()
        assert await bot.get_updates() == []
    finally:
        await runner.cleanup()


async def test_aiogram_webhook_handler_and_reply_in_response(bot: Bot, client: EmulatorClient) -> None:
    dp = Dispatcher()

    @dp.message()
    async def echo(message: Message) -> SendMessage:
        return message.answer(f"pong: {message.text}")

    app = web.Application()
    SimpleRequestHandler(dp, bot, handle_in_background=False, secret_token="abc").register(app, path="/wh")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        await bot.set_webhook(f"http://127.0.0.1:{runner.addresses[0][1]}/wh", secret_token="abc")
        await client.send_message(ALICE, "ping")
        reply = await client.wait_for_bot_message(ALICE.id, lambda m: m["text"] == "pong: ping")
        assert reply["from_bot"] is True
    finally:
        await bot.delete_webhook()
        await runner.cleanup()


async def test_wait_idle_reports_undelivered_updates(bot: Bot, client: EmulatorClient) -> None:
    await client.send_message(ALICE, "nobody polls")
    assert await client.wait_idle(quiet_ms=20, timeout=0.2) is False
    assert await bot.delete_webhook(drop_pending_updates=True)
    assert await client.wait_idle(quiet_ms=20, timeout=2) is True
    await client.reset()
    assert await client.messages(ALICE.id) == []
    assert await client.calls() == []


async def test_standalone_process_serves_until_sigterm(tmp_path: Any) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.sandbox.emulator",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        base_url = (await asyncio.wait_for(process.stdout.readline(), 15)).decode().strip()
        assert base_url.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as http, http.get(f"{base_url}/bot{TOKEN}/getMe") as response:
            assert (await response.json())["result"]["id"] == 123456
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
