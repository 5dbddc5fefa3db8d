"""Row counts of every application table: the cheap "was anything written?" check of the fuzz tests."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import Base


async def row_counts(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """Every table's row count, in one read-only round trip."""
    tables = Base.metadata.sorted_tables
    query = select(*(select(func.count()).select_from(t).scalar_subquery().label(t.name) for t in tables))
    async with sessionmaker() as session:
        row = (await session.execute(query)).one()
    return dict(zip((t.name for t in tables), row, strict=True))


def changed(before: dict[str, int], after: dict[str, int]) -> dict[str, tuple[int, int]]:
    return {name: (before[name], after[name]) for name in before if before[name] != after[name]}
