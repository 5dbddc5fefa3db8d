"""The Alembic migrations, applied as in production, produce exactly the schema the models describe, and carry
the data they move."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import create_engine
from storage.migrate import upgrade_to, upgrade_to_head
from storage.models import Base
from tests.support.databases import postgres_database, sqlite_database
from tests.support.services import PG_HOST, PG_PORT, require_service

OWNED_ELSEWHERE = {"apscheduler_jobs", "alembic_version"}  # APScheduler's job store maps its own table


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [d for d in compare_metadata(context, Base.metadata) if not any(name in str(d) for name in OWNED_ELSEWHERE)]


async def test_models_match_migrations(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await connection.run_sync(_diff) == []


SEED = [
    """INSERT INTO partners (id, tg_user_id, first_name, invite_code, tree_path, depth, role, unreachable, level,
                             commission_eligible, joined_at, updated_at)
       VALUES (1, 7001, 'Root', 'root7001', '/', 0, 'admin', false, 'member', true, :now, :now)""",
    """INSERT INTO broadcasts (id, created_by, status, audience, message, total, skipped, progress_chat_id, created_at)
       VALUES (1, 1, 'done', '{}', '{}', 3, 0, 7001, :now), (2, 1, 'running', '{}', '{}', 1, 0, 7001, :now)""",
    """INSERT INTO outbox (dedupe_key, chat_id, partner_id, kind, payload, urgent, broadcast_id, status, attempts,
                           not_before, created_at)
       VALUES ('broadcast:1:partner:a', 7001, 1, 'text', '{}', false, 1, 'sent', 1, :now, :now),
              ('broadcast:1:partner:b', 7001, 1, 'text', '{}', false, 1, 'sent', 1, :now, :now),
              ('broadcast:1:partner:c', 7001, 1, 'text', '{}', false, 1, 'dead', 1, :now, :now),
              ('broadcast:2:partner:a', 7001, 1, 'text', '{}', false, 2, 'pending', 0, :now, :now),
              ('pool:gold:q:2026-Q3:preview:1', 7001, 1, 'text', '{}', false, NULL, 'sent', 1, :now, :now)""",
]


async def _backfill_scenario(url: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade_to(engine, "0017")
        async with engine.begin() as connection:
            for statement in SEED:
                await connection.execute(text(statement), {"now": datetime(2026, 10, 1, tzinfo=UTC)})
        await upgrade_to_head(engine)
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT id, final_counts FROM broadcasts"))).all()
            counts: dict[int, Any] = {int(row[0]): row[1] for row in rows}
            previews = (await connection.execute(text("SELECT pool, period, admin_id FROM pool_previews"))).all()
        done = counts[1] if isinstance(counts[1], dict) else json.loads(counts[1])
        assert done == {"sent": 2, "dead": 1} and counts[2] is None  # a running broadcast is counted when it ends
        assert [tuple(row) for row in previews] == [("gold:q", "2026-Q3", 1)]  # a pool name may hold a colon
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_0018_keeps_finished_broadcasts_numbers_and_sent_pool_previews(backend: str, tmp_path: Path) -> None:
    """Migration 0018 moves what was read from outbox rows for good out of the outbox, from the rows of the day."""
    if backend == "postgres":
        require_service("PostgreSQL", PG_HOST, PG_PORT)
    database = sqlite_database(tmp_path, migrate=False) if backend == "sqlite" else postgres_database(migrate=False)
    with database as url:
        asyncio.run(_backfill_scenario(url))
