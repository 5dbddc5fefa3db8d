"""Tier 1: PostgreSQL's bulk insert from arrays is one statement whatever the number of rows (a multi-row VALUES
insert is a statement per row count, and the driver keeps each one prepared)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql

from storage.models import OutboxMessage
from storage.repositories.dialect import unnest_insert

OUTBOX: Table = OutboxMessage.__table__  # type: ignore[assignment]


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
