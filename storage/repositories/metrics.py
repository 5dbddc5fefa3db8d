"""Bulk reads behind the rules engine's metrics, and the writes of level changes and badges.

Every read takes a set of partner ids and answers for all of them with one GROUP BY query.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import Table, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Event, LevelChange, Order, Partner, PartnerBadge
from storage.repositories.dialect import dialect_insert, on_postgres, unnest_insert

COUNTED_ORDER_STATUS = "settled"
"""Orders that count for metrics: attributed and settled; fully refunded ones become 'refunded'."""


_BADGES: Table = PartnerBadge.__table__  # type: ignore[assignment]  # Core, for the bulk award


class MetricsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def partners(self, ids: Collection[int]) -> Sequence[Partner]:
        if not ids:
            return []
        result = await self._session.execute(select(Partner).where(Partner.id.in_(ids)).order_by(Partner.id))
        return result.scalars().all()

    async def partner_ids_after(self, after_id: int, limit: int) -> list[int]:
        result = await self._session.execute(
            select(Partner.id).where(Partner.id > after_id).order_by(Partner.id).limit(limit)
        )
        return [int(i) for i in result.scalars().all()]

    async def order_stats(self, ids: Collection[int], since: datetime) -> dict[int, tuple[int, int, int]]:
        """Per partner: (orders in the window, their value net of refunds, orders ever)."""
        if not ids:
            return {}
        recent = Order.paid_at >= since
        stmt = (
            select(
                Order.partner_id,
                func.sum(case((recent, 1), else_=0)),
                func.sum(case((recent, Order.amount_minor - Order.refunded_minor), else_=0)),
                func.count(),
            )
            .where(Order.partner_id.in_(ids), Order.status == COUNTED_ORDER_STATUS)
            .group_by(Order.partner_id)
        )
        rows = (await self._session.execute(stmt)).all()
        return {int(p): (int(a or 0), int(b or 0), int(c or 0)) for p, a, b, c in rows}

    async def recruit_counts(
        self, ids: Collection[int], action_types: Collection[str], since: datetime
    ) -> dict[int, tuple[int, int]]:
        """Per upline: (direct recruits ever, direct recruits with an action event since `since`)."""
        if not ids:
            return {}
        active = (
            select(Event.id)
            .where(Event.partner_id == Partner.id, Event.type.in_(action_types), Event.occurred_at >= since)
            .exists()
        )
        stmt = (
            select(Partner.upline_id, func.count(), func.sum(case((active, 1), else_=0)))
            .where(Partner.upline_id.in_(ids))
            .group_by(Partner.upline_id)
        )
        rows = (await self._session.execute(stmt)).all()
        return {int(p): (int(total or 0), int(act or 0)) for p, total, act in rows if p is not None}

    async def event_counts(
        self, ids: Collection[int], types: Collection[str], since: datetime
    ) -> dict[tuple[int, str], int]:
        """Per (partner, type): events since `since`."""
        if not ids:
            return {}
        stmt = (
            select(Event.partner_id, Event.type, func.count())
            .where(Event.partner_id.in_(ids), Event.type.in_(types), Event.occurred_at >= since)
            .group_by(Event.partner_id, Event.type)
        )
        rows = (await self._session.execute(stmt)).all()
        return {(int(p), str(t)): int(n) for p, t, n in rows if p is not None}

    async def revisit_counts(self, ids: Collection[int], type: str, since: datetime) -> dict[int, int]:
        """Per partner: events of `type` since `since` whose payload says revisit: true."""
        if not ids:
            return {}
        revisit = Event.payload["revisit"].as_boolean()
        stmt = (
            select(Event.partner_id, func.count())
            .where(Event.partner_id.in_(ids), Event.type == type, Event.occurred_at >= since, revisit.is_(True))
            .group_by(Event.partner_id)
        )
        rows = (await self._session.execute(stmt)).all()
        return {int(p): int(n) for p, n in rows if p is not None}

    async def action_times(
        self, ids: Collection[int], action_types: Collection[str], since: datetime
    ) -> list[tuple[int, datetime]]:
        """(partner, when) of action events since `since`; the caller folds them into local days."""
        if not ids:
            return []
        stmt = select(Event.partner_id, Event.occurred_at).where(
            and_(Event.partner_id.in_(ids), Event.type.in_(action_types), Event.occurred_at >= since)
        )
        rows = (await self._session.execute(stmt)).all()
        return [(int(p), at) for p, at in rows if p is not None]

    async def badges_of(self, ids: Collection[int]) -> dict[int, set[str]]:
        if not ids:
            return {}
        rows = (
            await self._session.execute(
                select(PartnerBadge.partner_id, PartnerBadge.badge).where(PartnerBadge.partner_id.in_(ids))
            )
        ).all()
        held: dict[int, set[str]] = {}
        for partner_id, badge in rows:
            held.setdefault(int(partner_id), set()).add(str(badge))
        return held

    async def award_badge(self, partner_id: int, badge: str, now: datetime) -> bool:
        """True when the badge is new; a concurrent or repeated award inserts nothing."""
        stmt = (
            dialect_insert(self._session)(PartnerBadge)
            .values(partner_id=partner_id, badge=badge, awarded_at=now)
            .on_conflict_do_nothing(index_elements=["partner_id", "badge"])
        )
        result = await self._session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def award_badges(self, awards: Collection[tuple[int, str]], now: datetime) -> set[tuple[int, str]]:
        """`award_badge` for many (partner id, badge) pairs in one statement: the pairs that were new."""
        if not awards:
            return set()
        rows = [{"partner_id": p, "badge": b, "awarded_at": now} for p, b in sorted(set(awards))]
        if on_postgres(self._session):  # one statement whatever the count
            unnested = unnest_insert(_BADGES, rows, conflict=["partner_id", "badge"])
            result = await self._session.execute(unnested.returning(_BADGES.c.partner_id, _BADGES.c.badge))
            return {(int(p), str(b)) for p, b in result.all()}
        stmt = (
            dialect_insert(self._session)(_BADGES)
            .on_conflict_do_nothing(index_elements=["partner_id", "badge"])
            .returning(_BADGES.c.partner_id, _BADGES.c.badge)
        )
        return {(int(p), str(b)) for p, b in (await self._session.execute(stmt, rows)).all()}

    def add_level_change(self, change: LevelChange) -> None:
        self._session.add(change)

    async def level_changes(self, partner_id: int) -> Sequence[LevelChange]:
        result = await self._session.execute(
            select(LevelChange).where(LevelChange.partner_id == partner_id).order_by(LevelChange.id)
        )
        return result.scalars().all()
