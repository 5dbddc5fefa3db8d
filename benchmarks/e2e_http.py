"""End to end over HTTP: the real `run_bot.py` process, long polling the local Bot API emulator
(bot/sandbox/emulator.py, in a process of its own), answering `/me` from N registered partners, each sending one;
against the bare aiogram bot (benchmarks/bare_bot.py: one trivial handler, no database) polling the same emulator
with the same N messages, in the same run.

Rate: N / (the last reply the emulator recorded - the first injection), where the N messages are injected into the
emulator's update queue by the benchmark (50 requests at once) while the bot polls; every partner must get a reply.
Before timing each bot answers a warm-up of 50 other users (connections open, code paths warm). The partners are
seeded in the database before the bot starts (a /start each would only measure sign-ups).

The start-up jobs stay out of the measured window. The bot runs with STARTUP_CATCH_UP_SECONDS at CATCH_UP_S, so the
jobs due right after start-up (the first rollups refresh, then the first pack dispatch) run within seconds; the
measurement starts once both have run, as /metrics counts them (in `python -m benchmarks --quick` the memory scenario
runs meanwhile: it measures only its own processes' memory, which this idle bot does not change). In the quick run
both bots count as idle after 0.3 s without a call, not 1 s. Jobs due every few seconds or minutes (the broadcast
progress report, the minute jobs) may run during either window, as in production.

A reference row measures the floor in the same run: the bare bot again, its handler first doing one transaction on
the same database (the sender's partner id, one event; `python -m benchmarks.bare_bot API_BASE DATABASE_URL`). It
shows how much of the bare rate a bot keeps once each update touches the database at all.

Target: the real bot >= 0.7x the bare bot's rate. Sizes (quick / full): 200 / 2,000 partners. Database: the given
one (PostgreSQL in `python -m benchmarks`); run alone, `python -m benchmarks.e2e_http [--quick] [--sqlite]
[--profile FILE]` uses a fresh PostgreSQL database when one is reachable (else SQLite); with --profile the bot runs
under cProfile for the measured window only (benchmarks/profiled_bot.py) and the top of the stats is printed.
The bot's CPU time per update is reported beside each rate (read from /proc), which stays meaningful on a busy
machine where the rates do not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pstats
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from sqlalchemy import text

from benchmarks import processes
from benchmarks.report import Result, all_passed, reachable, render
from bot.scheduling.jobs import DISPATCH_PACKS, REFRESH_ROLLUPS
from storage.db import create_engine
from storage.migrate import upgrade_to_head

TARGET_RATIO = 0.7
FIRST_USER = 700_000_000
WARM_UP_USER = 600_000_000
WARM_UP = 50
CONCURRENCY = 50
COMMAND = "/me"
CATCH_UP_S = 2
"""The bot's STARTUP_CATCH_UP_SECONDS: its first rollups refresh (+1 s) and pack dispatch (+2 s) run before, not
during, the measured window, without holding the benchmark up for the default 20 s."""
SETTLE_S = 30.0
"""The longest the measurement waits for those two jobs."""

QUICK_COUNT, COUNT = 200, 2000
STARTUP_JOBS = {REFRESH_ROLLUPS.rpartition(":")[2], DISPATCH_PACKS.rpartition(":")[2]}
"""The jobs run soon after start-up (at +10 s and +20 s), as /metrics names them."""
QUICK_QUIET_MS = 300
"""The quick run's bots count as idle after 0.3 s without a call (1 s otherwise)."""

SEED_PARTNER = """
INSERT INTO partners (tg_user_id, first_name, invite_code, tree_path, depth, role, unreachable, level,
                      commission_eligible, joined_at, updated_at)
VALUES (:tg, :name, :code, '/', 0, 'partner', false, 'member', true, :now, :now)
"""


async def _seed(database_url: str, user_ids: list[int]) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine)
        now = datetime.now(UTC)
        rows = [{"tg": uid, "name": f"U{uid}", "code": f"e2e{uid}", "now": now} for uid in user_ids]
        async with engine.begin() as conn:
            await conn.execute(text(SEED_PARTNER), rows)
    finally:
        await engine.dispose()


@dataclass(frozen=True, slots=True)
class Run:
    rate: float
    answered: int
    cpu_ms: float
    """The bot process's CPU time per update, from the first injection until the emulator fell quiet."""


async def _measure(
    http: aiohttp.ClientSession,
    base: str,
    user_ids: list[int],
    pid: int,
    *,
    profile: bool = False,
    quiet_ms: int = 1000,
) -> Run:
    """Warm up, then inject one message per user: replies per second, users who got a reply, CPU per update.

    The bot is idle once it made no call for `quiet_ms`."""
    await processes.inject(http, base, [(WARM_UP_USER + i, COMMAND) for i in range(WARM_UP)], CONCURRENCY)
    await processes.wait_idle(http, base, quiet_ms=quiet_ms)
    if profile:
        os.kill(pid, signal.SIGUSR1)
    cpu = processes.cpu_seconds(pid)
    started = time.time()
    await processes.inject(http, base, [(uid, COMMAND) for uid in user_ids], CONCURRENCY)
    await processes.wait_idle(http, base, quiet_ms=quiet_ms)
    cpu = processes.cpu_seconds(pid) - cpu
    if profile:
        os.kill(pid, signal.SIGUSR2)
    wanted = set(user_ids)
    last: dict[int, float] = {}
    for call in await processes.bot_calls(http, base):
        chat = call["params"].get("chat_id")
        if chat is not None and int(chat) in wanted and call["ts"] >= started:
            last[int(chat)] = max(last.get(int(chat), 0.0), call["ts"])
    finished = max(last.values(), default=started)
    rate = len(last) / (finished - started) if finished > started else 0.0
    return Run(rate, len(last), cpu / len(user_ids) * 1000)


async def _wait_for_startup_jobs(http: aiohttp.ClientSession, port: int, deadline: float) -> None:
    """Until the jobs due right after start-up have run once each (or the deadline)."""
    while time.monotonic() < deadline:
        if set(await processes.job_runs(http, port)) >= STARTUP_JOBS:
            return
        await asyncio.sleep(0.5)


async def _measure_bot(
    http: aiohttp.ClientSession,
    base: str,
    *,
    user_ids: list[int],
    bot: processes.Process,
    port: int,
    quick: bool,
    profile: bool,
) -> Run:
    """The real bot's run once the jobs due right after start-up have run (see the module's docstring)."""
    quiet_ms = QUICK_QUIET_MS if quick else 1000
    await _wait_for_startup_jobs(http, port, time.monotonic() + SETTLE_S)
    await processes.wait_idle(http, base, quiet_ms=quiet_ms)
    return await _measure(http, base, user_ids, bot.pid, profile=profile, quiet_ms=quiet_ms)


def _print_profile(path: Path) -> None:
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)


async def run(
    *,
    quick: bool,
    database_url: str,
    profile: Path | None = None,
    meanwhile: Callable[[], Awaitable[list[Result]]] | None = None,
) -> list[Result]:
    """The scenario's row, after the rows of `meanwhile`: a scenario run while the bot settles, which must not be
    timing anything (the memory scenario measures only memory)."""
    count = QUICK_COUNT if quick else COUNT
    user_ids = [FIRST_USER + i for i in range(count)]
    backend = "postgres" if database_url.startswith("postgresql") else "sqlite"
    await _seed(database_url, user_ids)
    workdir = processes.workdir("pa-bench-e2e-")
    with processes.server("bot.sandbox.emulator") as base:
        async with aiohttp.ClientSession() as http:
            bare_process = await processes.start_bare_bot(base, workdir)
            quiet = QUICK_QUIET_MS if quick else 1000
            try:
                bare = await _measure(http, base, user_ids, bare_process.pid, quiet_ms=quiet)
            finally:
                await bare_process.stop()
            await processes.reset(http, base)
            floor_process = await processes.start_bare_bot(base, workdir, database_url)
            try:
                floor = await _measure(http, base, user_ids, floor_process.pid, quiet_ms=quiet)
            finally:
                await floor_process.stop()
            await processes.reset(http, base)
            # `meanwhile` starts with the bot's start-up, which is not measured either
            others_task: asyncio.Future[list[Result]] | None = None
            if meanwhile is not None:
                others_task = asyncio.ensure_future(meanwhile())
            catch_up = {"STARTUP_CATCH_UP_SECONDS": str(CATCH_UP_S)}
            try:
                bot, port = await processes.start_bot(base, database_url, workdir, profile=profile, extra=catch_up)
            except BaseException:
                if others_task is not None:
                    others_task.cancel()
                    await asyncio.gather(others_task, return_exceptions=True)
                raise
            try:
                others = await others_task if others_task is not None else []
                full = await _measure_bot(
                    http,
                    base,
                    user_ids=user_ids,
                    bot=bot,
                    port=port,
                    quick=quick,
                    profile=profile is not None,
                )
            finally:
                code = await bot.stop()
    if code != 0 or "Traceback" in bot.logs():
        raise RuntimeError(f"run_bot.py failed (exit {code}); its log: {bot.log_path}")
    print(
        f"e2e over HTTP ({backend}): bot {full.rate:,.0f}/s ({full.answered}/{count} answered, "
        f"{full.cpu_ms:.1f} ms CPU per update), bare {bare.rate:,.0f}/s ({bare.cpu_ms:.1f} ms CPU per update), "
        f"bare + one transaction {floor.rate:,.0f}/s ({floor.cpu_ms:.1f} ms CPU per update)"
    )
    if profile is not None:
        _print_profile(profile)
    return [
        *others,
        Result(
            f"{COMMAND} end to end over HTTP, run_bot.py + emulator ({count:,} partners, {backend}"
            + ("; quick)" if quick else ")"),
            f"replies/s vs bare aiogram bot ({full.answered}/{count} answered, bare {bare.answered}/{count}; "
            f"CPU {full.cpu_ms:.1f} vs {bare.cpu_ms:.1f} ms per update)",
            f">= {TARGET_RATIO:.1f}x bare",
            full.rate,
            bare.rate,
            full.rate >= TARGET_RATIO * bare.rate and full.answered == count and bare.answered == count,
            "/s",
        ),
        Result(
            f"reference: bare bot + one transaction per update, over HTTP ({backend})",
            f"replies/s vs bare aiogram bot ({floor.answered}/{count} answered; CPU {floor.cpu_ms:.1f} ms per update)",
            "floor, no target",
            floor.rate,
            bare.rate,
            None,
            "/s",
        ),
    ]


@contextlib.asynccontextmanager
async def _database(sqlite: bool) -> AsyncIterator[str]:
    if not sqlite and reachable(5432):
        async with processes.own_postgres("pa_bench_e2e") as url:
            yield url
    else:
        yield f"sqlite+aiosqlite:///{processes.workdir('pa-bench-e2e-db-') / 'bench.db'}"


async def _main(quick: bool, sqlite: bool, profile: Path | None) -> int:
    async with _database(sqlite) as url:
        results = await run(quick=quick, database_url=url, profile=profile)
    print(render(results))
    return 0 if all_passed(results) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.e2e_http")
    parser.add_argument("--quick", action="store_true", help="200 partners instead of 2,000, measured at once")
    parser.add_argument("--sqlite", action="store_true", help="SQLite even when PostgreSQL is reachable")
    parser.add_argument("--profile", type=Path, default=None, help="run the bot under cProfile, write stats here")
    args = parser.parse_args()
    sys.exit(asyncio.run(_main(args.quick, args.sqlite, args.profile)))
