"""Leader locks on real Redis and PostgreSQL, and the election that uses them.

One process leads; a standby takes over within the TTL when the leader dies; a leader whose lock
renewal fails stops running jobs at once. TTLs are short so handovers happen in about a second.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from redis.asyncio import Redis

from bot.config import load_settings
from bot.scheduling import ElectionState, JobScheduler, LeaderElection, LocalLeaderLock, SchedulerState
from bot.scheduling.factory import build_leader_lock
from storage.jobstore import create_job_store
from storage.leader_lock import PostgresAdvisoryLock, RedisLeaderLock, lock_name_for
from tests.scheduling.conftest import wait_until
from tests.support.databases import postgres_database
from tests.support.jobs import marker_runs
from tests.support.services import PG_HOST, PG_PORT, require_service

TTL = 1.0
MARKER = "tests.support.jobs:record_marker"


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def lock_key() -> str:
    return f"pa:test:leader:{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    require_service("PostgreSQL", PG_HOST, PG_PORT)
    with postgres_database("pa_lock") as url:
        yield url


async def holds(lock: RedisLeaderLock | PostgresAdvisoryLock) -> bool:
    try:
        return await lock.acquire()
    except Exception:
        return False


async def renews(lock: RedisLeaderLock | PostgresAdvisoryLock) -> bool:
    try:
        return await lock.renew()
    except Exception:
        return False


# ---------------------------------------------------------------------- Redis


async def test_redis_lock_acquire_renew_and_release(redis: Redis, lock_key: str) -> None:
    a, b = RedisLeaderLock(redis, lock_key, TTL), RedisLeaderLock(redis, lock_key, TTL)
    assert await a.acquire()
    assert not await b.acquire()
    assert await a.acquire()  # the holder may ask again
    assert await a.renew()
    assert not await b.renew()
    ttl_ms = await redis.pttl(lock_key)
    assert 0 < ttl_ms <= 1000
    assert (await redis.get(lock_key)).decode() == a.token  # type: ignore[union-attr]
    await b.release()  # not the holder: nothing happens
    assert await redis.exists(lock_key)
    await a.release()
    assert await b.acquire()


async def test_redis_lock_expires_when_the_holder_stops_renewing(redis: Redis, lock_key: str) -> None:
    a, b = RedisLeaderLock(redis, lock_key, 0.5), RedisLeaderLock(redis, lock_key, 0.5)
    assert await a.acquire()
    took = await wait_until(lambda: holds(b), timeout=3)
    assert took <= 0.5 + 0.3
    assert not await a.renew()  # the old holder learns it lost the lock...
    await a.release()
    assert await redis.exists(lock_key)  # ...and cannot delete its successor's


async def test_the_redis_lock_is_named_after_the_deployments_database() -> None:
    assert lock_name_for("postgresql+asyncpg://bot@db-1:5432/partners") == "pa:scheduler:leader:partners"
    assert lock_name_for("postgresql+asyncpg://bot@10.0.0.5/partners") == "pa:scheduler:leader:partners"


# ---------------------------------------------------------------------- PostgreSQL advisory locks


async def test_postgres_advisory_lock_acquire_renew_release(pg_url: str) -> None:
    a, b = PostgresAdvisoryLock(pg_url, TTL), PostgresAdvisoryLock(pg_url, TTL)
    try:
        assert await a.acquire()
        assert not await b.acquire()
        assert await a.acquire()
        assert await a.renew()
        assert not await b.renew()
        await a.release()
        assert not await a.renew()
        assert await b.acquire()
    finally:
        await a.close()
        await b.close()


async def test_postgres_advisory_lock_is_lost_with_the_holders_session(pg_url: str) -> None:
    a, b = PostgresAdvisoryLock(pg_url, TTL), PostgresAdvisoryLock(pg_url, TTL)
    try:
        assert await a.acquire()
        assert not await b.acquire()
        admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
        try:
            # the server ends the leader's session, as when its process or host dies
            assert a._conn is not None
            pid = (await a._conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        assert not await renews(a)
        took = await wait_until(lambda: holds(b), timeout=3)
        assert took < 1.0
        assert not await holds(a)  # reconnects, finds the lock taken
    finally:
        await a.close()
        await b.close()


async def test_closing_the_holders_connection_hands_the_lock_over(pg_url: str) -> None:
    a, b = PostgresAdvisoryLock(pg_url, TTL), PostgresAdvisoryLock(pg_url, TTL)
    try:
        assert await a.acquire()
        await a.close()  # a process that dies closes its connection
        assert await wait_until(lambda: holds(b), timeout=3) < 1.0
    finally:
        await b.close()


# ---------------------------------------------------------------------- the election


class HangingLock:
    """Acquires, then never answers a renewal (a partitioned Redis, a stuck database)."""

    kind = "test"

    def __init__(self) -> None:
        self.released = False

    async def acquire(self) -> bool:
        return True

    async def renew(self) -> bool:
        await asyncio.sleep(3600)
        return True

    async def release(self) -> None:
        self.released = True

    async def close(self) -> None:
        return None


async def test_a_leader_whose_renewal_does_not_answer_steps_down_before_its_lock_expires() -> None:
    changes: list[str] = []

    async def elected() -> None:
        changes.append("elected")

    async def deposed() -> None:
        changes.append("deposed")

    election = LeaderElection(HangingLock(), ttl_seconds=0.6, on_elected=elected, on_deposed=deposed)
    election.start()
    try:
        await wait_until(lambda: election.state is ElectionState.LEADER, timeout=2)
        took = await wait_until(lambda: "deposed" in changes, timeout=2)
        assert took < 0.6  # renewal after ttl/3, given up after another ttl/3: before the TTL runs out
    finally:
        await election.stop()
    assert election.state is ElectionState.STOPPED


async def test_one_leader_and_a_standby_that_takes_over_when_the_leader_dies(
    job_engine, make_scheduler, redis: Redis, lock_key: str
) -> None:
    async with (
        make_scheduler(lock=RedisLeaderLock(redis, lock_key, TTL), ttl=TTL, poll=0.1) as first,
        make_scheduler(lock=RedisLeaderLock(redis, lock_key, TTL), ttl=TTL, poll=0.1) as second,
    ):
        await wait_until(lambda: {first.state, second.state} == {SchedulerState.LEADER, SchedulerState.STANDBY})
        leader, standby = (first, second) if first.state is SchedulerState.LEADER else (second, first)

        await leader.stop(release_lock=False)  # dies holding the lock: it has to expire
        took = await wait_until(lambda: standby.state is SchedulerState.LEADER, timeout=TTL + 2)
        assert took <= TTL + standby._election.retry_every + 0.3

        # the new leader runs what is due, once
        await standby.schedule_at(MARKER, datetime.now(UTC) + timedelta(milliseconds=100), "test:after", marker="after")
        await wait_until(lambda: _ran(job_engine, "after"), timeout=3)
        await standby.run_due_jobs()
        assert len(await marker_runs(job_engine, "after")) == 1


async def test_a_graceful_leader_hands_over_at_once(job_engine, make_scheduler, redis: Redis, lock_key: str) -> None:
    async with (
        make_scheduler(lock=RedisLeaderLock(redis, lock_key, 10.0), ttl=10.0) as first,
        make_scheduler(lock=RedisLeaderLock(redis, lock_key, 10.0), ttl=10.0) as second,
    ):
        await wait_until(lambda: SchedulerState.LEADER in {first.state, second.state})
        leader, standby = (first, second) if first.state is SchedulerState.LEADER else (second, first)
        await leader.stop()  # releases the lock instead of letting a 10 s TTL run out
        assert leader.state is SchedulerState.STOPPED
        took = await wait_until(lambda: standby.state is SchedulerState.LEADER, timeout=5)
        assert took <= standby._election.retry_every + 0.5


async def test_a_leader_that_loses_its_lock_stops_running_jobs_at_once(
    job_engine, make_scheduler, redis: Redis, lock_key: str
) -> None:
    async with make_scheduler(lock=RedisLeaderLock(redis, lock_key, TTL), ttl=TTL, poll=0.1) as leader:
        await wait_until(lambda: leader.state is SchedulerState.LEADER)
        await redis.set(lock_key, "another-process")  # someone else holds it now (e.g. after a Redis failover)
        took = await wait_until(lambda: leader.state is SchedulerState.STANDBY, timeout=TTL)
        assert took <= TTL / 3 + 0.3
        await leader.schedule_at(MARKER, datetime.now(UTC) - timedelta(seconds=1), "test:lost", marker="lost")
        await leader.run_due_jobs()
        assert await marker_runs(job_engine, "lost") == []  # a standby runs nothing
        await redis.delete(lock_key)
        await wait_until(lambda: leader.state is SchedulerState.LEADER, timeout=3)
        await wait_until(lambda: _ran(job_engine, "lost"), timeout=3)


async def test_postgres_standby_takes_over_when_the_leaders_connection_dies(pg_url: str) -> None:
    first, second = (
        JobScheduler(create_job_store(pg_url), PostgresAdvisoryLock(pg_url, TTL), lock_ttl_seconds=TTL)
        for _ in range(2)
    )
    await first.start()
    await second.start()
    try:
        await wait_until(lambda: {first.state, second.state} == {SchedulerState.LEADER, SchedulerState.STANDBY})
        leader, standby = (first, second) if first.state is SchedulerState.LEADER else (second, first)
        await leader.stop(release_lock=False)  # no unlock: only the closed session frees it
        took = await wait_until(lambda: standby.state is SchedulerState.LEADER, timeout=TTL + 2)
        assert took <= TTL
    finally:
        await first.stop()
        await second.stop()


async def test_the_lock_follows_the_configuration(redis: Redis) -> None:
    redis_lock = build_leader_lock(
        load_settings(database_url="sqlite+aiosqlite:///x.db", redis_url="redis://h/0"), redis
    )
    assert isinstance(redis_lock, RedisLeaderLock)
    assert redis_lock.key == "pa:scheduler:leader:x.db"
    pg_settings = load_settings(database_url="postgresql+asyncpg://bot@db/partners", scheduler_lock_ttl_seconds=5)
    pg_lock = build_leader_lock(pg_settings, None)
    assert isinstance(pg_lock, PostgresAdvisoryLock)
    await pg_lock.close()
    assert isinstance(build_leader_lock(load_settings(database_url="sqlite+aiosqlite:///x.db"), None), LocalLeaderLock)


async def _ran(engine, marker: str) -> bool:
    return bool(await marker_runs(engine, marker))
