"""The one dialect choice repositories make: PostgreSQL's or SQLite's INSERT, for `ON CONFLICT` clauses."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def dialect_insert(session: AsyncSession) -> Any:
    """`insert` of the session's database (both offer `on_conflict_do_nothing` / `on_conflict_do_update`)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
