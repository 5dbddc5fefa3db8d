"""Drains the outbox: claims due rows, sends them within Telegram's limits, and records every outcome on the row.

Every message the bot sends on its own goes through here, so partners get their notices and broadcasts as fast
as Telegram allows and no faster: a 429 would hold the whole bot back, and a blocked chat would otherwise be
retried forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import EditMessageText, SendMessage, SendPhoto, SendVideo
from aiogram.methods.base import Response
from aiogram.types import FSInputFile, InlineKeyboardMarkup, Message, ReplyKeyboardMarkup
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.delivery.limiter import DeliveryLimiter, DeliveryRates
from storage.repositories.outbox import ClaimedMessage
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

STALE_CLAIM = timedelta(minutes=2)
MAX_HOLD_SECONDS = 2.0
"""Longest a round waits for rate slots while holding claimed rows; the rest go back to the queue."""

WRITE_RETRY_SECONDS = 1.0
UNREACHABLE_ERROR = "403 not sent: the partner blocked the bot and has not written since"

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str
    """sent | pending (retry later) | dead."""
    error: str | None = None
    retry_in: float = 0.0
    telegram_message_id: int | None = None
    unreachable: bool = False
    flood: bool = False
    """A 429: the whole bot pauses for `retry_in` seconds."""
    file_id: str | None = None
    """Telegram's id of a file this message uploaded, kept when the row names a `file_key`."""


@dataclass(frozen=True, slots=True)
class _Done:
    row: ClaimedMessage
    outcome: Outcome
    at: datetime
    """When the API call ended: the row's sent_at, and where a retry delay starts."""


class _Batch(NamedTuple):
    """Claimed rows, and which of their chats are partners who blocked the bot."""

    rows: list[ClaimedMessage]
    blocked: set[int]


@dataclass(frozen=True, slots=True)
class _Admission:
    end_round: bool = False
    chat_wait: float = 0.0
    """Seconds until the chat may get another message; 0 means send now."""
    waited: float = 0.0


def backoff_seconds(attempts: int, *, base: float = 2.0, cap: float = 300.0) -> float:
    """Exponential backoff for transient failures: 2, 4, 8 … seconds, never more than `cap`."""
    return float(min(cap, base ** max(1, attempts)))


def default_in_flight(rate: int) -> int:
    """Concurrent API calls needed to reach `rate` with Telegram's ~100 ms round trips, within aiohttp's pool."""
    return max(4, min(100, rate // 5))


def record_linger(rate: int) -> float:
    """How long outcomes gather before they are written: about 50 sends, never more than 0.1 s."""
    return min(0.1, 50 / rate)


def default_batch(rate: int) -> int:
    """About one second of sending per claim, so claimed rows never wait long in 'sending', and at most 250 rows:
    reading a claim's rows holds the event loop ~10 µs a row, and at paid speeds a 1,000-row claim (10 ms, half
    the limiter's burst) meeting a garbage collection would stall sending longer than the burst makes up for."""
    return max(10, min(250, rate))


class _Recorder:
    """Writes outcomes right after their API calls, several per transaction when they finish close together.

    A row is marked sent at most `linger` seconds after Telegram accepted it (one transaction per ~50 sends
    instead of one per send), so a crash can re-send at most the calls in flight or waiting to be recorded.
    Outcomes are never dropped: a failed write is retried with the next ones.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        linger: float = 0.0,
        on_recorded: Callable[[str, int], None] | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._linger = linger
        self._on_recorded = on_recorded
        self._queue: asyncio.Queue[_Done | None] = asyncio.Queue()

    def put(self, row: ClaimedMessage, outcome: Outcome) -> None:
        """Note the outcome of `row`'s call, which ended just now."""
        self._queue.put_nowait(_Done(row, outcome, self._clock.now()))

    def close(self) -> None:
        """Write what is queued, then end `run`."""
        self._queue.put_nowait(None)

    async def run(self) -> None:
        batch: list[_Done] = []
        done = False
        while not done or batch:
            if not done:
                item = await self._queue.get()
                if item is not None and self._linger:
                    await asyncio.sleep(self._linger)
                while item is not None:
                    batch.append(item)
                    if self._queue.empty():
                        break
                    item = self._queue.get_nowait()
                done = item is None
            if not batch:
                continue
            try:
                await self._write(batch)
                batch = []
            except Exception:
                log.exception("could not record %s outbox outcomes; retrying", len(batch))
                await asyncio.sleep(WRITE_RETRY_SECONDS)

    async def _write(self, batch: list[_Done]) -> None:
        sent = [(d.row.id, d.outcome.telegram_message_id, d.at) for d in batch if d.outcome.status == "sent"]
        retry = [
            (d.row.id, d.at + timedelta(seconds=d.outcome.retry_in), d.outcome.error or "")
            for d in batch
            if d.outcome.status == "pending"
        ]
        dead = [(d.row.id, d.outcome.error or "") for d in batch if d.outcome.status == "dead"]
        unreachable = sorted({d.row.chat_id for d in batch if d.outcome.unreachable})
        uploads = {
            str(d.row.payload["file_key"]): d.outcome.file_id
            for d in batch
            if d.outcome.file_id and d.row.payload.get("file_key")
        }
        async with UnitOfWork(self._sessionmaker) as uow:
            for key, file_id in uploads.items():
                await uow.files.put(key, file_id, self._clock.now())
            await uow.outbox.mark_sent(sent)
            await uow.outbox.retry_later(retry)
            await uow.outbox.mark_dead(dead)
            await uow.outbox.mark_chats_unreachable(unreachable)
        if self._on_recorded is not None:
            for status, rows in (("sent", sent), ("pending", retry), ("dead", dead)):
                if rows:
                    self._on_recorded(status, len(rows))
        for d in batch:
            level = logging.DEBUG if d.outcome.status == "sent" else logging.WARNING
            log.log(
                level,
                "outbox row %s to chat %s: %s %s",
                d.row.id,
                d.row.chat_id,
                d.outcome.status,
                d.outcome.error or "",
            )


class OutboxSender:
    """Sends due outbox rows within Telegram's rate limits and records every outcome on the row.

    Several senders may run at once (several processes on PostgreSQL): claims use SKIP LOCKED, and with a
    Redis-backed limiter they share one rate budget and one 429 pause.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bot: Bot,
        clock: Clock,
        *,
        limiter: DeliveryLimiter | None = None,
        poll_seconds: float = 1.0,
        batch_size: int | None = None,
        max_attempts: int = 8,
        max_in_flight: int | None = None,
        sleep: Sleep = asyncio.sleep,
        claim_timeout: timedelta = STALE_CLAIM,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._claim_timeout = claim_timeout
        self.on_recorded: Callable[[str, int], None] | None = None
        """Told (status, how many) after each write of outcomes: sent | pending (retry later) | dead (metrics)."""
        self._bot = bot
        self._clock = clock
        self.limiter = limiter or DeliveryLimiter.in_memory(clock, DeliveryRates.for_rate(25))
        rate = self.limiter.rates.per_second
        self._paid = True if self.limiter.rates.paid_broadcast else None
        self._poll = poll_seconds
        self._batch = batch_size or default_batch(rate)
        self._record_linger = record_linger(rate)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._next_batch: asyncio.Task[_Batch] | None = None
        self._credit = 0
        """Bot-wide slots already taken and not yet used."""
        self._credit_lapses = 0.0
        """When unused slots lapse (epoch seconds): no later than the limiter's burst would have covered them, so
        the next round, when it follows at once, sends on the last round's slots instead of losing them, and a
        sender that paused or went idle never sends on old ones."""
        self._chat_waits: dict[int, float] = {}
        """Chat slots taken with the last bot-wide slots, for the next rows of the round: 0 to send, else seconds
        until the chat may have another message."""
        self._max_attempts = max_attempts
        self._slots = asyncio.Semaphore(max_in_flight or default_in_flight(rate))
        self._sleep = sleep
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._uploaded: dict[str, str] = {}
        # aiogram parametrizes Response[...] on every call and pydantic caches generic classes only weakly, so each
        # garbage collection would force a ~10 ms schema rebuild in the middle of a broadcast; keep them alive.
        methods = (SendMessage, SendPhoto, SendVideo, EditMessageText)
        self._response_types = [Response[m.__returning__] for m in methods]  # type: ignore[name-defined]

    def wake(self) -> None:
        """Called after a commit that enqueued messages, so they go out at once."""
        self._wake.set()

    async def run(self) -> None:
        """Drain until `stop()`; errors in one round are logged and the loop carries on.

        Rounds follow each other without waiting for the previous round's last calls or their recording.
        """
        recorder = _Recorder(self._sessionmaker, self._clock, self._record_linger, self.on_recorded)
        writer = asyncio.create_task(recorder.run(), name="outbox-recorder")
        try:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    paused = await self.limiter.paused_for()
                    if paused > 0:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._stop.wait(), timeout=paused)
                        continue
                    claimed, _ = await self._round(recorder, prefetch=True)
                except Exception:
                    log.exception("outbox round failed")
                    claimed = 0
                if claimed or self._stop.is_set():
                    continue  # rows were due: look again at once (deferred rows are no longer due: no busy loop)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
        finally:
            await self._give_back_next_batch()
            await self._settle(recorder, writer)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def release_stale(self) -> int:
        """Rows a crashed sender left claimed go back to the queue."""
        async with UnitOfWork(self._sessionmaker) as uow:
            return await uow.outbox.release_stale(self._clock.now() - self._claim_timeout)

    async def drain_once(self) -> int:
        """Send one batch of due rows at the allowed pace and record every outcome; returns how many were sent."""
        recorder = _Recorder(self._sessionmaker, self._clock, on_recorded=self.on_recorded)
        writer = asyncio.create_task(recorder.run(), name="outbox-recorder")
        try:
            _, sent = await self._round(recorder)
        finally:
            await self._settle(recorder, writer)
        return sent

    async def _settle(self, recorder: _Recorder, writer: asyncio.Task[None]) -> None:
        """Let the calls in flight finish, then write every outcome."""
        if self._in_flight:
            await asyncio.wait(self._in_flight)
        recorder.close()
        await writer

    async def _round(self, recorder: _Recorder, *, prefetch: bool = False) -> tuple[int, int]:
        """Claim one batch of due rows and start the calls the limits allow: (rows claimed, calls started).

        Only the first row of each chat is tried in a round (one message a second per chat); the chat's other
        rows, rows of chats still over their limit, and rows left when a 429 pauses the bot go straight back
        to the queue, so one busy chat never holds up the others.
        """
        if await self.limiter.paused_for() > 0:
            await self._give_back_next_batch()
            return 0, 0
        claimed, blocked = await self._next_batch if self._next_batch is not None else await self._claim()
        self._next_batch = None
        if not claimed:
            return 0, 0
        now = self._clock.now()
        first, give_back = self._first_per_chat(self._skip_unreachable(claimed, blocked, recorder), now)
        waiting = list(reversed(first))  # popped from the end, oldest first
        started = 0
        try:
            budget = MAX_HOLD_SECONDS
            while waiting:
                await self._slots.acquire()  # first, so the 429 check below is the last word before the call
                admitted = await self._admit(waiting, budget)
                budget -= admitted.waited
                if admitted.end_round or admitted.chat_wait > 0:
                    self._slots.release()
                if admitted.end_round:
                    break
                row = waiting.pop()
                if admitted.chat_wait > 0:
                    give_back.append((row.id, self._clock.now() + timedelta(seconds=admitted.chat_wait)))
                    continue
                call = asyncio.create_task(self._send_one(row, recorder), name=f"outbox-send-{row.id}")
                self._in_flight.add(call)
                call.add_done_callback(self._in_flight.discard)
                started += 1
                if prefetch and self._next_batch is None and len(waiting) <= len(first) // 4:
                    # claim the next batch while this one finishes, so sending never stops for a claim
                    self._next_batch = asyncio.create_task(self._claim(), name="outbox-claim")
                await asyncio.sleep(0)  # let the call start now, not after the next wait for a slot
        finally:
            self._chat_waits.clear()  # taken for rows that go back now: a later round decides again
            give_back.extend((row.id, row.not_before) for row in waiting)
            if give_back:
                async with UnitOfWork(self._sessionmaker) as uow:
                    await uow.outbox.give_back(give_back)
        return len(claimed), started

    @staticmethod
    def _skip_unreachable(
        claimed: list[ClaimedMessage], blocked: set[int], recorder: _Recorder
    ) -> list[ClaimedMessage]:
        """Rows for partners who blocked the bot (`blocked` chats) are dead letters without another call (each
        would be one more 403) until the partner writes to the bot again; the other rows, to be sent."""
        for row in claimed:
            if row.chat_id in blocked:
                recorder.put(row, Outcome("dead", UNREACHABLE_ERROR))
        return [row for row in claimed if row.chat_id not in blocked]

    async def _claim(self) -> _Batch:
        """Claim due rows, and find which of their chats are unreachable in the same unit of work: with the next
        batch claimed ahead of time, sending goes from one batch to the next without a query in between."""
        async with UnitOfWork(self._sessionmaker) as uow:
            rows = await uow.outbox.claim_due(self._clock.now(), self._batch)
            blocked = await uow.outbox.unreachable_chats({row.chat_id for row in rows})
        return _Batch(rows, blocked)

    async def _give_back_next_batch(self) -> None:
        """Rows claimed ahead of time go back to the queue untouched (on a 429 pause, and at stop)."""
        if self._next_batch is None:
            return
        (rows, _), self._next_batch = await self._next_batch, None
        if rows:
            async with UnitOfWork(self._sessionmaker) as uow:
                await uow.outbox.give_back([(row.id, row.not_before) for row in rows])

    @staticmethod
    def _first_per_chat(
        claimed: list[ClaimedMessage], now: datetime
    ) -> tuple[list[ClaimedMessage], list[tuple[int, datetime]]]:
        """The first row of each chat, and the others spread out at that chat's pace."""
        first: list[ClaimedMessage] = []
        later: list[tuple[int, datetime]] = []
        seen: dict[int, int] = {}
        for row in claimed:
            position = seen.get(row.chat_id, 0)
            seen[row.chat_id] = position + 1
            if position == 0:
                first.append(row)
            else:
                delay = position * DeliveryLimiter.chat_interval(row.chat_id)
                later.append((row.id, now + timedelta(seconds=delay)))
        return first, later

    async def _admit(self, waiting: list[ClaimedMessage], budget: float) -> _Admission:
        """Wait for a bot-wide slot for the next row (`waiting[-1]`), then take its chat's.

        The round ends instead when a 429 pauses the bot, or when waiting would exceed `budget` seconds (the
        round has held its claimed rows long enough). Bot-wide slots are taken `slots_per_take` at a time, with
        the chats of as many of the next rows and the 429 check in the same call: before every message at free
        speeds, and on Redis one round trip for several messages at paid speeds.
        """
        chat_id = waiting[-1].chat_id
        waited = 0.0
        rates = self.limiter.rates
        if self._credit and self._clock.now().timestamp() > self._credit_lapses:
            self._credit = 0
        while not self._credit:
            take = rates.slots_per_take
            chats = self._undecided_chats(waiting, take)
            decision = await self.limiter.take(take, chats)
            if decision.paused > 0:
                return _Admission(end_round=True, waited=waited)
            if decision.wait <= 0:
                self._credit = take
                self._credit_lapses = self._clock.now().timestamp() + rates.burst / rates.per_second
                self._chat_waits.update(zip(chats, decision.chat_waits, strict=True))
                break
            if waited + decision.wait > budget:
                return _Admission(end_round=True, waited=waited)
            await self._sleep(decision.wait)
            waited += decision.wait
        if chat_id not in self._chat_waits:  # slots left from the last take, for rows it did not know
            chats = self._undecided_chats(waiting, self._credit)
            decision = await self.limiter.take(0, chats)
            self._chat_waits.update(zip(chats, decision.chat_waits, strict=True))
        self._credit -= 1
        return _Admission(chat_wait=self._chat_waits.pop(chat_id), waited=waited)

    def _undecided_chats(self, waiting: list[ClaimedMessage], count: int) -> list[int]:
        """The chats of the next `count` rows whose chat slot is not taken yet (a round has one row per chat)."""
        chats: list[int] = []
        for row in reversed(waiting):
            if len(chats) == count:
                break
            if row.chat_id not in self._chat_waits:
                chats.append(row.chat_id)
        return chats

    async def _send_one(self, row: ClaimedMessage, recorder: _Recorder) -> None:
        try:
            outcome = await self._send(row.chat_id, row.kind, row.payload, row.attempts)
            recorder.put(row, outcome)
            if outcome.flood:
                await self.limiter.pause(outcome.retry_in)
        except Exception:  # the limiter's store is down: the outcome is recorded all the same
            log.exception("outbox row %s: could not set the 429 pause", row.id)
        finally:
            self._slots.release()

    async def _send(self, chat_id: int, kind: str, payload: dict[str, Any], attempts: int) -> Outcome:
        try:
            message = await self._deliver(chat_id, kind, payload)
        except TelegramRetryAfter as exc:
            retry = float(exc.retry_after)
            return Outcome("pending", f"429 retry after {exc.retry_after}s", retry_in=retry, flood=True)
        except TelegramForbiddenError as exc:
            return Outcome("dead", f"403 {exc.message}", unreachable=True)
        except TelegramBadRequest as exc:
            return Outcome("dead", f"400 {exc.message}")
        except TelegramMigrateToChat as exc:
            return Outcome("dead", f"400 group moved to supergroup {exc.migrate_to_chat_id}")
        except (ValueError, KeyError) as exc:
            return Outcome("dead", f"malformed outbox row: {exc!r}")
        except FileNotFoundError as exc:
            return Outcome("dead", f"media file missing: {exc.filename or exc}")
        except Exception as exc:  # 5xx, network errors and anything unexpected: retry later, then give up
            if not isinstance(exc, TelegramServerError | TelegramNetworkError):
                log.warning("unexpected error sending to chat %s", chat_id, exc_info=exc)
            if attempts >= self._max_attempts:
                return Outcome("dead", f"gave up after {attempts} attempts: {exc}")
            return Outcome("pending", str(exc), retry_in=backoff_seconds(attempts))
        return Outcome(
            "sent", telegram_message_id=message.message_id, file_id=_uploaded_file_id(kind, payload, message)
        )

    async def _deliver(self, chat_id: int, kind: str, payload: dict[str, Any]) -> Message:
        markup = payload.get("reply_markup")
        reply_markup = InlineKeyboardMarkup.model_validate(markup) if markup and "keyboard" not in markup else None
        parse_mode = payload.get("parse_mode", "HTML")
        if kind == "text":  # a text may instead carry a reply keyboard (e.g. the contact button of the 7-day start)
            keyboard = ReplyKeyboardMarkup.model_validate(markup) if markup and "keyboard" in markup else None
            return await self._bot.send_message(
                chat_id,
                payload["text"],
                parse_mode=parse_mode,
                reply_markup=keyboard or reply_markup,
                allow_paid_broadcast=self._paid,
            )
        if kind == "photo":
            message = await self._bot.send_photo(
                chat_id,
                self._photo(payload),
                caption=payload.get("caption"),
                parse_mode=parse_mode,
                reply_markup=reply_markup,
                allow_paid_broadcast=self._paid,
            )
            path = payload.get("path")
            if path and message.photo and "file_id" not in payload:
                self._remember_upload(path, message.photo[-1].file_id)
            return message
        if kind == "video":
            return await self._bot.send_video(
                chat_id,
                self._photo(payload),
                caption=payload.get("caption"),
                parse_mode=parse_mode,
                reply_markup=reply_markup,
                allow_paid_broadcast=self._paid,
            )
        if kind == "edit":
            return await self._edit(chat_id, payload, parse_mode, reply_markup)
        raise ValueError(f"unknown outbox message kind {kind!r}")

    async def _edit(
        self, chat_id: int, payload: dict[str, Any], parse_mode: str, reply_markup: InlineKeyboardMarkup | None
    ) -> Message:
        """Edit an earlier message (a broadcast's progress); an edit that changes nothing counts as done."""
        message_id = int(payload["message_id"])
        try:
            edited = await self._bot.edit_message_text(
                text=payload["text"],
                chat_id=chat_id,
                message_id=message_id,
                parse_mode=parse_mode,
                reply_markup=reply_markup,
            )
        except TelegramBadRequest as exc:
            if "message is not modified" not in exc.message:
                raise
            edited = True
        if isinstance(edited, Message):
            return edited
        return Message.model_validate({"message_id": message_id, "date": 0, "chat": {"id": chat_id, "type": "private"}})

    def _photo(self, payload: dict[str, Any]) -> str | FSInputFile:
        """A Telegram file_id when there is one (given, or learnt from an earlier upload of the same file).

        Videos are sent the same way."""
        if "file_id" in payload:
            return str(payload["file_id"])
        path = str(payload["path"])
        if path in self._uploaded:
            return self._uploaded[path]
        if not Path(path).is_file():
            raise FileNotFoundError(2, "no such file", path)
        return FSInputFile(path)

    def _remember_upload(self, path: str, file_id: str) -> None:
        """A broadcast of one picture uploads it once; later rows send Telegram's file_id."""
        if len(self._uploaded) >= 1024:
            self._uploaded.clear()
        self._uploaded[path] = file_id


def _uploaded_file_id(kind: str, payload: dict[str, Any], message: Message) -> str | None:
    """The file_id of a file this message uploaded from a path, when the row asks to keep it (`file_key`)."""
    if "file_key" not in payload or "file_id" in payload:
        return None
    if kind == "photo" and message.photo:
        return message.photo[-1].file_id
    if kind == "video" and message.video:
        return message.video.file_id
    return None
