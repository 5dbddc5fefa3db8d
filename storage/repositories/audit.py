"""The append-only audit log of role powers used or refused."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(
        self,
        *,
        actor_tg_id: int,
        actor_partner_id: int | None,
        action: str,
        target: str | None,
        outcome: str,
        created_at: datetime,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        entry = AuditEntry(
            actor_tg_id=actor_tg_id,
            actor_partner_id=actor_partner_id,
            action=action,
            target=target,
            outcome=outcome,
            details=dict(details or {}),
            created_at=created_at,
        )
        self._session.add(entry)
        return entry

    async def recent(self, limit: int = 50) -> Sequence[AuditEntry]:
        result = await self._session.execute(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))
        return result.scalars().all()
