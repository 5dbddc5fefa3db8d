"""Drains the outbox: claims due rows, sends them, and records every outcome on the row."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import FSInputFile, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from storage.models import OutboxMessage
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

STALE_CLAIM = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str
    """sent | pending (retry later) | dead."""
    error: str | None = None
    retry_in: float = 0.0
    telegram_message_id: int | None = None
    unreachable: bool = False


def backoff_seconds(attempts: int, *, base: float = 2.0, cap: float = 300.0) -> float:
    """Exponential backoff for transient failures: 2, 4, 8 … seconds, never more than `cap`."""
    return float(min(cap, base ** max(1, attempts)))


class OutboxSender:
    """Sends due outbox rows. Several senders may run at once on PostgreSQL (SKIP LOCKED claims)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bot: Bot,
        clock: Clock,
        *,
        poll_seconds: float = 1.0,
        batch_size: int = 50,
        max_attempts: int = 8,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._bot = bot
        self._clock = clock
        self._poll = poll_seconds
        self._batch = batch_size
        self._max_attempts = max_attempts
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """Called after a commit that enqueued messages, so they go out at once."""
        self._wake.set()

    async def run(self) -> None:
        """Drain until `stop()`; errors in one round are logged and the loop carries on."""
        while not self._stopping:
            self._wake.clear()
            try:
                sent = await self.drain_once()
            except Exception:
                log.exception("outbox round failed")
                sent = 0
            if sent or self._stopping:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def release_stale(self) -> int:
        """Rows a crashed sender left claimed go back to the queue."""
        async with UnitOfWork(self._sessionmaker) as uow:
            return await uow.outbox.release_stale(self._clock.now() - STALE_CLAIM)

    async def drain_once(self) -> int:
        """Send one batch of due rows; returns how many rows were handled."""
        async with UnitOfWork(self._sessionmaker) as uow:
            claimed = await uow.outbox.claim_due(self._clock.now(), self._batch)
            rows = [(row.id, row.chat_id, row.kind, dict(row.payload), row.attempts) for row in claimed]
        for row_id, chat_id, kind, payload, attempts in rows:
            outcome = await self._send(chat_id, kind, payload, attempts)
            await self._record(row_id, chat_id, outcome)
            if outcome.retry_in and outcome.error and outcome.error.startswith("429"):
                await asyncio.sleep(outcome.retry_in)  # nothing else goes to the API before retry_after ends
        return len(rows)

    async def _send(self, chat_id: int, kind: str, payload: dict[str, Any], attempts: int) -> Outcome:
        try:
            message = await self._deliver(chat_id, kind, payload)
        except TelegramRetryAfter as exc:
            return Outcome("pending", f"429 retry after {exc.retry_after}s", retry_in=float(exc.retry_after))
        except TelegramForbiddenError as exc:
            return Outcome("dead", f"403 {exc.message}", unreachable=True)
        except TelegramBadRequest as exc:
            return Outcome("dead", f"400 {exc.message}")
        except (ValueError, KeyError) as exc:
            return Outcome("dead", f"malformed outbox row: {exc!r}")
        except (TelegramServerError, TelegramNetworkError) as exc:
            if attempts >= self._max_attempts:
                return Outcome("dead", f"gave up after {attempts} attempts: {exc}")
            return Outcome("pending", str(exc), retry_in=backoff_seconds(attempts))
        return Outcome("sent", telegram_message_id=message.message_id)

    async def _deliver(self, chat_id: int, kind: str, payload: dict[str, Any]) -> Message:
        markup = payload.get("reply_markup")
        reply_markup = InlineKeyboardMarkup.model_validate(markup) if markup else None
        parse_mode = payload.get("parse_mode", "HTML")
        if kind == "text":
            return await self._bot.send_message(
                chat_id, payload["text"], parse_mode=parse_mode, reply_markup=reply_markup
            )
        if kind == "photo":
            photo = payload["file_id"] if "file_id" in payload else FSInputFile(payload["path"])
            return await self._bot.send_photo(
                chat_id, photo, caption=payload.get("caption"), parse_mode=parse_mode, reply_markup=reply_markup
            )
        raise ValueError(f"unknown outbox message kind {kind!r}")

    async def _record(self, row_id: int, chat_id: int, outcome: Outcome) -> None:
        now = self._clock.now()
        async with UnitOfWork(self._sessionmaker) as uow:
            row: OutboxMessage | None = await uow.outbox.get(row_id)
            if row is None:
                return
            row.status = outcome.status
            row.last_error = outcome.error
            if outcome.status == "sent":
                row.sent_at = now
                row.telegram_message_id = outcome.telegram_message_id
            elif outcome.status == "pending":
                row.not_before = now + timedelta(seconds=outcome.retry_in)
            if outcome.unreachable:
                await uow.outbox.mark_partner_unreachable(chat_id)
        level = logging.INFO if outcome.status == "sent" else logging.WARNING
        log.log(level, "outbox row %s to chat %s: %s %s", row_id, chat_id, outcome.status, outcome.error or "")
