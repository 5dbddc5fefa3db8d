"""Leader election: exactly one process of a deployment runs scheduled jobs.

APScheduler 3 assumes it is the only scheduler reading its job store, so two processes running jobs
from one table would both fire them. Every process therefore competes for one lock:

- with ``REDIS_URL``: a Redis key with a TTL, renewed by the holder (`storage.leader_lock.RedisLeaderLock`);
- else on PostgreSQL: a session-level advisory lock held on a dedicated connection
  (`storage.leader_lock.PostgresAdvisoryLock`); it is released by the server when that
  connection dies;
- else (SQLite, no Redis: one process by definition): `LocalLeaderLock`, always held.

The holder is the leader. Everyone else is a standby that retries often; when the leader dies, its
lock expires (Redis) or is dropped with its connection (PostgreSQL) and a standby takes over within
the TTL plus one retry interval. A leader whose renewal fails (or does not answer within a third of
the TTL) is deposed at once, before its lock can expire and another process be elected, so two
leaders never run jobs at the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Protocol

log = logging.getLogger(__name__)


class LeaderLock(Protocol):
    """A lock with a lifetime: acquired by one process at a time, kept alive by renewing it."""

    kind: str
    """Shown in logs: redis, postgres or local."""

    async def acquire(self) -> bool:
        """Take the lock (or confirm this process already holds it). False when another process holds it."""
        ...

    async def renew(self) -> bool:
        """Extend the lock; False when this process no longer holds it."""
        ...

    async def release(self) -> None:
        """Give the lock up so a standby can take over at once (graceful shutdown)."""
        ...

    async def close(self) -> None:
        """Free connections; the lock is released if still held."""
        ...


class LocalLeaderLock:
    """The only process there is (SQLite without Redis) is always the leader."""

    kind = "local"

    async def acquire(self) -> bool:
        return True

    async def renew(self) -> bool:
        return True

    async def release(self) -> None:
        return None

    async def close(self) -> None:
        return None


class ElectionState(StrEnum):
    LEADER = "leader"
    STANDBY = "standby"
    STOPPED = "stopped"


class LeaderElection:
    """Keeps trying to become leader; calls ``on_elected``/``on_deposed`` as leadership changes.

    While leader it also calls ``on_tick`` every ``tick_seconds`` (the scheduler re-reads its job
    store there, to see jobs that other processes wrote).
    """

    def __init__(
        self,
        lock: LeaderLock,
        *,
        ttl_seconds: float,
        on_elected: Callable[[], Awaitable[None]],
        on_deposed: Callable[[], Awaitable[None]],
        on_tick: Callable[[], None] | None = None,
        tick_seconds: float = 2.0,
    ) -> None:
        self.lock = lock
        self.ttl = ttl_seconds
        self.renew_every = ttl_seconds / 3
        self.retry_every = min(1.0, ttl_seconds / 5)
        self.call_timeout = ttl_seconds / 3
        self.tick_seconds = tick_seconds
        self._on_elected = on_elected
        self._on_deposed = on_deposed
        self._on_tick = on_tick
        self._leader = False
        self._failing = False
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    @property
    def state(self) -> ElectionState:
        if self._task is None or self._task.done():
            return ElectionState.STOPPED
        return ElectionState.LEADER if self._leader else ElectionState.STANDBY

    def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the election is already running")
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name=f"scheduler-election-{self.lock.kind}")

    async def stop(self, *, release: bool = True) -> None:
        """Stop competing; a leader steps down and (unless ``release=False``) frees the lock at once."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._leader:
            await self._step_down("shutting down", level=logging.INFO)
        if release:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.lock.release(), timeout=self.call_timeout)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.lock.close(), timeout=self.call_timeout)

    async def _run(self) -> None:
        try:
            await self._compete()
        except Exception:
            log.exception("the scheduler election stopped on an error; this process runs no jobs")
            if self._leader:
                await self._step_down("the election stopped")

    async def _compete(self) -> None:
        loop = asyncio.get_running_loop()
        next_renewal = 0.0
        while not self._stop.is_set():
            now = loop.time()
            if not self._leader:
                if await self._call(self.lock.acquire, "acquire"):
                    self._leader = True
                    next_renewal = now + self.renew_every
                    log.info("this process is now the scheduler leader (%s lock)", self.lock.kind)
                    await self._on_elected()
                    continue
                await self._sleep(self.retry_every)
                continue
            if now >= next_renewal:
                if not await self._call(self.lock.renew, "renew"):
                    await self._step_down("the leader lock could not be renewed")
                    continue
                next_renewal = now + self.renew_every
            if self._on_tick is not None:
                self._on_tick()
            await self._sleep(min(self.tick_seconds, max(0.0, next_renewal - loop.time())))

    async def _step_down(self, why: str, *, level: int = logging.WARNING) -> None:
        self._leader = False
        log.log(level, "this process is no longer the scheduler leader: %s", why)
        await self._on_deposed()

    async def _call(self, operation: Callable[[], Awaitable[bool]], what: str) -> bool:
        """A lock call that fails, or does not answer within a third of the TTL, counts as 'not held'."""
        try:
            result = await asyncio.wait_for(operation(), timeout=self.call_timeout)
        except Exception as exc:
            # Once per outage, not once per retry.
            level = logging.DEBUG if self._failing else logging.WARNING
            log.log(level, "scheduler leader lock %s (%s) failed: %s", what, self.lock.kind, exc or type(exc).__name__)
            self._failing = True
            return False
        self._failing = False
        return result

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
