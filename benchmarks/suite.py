"""Every scenario, one table of achieved vs target vs baseline: what `python -m benchmarks [--quick]` runs
(benchmarks/__main__.py imports this module only once the run starts)."""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg

from benchmarks import (
    delivery,
    digests,
    e2e_http,
    leaderboard,
    memory,
    posters,
    redirect,
    rollups,
    segments,
    settlement,
    update_handling,
)
from benchmarks.report import Result, all_passed, reachable, render
from storage.db import create_engine
from storage.migrate import upgrade_to_head


async def _timed(name: str, scenario: Awaitable[list[Result]]) -> list[Result]:
    """The scenario's rows; how long it took goes to stderr, so a slow scenario is easy to find."""
    started = time.perf_counter()
    results = await scenario
    print(f"benchmarks: {name} took {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return results


def _url(name: str) -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


@contextlib.asynccontextmanager
async def _database(prefix: str, template: str | None = None) -> AsyncIterator[str]:
    """A throw-away PostgreSQL database (a copy of `template` when given), dropped after: its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    await admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield _url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def _migrated_template() -> AsyncIterator[str]:
    """A database migrated once, which every scenario's database copies: migrating takes seconds, a copy a tenth of
    one (the scenarios' own `upgrade_to_head` then finds nothing to do). Its name."""
    async with _database("pa_bench_template") as url:
        engine = create_engine(url)
        try:
            await upgrade_to_head(engine)
        finally:
            await engine.dispose()  # no connection may be open to a template when it is copied
        yield url.rsplit("/", 1)[1]


async def _with_postgres(quick: bool, template: str) -> list[Result]:
    async with _database("pa_bench", template) as url:
        # segments first: its partners are the only ones
        results = await _timed("segments", segments.run(quick=quick, database_url=url))
        results += await _timed("update handling", update_handling.run(quick=quick, postgres_url=url))
        results += await _timed("delivery", delivery.run(quick=quick, database_url=url))
        results += await _timed(
            "settlement (postgres)", settlement.run(quick=quick, database_url=url, label="postgres")
        )
        # SQL on PostgreSQL, and Redis if it runs
        results += await _timed("leaderboard", leaderboard.run(quick=quick, database_url=url))
        return results + await _timed("redirect", redirect.run(quick=quick, database_url=url))


async def _own_database(run: Callable[..., Awaitable[list[Result]]], quick: bool, template: str) -> list[Result]:
    """A scenario with data of its own (the rollups' ten million events, the digests' thousand teams) gets a database
    of its own, so no other scenario reads its rows."""
    async with _database("pa_bench_own", template) as url:
        return await run(quick=quick, database_url=url)


async def _processes(quick: bool, template: str) -> list[Result]:
    """Memory (one whole bot process: its peak RSS), then end to end over HTTP (the bot process vs a bare aiogram bot).

    The quick run runs the memory scenario while the end-to-end bot settles (it waits for its start-up jobs), and
    the memory scenario's serving and broadcasting processes at the same time, each on a database of its own: memory
    measures nothing but its own processes' memory, which that idle bot does not change, and the end-to-end bot is
    measured only once the memory scenario's processes have stopped."""
    if not quick:
        results = await _timed("memory", _own_database(memory.run, quick, template))
        return results + await _timed("end to end over HTTP", _own_database(e2e_http.run, quick, template))
    async with (
        _database("pa_bench_own", template) as memory_url,
        _database("pa_bench_own", template) as broadcast_url,
        _database("pa_bench_own", template) as e2e_url,
    ):

        async def memory_meanwhile() -> list[Result]:
            return await _timed(
                "memory (while the end-to-end bot settles)",
                memory.run(quick=True, database_url=memory_url, broadcast_database_url=broadcast_url),
            )

        return await _timed(
            "end to end over HTTP (memory included)",
            e2e_http.run(quick=True, database_url=e2e_url, meanwhile=memory_meanwhile),
        )


async def run_all(quick: bool) -> int:
    started = time.perf_counter()
    if reachable(5432):
        async with _migrated_template() as template:
            results = await _with_postgres(quick, template)
            results += await _timed("rollups", _own_database(rollups.run, quick, template))
            results += await _timed("digests", _own_database(digests.run, quick, template))
            results += await _processes(quick, template)
    else:
        print("PostgreSQL is not reachable on 127.0.0.1:5432: measuring SQLite only", file=sys.stderr)
        results = await _timed("update handling", update_handling.run(quick=quick, postgres_url=None))
        sqlite_file = Path(tempfile.mkdtemp(prefix="pa-bench-")) / "delivery.db"
        sqlite_url = f"sqlite+aiosqlite:///{sqlite_file}"
        results += await _timed("delivery", delivery.run(quick=quick, database_url=sqlite_url))
        redirect_url = f"sqlite+aiosqlite:///{sqlite_file.with_name('redirect.db')}"
        results += await _timed("redirect", redirect.run(quick=quick, database_url=redirect_url))
    settlement_db = Path(tempfile.mkdtemp(prefix="pa-bench-")) / "settlement.db"  # SQLite has its own target
    results += await _timed(
        "settlement (sqlite)",
        settlement.run(quick=quick, database_url=f"sqlite+aiosqlite:///{settlement_db}", label="sqlite"),
    )
    results += await _timed("posters", posters.run(quick=quick))  # no database: the same in both cases
    poster_db = Path(tempfile.mkdtemp(prefix="pa-bench-")) / "posters.db"
    results += await _timed("repeat posters", posters.repeat_posters(f"sqlite+aiosqlite:///{poster_db}"))
    print(render(results))
    print(f"benchmarks: all scenarios took {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0 if all_passed(results) else 1
