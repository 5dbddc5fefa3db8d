"""Throw-away databases, migrated by Alembic exactly as in production."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import create_engine
from storage.jobstore import JOB_TABLE
from storage.migrate import upgrade_to_head
from storage.models import Base
from tests.support.services import PG_HOST, PG_PORT, postgres_url


async def _migrate(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()


async def _create_pg(name: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_pg(name: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextmanager
def postgres_database(prefix: str = "pa_test", *, migrate: bool = True) -> Iterator[str]:
    """A fresh PostgreSQL database for this run, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    asyncio.run(_create_pg(name))
    url = postgres_url(name)
    try:
        if migrate:
            asyncio.run(_migrate(url))
        yield url
    finally:
        asyncio.run(_drop_pg(name))


@contextmanager
def sqlite_database(directory: Path, *, migrate: bool = True) -> Iterator[str]:
    url = f"sqlite+aiosqlite:///{directory / 'test.db'}"
    if migrate:
        asyncio.run(_migrate(url))
    yield url


async def wipe(engine: AsyncEngine) -> None:
    """Empty every table between tests (cheaper than re-migrating)."""
    async with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(text(f"DELETE FROM {table.name}"))
        # APScheduler's own table: a job a previous test's app left overdue must not fire in the next test's app
        await conn.execute(text(f"DELETE FROM {JOB_TABLE}"))
