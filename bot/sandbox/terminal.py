"""Terminal chat with the bot through the Bot API emulator.

``chat_loop`` reads lines (from a person via ``stdin_lines`` or from a file via
``script_lines``), sends them as a Telegram user, waits until the bot is idle
and prints what changed in the chat: texts (HTML stripped), edits, deletions,
photos and documents (saved to disk), keyboards as numbered choices and
callback-query toasts.  A bare number presses the matching inline button.

Run against a running emulator (the bot must poll it separately)::

    python -m bot.sandbox.terminal --url http://127.0.0.1:8081 [--script FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.sandbox.client import EmulatorClient, EmulatorError, TgUser
from bot.sandbox.html_markup import strip_html

__all__ = ["HELP", "chat_loop", "main", "script_lines", "stdin_lines"]

HELP = """\
Sandbox terminal: you are chatting with the bot as a Telegram user.
  any text          send it as a message (commands like /start work as usual)
  N                 press inline button N of the last keyboard shown
  :contact [PHONE]  share your contact (what a "share phone" button does)
  :photo PATH [CAPTION]   send an image file
  :doc PATH [CAPTION]     send a file as a document
  :inline QUERY     run an inline query (@bot QUERY) and list the results
  :pick N           choose inline result N of the last inline query
  :buttons          show the active inline buttons again
  :help             this help
  :quit, :q         leave"""

_DEFAULT_PHONE = "+10000000000"
_MEDIA_SIGNATURES = {b"\x89PNG": ".png", b"\xff\xd8\xff": ".jpg", b"GIF8": ".gif", b"%PDF": ".pdf"}


@dataclass(frozen=True)
class _Button:
    """An inline button on screen: its number is its index in ``_ChatView.buttons`` + 1."""

    label: str
    spec: dict[str, Any]
    message_id: int


def _fingerprint(message: dict[str, Any]) -> str:
    return json.dumps({key: value for key, value in message.items() if key != "edits"}, sort_keys=True)


def _indent(text: str, prefix: str) -> list[str]:
    lines = text.splitlines() or [""]
    pad = " " * len(prefix)
    return [prefix + lines[0], *(pad + line for line in lines[1:])]


def _suffix(name: str | None, data: bytes) -> str:
    if name and Path(name).suffix:
        return Path(name).suffix
    for signature, suffix in _MEDIA_SIGNATURES.items():
        if data.startswith(signature):
            return suffix
    return ".bin"


@dataclass
class _ChatView:
    """What the person has seen of one chat, and how to show what changed since."""

    client: EmulatorClient
    user: TgUser
    write: Callable[[str], None]
    media_dir: Path
    seen: dict[int, str] = field(default_factory=dict)
    saved: dict[str, Path] = field(default_factory=dict)
    buttons: list[_Button] = field(default_factory=list)
    answers_seen: int = 0
    inline_results: list[dict[str, Any]] = field(default_factory=list)
    inline_query: str = ""

    async def refresh(self) -> None:
        """Print every bot message that is new or changed, then new callback answers."""
        changed: list[tuple[dict[str, Any], bool]] = []
        for message in await self.client.messages(self.user.id):
            fingerprint = _fingerprint(message)
            previous = self.seen.get(message["message_id"])
            self.seen[message["message_id"]] = fingerprint
            if previous != fingerprint and message["from_bot"]:
                changed.append((message, previous is not None))
        fresh_keyboards = any(not message["deleted"] and self._inline_rows(message) for message, _ in changed)
        if fresh_keyboards:
            self.buttons = []
        for message, edited in changed:
            await self._show(message, edited)
        if not fresh_keyboards:
            self._prune_buttons(message for message, _ in changed)
        await self._show_answers()

    @staticmethod
    def _inline_rows(message: dict[str, Any]) -> list[list[dict[str, Any]]]:
        markup = message.get("reply_markup") or {}
        rows = markup.get("inline_keyboard") or []
        return [row for row in rows if isinstance(row, list)]

    def _prune_buttons(self, changed: Iterable[dict[str, Any]]) -> None:
        """Forget buttons whose message was deleted or lost its keyboard."""
        gone = {message["message_id"] for message in changed if message["deleted"] or not self._inline_rows(message)}
        if gone and any(button.message_id in gone for button in self.buttons):
            self.buttons = []

    async def _show(self, message: dict[str, Any], edited: bool) -> None:
        if message["deleted"]:
            self.write(f"bot> (deleted message #{message['message_id']})")
            return
        prefix = "bot> (edited) " if edited else "bot> "
        kind = message["kind"]
        if message.get("file_id"):
            path = await self._save(message)
            label = f"[{kind} {message['file_name']}]" if kind != "photo" and message.get("file_name") else f"[{kind}]"
            self.write(f"{prefix}{label} saved to {path}")
            if message.get("caption"):
                for line in _indent(strip_html(message["caption"]), "     "):
                    self.write(line)
        elif message.get("contact"):
            contact = message["contact"]
            self.write(f"{prefix}[contact] {contact.get('first_name', '')} {contact.get('phone_number', '')}")
        else:
            for line in _indent(strip_html(message.get("text") or ""), prefix):
                self.write(line)
        self._show_keyboard(message)

    def _show_keyboard(self, message: dict[str, Any]) -> None:
        """Print the message's keyboard; inline buttons get the next free numbers."""
        markup = message.get("reply_markup") or {}
        rows = self._inline_rows(message)
        if rows:
            for row in rows:
                cells = []
                for spec in row:
                    self.buttons.append(_Button(str(spec.get("text", "")), spec, message["message_id"]))
                    cells.append(f"[{len(self.buttons)}] {spec.get('text', '')}")
                self.write("     " + "  ".join(cells))
        elif markup.get("keyboard"):
            for row in markup["keyboard"]:
                cells = []
                for spec in row:
                    text = spec if isinstance(spec, str) else str(spec.get("text", ""))
                    hint = " (type :contact)" if isinstance(spec, dict) and spec.get("request_contact") else ""
                    cells.append(f"« {text} »{hint}")
                self.write("     keyboard: " + "  ".join(cells))
        elif markup.get("remove_keyboard"):
            self.write("     (keyboard removed)")
        elif markup.get("force_reply"):
            self.write("     (the bot asks for a reply)")

    async def _save(self, message: dict[str, Any]) -> Path:
        file_id = str(message["file_id"])
        if file_id in self.saved:
            return self.saved[file_id]
        data = await self.client.download(file_id)
        name = message.get("file_name")
        if message["kind"] == "photo" or not name:
            stem = f"{message['kind']}_{message['message_id']}"
            path = self.media_dir / f"{stem}{_suffix(name, data)}"
            version = 1
            while path.exists():
                version += 1
                path = self.media_dir / f"{stem}_v{version}{_suffix(name, data)}"
        else:
            path = self.media_dir / f"{message['message_id']}_{Path(str(name)).name}"
        await asyncio.to_thread(_write_bytes, path, data)
        self.saved[file_id] = path
        return path

    async def _show_answers(self) -> None:
        answers = await self.client.callback_answers()
        for answer in answers[self.answers_seen :]:
            if answer.get("chat_id") != self.user.id:
                continue
            if answer.get("text"):
                kind = "alert" if answer.get("show_alert") else "popup"
                self.write(f"bot> ({kind}) {answer['text']}")
            if answer.get("url"):
                self.write(f"bot> (opens) {answer['url']}")
        self.answers_seen = len(answers)

    def show_buttons(self) -> None:
        if not self.buttons:
            self.write("(no inline buttons on screen)")
        for number, button in enumerate(self.buttons, start=1):
            self.write(f"     [{number}] {button.label}")

    async def press(self, number: int) -> bool:
        """Act on inline button ``number``; ``False`` when it needs no wait for the bot."""
        button = self.buttons[number - 1]
        spec = button.spec
        if "callback_data" in spec:
            await self.client.press(self.user, button.message_id, str(spec["callback_data"]))
            return True
        if "switch_inline_query_current_chat" in spec:
            await self.run_inline_query(str(spec["switch_inline_query_current_chat"]))
            return False
        self.write(_describe_button(spec))
        return False

    async def run_inline_query(self, query: str) -> None:
        sent = await self.client.inline_query(self.user, query)
        await self.client.wait_idle()
        self.inline_query = query
        self.inline_results = []
        for answer in await self.client.inline_answers():
            if answer["inline_query_id"] == sent["inline_query_id"]:
                self.inline_results = list(answer["results"])
        if not self.inline_results:
            self.write("(no inline results)")
        for number, result in enumerate(self.inline_results, start=1):
            title = result.get("title") or result.get("id")
            description = f" - {result['description']}" if result.get("description") else ""
            self.write(f"     <{number}> {title}{description}")

    async def pick(self, number: int) -> None:
        result = self.inline_results[number - 1]
        await self.client.chosen_inline_result(self.user, str(result["id"]), self.inline_query)
        content = result.get("input_message_content") or {}
        if content.get("message_text"):
            for line in _indent(strip_html(str(content["message_text"])), "(sent via bot) "):
                self.write(line)


def _url_of(value: Any) -> str:
    return str(value.get("url", "")) if isinstance(value, dict) else str(value)


def _describe_button(spec: dict[str, Any]) -> str:
    """What pressing a non-callback inline button would do in a Telegram client."""
    if "url" in spec:
        return f"(link) {spec['url']}"
    if "web_app" in spec:
        return f"(would open the web app {_url_of(spec['web_app'])})"
    if "login_url" in spec:
        return f"(would log in via {_url_of(spec['login_url'])})"
    if "switch_inline_query" in spec:
        return f"(would pick a chat and type @bot {spec['switch_inline_query']})"
    if "switch_inline_query_chosen_chat" in spec:
        chosen = spec["switch_inline_query_chosen_chat"]
        query = chosen.get("query", "") if isinstance(chosen, dict) else chosen
        return f"(would pick a chat and type @bot {query})"
    if "copy_text" in spec:
        copied = spec["copy_text"]
        return f"(copied) {copied.get('text', '') if isinstance(copied, dict) else copied}"
    if "callback_game" in spec:
        return "(would open the game; games are not emulated)"
    if "pay" in spec:
        return "(would open the payment form; payments are not emulated)"
    return f"(button without action: {spec})"


def _read_file(path_text: str) -> tuple[Path, bytes]:
    path = Path(path_text).expanduser()
    return path, path.read_bytes()


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def _send_file(view: _ChatView, argument: str, *, as_photo: bool) -> bool:
    path_text, _, caption = argument.partition(" ")
    if not path_text:
        view.write("(usage: :photo PATH [CAPTION] or :doc PATH [CAPTION])")
        return False
    try:
        path, data = await asyncio.to_thread(_read_file, path_text)
    except OSError as error:
        view.write(f"(cannot read {path_text}: {error})")
        return False
    if as_photo:
        await view.client.send_message(view.user, photo=data, caption=caption or None)
    else:
        await view.client.send_message(view.user, document=(path.name, data), caption=caption or None)
    return True


async def _run_command(view: _ChatView, line: str) -> bool | None:
    """Handle a ``:command``; ``None`` means quit, otherwise whether to wait for the bot."""
    name, _, argument = line[1:].partition(" ")
    argument = argument.strip()
    if name in {"q", "quit"}:
        return None
    if name == "help":
        view.write(HELP)
        return False
    if name == "buttons":
        view.show_buttons()
        return False
    if name == "contact":
        await view.client.send_contact(view.user, argument or _DEFAULT_PHONE)
        return True
    if name in {"photo", "doc"}:
        return await _send_file(view, argument, as_photo=name == "photo")
    if name == "inline":
        await view.run_inline_query(argument)
        return False
    if name == "pick":
        if argument.isdigit() and 1 <= int(argument) <= len(view.inline_results):
            await view.pick(int(argument))
            return True
        view.write("(no such inline result; run :inline QUERY first)")
        return False
    view.write(f"(unknown command :{name}; try :help)")
    return False


async def chat_loop(  # noqa: PLR0917 - positional signature shared with callers of the sandbox
    client: EmulatorClient,
    user: TgUser,
    lines: AsyncIterator[str],
    write: Callable[[str], None],
    photo_dir: Path,
    quiet_ms: int = 300,
    *,
    idle_timeout: float = 10.0,
) -> None:
    """Chat with the bot as ``user`` until ``:quit`` or the end of ``lines``.

    Media the bot sends are saved under ``photo_dir``; ``quiet_ms`` is how long
    the bot must stay silent before its answer counts as complete.
    """
    view = _ChatView(client=client, user=user, write=write, media_dir=photo_dir)
    await view.refresh()
    async for raw in lines:
        line = raw.strip()
        if not line:
            continue
        try:
            if line.startswith(":"):
                wait = await _run_command(view, line)
                if wait is None:
                    return
            elif line.isdigit() and 1 <= int(line) <= len(view.buttons):
                wait = await view.press(int(line))
            else:
                await client.send_message(user, line)
                wait = True
            if wait and not await client.wait_idle(quiet_ms=quiet_ms, timeout=idle_timeout):
                write("(the bot has not finished - is it running? showing what arrived so far)")
            await view.refresh()
        except EmulatorError as error:
            write(f"(emulator error) {error}")


async def stdin_lines(prompt: str = "you> ") -> AsyncIterator[str]:
    """Lines typed at the terminal, read in a daemon thread so the loop never blocks; EOF ends."""
    loop = asyncio.get_running_loop()
    while True:
        future: asyncio.Future[str | None] = loop.create_future()

        def deliver(result: str | None, target: asyncio.Future[str | None] = future) -> None:
            if not target.done():
                target.set_result(result)

        def read() -> None:
            try:
                result: str | None = input(prompt)
            except (EOFError, KeyboardInterrupt, OSError):
                result = None
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(deliver, result)

        threading.Thread(target=read, name="sandbox-stdin", daemon=True).start()
        line = await future
        if line is None:
            return
        yield line


async def script_lines(path: Path, write: Callable[[str], None] = print) -> AsyncIterator[str]:
    """Replay a script: each non-blank line not starting with ``#`` is echoed as ``> line``."""
    text = await asyncio.to_thread(path.read_text, encoding="utf-8")
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        write(f"> {line}")
        yield line


async def _main(args: argparse.Namespace) -> None:
    user = TgUser(
        id=args.user_id,
        first_name=args.first_name,
        last_name=args.last_name,
        username=args.username,
        language_code=args.language,
    )
    photo_dir = Path(args.photo_dir)
    async with EmulatorClient(args.url) as client:
        if args.script:
            lines = script_lines(Path(args.script))
        else:
            print(HELP)
            lines = stdin_lines()
        await chat_loop(client, user, lines, print, photo_dir, quiet_ms=args.quiet_ms)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: chat with a bot that polls an already running emulator."""
    parser = argparse.ArgumentParser(description="Chat with the bot through the Bot API emulator")
    parser.add_argument("--url", default="http://127.0.0.1:8081", help="emulator base URL")
    parser.add_argument("--user-id", type=int, default=100001)
    parser.add_argument("--first-name", default="Sandbox")
    parser.add_argument("--last-name", default=None)
    parser.add_argument("--username", default="sandbox_user")
    parser.add_argument("--language", default="ru")
    parser.add_argument("--photo-dir", default="sandbox-media")
    parser.add_argument("--quiet-ms", type=int, default=300)
    parser.add_argument("--script", default=None, help="replay lines from this file instead of stdin")
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
