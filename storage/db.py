"""Engine and session factories; built by the app factory, never at import time."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

IDLE_PING_SECONDS = 2.0
"""A pooled PostgreSQL connection idle longer than this is pinged before it is handed out."""


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine with the settings each backend needs."""
    kwargs: dict[str, Any] = {"echo": echo}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(pool_size=10, max_overflow=10)
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        _tune_sqlite(engine)
    else:
        _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """Pessimistic disconnect handling, only for connections that sat idle.

    SQLAlchemy's `pool_pre_ping` pings at every checkout, and the asyncpg dialect's ping is three round trips
    (BEGIN, an empty query, ROLLBACK, so it also works behind pgbouncer): on a busy bot that was 3 of the 14 round
    trips of a `/me`, 0.5–0.7 ms per update (benchmarks/update_handling.py). A connection used within the last
    IDLE_PING_SECONDS has just worked; one idle longer (the database may have restarted meanwhile) is pinged, and a
    failed ping makes the pool replace it (DisconnectionError), as pre-ping did. A connection that dies while in
    constant use fails the statement in flight, an update that gets the polite error, and SQLAlchemy then
    invalidates every older pooled connection."""
    pool = engine.sync_engine.pool
    dialect = engine.sync_engine.dialect

    @event.listens_for(pool, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return  # new, or just used
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("pooled connection failed its ping") from exc


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
