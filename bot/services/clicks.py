"""Clicks on partners' tracked links: resolve /r/<slug> to its target and record the click.

A click must be answered fast and even while the database is briefly away, so the hot path touches
no database: slugs are resolved through an in-memory TTL cache (misses cached briefly too, so a flood
of bad slugs does not reach the database), repeats are recognised by a `ClickDedupe` (in memory, or
Redis shared by every process), and `link_clicked` events are buffered and written in batches, one
transaction per batch (the events and the `tracked_links.clicks` increments together). A batch that
fails to write stays at the head of the buffer and is retried; the buffer is bounded and says so in
the log when it overflows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.content import CLICK_WINDOW, is_bot_agent, is_valid_slug, redirect_target, visitor_hash
from bot.domain.events import EventSource, EventType
from bot.services.context import ServiceContext
from storage.repositories.content import LinkTarget
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

REFERER_LIMIT = 500
"""Referers are kept to this many characters."""

# Visitors share a few thousand distinct user agents; the crawler pattern is the costliest step of a click.
_is_bot_agent = lru_cache(maxsize=4096)(is_bot_agent)


class ClickDedupe(Protocol):
    """Remembers which visitor clicked which link within the click window."""

    async def first_click(self, key: str, now: datetime) -> bool:
        """True when `key` (link and visitor) was not seen within the window; it is remembered from now."""
        ...


class MemoryClickDedupe:
    """This process's recent (link, visitor) keys, each until its window ends; at most `max_entries`."""

    def __init__(self, window: timedelta = CLICK_WINDOW, max_entries: int = 200_000) -> None:
        self._window = window
        self._max = max_entries
        # Insertion order is expiry order: every key lives for the same window from when it was added.
        self._until: OrderedDict[str, datetime] = OrderedDict()

    async def first_click(self, key: str, now: datetime) -> bool:
        self._expire(now)
        until = self._until.get(key)
        if until is not None and until > now:
            return False
        self._until.pop(key, None)
        self._until[key] = now + self._window
        if len(self._until) > self._max:
            self._until.popitem(last=False)
        return True

    def _expire(self, now: datetime) -> None:
        while self._until:
            until = next(iter(self._until.values()))
            if until > now:
                return
            self._until.popitem(last=False)

    def __len__(self) -> int:
        return len(self._until)


class LinkLookupError(Exception):
    """The slug is not cached and the database could not be asked: the caller answers 'try again'."""


@dataclass(frozen=True, slots=True)
class _Resolved:
    link: LinkTarget
    location: str
    """The redirect URL (target with ref and UTM parameters), computed once per cache fill."""


class _Entry(NamedTuple):
    resolved: _Resolved | None  # None: the slug is known not to exist
    expires: float


class _Click(NamedTuple):
    link_id: int
    counted: bool
    row: dict[str, Any]


_FAILED = object()


class _EveryFewSeconds:
    """Lets a repeated warning through at most once per `seconds`, counting what it held back."""

    def __init__(self, seconds: float, monotonic: Callable[[], float]) -> None:
        self._seconds = seconds
        self._monotonic = monotonic
        self._last = -seconds
        self.suppressed = 0

    def ready(self) -> bool:
        now = self._monotonic()
        if now - self._last >= self._seconds:
            self._last = now
            return True
        self.suppressed += 1
        return False


class ClickTracker:
    """`/r/<slug>`: where it goes, and a `link_clicked` event for every click (counted ones add to the link).

    Call `start()` once the event loop runs (it starts the batch writer) and `await stop()` at shutdown,
    before the engine is disposed: it writes every buffered click.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        ctx: ServiceContext,
        *,
        dedupe: ClickDedupe | None = None,
        cache_ttl: float = 60.0,
        miss_ttl: float = 10.0,
        cache_size: int = 50_000,
        lookup_timeout: float = 3.0,
        lookup_concurrency: int = 4,
        dedupe_timeout: float = 0.5,
        flush_interval: float = 0.2,
        batch_size: int = 500,
        max_pending: int = 100_000,
        max_retry_delay: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._ctx = ctx
        self._dedupe: ClickDedupe = dedupe if dedupe is not None else MemoryClickDedupe()
        self._cache_ttl = cache_ttl
        self._miss_ttl = miss_ttl
        self._cache_size = cache_size
        self._lookup_timeout = lookup_timeout
        self._lookups = asyncio.Semaphore(lookup_concurrency)
        self._dedupe_timeout = dedupe_timeout
        self._flush_interval = flush_interval
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._max_retry_delay = max_retry_delay
        self._monotonic = monotonic
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[object]] = {}
        self._pending: list[_Click] = []
        self._flush_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._dedupe_warning = _EveryFewSeconds(10.0, monotonic)
        self._overflow_warning = _EveryFewSeconds(10.0, monotonic)
        self.dropped = 0
        """Clicks not recorded because the buffer was full (each such moment is logged)."""

    # -- the hot path ------------------------------------------------------------------------------

    async def resolve_and_record(
        self, slug: str, ip: str, user_agent: str | None, referer: str | None = None
    ) -> str | None:
        """The URL to send the visitor to, or None for an unknown or malformed slug (nothing recorded then).

        Raises `LinkLookupError` only when the slug is not cached and the database cannot be reached.
        """
        if not is_valid_slug(slug):
            return None
        resolved = await self._resolve(slug)
        if resolved is None:
            return None
        link = resolved.link
        now = self._ctx.clock.now()
        visitor = visitor_hash(self._ctx.link_salt, ip, user_agent or "")
        bot = _is_bot_agent(user_agent)
        counted = not bot and await self._first_click(f"{link.link_id}:{visitor}", now)
        self._record(
            _Click(
                link.link_id,
                counted,
                {
                    "partner_id": link.partner_id,
                    "type": EventType.LINK_CLICKED.value,
                    "payload": {
                        "slug": slug,
                        "content_id": link.content_id,
                        "product_id": link.product_id,
                        "visitor": visitor,
                        "referer": referer[:REFERER_LIMIT] if referer else None,
                        "counted": counted,
                        "bot": bot,
                    },
                    "occurred_at": now,
                    "source": EventSource.WEB.value,
                    "dedupe_key": None,
                },
            )
        )
        return resolved.location

    async def target(self, slug: str) -> str | None:
        """Where the slug leads, recording nothing (HEAD requests: link checkers, not people)."""
        if not is_valid_slug(slug):
            return None
        resolved = await self._resolve(slug)
        return resolved.location if resolved is not None else None

    async def _first_click(self, key: str, now: datetime) -> bool:
        """Whether this click counts. If the dedupe store fails, the click counts: never fail the redirect."""
        try:
            async with asyncio.timeout(self._dedupe_timeout):
                return await self._dedupe.first_click(key, now)
        except Exception as exc:
            if self._dedupe_warning.ready():
                log.warning(
                    "click dedupe unavailable (%s: %s); counting clicks without it (%d more since the last warning)",
                    type(exc).__name__,
                    exc,
                    self._dedupe_warning.suppressed,
                )
                self._dedupe_warning.suppressed = 0
            return True

    async def _resolve(self, slug: str) -> _Resolved | None:
        entry = self._cache.get(slug)
        if entry is not None and entry.expires > self._monotonic():
            return entry.resolved
        pending = self._inflight.get(slug)
        if pending is None:
            return await self._load(slug, entry)
        result = await asyncio.shield(pending)
        if result is _FAILED:
            raise LinkLookupError(slug)
        assert result is None or isinstance(result, _Resolved)
        return result

    async def _load(self, slug: str, stale: _Entry | None) -> _Resolved | None:
        """Ask the database once for a slug, however many requests for it arrive meanwhile."""
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._inflight[slug] = future
        try:
            try:
                async with asyncio.timeout(self._lookup_timeout), self._lookups, UnitOfWork(self._sessionmaker) as uow:
                    link = await uow.links.target(slug)
            except Exception as exc:
                if stale is not None and stale.resolved is not None:
                    log.warning("link lookup failed (%s); serving /r/%s from the expired cache", exc, slug)
                    self._remember(slug, stale.resolved, self._miss_ttl)
                    future.set_result(stale.resolved)
                    return stale.resolved
                log.warning("link lookup failed (%s); /r/%s not answered", exc, slug)
                raise LinkLookupError(slug) from exc
            resolved = None
            if link is not None:
                location = redirect_target(link.url, invite_code=link.invite_code, campaign=link.campaign)
                resolved = _Resolved(link, location)
            self._remember(slug, resolved, self._cache_ttl if resolved is not None else self._miss_ttl)
            future.set_result(resolved)
            return resolved
        finally:
            if not future.done():
                future.set_result(_FAILED)
            del self._inflight[slug]

    def _remember(self, slug: str, resolved: _Resolved | None, ttl: float) -> None:
        self._cache.pop(slug, None)
        self._cache[slug] = _Entry(resolved, self._monotonic() + ttl)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def forget(self, slug: str) -> None:
        """Drop a slug from the cache (its target changed and should apply before the TTL ends)."""
        self._cache.pop(slug, None)

    # -- the batch writer --------------------------------------------------------------------------

    def _record(self, click: _Click) -> None:
        if len(self._pending) >= self._max_pending:
            self.dropped += 1
            if self._overflow_warning.ready():
                log.error(
                    "click buffer full (%d waiting: is the database down?); %d clicks not recorded so far",
                    len(self._pending),
                    self.dropped,
                )
            return
        self._pending.append(click)
        if len(self._pending) >= self._batch_size:
            self._wake.set()

    @property
    def pending(self) -> int:
        """Clicks answered but not written yet."""
        return len(self._pending)

    def start(self) -> None:
        """Start writing buffered clicks every `flush_interval` seconds (or as soon as a batch is full)."""
        if self._task is None:
            self._stopping = False
            self._stopped.clear()
            self._task = asyncio.create_task(self._run(), name="click-recorder")

    async def stop(self) -> None:
        """Stop the writer and write what is buffered; what cannot be written is logged, never lost silently."""
        self._stopping = True
        self._stopped.set()
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        for attempt in range(3):
            try:
                await self.flush()
                return
            except Exception as exc:
                log.warning("writing clicks at shutdown failed (attempt %d): %s", attempt + 1, exc)
                await asyncio.sleep(0.5 * (attempt + 1))
        if self._pending:
            log.error("%d clicks could not be written before shutdown and are lost", len(self._pending))

    async def flush(self) -> int:
        """Write every buffered click now, in batches; returns how many. On failure the rest stays buffered."""
        written = 0
        async with self._flush_lock:
            while self._pending:
                batch = self._pending[: self._batch_size]
                await self._write(batch)
                # Clicks recorded during the write were appended behind the batch, so the batch is the head.
                del self._pending[: len(batch)]
                written += len(batch)
        return written

    async def _write(self, batch: list[_Click]) -> None:
        counts = Counter(click.link_id for click in batch if click.counted)
        async with UnitOfWork(self._sessionmaker) as uow:
            await uow.events.add_many([click.row for click in batch])
            await uow.links.add_clicks(dict(counts))

    async def _run(self) -> None:
        delay = 0.0
        while not self._stopping:
            # While retrying after a failure only shutdown cuts the pause short, not a filling buffer.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay or self._flush_interval):
                    await (self._stopped if delay else self._wake).wait()
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self.flush()
                delay = 0.0
            except Exception as exc:
                delay = min(max(delay * 2, self._flush_interval * 2), self._max_retry_delay)
                log.warning("writing %d clicks failed (%s); retrying in %.1f s", len(self._pending), exc, delay)
