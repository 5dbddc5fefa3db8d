"""Tier 2: persisted jobs on the real job table, on SQLite and PostgreSQL.

Jobs are stored as a string reference with id-only arguments, replaced by id, survive a restart, are
picked up by the leader when another process writes them, and never fire twice when the clock steps.
"""

from __future__ import annotations

import asyncio
import pickle
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.scheduling import JobRefError, SchedulerState, job_id, job_runtime, running_with
from bot.scheduling.jobs import release_stale_outbox
from storage.models import OutboxMessage
from storage.uow import UnitOfWork
from tests.scheduling.conftest import wait_until
from tests.support.harness import BotHarness
from tests.support.jobs import job_rows, marker_runs

MARKER = "tests.support.jobs:record_marker"


async def stored_state(engine: AsyncEngine, jid: str) -> dict[str, object]:
    async with engine.connect() as conn:
        raw = (
            await conn.execute(text("SELECT job_state FROM apscheduler_jobs WHERE id = :id"), {"id": jid})
        ).scalar_one()
    state: dict[str, object] = pickle.loads(raw)
    return state


async def test_a_job_is_stored_as_a_reference_with_ids_only(job_engine: AsyncEngine, make_scheduler) -> None:
    run_at = datetime.now(UTC) + timedelta(hours=1)
    jid = job_id("test", "marker", "a", at=run_at)
    async with make_scheduler(elect=False) as writer:
        await writer.schedule_at(MARKER, run_at, jid, marker="a")
        assert writer.state is SchedulerState.STANDBY
    state = await stored_state(job_engine, jid)
    assert state["func"] == MARKER  # the string, never the function object
    assert state["args"] == ()
    assert state["kwargs"] == {"marker": "a"}
    assert (state["misfire_grace_time"], state["coalesce"], state["max_instances"]) == (300, True, 1)


async def test_scheduling_the_same_id_again_replaces_the_job(job_engine: AsyncEngine, make_scheduler) -> None:
    first = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    async with make_scheduler(elect=False) as writer:
        await writer.schedule_at(MARKER, first, "test:marker:lead:42", marker="one")
        await writer.schedule_at(MARKER, first + timedelta(hours=2), "test:marker:lead:42", marker="two")
        assert await job_rows(job_engine) == 1
        assert await writer.next_run_at("test:marker:lead:42") == first + timedelta(hours=2)
        assert (await stored_state(job_engine, "test:marker:lead:42"))["kwargs"] == {"marker": "two"}

        assert await writer.cancel("test:marker:lead:42") is True
        assert await writer.cancel("test:marker:lead:42") is False
        assert await writer.next_run_at("test:marker:lead:42") is None
        assert await job_rows(job_engine) == 0


async def test_an_unchanged_recurring_job_keeps_its_next_run(job_engine: AsyncEngine, make_scheduler) -> None:
    async with make_scheduler(elect=False) as writer:
        await writer.schedule_interval(MARKER, "test:interval", every=timedelta(minutes=1), marker="i")
        first = await writer.next_run_at("test:interval")
        await writer.schedule_interval(MARKER, "test:interval", every=timedelta(minutes=1), marker="i")
        assert await writer.next_run_at("test:interval") == first  # a restart does not push it back
        await writer.schedule_interval(MARKER, "test:interval", every=timedelta(minutes=5), marker="i")
        assert await writer.next_run_at("test:interval") != first  # a changed schedule replaces it
        await writer.schedule_cron(MARKER, "test:cron", cron="0 9 * * *", timezone="Asia/Shanghai", marker="c")
        assert (await writer.next_run_at("test:cron")).hour == 1  # 09:00 Shanghai
        assert await job_rows(job_engine) == 2


async def test_objects_and_unmarked_functions_are_refused(job_engine: AsyncEngine, make_scheduler) -> None:
    soon = datetime.now(UTC) + timedelta(minutes=5)
    async with make_scheduler(elect=False) as writer:
        with pytest.raises(JobRefError):
            await writer.schedule_at(MARKER, soon, "test:bad", marker=object())
        with pytest.raises(JobRefError):
            await writer.schedule_at("tests.support.jobs:not_a_job", soon, "test:bad", marker="x")
        with pytest.raises(JobRefError):
            await writer.schedule_at(MARKER, soon.replace(tzinfo=None), "test:bad", marker="x")
        with pytest.raises(JobRefError):
            await writer.schedule_cron(MARKER, "test:bad", cron="every day", marker="x")
    assert await job_rows(job_engine) == 0


async def test_jobs_survive_a_restart(job_engine: AsyncEngine, make_scheduler) -> None:
    due = datetime.now(UTC) - timedelta(seconds=1)
    async with make_scheduler(elect=False) as before_restart:
        await before_restart.schedule_at(MARKER, due, "test:marker:restart", marker="restart")
    assert await marker_runs(job_engine) == []

    async with make_scheduler() as after_restart:
        await wait_until(lambda: after_restart.state is SchedulerState.LEADER)
        await wait_until(lambda: _ran(job_engine, "restart"))
        await after_restart.run_due_jobs()
    assert len(await marker_runs(job_engine, "restart")) == 1
    assert await job_rows(job_engine) == 0  # a one-off job leaves the store when it runs


async def test_the_leader_runs_a_job_written_by_another_process_within_the_poll(
    job_engine: AsyncEngine, make_scheduler
) -> None:
    async with make_scheduler(poll=0.2) as leader, make_scheduler(elect=False) as standby:
        await wait_until(lambda: leader.state is SchedulerState.LEADER)
        await standby.schedule_at(MARKER, datetime.now(UTC) + timedelta(milliseconds=300), "test:w", marker="w")
        took = await wait_until(lambda: _ran(job_engine, "w"), timeout=5)
        assert took < 2.0
        await wait_until(lambda: _no_jobs(job_engine))
    assert len(await marker_runs(job_engine, "w")) == 1


async def test_a_job_reaches_the_running_apps_parts_and_nothing_else(harness: BotHarness, make_scheduler) -> None:
    with pytest.raises(RuntimeError, match="only available inside a job"):
        job_runtime()
    async with make_scheduler(elect=False) as scheduler:
        runtime = scheduler._executor.runtime
        assert runtime is not None
        with running_with(runtime):
            assert job_runtime().sessionmaker is harness.sessionmaker
            assert job_runtime().scheduler is scheduler


async def test_the_stale_outbox_job_puts_abandoned_messages_back_in_the_queue(
    job_engine: AsyncEngine, harness: BotHarness, make_scheduler
) -> None:
    long_ago = harness.clock.now() - timedelta(minutes=10)
    async with UnitOfWork(harness.sessionmaker) as uow:
        row = OutboxMessage(
            dedupe_key="test:stale",
            chat_id=1,
            partner_id=None,
            kind="text",
            payload={"text": "hi"},
            status="sending",
            attempts=1,
            not_before=long_ago,
            created_at=long_ago,
            claimed_at=long_ago,
        )
        uow.session.add(row)
    async with make_scheduler(elect=False) as scheduler:
        runtime = scheduler._executor.runtime
        assert runtime is not None
        with running_with(runtime):
            await release_stale_outbox()
    async with UnitOfWork(harness.sessionmaker) as uow:
        reloaded = await uow.outbox.by_key("test:stale")
        assert reloaded is not None
        assert reloaded.status == "pending"


async def test_a_stepping_wall_clock_never_fires_a_days_jobs_twice(job_engine: AsyncEngine, make_scheduler) -> None:
    day = datetime(2026, 11, 26, tzinfo=UTC)
    once_id = job_id("test", "once", at=day.replace(hour=9))
    with time_machine.travel(day.replace(hour=8, minute=59), tick=False) as clock:
        async with make_scheduler() as scheduler:
            await wait_until(lambda: scheduler.state is SchedulerState.LEADER)

            async def schedule_todays_jobs() -> None:  # what every start of the app does
                await scheduler.schedule_cron(MARKER, "test:daily", cron="0 9 * * *", marker="daily")
                await scheduler.schedule_at(MARKER, day.replace(hour=9), once_id, marker="once")

            await schedule_todays_jobs()
            clock.move_to(day.replace(hour=9, second=5))
            await scheduler.run_due_jobs()
            assert (len(await marker_runs(job_engine, "daily")), len(await marker_runs(job_engine, "once"))) == (1, 1)

            clock.move_to(day.replace(hour=8, minute=30))  # NTP steps the clock back half an hour
            await scheduler.run_due_jobs()
            await scheduler.schedule_cron(MARKER, "test:daily", cron="0 9 * * *", marker="daily")  # a restart
            clock.move_to(day.replace(hour=9, second=30))  # 09:00 comes round again
            await scheduler.run_due_jobs()
            assert (len(await marker_runs(job_engine, "daily")), len(await marker_runs(job_engine, "once"))) == (1, 1)
            assert await scheduler.job_ids() == ["test:daily"]
            assert await scheduler.next_run_at("test:daily") == day.replace(day=27, hour=9)

            clock.move_to(day.replace(day=29, hour=9, minute=1))  # a VM resumed three days later
            await scheduler.run_due_jobs()
            assert len(await marker_runs(job_engine, "daily")) == 2  # coalesced: once, not three times
            assert await scheduler.next_run_at("test:daily") == day.replace(day=30, hour=9)


async def _ran(engine: AsyncEngine, marker: str) -> bool:
    return bool(await marker_runs(engine, marker))


async def _no_jobs(engine: AsyncEngine) -> bool:
    return await job_rows(engine) == 0


async def test_a_write_transaction_of_this_process_never_stalls_the_leaders_wakeup(
    database_url: str, job_engine: AsyncEngine, make_scheduler
) -> None:
    """On SQLite the leader's wakeup updates the store on the event loop. If it waited seconds for the write lock
    held by a transaction of this same process, that transaction could not finish (it needs the loop): both stood
    still for the store's whole wait, 5 s, again and again while jobs ran. It now gives up after 0.1 s."""
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's row locks are not a file lock: the store does not wait on this process there")
    async with make_scheduler(poll=0.2) as leader:
        await wait_until(lambda: leader.state is SchedulerState.LEADER)
        await leader.schedule_at(MARKER, datetime.now(UTC) + timedelta(milliseconds=300), "test:lock", marker="lock")
        loop = asyncio.get_running_loop()
        gaps: list[float] = []

        async def tick() -> None:
            last = loop.time()
            while True:
                await asyncio.sleep(0.01)
                gaps.append(loop.time() - last)
                last = loop.time()

        ticker = asyncio.create_task(tick())
        async with job_engine.begin() as conn:  # holds SQLite's write lock for 1.5 s, as a job's transaction does
            await conn.execute(
                text("INSERT INTO events (type, payload, occurred_at, source) VALUES ('held', '{}', :at, 'test')"),
                {"at": datetime.now(UTC)},
            )
            await asyncio.sleep(1.5)
        await wait_until(lambda: _ran(job_engine, "lock"), timeout=10)
        ticker.cancel()
    assert max(gaps) < 0.5, f"the event loop stood still for {max(gaps):.2f} s"


async def test_scheduling_from_a_handler_waits_out_a_held_sqlite_lock(
    database_url: str, job_engine: AsyncEngine, make_scheduler
) -> None:
    """Off the event loop waiting harms nothing: schedule_* and cancel retry a locked SQLite store for seconds."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's file lock only")
    async with make_scheduler(elect=False) as writer:

        async def hold_the_lock() -> None:
            async with job_engine.begin() as conn:
                await conn.execute(
                    text("INSERT INTO events (type, payload, occurred_at, source) VALUES ('held', '{}', :at, 'test')"),
                    {"at": datetime.now(UTC)},
                )
                await asyncio.sleep(0.6)

        holder = asyncio.create_task(hold_the_lock())
        await asyncio.sleep(0.1)  # the lock is taken
        run_at = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
        await writer.schedule_at(MARKER, run_at, "test:waits", marker="waits")  # 0.5 s behind the lock
        await holder
        assert await writer.next_run_at("test:waits") == run_at
        assert await writer.cancel("test:waits") is True
