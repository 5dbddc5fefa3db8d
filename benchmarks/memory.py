"""Memory of one real bot process: peak RSS (VmHWM, read from /proc) of `run_bot.py`, long polling, on PostgreSQL.

(a) Serving, with PARTNERS partners in the database (and about 14 events each over the last 30 days, as in
    benchmarks/segments.py): the process polls the Bot API emulator (bot/sandbox/emulator.py, a process of its
    own) while the jobs that scan every partner run, scheduled "now" into the shared job store the way any process
    of a fleet schedules them (the leader runs them within SCHEDULER_POLL_SECONDS): the daily segments, the
    nightly level review, the streak sweep, the rollups refresh, the rank-change notices. Meanwhile TRAFFIC
    updates arrive: /today, /rank and /me from partners, /stats from an admin. Measured once every update has a
    reply and every job has run (or JOB_WAIT_S, 120 s with --quick, has passed: the metric names the jobs that
    finished, and the scenario fails unless all did).
(b) Broadcasting: a fresh process with one outbox row queued per partner (written directly, as a broadcast's
    bulk enqueue writes them) and paid broadcast on (1,000/s), sending to the delivery stand-in
    (benchmarks/standin.py) for at most BROADCAST_S seconds.

Baseline, same run: the bare aiogram bot (benchmarks/bare_bot.py) polling an emulator of its own and answering the
same TRAFFIC updates, measured while the database is seeded and the bot measured (it uses no database). Target:
<= 300 MB each. With --quick: 1,000 partners and recipients and 100 updates (named so), and (b) runs at the
same time as (a), on a database of its own, when the caller gives one (`python -m benchmarks --quick` does).

The event backlog is marked as already folded into the leaderboards (the sync's low-water mark), as it would be
in a running deployment; otherwise the first `leaderboards:sync` would fold a million events at once.

`python -m benchmarks.memory [--quick]` runs it alone on a fresh PostgreSQL database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks import processes, segments
from benchmarks.report import Result, all_passed, render
from bot.config import load_settings
from bot.scheduling.factory import build_job_scheduler
from bot.scheduling.jobs import (
    EVALUATE_LEVELS,
    NOTIFY_RANK_CHANGES,
    REFRESH_ROLLUPS,
    SEGMENTS_DAILY,
    SWEEP_STREAKS,
)
from storage.db import create_engine
from storage.migrate import upgrade_to_head

PARTNERS = 100_000
QUICK_PARTNERS = 1_000
TARGET_MB = 300.0
TRAFFIC = 300
QUICK_TRAFFIC = 100
JOB_WAIT_S = 600.0
QUICK_JOB_WAIT_S = 120.0
BROADCAST_S = 120.0
POLL_S, QUICK_POLL_S = 1.0, 0.25
"""How often the scenario looks whether the jobs ran and the broadcast went out (replies: half as often)."""
PAID_RATE = 1000
FIRST_TG_ID = segments.FIRST_TG_ID
JOBS = (SEGMENTS_DAILY, EVALUATE_LEVELS, SWEEP_STREAKS, REFRESH_ROLLUPS, NOTIFY_RANK_CHANGES)

PAYLOAD = {"text": "📣 <b>Today's content</b>: a new poster is ready", "parse_mode": "HTML"}
MB_PER_MIB = 1.048576  # the target is in MB (10^6 bytes); /proc reports KiB

MARK_FOLDED = """
INSERT INTO leaderboard_sync (name, safe_id, updated_at) SELECT 'events', coalesce(max(id), 0), :now FROM events
"""

SEED_OUTBOX = """
INSERT INTO outbox (dedupe_key, chat_id, partner_id, kind, payload, urgent, status, attempts, not_before, created_at)
SELECT 'bench-memory:' || p.id, p.tg_user_id, p.id, 'text',
       CAST(:payload AS json),
       false, 'pending', 0, :now, :now
FROM partners AS p
WHERE p.tg_user_id > :first_tg
ORDER BY p.id
LIMIT :n
"""


async def _seed(engine: AsyncEngine, partners: int) -> int:
    await upgrade_to_head(engine)
    now = datetime.now(UTC)
    params = {"now": now, "first_tg": FIRST_TG_ID, "n": partners}
    async with engine.begin() as conn:
        await conn.execute(text("SELECT setseed(0.20261126)"))
        await conn.execute(text(segments.SEED_PARTNERS), params)
        events = (await conn.execute(text(segments.SEED_EVENTS), params)).rowcount
        await conn.execute(text(segments.SEED_ORDERS), params)
        await conn.execute(text(MARK_FOLDED), {"now": now})
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE partners, events, orders"))
    return int(events)


def _traffic(partners: int, count: int = TRAFFIC) -> list[tuple[int, str]]:
    """`count` messages: partners' /today, /rank and /me in turn, and every tenth an admin's /stats."""
    messages = [(processes.ADMIN_ID, "/start")]
    commands = ("/today", "/rank", "/me")
    for i in range(count - 1):
        if i % 10 == 9:
            messages.append((processes.ADMIN_ID, "/stats"))
        else:
            messages.append((FIRST_TG_ID + 1 + (i * 7919) % partners, commands[i % len(commands)]))
    return messages


async def _schedule_scans(database_url: str) -> None:
    """The partner-scanning jobs, due now, written to the job store as any process of a fleet writes them."""
    scheduler = build_job_scheduler(load_settings(database_url=database_url, redis_url=None), None)
    await scheduler.start(elect=False)
    try:
        now = datetime.now(UTC)
        for ref in JOBS:
            await scheduler.schedule_at(ref, now, f"bench:memory:{ref.rpartition(':')[2]}")
    finally:
        await scheduler.stop()


async def _wait_for_jobs(
    http: aiohttp.ClientSession, port: int, deadline: float, poll: float
) -> tuple[list[str], list[str]]:
    """Until each of JOBS has run once (or the deadline): (jobs that finished, jobs that failed)."""
    wanted = [ref.rpartition(":")[2] for ref in JOBS]
    while True:
        runs = await processes.job_outcomes(http, port)
        done = [job for job in wanted if runs.get(job, {}).get("ok", 0) + runs.get(job, {}).get("error", 0) >= 1]
        if len(done) == len(wanted) or time.monotonic() >= deadline:
            return done, [job for job in wanted if runs.get(job, {}).get("error", 0) >= 1]
        await asyncio.sleep(poll)


def _replied(calls: list[dict[str, object]], since: float) -> set[int]:
    chats = set()
    for call in calls:
        params = call["params"]
        if isinstance(params, dict) and params.get("chat_id") is not None and float(str(call["ts"])) >= since:
            chats.add(int(params["chat_id"]))
    return chats


async def _wait_for_replies(
    http: aiohttp.ClientSession, base: str, users: set[int], since: float, *, deadline: float, poll: float
) -> int:
    """Until every user who wrote got a reply (or the deadline): how many did. The emulator never falls quiet here:
    the jobs' notices (badges, streak freezes) keep the outbox sending to partners who never opened a chat."""
    while True:
        answered = len(_replied(await processes.bot_calls(http, base), since) & users)
        if answered == len(users) or time.monotonic() >= deadline:
            return answered
        await asyncio.sleep(2 * poll)


@dataclass(frozen=True, slots=True)
class Serving:
    peak_mb: float
    answered: int
    jobs_done: list[str]
    jobs_failed: list[str]


async def _serving(
    base: str, database_url: str, partners: int, messages: list[tuple[int, str]], poll: float
) -> Serving:
    workdir = processes.workdir("pa-bench-memory-")
    async with aiohttp.ClientSession() as http:
        await processes.reset(http, base)
        bot, port = await processes.start_bot(base, database_url, workdir)
        try:
            started = time.time()
            deadline = time.monotonic() + (JOB_WAIT_S if partners > QUICK_PARTNERS else QUICK_JOB_WAIT_S)
            await _schedule_scans(database_url)
            await processes.inject(http, base, messages[:1], 1)  # the admin registers first
            await processes.wait_idle(http, base)
            await processes.inject(http, base, messages[1:], 20)
            done, failed = await _wait_for_jobs(http, port, deadline, poll)
            answered = await _wait_for_replies(
                http, base, {u for u, _ in messages}, started, deadline=deadline, poll=poll
            )
            peak = processes.memory(bot.pid).peak_mib * MB_PER_MIB
        finally:
            code = await bot.stop()
    if code != 0:
        raise RuntimeError(f"run_bot.py exited with {code}; its log: {bot.log_path}")
    print(f"memory: serving {partners:,} partners: peak {peak:.0f} MB, jobs run {done}, failed {failed}")
    return Serving(peak, answered, done, failed)


async def _broadcast(
    standin: str, database_url: str, engine: AsyncEngine, recipients: int, poll: float
) -> tuple[float, int]:
    """Peak RSS of a process sending a `recipients` broadcast for up to BROADCAST_S: (MB, messages sent)."""
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM outbox"))
        now = datetime.now(UTC)
        params = {"now": now, "first_tg": FIRST_TG_ID, "n": recipients, "payload": json.dumps(PAYLOAD)}
        await conn.execute(text(SEED_OUTBOX), params)
    workdir = processes.workdir("pa-bench-memory-bc-")
    paid = {"ALLOW_PAID_BROADCAST": "true", "DELIVERY_PAID_RATE": str(PAID_RATE), "OUTBOX_POLL_SECONDS": "0.2"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{standin}/_reset"):
            pass
        bot, _ = await processes.start_bot(standin, database_url, workdir, extra=paid)
        try:
            deadline = time.monotonic() + BROADCAST_S
            sent = 0
            while sent < recipients and time.monotonic() < deadline:
                await asyncio.sleep(poll)
                async with http.get(f"{standin}/_count") as response:
                    sent = int((await response.json())["count"])
            peak = processes.memory(bot.pid).peak_mib * MB_PER_MIB
        finally:
            code = await bot.stop()
    if code != 0:
        raise RuntimeError(f"run_bot.py exited with {code}; its log: {bot.log_path}")
    print(f"memory: broadcast to {recipients:,}: peak {peak:.0f} MB, {sent:,} sent in at most {BROADCAST_S:.0f} s")
    return peak, sent


async def _bare(base: str, messages: list[tuple[int, str]]) -> float:
    """Peak RSS of the bare aiogram bot after it answered the same messages."""
    workdir = processes.workdir("pa-bench-memory-bare-")
    async with aiohttp.ClientSession() as http:
        await processes.reset(http, base)
        bare = await processes.start_bare_bot(base, workdir)
        try:
            await processes.inject(http, base, messages, 20)
            await processes.wait_idle(http, base)
            peak = processes.memory(bare.pid).peak_mib * MB_PER_MIB
        finally:
            await bare.stop()
    return peak


async def run(*, quick: bool, database_url: str, broadcast_database_url: str | None = None) -> list[Result]:
    """Serving, then broadcasting, on `database_url`, while the bare bot runs. With `broadcast_database_url`
    (another empty database) the broadcast runs there, at the same time as serving: the processes are separate and
    each is measured only for its own peak RSS, so the quick run does not wait for one after the other."""
    partners = QUICK_PARTNERS if quick else PARTNERS
    poll = QUICK_POLL_S if quick else POLL_S
    label = f"{partners:,} partners" + ("; quick" if quick else "")
    engine = create_engine(database_url)
    broadcast_engine = create_engine(broadcast_database_url) if broadcast_database_url else None
    try:
        messages = _traffic(partners, QUICK_TRAFFIC if quick else TRAFFIC)
        with (
            processes.server("bot.sandbox.emulator") as base,
            processes.server("bot.sandbox.emulator") as bare_base,
            processes.server("benchmarks.standin") as standin,
        ):

            async def seed_and_measure() -> tuple[int, Serving, float, int]:
                started = time.perf_counter()
                if broadcast_engine is not None:  # one after the other: alembic's context is global
                    await _seed(broadcast_engine, partners)
                events = await _seed(engine, partners)
                elapsed = time.perf_counter() - started
                print(f"memory: seeded {partners:,} partners, {events:,} events in {elapsed:.1f} s")
                if broadcast_engine is not None and broadcast_database_url is not None:
                    serving, (broadcast, sent) = await asyncio.gather(
                        _serving(base, database_url, partners, messages, poll),
                        _broadcast(standin, broadcast_database_url, broadcast_engine, partners, poll),
                    )
                else:
                    serving = await _serving(base, database_url, partners, messages, poll)
                    broadcast, sent = await _broadcast(standin, database_url, engine, partners, poll)
                return events, serving, broadcast, sent

            # the bare bot (no database) on an emulator of its own, meanwhile: each process is measured for its RSS only
            (events, serving, broadcast, sent), bare = await asyncio.gather(
                seed_and_measure(), _bare(bare_base, messages)
            )
    finally:
        await engine.dispose()
        if broadcast_engine is not None:
            await broadcast_engine.dispose()
    users = len({u for u, _ in messages})
    all_jobs = len(serving.jobs_done) == len(JOBS) and not serving.jobs_failed
    jobs = ", ".join(serving.jobs_done) or "none"
    return [
        Result(
            f"bot process RSS, serving ({label}, {events:,} events)",
            f"peak MB: {len(messages)} updates ({serving.answered}/{users} users answered), jobs run: {jobs}"
            + (f" (failed: {', '.join(serving.jobs_failed)})" if serving.jobs_failed else "")
            + " vs bare aiogram bot",
            f"<= {TARGET_MB:.0f} MB",
            serving.peak_mb,
            bare,
            serving.peak_mb <= TARGET_MB and all_jobs and serving.answered == users,
            " MB",
        ),
        Result(
            f"bot process RSS, broadcast to {partners:,} ({label}, paid {PAID_RATE}/s)",
            f"peak MB: {sent:,} sent within {BROADCAST_S:.0f} s vs bare aiogram bot",
            f"<= {TARGET_MB:.0f} MB",
            broadcast,
            bare,
            broadcast <= TARGET_MB and sent > 0,
            " MB",
        ),
    ]


async def _main(quick: bool) -> int:
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(processes.own_postgres("pa_bench_memory"))
        broadcast_url = await stack.enter_async_context(processes.own_postgres("pa_bench_memory")) if quick else None
        results = await run(quick=quick, database_url=url, broadcast_database_url=broadcast_url)
    print(render(results))
    return 0 if all_passed(results) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory")
    parser.add_argument("--quick", action="store_true", help="1,000 partners and recipients instead of 100,000")
    sys.exit(asyncio.run(_main(parser.parse_args().quick)))
