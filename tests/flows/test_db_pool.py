"""PostgreSQL connection pool: a pooled connection idle for a while is pinged before use and replaced when its server
process is gone (a database restart), without the three-round-trip ping on every checkout (storage/db.py)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

import storage.db as db
from storage.db import create_engine


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(url: str, pid: int) -> None:
    killer = create_engine(url)
    try:
        async with killer.connect() as conn:
            assert (await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})).scalar_one()
    finally:
        await killer.dispose()


def _count_pings(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    dialect = engine.sync_engine.dialect
    pings: list[object] = []
    real = dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return real(dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", counted)
    return pings


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("the ping on checkout is PostgreSQL's (SQLite has no server connection to lose)")
    return database_url


async def test_an_idle_connection_whose_server_process_died_is_replaced_before_use(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(postgres_url)
    pings = _count_pings(engine, monkeypatch)
    try:
        first = await _backend_pid(engine)  # now idle in the pool
        assert pings == []  # a new connection is not pinged
        await _terminate(postgres_url, first)
        monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)  # it has been idle long enough to be pinged
        assert await _backend_pid(engine) != first  # the ping failed, the pool connected anew: no error
        assert len(pings) == 1
    finally:
        await engine.dispose()


async def test_a_connection_just_used_is_not_pinged_and_a_dead_one_fails_once(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 3600.0)
    engine = create_engine(postgres_url)
    pings = _count_pings(engine, monkeypatch)
    try:
        first = await _backend_pid(engine)
        await _terminate(postgres_url, first)
        with pytest.raises(DBAPIError) as failed:  # the update in flight gets the polite error
            await _backend_pid(engine)
        assert failed.value.connection_invalidated
        second = await _backend_pid(engine)  # the pool was invalidated: the next one reconnects
        assert second != first

        await _backend_pid(engine)
        assert pings == []  # connections just used are never pinged
    finally:
        await engine.dispose()
