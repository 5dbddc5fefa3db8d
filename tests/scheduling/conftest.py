"""Schedulers on the real job table (SQLite and PostgreSQL), wired like the app factory wires them."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import load_settings
from bot.scheduling import JobRuntime, JobScheduler, LeaderLock, LocalLeaderLock
from storage.jobstore import create_job_store
from tests.support.harness import BotHarness


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0, step: float = 0.05
) -> float:
    """Poll ``predicate`` (plain or async) until it holds; returns the seconds it took."""
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def holds() -> bool:
        result = predicate()
        return bool(await result) if inspect.isawaitable(result) else bool(result)

    while not await holds():
        if loop.time() - started > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(step)
    return loop.time() - started


@pytest.fixture
async def job_engine(engine: AsyncEngine) -> AsyncEngine:
    """The test database with an empty job table (the shared wipe only knows the models' tables)."""
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM apscheduler_jobs"))
    return engine


@pytest.fixture
def make_scheduler(database_url: str, harness: BotHarness):
    """``async with make_scheduler(lock=..., elect=...) as scheduler:`` a started JobScheduler."""

    @asynccontextmanager
    async def factory(
        *,
        lock: LeaderLock | None = None,
        elect: bool = True,
        ttl: float = 15.0,
        poll: float = 3600.0,
    ) -> AsyncIterator[JobScheduler]:
        scheduler = JobScheduler(
            create_job_store(database_url), lock or LocalLeaderLock(), lock_ttl_seconds=ttl, poll_seconds=poll
        )
        scheduler.install_runtime(
            JobRuntime(
                settings=load_settings(database_url=database_url),
                bot=harness.bot,
                sessionmaker=harness.sessionmaker,
                clock=harness.clock,
                ctx=harness.ctx,
                sender=harness.sender,
                scheduler=scheduler,
            )
        )
        await scheduler.start(elect=elect)
        try:
            yield scheduler
        finally:
            await scheduler.stop()

    return factory
