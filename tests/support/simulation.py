"""Fault injection for tier-2 tests: a Bot API session whose answers a test scripts (429 with retry_after, 5xx,
403 from chats that blocked the bot, timeouts) and that notes when each call was made on the harness clock, and a
database hook that makes one write statement fail inside a transaction.

Everything here is driven by the test (a script, a seeded random source, the manual clock): nothing reads the wall
clock and nothing is random on its own, so a failing run replays exactly."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import ManualClock
from bot.delivery.sender import OutboxSender
from bot.sandbox.recording import RecordingSession
from tests.support.harness import BotHarness

SENDS = frozenset({"sendMessage", "sendPhoto", "sendVideo", "sendDocument", "editMessageText", "answerCallbackQuery"})
"""The calls faults apply to (getMe, setMyCommands… always succeed)."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One failed answer: kind is 429 (with `retry_after`), 5xx (`code` 500/502/503/504), 403, or timeout."""

    kind: str
    code: int = 0
    retry_after: int = 0

    @staticmethod
    def flood(retry_after: int) -> Fault:
        return Fault("429", 429, retry_after)

    @staticmethod
    def server(code: int = 502) -> Fault:
        return Fault("5xx", code)

    @staticmethod
    def timeout() -> Fault:
        return Fault("timeout")

    @staticmethod
    def blocked() -> Fault:
        return Fault("403", 403)

    def __str__(self) -> str:
        return f"429/{self.retry_after}s" if self.kind == "429" else self.kind


@dataclass(frozen=True, slots=True)
class ApiCall:
    at: datetime
    method: str
    chat_id: int | None
    text: str
    fault: Fault | None
    """None: Telegram accepted the call."""

    @property
    def ok(self) -> bool:
        return self.fault is None


class FaultySession(RecordingSession):
    """A recording Bot API session whose failures the test decides.

    For each call that may fail (`SENDS`), in this order: a fault queued with `fail_next_calls` (any chat, or the
    given one), 403 when the chat is in `blocked`, then `chaos(method, chat_id)` when set. Every call is kept in
    `log` with the clock's time and what was answered.
    """

    def __init__(self, clock: ManualClock) -> None:
        super().__init__()
        self.clock = clock
        self.log: list[ApiCall] = []
        self.blocked: set[int] = set()
        self.chaos: Callable[[str, int | None], Fault | None] | None = None
        self._queued: list[tuple[int | None, Fault]] = []

    def fail_next_calls(self, *faults: Fault, chat_id: int | None = None) -> None:
        """The next calls (to `chat_id`, or to anyone) get these faults, one each, in order."""
        self._queued.extend((chat_id, fault) for fault in faults)

    def _fault_for(self, api_name: str, chat_id: int | None) -> Fault | None:
        if api_name not in SENDS:
            return None
        for i, (only, fault) in enumerate(self._queued):
            if only is None or only == chat_id:
                del self._queued[i]
                return fault
        if chat_id is not None and chat_id in self.blocked:
            return Fault.blocked()
        return self.chaos(api_name, chat_id) if self.chaos is not None else None

    def sent_ok(self, chat_id: int | None = None) -> list[ApiCall]:
        """Calls Telegram accepted that deliver something (not answerCallbackQuery)."""
        return [
            c
            for c in self.log
            if c.ok and c.method != "answerCallbackQuery" and (chat_id is None or c.chat_id == chat_id)
        ]

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,
    ) -> TelegramType:
        name = type(method).__name__
        api_name = name[0].lower() + name[1:]
        chat = getattr(method, "chat_id", None)
        chat_id = chat if isinstance(chat, int) else None
        text = str(getattr(method, "text", None) or getattr(method, "caption", None) or "")
        fault = self._fault_for(api_name, chat_id)
        self.log.append(ApiCall(self.clock.now(), api_name, chat_id, text, fault))
        if fault is None:
            return await super().make_request(bot, method, timeout)
        if fault.kind == "timeout":
            raise TelegramNetworkError(method=method, message="Request timeout error")
        descriptions = {"429": "Too Many Requests: retry after", "403": "Forbidden: bot was blocked by the user"}
        payload: dict[str, Any] = {
            "ok": False,
            "error_code": fault.code,
            "description": descriptions.get(fault.kind, "Bad Gateway"),
        }
        if fault.kind == "429":
            payload["parameters"] = {"retry_after": fault.retry_after}
        self.check_response(bot=bot, method=method, status_code=fault.code, content=json.dumps(payload))
        raise AssertionError("check_response accepted an error answer")  # pragma: no cover


def use_faulty_session(h: BotHarness, **sender_options: Any) -> FaultySession:
    """Give the harness a `FaultySession`: handlers' replies, jobs and a fresh outbox sender all go through it."""
    session = FaultySession(h.clock)
    h.session = session
    h.bot = Bot("123456:TEST-token", session=session, default=DefaultBotProperties(parse_mode="HTML"))
    h.sender = OutboxSender(h.sessionmaker, h.bot, h.clock, sleep=h.pass_time, **sender_options)
    return session


class WriteFailure:
    """Makes the n-th INSERT, UPDATE or DELETE after `arm` fail as a dropped database connection would, once.

    Installed as a `before_cursor_execute` listener on the engine, so the statement never reaches the database and
    the transaction around it is rolled back by its unit of work like any other failure.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._countdown = 0
        self.fired = False

    def arm(self, nth_write: int) -> None:
        self._countdown = nth_write
        self.fired = False

    def disarm(self) -> None:
        self._countdown = 0

    def _before(self, conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        if self._countdown <= 0:
            return
        if statement.lstrip().split(None, 1)[0].upper() not in ("INSERT", "UPDATE", "DELETE"):
            return
        self._countdown -= 1
        if self._countdown == 0:
            self.fired = True
            raise OperationalError(statement, None, ConnectionError("injected: the database went away"))

    @contextmanager
    def installed(self) -> Iterator[WriteFailure]:
        target = self._engine.sync_engine
        event.listen(target, "before_cursor_execute", self._before)
        try:
            yield self
        finally:
            event.remove(target, "before_cursor_execute", self._before)
