"""The sandbox terminal chatting with a real aiogram bot through the emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)

from bot.sandbox.client import EmulatorClient, TgUser
from bot.sandbox.terminal import chat_loop, script_lines, stdin_lines
from tests.sandbox.conftest import make_png, polling

USER = TgUser(id=2001, first_name="Terminal", username="term")
PNG = make_png(5, 2)


def terminal_router() -> Router:
    router = Router()

    @router.message(F.text == "/start")
    async def start(message: Message) -> None:
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[
                [
                    InlineKeyboardButton(text="Option A", callback_data="a"),
                    InlineKeyboardButton(text="Site", url="https://example.org/partner"),
                ],
                [InlineKeyboardButton(text="Option C", callback_data="c")],
            ]
        )
        await message.answer("<b>Choose</b> an option:", reply_markup=keyboard)

    @router.callback_query()
    async def chosen(callback: CallbackQuery) -> None:
        await callback.answer(f"Chose {callback.data}")
        assert isinstance(callback.message, Message)
        await callback.message.edit_text(f"You chose <b>{(callback.data or '').upper()}</b>")

    @router.message(F.text == "photo")
    async def photo(message: Message) -> None:
        await message.answer_photo(BufferedInputFile(PNG, "qr.png"), caption="Your <i>QR</i>")

    @router.message(F.text == "phone")
    async def phone(message: Message) -> None:
        keyboard = ReplyKeyboardMarkup(
            keyboard=[[KeyboardButton(text="Share phone", request_contact=True)]], resize_keyboard=True
        )
        await message.answer("Share your phone", reply_markup=keyboard)

    @router.message(F.contact)
    async def contact(message: Message) -> None:
        assert message.contact is not None
        await message.answer(f"Got {message.contact.phone_number}")

    @router.message()
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}")

    return router


async def from_list(lines: Iterable[str]) -> AsyncIterator[str]:
    for line in lines:
        yield line


@pytest.fixture
async def running_bot(bot: Bot, client: EmulatorClient) -> AsyncIterator[EmulatorClient]:
    dp = Dispatcher()
    dp.include_router(terminal_router())
    async with polling(dp, bot, client):
        yield client


async def test_buttons_callbacks_edits_and_photos(running_bot: EmulatorClient, tmp_path: Path) -> None:
    out: list[str] = []
    lines = ["/start", "1", "photo", ":q", "never sent"]
    await chat_loop(running_bot, USER, from_list(lines), out.append, tmp_path / "media", quiet_ms=80)
    text = "\n".join(out)
    assert "bot> Choose an option:" in out
    assert "     [1] Option A  [2] Site" in out
    assert "     [3] Option C" in out
    assert "bot> (edited) You chose A" in out
    assert "bot> (popup) Chose a" in out
    saved = [line for line in out if "[photo] saved to" in line]
    assert len(saved) == 1, text
    path = Path(saved[0].split("saved to ", 1)[1])
    assert path.parent == tmp_path / "media" and path.suffix == ".png"
    assert await asyncio.to_thread(path.read_bytes) == PNG
    assert "     Your QR" in out
    user_texts = [m["text"] for m in await running_bot.messages(USER.id) if not m["from_bot"]]
    assert user_texts == ["/start", "photo"]


async def test_url_buttons_out_of_range_numbers_and_contacts(running_bot: EmulatorClient, tmp_path: Path) -> None:
    out: list[str] = []
    lines = ["7", "/start", "2", "9", "phone", ":contact +15550001", ":help", ":nope", ""]
    await chat_loop(running_bot, USER, from_list(lines), out.append, tmp_path, quiet_ms=80)
    assert "bot> echo: 7" in out
    assert "(link) https://example.org/partner" in out
    assert "bot> echo: 9" in out
    assert "     keyboard: « Share phone » (type :contact)" in out
    assert "bot> Got +15550001" in out
    assert any(line.startswith("Sandbox terminal:") for line in out)
    assert "(unknown command :nope; try :help)" in out


async def test_script_replay_echoes_lines(running_bot: EmulatorClient, tmp_path: Path) -> None:
    script = tmp_path / "flow.txt"
    script.write_text("# open the menu\n/start\n\n3\n", encoding="utf-8")
    out: list[str] = []
    await chat_loop(running_bot, USER, script_lines(script, out.append), out.append, tmp_path, quiet_ms=80)
    assert out.index("> /start") < out.index("bot> Choose an option:") < out.index("> 3")
    assert out.index("> 3") < out.index("bot> (edited) You chose C")
    assert not any("open the menu" in line for line in out)


async def test_stdin_lines_stops_at_eof(monkeypatch: pytest.MonkeyPatch) -> None:
    typed = iter(["hello", "/start"])

    def fake_input(prompt: str = "") -> str:
        try:
            return next(typed)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr("builtins.input", fake_input)
    assert [line async for line in stdin_lines("you> ")] == ["hello", "/start"]
