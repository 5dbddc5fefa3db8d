"""Team digests: which leads get one, their team's members, and the log that makes each digest go once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import DigestSent, Partner

LEAD_ROLE = "lead"


def _insert(session: AsyncSession) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


class DigestRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def leads_after(self, after_id: int, limit: int) -> Sequence[Partner]:
        """Team leads with digests on (a daily time other than -1), by id after `after_id`."""
        stmt = (
            select(Partner)
            .where(
                Partner.role == LEAD_ROLE,
                Partner.id > after_id,
                (Partner.digest_minute.is_(None)) | (Partner.digest_minute >= 0),
            )
            .order_by(Partner.id)
            .limit(limit)
        )
        return (await self._session.execute(stmt)).scalars().all()

    async def was_sent(self, partner_id: int, kind: str, period: str) -> bool:
        found = await self._session.get(DigestSent, (partner_id, kind, period))
        return found is not None

    async def mark_sent(self, partner_id: int, kind: str, period: str, now: datetime) -> bool:
        """True when this digest was not marked before (a concurrent or repeated run inserts nothing)."""
        stmt = (
            _insert(self._session)(DigestSent)
            .values(partner_id=partner_id, kind=kind, period=period, sent_at=now)
            .on_conflict_do_nothing(index_elements=["partner_id", "kind", "period"])
        )
        result = await self._session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def members(self, tree_path: str) -> Sequence[Partner]:
        """Everyone in a lead's referral subtree, the lead excluded, oldest first."""
        stmt = (
            select(Partner)
            .where(Partner.tree_path.startswith(tree_path, autoescape=True), Partner.tree_path != tree_path)
            .order_by(Partner.id)
        )
        return (await self._session.execute(stmt)).scalars().all()
