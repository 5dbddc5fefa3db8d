"""The counts /metrics reads from the database on every scrape: one GROUP BY each."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import LedgerEntry, OutboxMessage


async def outbox_depth(session: AsyncSession) -> dict[str, int]:
    """Outbox rows in each status (pending, sending, sent, dead); served by the (status, not_before) index."""
    query = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    return {status: int(count) for status, count in (await session.execute(query)).all()}


async def ledger_entries(session: AsyncSession) -> dict[str, int]:
    """Ledger lines written so far, by kind (the ledger is append-only, so these only grow)."""
    query = select(LedgerEntry.kind, func.count()).group_by(LedgerEntry.kind)
    return {kind: int(count) for kind, count in (await session.execute(query)).all()}
