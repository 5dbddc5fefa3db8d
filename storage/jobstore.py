"""APScheduler's job store on the application database, in the table Alembic created (0002).

APScheduler 3 talks to its store synchronously, so it gets its own small *sync* engine on the same
database: ``sqlite+aiosqlite`` becomes the standard library's ``sqlite`` driver and
``postgresql+asyncpg`` becomes psycopg 3. The store never creates or alters the table: schema
belongs to the migrations.
"""

from __future__ import annotations

from typing import Any

from apscheduler.jobstores.base import BaseJobStore
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url

JOB_TABLE = "apscheduler_jobs"
_SSL_MODES = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}


def sync_database_url(database_url: str) -> URL:
    """The same database for a synchronous driver: sqlite (stdlib) or postgresql+psycopg."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return url.set(drivername="sqlite")
    if backend == "postgresql":
        query = dict(url.query)
        ssl = query.pop("ssl", None)  # asyncpg spells it ssl=..., libpq sslmode=...
        if isinstance(ssl, str) and ssl in _SSL_MODES:
            query["sslmode"] = ssl
        return url.set(drivername="postgresql+psycopg", query=query)
    raise ValueError(f"no synchronous driver for {url.drivername}")


def is_memory_sqlite(database_url: str) -> bool:
    url = make_url(database_url)
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


STORE_TIMEOUT_SECONDS = 5
SQLITE_LOCK_WAIT_SECONDS = 0.1
"""How long a store statement waits for SQLite's write lock before it fails (callers in worker threads retry,
`bot.scheduling.service`; the leader's wakeup looks again a second later)."""


def create_sync_engine(database_url: str) -> Engine:
    """A small sync engine whose every wait is short.

    The scheduler leader reads and updates the store on the event loop, so a locked SQLite file or an unreachable
    PostgreSQL must fail quickly (the wakeup then looks again shortly) rather than stall the bot.

    On SQLite "quickly" means SQLITE_LOCK_WAIT_SECONDS, not seconds: the write lock it waits for is, as a rule, held
    by a transaction of this same process that needs the event loop to finish, the loop this wait is blocking. With
    a 5 s wait the two took turns: the loop blocked 5 s of every 6 while jobs ran after a clock step, updates stalled
    (tests/e2e/test_crm.py's /quote did not answer within 15 s), and the jobs holding the lock never finished.
    """
    url = sync_database_url(database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": SQLITE_LOCK_WAIT_SECONDS})
        wait_ms = int(SQLITE_LOCK_WAIT_SECONDS * 1000)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout={wait_ms}")
            cursor.close()

        return engine
    timeout_ms = STORE_TIMEOUT_SECONDS * 1000
    connect_args = {
        "connect_timeout": STORE_TIMEOUT_SECONDS,
        "tcp_user_timeout": timeout_ms,  # a vanished server cannot hold a query for minutes
        "options": f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms}",
        "application_name": "partner-assistant-scheduler",
    }
    return create_engine(
        url, pool_size=2, max_overflow=3, pool_pre_ping=True, pool_recycle=1800, connect_args=connect_args
    )


class MigratedSQLAlchemyJobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """SQLAlchemyJobStore that trusts the migrations for its table instead of creating it."""

    def start(self, scheduler: Any, alias: str) -> None:
        BaseJobStore.start(self, scheduler, alias)  # skips SQLAlchemyJobStore's CREATE TABLE


def create_job_store(database_url: str) -> Any:
    """The persistent store in the app database; an in-memory one for an in-memory SQLite database."""
    if is_memory_sqlite(database_url):
        return MemoryJobStore()
    return MigratedSQLAlchemyJobStore(engine=create_sync_engine(database_url), tablename=JOB_TABLE)
