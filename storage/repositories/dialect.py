"""The dialect choices repositories make: PostgreSQL's or SQLite's INSERT, for `ON CONFLICT` clauses, and PostgreSQL's
array forms, whose SQL does not depend on a count: the bulk insert from arrays and `= ANY` for lists of ids."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, any_, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def on_postgres(session: AsyncSession) -> bool:
    """Whether the session's database is PostgreSQL (else SQLite)."""
    return session.get_bind().dialect.name == "postgresql"


def among(session: AsyncSession, column: Any, ids: Collection[int]) -> ColumnElement[bool]:
    """`column IN ids` for a list of integer ids: on PostgreSQL as `column = ANY(:array)`, one parameter however
    many ids.

    An `IN (…)` list has a statement per count of ids, and the asyncpg driver keeps each one prepared (with a codec
    per parameter) in a cache of a hundred per connection: the daily segments alone, one UPDATE per segment of up to
    a thousand ids, left a hundred such statements behind in a bot process.

    Meant for lists whose length varies from call to call: PostgreSQL soon plans `= ANY($1)` once for every array (a
    generic plan), and on a table that grows during a job, planned while it was small, that plan can be a
    sequential scan comparing every row with every id (the level review's badge lookups took 35 times longer so)."""
    if on_postgres(session):
        any_id: ColumnElement[bool] = column == any_(
            bindparam(None, sorted(set(ids)), type_=postgresql.ARRAY(column.type))
        )
        return any_id
    in_ids: ColumnElement[bool] = column.in_(set(ids))
    return in_ids


def dialect_insert(session: AsyncSession) -> Any:
    """`insert` of the session's database (both offer `on_conflict_do_nothing` / `on_conflict_do_update`)."""
    return postgresql.insert if on_postgres(session) else sqlite.insert


def unnest_insert(table: Table, rows: Sequence[Mapping[str, Any]], *, conflict: Sequence[str]) -> Any:
    """PostgreSQL: `INSERT … SELECT … FROM unnest(one array per column) ON CONFLICT (conflict) DO NOTHING` for rows
    that all have the same keys.

    Its SQL is the same whatever the number of rows. A multi-row VALUES insert (what SQLAlchemy makes of an
    executemany) has a statement per row count, and the asyncpg driver keeps each one prepared (with a codec per
    parameter) in a cache of a hundred per connection: the level review's batches of notices, each a few hundred rows
    of ten columns, left about 37 MiB of such statements behind in a bot process."""
    names = list(rows[0])
    arrays = [
        bindparam(f"unnest_{name}", [row[name] for row in rows], type_=postgresql.ARRAY(table.c[name].type))
        for name in names
    ]
    source = func.unnest(*arrays).table_valued(*names).render_derived(name="unnested")
    picked = select(*(source.c[name] for name in names))
    return postgresql.insert(table).from_select(names, picked).on_conflict_do_nothing(index_elements=list(conflict))
