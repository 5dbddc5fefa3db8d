"""The Alembic migrations, applied as in production, produce exactly the schema the models describe."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.models import Base

OWNED_ELSEWHERE = {"apscheduler_jobs", "alembic_version"}  # APScheduler's job store maps its own table


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [d for d in compare_metadata(context, Base.metadata) if not any(name in str(d) for name in OWNED_ELSEWHERE)]


async def test_models_match_migrations(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await connection.run_sync(_diff) == []
