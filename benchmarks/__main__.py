"""`python -m benchmarks [--quick]`: every scenario, one table of achieved vs target vs baseline."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
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
from benchmarks.report import Result, reachable, render


async def _with_postgres(quick: bool) -> list[Result]:
    name = f"pa_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        results = await segments.run(quick=quick, database_url=url)  # first: its partners are the only ones
        results += await update_handling.run(quick=quick, postgres_url=url)
        results += await delivery.run(quick=quick, database_url=url)
        results += await settlement.run(quick=quick, database_url=url, label="postgres")
        results += await leaderboard.run(quick=quick, database_url=url)  # SQL on PostgreSQL, and Redis if it runs
        return results + await redirect.run(quick=quick, database_url=url)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _own_database(run: Callable[..., Awaitable[list[Result]]], quick: bool) -> list[Result]:
    """A scenario with data of its own (the rollups' ten million events, the digests' thousand teams) gets a database
    of its own, so no other scenario reads its rows."""
    name = f"pa_bench_own_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        return await run(quick=quick, database_url=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def main(quick: bool) -> int:
    if reachable(5432):
        results = await _with_postgres(quick)
        results += await _own_database(rollups.run, quick)
        results += await _own_database(digests.run, quick)
        results += await _own_database(memory.run, quick)  # one whole bot process: its peak RSS
        results += await _own_database(e2e_http.run, quick)  # the bot process over HTTP vs a bare aiogram bot
    else:
        print("PostgreSQL is not reachable on 127.0.0.1:5432: measuring SQLite only", file=sys.stderr)
        results = await update_handling.run(quick=quick, postgres_url=None)
        sqlite_file = Path(tempfile.mkdtemp(prefix="pa-bench-")) / "delivery.db"
        results += await delivery.run(quick=quick, database_url=f"sqlite+aiosqlite:///{sqlite_file}")
        redirect_db = sqlite_file.with_name("redirect.db")
        results += await redirect.run(quick=quick, database_url=f"sqlite+aiosqlite:///{redirect_db}")
    settlement_db = Path(tempfile.mkdtemp(prefix="pa-bench-")) / "settlement.db"  # SQLite has its own target
    results += await settlement.run(quick=quick, database_url=f"sqlite+aiosqlite:///{settlement_db}", label="sqlite")
    results += await posters.run(quick=quick)  # no database: the same in both cases
    poster_db = Path(tempfile.mkdtemp(prefix="pa-bench-")) / "posters.db"
    results += await posters.repeat_posters(f"sqlite+aiosqlite:///{poster_db}")
    print(render(results))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="a shorter run (about a minute)")
    sys.exit(asyncio.run(main(parser.parse_args().quick)))
