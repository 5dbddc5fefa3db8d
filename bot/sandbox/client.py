"""Async client for the Bot API emulator's control API (``/_emu/``).

Tests and the sandbox terminal use it to act as Telegram users (send messages,
press buttons, run inline queries) and to read what the bot did (chat
contents with edits, raw Bot API calls, callback answers, commands).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp

__all__ = ["EmulatorClient", "EmulatorError", "TgUser", "wait_for"]

T = TypeVar("T")


@dataclass(frozen=True)
class TgUser:
    """A Telegram user played by a test or a person at the terminal."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The control-API form: ``None`` fields omitted."""
        return {key: value for key, value in asdict(self).items() if value is not None}


class EmulatorError(RuntimeError):
    """The control API refused a request."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


async def wait_for(
    probe: Callable[[], Awaitable[T | None]],
    timeout: float = 5.0,  # noqa: ASYNC109 - a polling deadline, not a cancellation scope
    interval: float = 0.02,
) -> T:
    """Await ``probe()`` repeatedly until it returns something other than ``None``.

    Raises ``TimeoutError`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


class EmulatorClient:
    """Control-API client; use as ``async with EmulatorClient(base_url) as client``."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self._ensure_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        session = self._ensure_session()
        async with session.request(method, f"{self.base_url}/_emu/{path}", json=json, params=params) as response:
            payload = await response.json(content_type=None)
            if response.status >= 400:
                message = payload.get("error") if isinstance(payload, dict) else None
                raise EmulatorError(response.status, str(message or payload))
            return payload

    # ------------------------------------------------------------------ acting as users

    async def send_message(
        self,
        user: TgUser,
        text: str | None = None,
        *,
        contact: Mapping[str, Any] | None = None,
        forward_from: TgUser | None = None,
        document: tuple[str, bytes] | tuple[str, bytes, str] | None = None,
        photo: bytes | None = None,
        caption: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        """Send a private message from ``user``; returns ``{"update_id", "message_id"}``.

        ``document`` is ``(file_name, content)`` or ``(file_name, content, mime_type)``;
        ``photo`` is the raw image bytes; ``contact`` is a Bot API ``Contact``.
        """
        body: dict[str, Any] = {"user": user.to_dict()}
        if text is not None:
            body["text"] = text
        if caption is not None:
            body["caption"] = caption
        if contact is not None:
            body["contact"] = dict(contact)
        if forward_from is not None:
            body["forward_from"] = forward_from.to_dict()
        if document is not None:
            body["document"] = {
                "file_name": document[0],
                "content_b64": base64.b64encode(document[1]).decode("ascii"),
                "mime_type": document[2] if len(document) == 3 else None,
            }
        if photo is not None:
            body["photo"] = {"content_b64": base64.b64encode(photo).decode("ascii")}
        if reply_to_message_id is not None:
            body["reply_to_message_id"] = reply_to_message_id
        result: dict[str, Any] = await self._request("POST", "updates/message", json=body)
        return result

    async def send_contact(self, user: TgUser, phone_number: str) -> dict[str, Any]:
        """Share ``user``'s own contact, as a ``request_contact`` button does."""
        contact = {"phone_number": phone_number, "first_name": user.first_name, "user_id": user.id}
        if user.last_name:
            contact["last_name"] = user.last_name
        return await self.send_message(user, contact=contact)

    async def press(self, user: TgUser, message_id: int, data: str) -> dict[str, Any]:
        """Press a callback button; returns ``{"update_id", "callback_query_id"}``."""
        body = {"user": user.to_dict(), "message_id": message_id, "data": data}
        result: dict[str, Any] = await self._request("POST", "updates/callback", json=body)
        return result

    async def inline_query(self, user: TgUser, query: str, *, offset: str = "") -> dict[str, Any]:
        """Type ``@bot query``; returns ``{"update_id", "inline_query_id"}``."""
        body = {"user": user.to_dict(), "query": query, "offset": offset}
        result: dict[str, Any] = await self._request("POST", "updates/inline_query", json=body)
        return result

    async def chosen_inline_result(self, user: TgUser, result_id: str, query: str = "") -> dict[str, Any]:
        """Pick an inline result; returns ``{"update_id", "inline_message_id"}``."""
        body = {"user": user.to_dict(), "result_id": result_id, "query": query}
        result: dict[str, Any] = await self._request("POST", "updates/chosen_inline_result", json=body)
        return result

    # ------------------------------------------------------------------ inspecting

    async def messages(self, chat_id: int) -> list[dict[str, Any]]:
        """Every message of the chat in order (user's and bot's), current state plus ``edits``."""
        result: list[dict[str, Any]] = await self._request("GET", f"chats/{chat_id}/messages")
        return result

    async def bot_messages(self, chat_id: int, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Only the bot's messages of the chat."""
        return [
            message
            for message in await self.messages(chat_id)
            if message["from_bot"] and (include_deleted or not message["deleted"])
        ]

    async def last_bot_message(self, chat_id: int) -> dict[str, Any] | None:
        messages = await self.bot_messages(chat_id)
        return messages[-1] if messages else None

    async def wait_for_bot_message(
        self,
        chat_id: int,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - a polling deadline, not a cancellation scope
    ) -> dict[str, Any]:
        """The first live bot message matching ``predicate``, waiting for it to appear."""

        async def probe() -> dict[str, Any] | None:
            for message in await self.bot_messages(chat_id):
                if predicate is None or predicate(message):
                    return message
            return None

        return await wait_for(probe, timeout)

    async def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        """Bot API calls received, in order: ``{"method", "params", "ts", "error_code"}``."""
        result: list[dict[str, Any]] = await self._request(
            "GET", "calls", params={"method": method} if method else None
        )
        return result

    async def callback_answers(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._request("GET", "callback_answers")
        return result

    async def inline_answers(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._request("GET", "inline_answers")
        return result

    async def inline_messages(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._request("GET", "inline_messages")
        return result

    async def commands(self) -> list[dict[str, Any]]:
        """What ``setMyCommands`` stored: ``[{"scope", "language_code", "commands"}]``."""
        result: list[dict[str, Any]] = await self._request("GET", "commands")
        return result

    async def webhook(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("GET", "webhook")
        return result

    # ------------------------------------------------------------------ control

    async def inject_fault(
        self,
        method: str,
        error_code: int,
        *,
        times: int = 1,
        retry_after: int | None = None,
        description: str | None = None,
        chat_id: int | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (``"*"`` = any) fail with ``error_code``.

        With ``chat_id`` only calls addressed to that chat fail.
        """
        body: dict[str, Any] = {"method": method, "error_code": error_code, "times": times}
        if retry_after is not None:
            body["retry_after"] = retry_after
        if description is not None:
            body["description"] = description
        if chat_id is not None:
            body["chat_id"] = chat_id
        await self._request("POST", "faults", json=body)

    async def clear_faults(self) -> None:
        await self._request("DELETE", "faults")

    async def wait_idle(
        self,
        quiet_ms: int = 250,
        timeout: float = 10.0,  # noqa: ASYNC109 - enforced by the emulator, server side
    ) -> bool:
        """Wait until every update was taken and confirmed and the bot went quiet."""
        result = await self._request("POST", "wait_idle", json={"quiet_ms": quiet_ms, "timeout": timeout})
        return bool(result.get("idle"))

    async def download(self, file_id: str) -> bytes:
        """Raw bytes of any file known to the emulator."""
        session = self._ensure_session()
        async with session.get(f"{self.base_url}/_emu/files/{file_id}") as response:
            if response.status >= 400:
                raise EmulatorError(response.status, await response.text())
            return await response.read()

    async def reset(self) -> None:
        """Forget users, chats, calls, files, faults, webhook and commands."""
        await self._request("POST", "reset")
