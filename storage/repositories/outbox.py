"""The outbox: bot-initiated messages, enqueued with the change that causes them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OutboxMessage, Partner


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def enqueue(
        self,
        *,
        dedupe_key: str,
        chat_id: int,
        partner_id: int | None,
        kind: str,
        payload: Mapping[str, Any],
        not_before: datetime,
        now: datetime,
        urgent: bool = False,
    ) -> bool:
        """Insert unless a message with the same key exists. True when a row was added."""
        values = {
            "dedupe_key": dedupe_key,
            "chat_id": chat_id,
            "partner_id": partner_id,
            "kind": kind,
            "payload": dict(payload),
            "urgent": urgent,
            "status": "pending",
            "attempts": 0,
            "not_before": not_before,
            "created_at": now,
        }
        dialect = self._session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(OutboxMessage).values(**values).on_conflict_do_nothing(index_elements=["dedupe_key"])
        result = await self._session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def claim_due(self, now: datetime, limit: int) -> Sequence[OutboxMessage]:
        """Lock due pending rows for this sender; other senders skip them (SKIP LOCKED)."""
        query = (
            select(OutboxMessage)
            .where(OutboxMessage.status == "pending", OutboxMessage.not_before <= now)
            .order_by(OutboxMessage.not_before, OutboxMessage.id)
            .limit(limit)
        )
        if self._session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = (await self._session.execute(query)).scalars().all()
        for row in rows:
            row.status = "sending"
            row.claimed_at = now
            row.attempts += 1
        await self._session.flush()
        return rows

    async def get(self, message_id: int) -> OutboxMessage | None:
        return await self._session.get(OutboxMessage, message_id)

    async def release_stale(self, before: datetime) -> int:
        """Rows left 'sending' by a crashed sender go back to pending."""
        result = await self._session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == "sending", OutboxMessage.claimed_at < before)
            .values(status="pending")
        )
        return int(getattr(result, "rowcount", 0))

    async def mark_partner_unreachable(self, chat_id: int) -> None:
        await self._session.execute(update(Partner).where(Partner.tg_user_id == chat_id).values(unreachable=True))

    async def by_key(self, dedupe_key: str) -> OutboxMessage | None:
        result = await self._session.execute(select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key))
        return result.scalar_one_or_none()
