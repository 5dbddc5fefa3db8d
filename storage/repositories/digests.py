"""Team digests: which leads get one, their team's members, and the log that makes each digest go once."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import DigestSent, Partner
from storage.repositories.dialect import dialect_insert
from storage.repositories.rollups import in_subtrees

LEAD_ROLE = "lead"


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

    async def mark_all_sent(self, digests: Collection[tuple[int, str, str]], now: datetime) -> None:
        """Mark a page of digests (lead id, kind, period) sent, in one statement; one already marked (a concurrent or
        repeated run) stays as it was."""
        if not digests:
            return
        rows = [{"partner_id": p, "kind": k, "period": d, "sent_at": now} for p, k, d in sorted(set(digests))]
        stmt = (
            dialect_insert(self._session)(DigestSent)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["partner_id", "kind", "period"])
        )
        await self._session.execute(stmt)

    async def sent_among(self, wanted: Collection[tuple[int, str, str]]) -> set[tuple[int, str, str]]:
        """Which of these (lead id, kind, period) digests were already marked sent: a page's check in one query."""
        if not wanted:
            return set()
        keys = sorted(set(wanted))
        stmt = select(DigestSent.partner_id, DigestSent.kind, DigestSent.period).where(
            tuple_(DigestSent.partner_id, DigestSent.kind, DigestSent.period).in_(keys)
        )
        return {(int(p), str(k), str(d)) for p, k, d in (await self._session.execute(stmt)).all()}

    async def teams(self, tree_paths: Collection[str]) -> Sequence[Partner]:
        """Everyone in any of these referral subtrees (the leads whose paths they are included), oldest first."""
        if not tree_paths:
            return []
        stmt = select(Partner).where(in_subtrees(tree_paths)).order_by(Partner.id)
        return (await self._session.execute(stmt)).scalars().all()

    async def members(self, tree_path: str) -> Sequence[Partner]:
        """Everyone in a lead's referral subtree, the lead excluded, oldest first."""
        stmt = (
            select(Partner)
            .where(Partner.tree_path.startswith(tree_path, autoescape=True), Partner.tree_path != tree_path)
            .order_by(Partner.id)
        )
        return (await self._session.execute(stmt)).scalars().all()
