"""Repeat clicks recognised by every bot process at once: one Redis key per (link, visitor), ``SET NX PX``."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from redis.asyncio import Redis

from bot.domain.content import CLICK_WINDOW

_LEAD = object()
"""Given to a waiting check instead of its answer: it now sends the queued checks itself."""


class RedisClickDedupe:
    """The first click of a visitor on a link creates its key; the key expires when the click window ends.

    Redis keeps the time (the key's expiry), so ``now`` is not used; the window is the same fixed one as
    the in-memory dedupe's: it starts at the counted click and repeats do not extend it.

    Under load, checks that arrive while one round trip is under way wait and go together in the next
    pipeline: one round trip per batch instead of one per click. No background task: the first waiting
    check sends the next batch itself (an idle process sends a lone check at once).
    """

    def __init__(
        self, redis: Redis, window: timedelta = CLICK_WINDOW, *, prefix: str = "pa:click", max_batch: int = 256
    ) -> None:
        self._redis = redis
        self._window_ms = int(window.total_seconds() * 1000)
        self._prefix = prefix
        self._max_batch = max_batch
        self._queue: list[tuple[str, asyncio.Future[object]]] = []
        self._sending = False

    async def first_click(self, key: str, now: datetime) -> bool:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._queue.append((f"{self._prefix}:{key}", future))
        if not self._sending:
            self._sending = True
            future.set_result(_LEAD)
        try:
            answer = await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.result() is _LEAD:
                self._pass_lead()  # cancelled just as it was given the lead: the next check takes it
            raise
        if answer is _LEAD:
            answer = await self._send(future)
        return bool(answer)

    async def _send(self, own: asyncio.Future[object]) -> object:
        """Send the queued checks (own included) in one pipeline, answer them, and pass the lead on."""
        batch = self._queue[: self._max_batch]
        del self._queue[: len(batch)]
        mine: object = None
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for redis_key, _ in batch:
                    pipe.set(redis_key, b"1", nx=True, px=self._window_ms)
                replies = await pipe.execute()
        except BaseException as exc:  # cancelled too: the others must not wait for an answer that never comes
            for _, future in batch:
                if future is not own and not future.done():
                    future.set_exception(ConnectionError(f"click dedupe batch failed: {exc!r}"))
            raise
        else:
            for (_, future), reply in zip(batch, replies, strict=True):
                if future is own:
                    mine = reply
                elif not future.done():  # a check whose caller gave up is simply skipped
                    future.set_result(reply)
        finally:
            self._pass_lead()
        return mine

    def _pass_lead(self) -> None:
        while self._queue:
            future = self._queue[0][1]
            if not future.done():
                future.set_result(_LEAD)
                return
            del self._queue[0]
        self._sending = False
