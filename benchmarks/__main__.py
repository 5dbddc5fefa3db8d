"""`python -m benchmarks [--quick]`: every scenario, one table of achieved vs target vs baseline."""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import uuid

import asyncpg

from benchmarks import update_handling
from benchmarks.report import Result, render


def _postgres_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


async def _with_postgres(quick: bool) -> list[Result]:
    name = f"pa_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        return await update_handling.run(
            quick=quick, postgres_url=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        )
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def main(quick: bool) -> int:
    if _postgres_up():
        results = await _with_postgres(quick)
    else:
        print("PostgreSQL is not reachable on 127.0.0.1:5432: measuring SQLite only", file=sys.stderr)
        results = await update_handling.run(quick=quick, postgres_url=None)
    print(render(results))
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="a shorter run (about a minute)")
    sys.exit(asyncio.run(main(parser.parse_args().quick)))
