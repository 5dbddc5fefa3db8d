"""Tier 3: several real ``run_bot.py --webhook`` processes sharing PostgreSQL (and Redis), as a fleet
behind a load balancer runs.

Webhook mode is how a fleet runs in production, and it lets several processes run against one Bot
API: Telegram (and the emulator) allow one long-polling consumer per token, so two pollers would get
409s. Every webhook process is scheduler-capable; the leader lock decides which one runs jobs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain.events import EventType
from bot.sandbox.client import EmulatorClient, TgUser
from bot.sandbox.emulator import BotAPIEmulator
from bot.scheduling import JobScheduler, LocalLeaderLock
from storage.db import create_engine, create_sessionmaker
from storage.jobstore import create_job_store
from storage.uow import UnitOfWork
from tests.e2e.conftest import ROOT, TOKEN, BotProcess, bot_env
from tests.scheduling.conftest import wait_until
from tests.support.databases import postgres_database
from tests.support.jobs import marker_runs
from tests.support.services import PG_HOST, PG_PORT, require_service

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

LOCK_TTL = 3.0
SECRET = "fleet-secret-token"
MARKER = "tests.support.jobs:record_marker"
ALICE = TgUser(id=301, first_name="Alice", language_code="en")


@pytest.fixture
def fleet_database_url() -> Iterator[str]:
    """An empty PostgreSQL database; the first process to start migrates it."""
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    with postgres_database("pa_fleet", migrate=False) as url:
        yield url


@pytest.fixture
async def fleet_engine(fleet_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(fleet_database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def writer(fleet_database_url: str) -> AsyncIterator[JobScheduler]:
    """This test process, as one more member of the fleet that schedules jobs but never runs them."""
    scheduler = JobScheduler(create_job_store(fleet_database_url), LocalLeaderLock())
    await scheduler.start(elect=False)
    yield scheduler
    await scheduler.stop()


def webhook_env(emulator: BotAPIEmulator, database_url: str, **extra: str) -> dict[str, str]:
    env = bot_env(
        emulator,
        database_url,
        WEBHOOK_SECRET=SECRET,
        SCHEDULER_LOCK_TTL_SECONDS=str(LOCK_TTL),
        SCHEDULER_POLL_SECONDS="0.5",
        PYTHONPATH=str(ROOT),  # the job store names tests.support.jobs:record_marker
        **extra,
    )
    env["WEBHOOK_URL"] = f"http://127.0.0.1:{env['WEB_PORT']}/webhook"
    return env


async def health(bot: BotProcess) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{bot.web_port}/healthz") as response:
        report: dict[str, Any] = await response.json()
        return report


async def scheduler_state(bot: BotProcess) -> str:
    try:
        return str((await health(bot))["scheduler"])
    except aiohttp.ClientError:
        return "unreachable"


async def fired_and_gone(engine: AsyncEngine, writer: JobScheduler, marker: str) -> bool:
    """The marker job ran and its one-off job left the store, so nothing can run it again."""
    return bool(await marker_runs(engine, marker)) and await writer.next_run_at(f"test:fleet:{marker}") is None


@pytest.mark.parametrize("lock", ["redis", "postgres-advisory"])
async def test_one_leader_runs_each_job_once_and_a_standby_takes_over_after_kill_9(
    lock: str,
    emulator: BotAPIEmulator,
    fleet_database_url: str,
    fleet_engine: AsyncEngine,
    writer: JobScheduler,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    extra = {"REDIS_URL": request.getfixturevalue("redis_url")} if lock == "redis" else {}
    first = BotProcess(webhook_env(emulator, fleet_database_url, **extra), ["--webhook"], tmp_path / "first.log")
    second = BotProcess(webhook_env(emulator, fleet_database_url, **extra), ["--webhook"], tmp_path / "second.log")
    await first.start()  # migrates the empty database before the second one starts
    try:
        await wait_until(lambda: _is(first, "leader"), timeout=LOCK_TTL + 5)
        await second.start()
        assert (await health(second))["scheduler"] == "standby"
        assert (await health(second))["status"] == "ok"
        assert first.process is not None and second.process is not None

        # a job written by a process that is not the leader runs once, in the leader
        await writer.schedule_at(MARKER, datetime.now(UTC) + timedelta(seconds=1), "test:fleet:first", marker="first")
        await wait_until(lambda: fired_and_gone(fleet_engine, writer, "first"), timeout=15)
        [run] = await marker_runs(fleet_engine, "first")
        assert run["pid"] == first.process.pid

        # the leader dies without a word while the next job is about to fall due
        await writer.schedule_at(MARKER, datetime.now(UTC) + timedelta(seconds=2), "test:fleet:second", marker="second")
        first.process.kill()
        await first.process.wait()
        took = await wait_until(lambda: _is(second, "leader"), timeout=LOCK_TTL + 10, step=0.1)
        print(f"{lock}: the standby took over {took:.2f}s after the leader was killed")
        assert took <= LOCK_TTL + 1.5, f"standby took {took:.1f}s to take over"
        await wait_until(lambda: fired_and_gone(fleet_engine, writer, "second"), timeout=15)
        [run] = await marker_runs(fleet_engine, "second")
        assert run["pid"] == second.process.pid
        assert len(await marker_runs(fleet_engine, "first")) == 1
    finally:
        await first.stop()
        rc = await second.stop()
    assert rc == 0, second.logs()
    assert "Traceback" not in second.logs(), second.logs()
    assert "now the scheduler leader" in second.logs()


async def test_a_redelivered_update_is_handled_once_across_webhook_instances(
    emulator: BotAPIEmulator,
    client: EmulatorClient,
    fleet_database_url: str,
    fleet_engine: AsyncEngine,
    redis_url: str,
    tmp_path: Path,
) -> None:
    await forget_handled_updates(redis_url)  # the emulator numbers updates from 1 in every test
    first = BotProcess(
        webhook_env(emulator, fleet_database_url, REDIS_URL=redis_url), ["--webhook"], tmp_path / "a.log"
    )
    second = BotProcess(
        webhook_env(emulator, fleet_database_url, REDIS_URL=redis_url), ["--webhook"], tmp_path / "b.log"
    )
    await first.start()
    await second.start()
    try:
        # Take the webhook off so the emulator queues the update; then deliver it ourselves, as
        # Telegram does when it retries: to both instances at once, and once more later.
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{emulator.base_url}/bot{TOKEN}/deleteWebhook") as response:
                assert response.status == 200
            await client.send_message(ALICE, "/start")
            [queued] = emulator.core.updates.peek(10)
            update = queued.payload()
            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}

            async def deliver(bot: BotProcess) -> int:
                url = f"http://127.0.0.1:{bot.web_port}/webhook"
                async with http.post(url, json=update, headers=headers) as answer:
                    return answer.status

            assert list(await asyncio.gather(deliver(first), deliver(second))) == [200, 200]
            assert await deliver(first) == 200

        await client.wait_for_bot_message(ALICE.id, lambda m: "Welcome to Partner Assistant" in str(m), 15)
        await wait_until(lambda: (first.logs() + second.logs()).count("was already delivered") == 2, timeout=15)
        welcomes = [m for m in await client.bot_messages(ALICE.id) if "Welcome" in str(m.get("plain_text"))]
        assert len(welcomes) == 1
        async with UnitOfWork(create_sessionmaker(fleet_engine)) as uow:
            assert await uow.events.count(type=EventType.REGISTERED) == 1
    finally:
        rc_first, rc_second = await first.stop(), await second.stop()
    assert (rc_first, rc_second) == (0, 0), first.logs() + second.logs()
    assert "Traceback" not in first.logs() + second.logs()


async def forget_handled_updates(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        keys = [key async for key in redis.scan_iter(match=f"pa:update:{TOKEN.split(':')[0]}:*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


async def _is(bot: BotProcess, state: str) -> bool:
    return await scheduler_state(bot) == state
