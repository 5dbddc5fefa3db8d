"""Team digests: which leads get one, their team's members, and the log that makes each digest go once."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import DigestSent, Partner
from storage.repositories.dialect import dialect_insert
from storage.repositories.rollups import in_subtrees

LEAD_ROLE = "lead"


@dataclass(frozen=True, slots=True)
class TeamMember:
    """What a digest shows of a team's partner: a plain row, not a mapped `Partner` (a page of digests reads
    thousands of them, and building ORM instances was its largest cost)."""

    id: int
    tg_user_id: int
    first_name: str
    last_name: str | None
    tree_path: str
    joined_at: datetime


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
        """Mark a page of digests (lead id, kind, period) sent, in one executemany; one already marked (a concurrent or
        repeated run) stays as it was."""
        if not digests:
            return
        rows = [{"partner_id": p, "kind": k, "period": d, "sent_at": now} for p, k, d in sorted(set(digests))]
        stmt = dialect_insert(self._session)(DigestSent.__table__).on_conflict_do_nothing(
            index_elements=["partner_id", "kind", "period"]
        )
        await self._session.execute(stmt, rows)  # the rows as parameters: the statement is compiled once, not per page

    async def sent_among(self, wanted: Collection[tuple[int, str, str]]) -> set[tuple[int, str, str]]:
        """Which of these (lead id, kind, period) digests were already marked sent: a page's check in one query."""
        if not wanted:
            return set()
        keys = sorted(set(wanted))
        stmt = select(DigestSent.partner_id, DigestSent.kind, DigestSent.period).where(
            tuple_(DigestSent.partner_id, DigestSent.kind, DigestSent.period).in_(keys)
        )
        return {(int(p), str(k), str(d)) for p, k, d in (await self._session.execute(stmt)).all()}

    async def teams(self, tree_paths: Collection[str]) -> list[TeamMember]:
        """Everyone in any of these referral subtrees (the leads whose paths they are included), oldest first."""
        if not tree_paths:
            return []
        columns = (Partner.id, Partner.tg_user_id, Partner.first_name, Partner.last_name, Partner.tree_path)
        stmt = select(*columns, Partner.joined_at).where(in_subtrees(tree_paths)).order_by(Partner.id)
        return [TeamMember(*row) for row in (await self._session.execute(stmt)).all()]

    async def members(self, tree_path: str) -> Sequence[Partner]:
        """Everyone in a lead's referral subtree, the lead excluded, oldest first."""
        stmt = (
            select(Partner)
            .where(Partner.tree_path.startswith(tree_path, autoescape=True), Partner.tree_path != tree_path)
            .order_by(Partner.id)
        )
        return (await self._session.execute(stmt)).scalars().all()
