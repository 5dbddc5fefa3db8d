"""Tier 1: PostgreSQL's bulk insert from arrays, and its `= ANY(array)` for a list of ids, are one statement whatever
the number of rows or ids (a multi-row VALUES insert, or an `IN (…)` list, is a statement per count, and the driver
keeps each one prepared)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import Table, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OutboxMessage, Partner
from storage.repositories.dialect import among, unnest_insert

OUTBOX: Table = OutboxMessage.__table__  # type: ignore[assignment]
PARTNERS: Table = Partner.__table__  # type: ignore[assignment]


def rows(n: int) -> list[dict[str, Any]]:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    return [
        {"dedupe_key": f"k{i}", "chat_id": i, "kind": "text", "payload": {"text": "hi"}, "not_before": now}
        for i in range(n)
    ]


def sql(n: int) -> str:
    stmt = unnest_insert(OUTBOX, rows(n), conflict=["dedupe_key"]).returning(OUTBOX.c.id)
    return str(stmt.compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]


def test_the_statement_is_the_same_for_any_number_of_rows() -> None:
    assert sql(1) == sql(7) == sql(5000)
    assert "unnest" in sql(1) and "ON CONFLICT (dedupe_key) DO NOTHING" in sql(1)


class _Session:
    """Just enough of a session for the dialect check."""

    def __init__(self, dialect: str) -> None:
        self._bind = SimpleNamespace(dialect=SimpleNamespace(name=dialect))

    def get_bind(self) -> SimpleNamespace:
        return self._bind


def among_sql(n: int, dialect: str) -> str:
    session = cast(AsyncSession, _Session(dialect))
    stmt = update(PARTNERS).where(among(session, PARTNERS.c.id, range(n))).values(segment="active")
    compiled = stmt.compile(
        dialect=postgresql.dialect() if dialect == "postgresql" else sqlite.dialect(),  # type: ignore[no-untyped-call]
        compile_kwargs={"render_postcompile": True},
    )
    return str(compiled)


def test_any_of_an_array_is_the_same_statement_for_any_number_of_ids() -> None:
    assert among_sql(1, "postgresql") == among_sql(7, "postgresql") == among_sql(1000, "postgresql")
    assert "partners.id = ANY (%(param_1)s::BIGINT[])" in among_sql(3, "postgresql")


@pytest.mark.parametrize("n", [1, 3])
def test_sqlite_keeps_its_in_list(n: int) -> None:
    assert among_sql(n, "sqlite").count("?") == n + 1  # the segment, and one per id
