"""The counts /metrics reads from the database on every scrape."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import LedgerEntry, OutboxMessage


async def outbox_depth(session: AsyncSession) -> dict[str, int]:
    """Outbox rows in each status (pending, sending, sent, dead); served by the (status, not_before) index."""
    query = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    return {status: int(count) for status, count in (await session.execute(query)).all()}


async def ledger_entries(
    session: AsyncSession, *, since: datetime | None = None, until: datetime | None = None
) -> dict[str, int]:
    """Ledger lines by kind, of those written at or after `since` and before `until` (either open); a bounded range
    is served by the created_at index."""
    query = select(LedgerEntry.kind, func.count()).group_by(LedgerEntry.kind)
    if since is not None:
        query = query.where(LedgerEntry.created_at >= since)
    if until is not None:
        query = query.where(LedgerEntry.created_at < until)
    return {kind: int(count) for kind, count in (await session.execute(query)).all()}
