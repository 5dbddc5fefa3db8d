"""Monthly sprints: the sprints, who takes part, their values inside a window (one GROUP BY per metric), and the
final standings."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import Event, Order, Partner, Sprint, SprintResult
from storage.repositories.metrics import COUNTED_ORDER_STATUS

EVENT_METRICS = {"shares": "shared", "leads": "lead_added", "followups": "followed_up"}
"""The sprint metrics that count one behaviour event type."""


def audience_clause(audience: str, who: Any = Partner) -> ColumnElement[bool]:
    """SQL for "this partner (`who`, the Partner entity or an alias) takes part" in `audience`
    (everyone | level:<level> | segment:<segment> | team:<invite code of the lead>)."""
    kind, _, value = audience.partition(":")
    if kind == "level":
        return who.level == value  # type: ignore[no-any-return]
    if kind == "segment":
        return who.segment == value  # type: ignore[no-any-return]
    if kind == "team":
        lead = aliased(Partner)
        lead_path = select(lead.tree_path).where(lead.invite_code == value).scalar_subquery()
        return who.tree_path.startswith(lead_path)  # type: ignore[no-any-return]
    return true()


class SprintRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, sprint: Sprint) -> Sprint:
        self._session.add(sprint)
        await self._session.flush()
        return sprint

    async def get(self, sprint_id: int) -> Sprint | None:
        return await self._session.get(Sprint, sprint_id)

    async def recent(self, limit: int) -> Sequence[Sprint]:
        result = await self._session.execute(
            select(Sprint).order_by(Sprint.starts_at.desc(), Sprint.id.desc()).limit(limit)
        )
        return result.scalars().all()

    async def running(self, now: datetime) -> Sequence[Sprint]:
        """Active sprints whose window contains `now`, earliest end first."""
        result = await self._session.execute(
            select(Sprint)
            .where(Sprint.status == "active", Sprint.starts_at <= now, Sprint.ends_at > now)
            .order_by(Sprint.ends_at, Sprint.id)
        )
        return result.scalars().all()

    async def upcoming(self, now: datetime, limit: int) -> Sequence[Sprint]:
        result = await self._session.execute(
            select(Sprint)
            .where(Sprint.status == "active", Sprint.starts_at > now)
            .order_by(Sprint.starts_at, Sprint.id)
            .limit(limit)
        )
        return result.scalars().all()

    async def started(self, now: datetime) -> Sequence[Sprint]:
        """Active sprints that have started (running, or ended and waiting for their results), oldest first."""
        result = await self._session.execute(
            select(Sprint)
            .where(Sprint.status == "active", Sprint.starts_at <= now)
            .order_by(Sprint.starts_at, Sprint.id)
        )
        return result.scalars().all()

    # ------------------------------------------------------------------ participants

    async def is_participant(self, audience: str, partner_id: int) -> bool:
        result = await self._session.execute(
            select(Partner.id).where(Partner.id == partner_id, audience_clause(audience))
        )
        return result.first() is not None

    async def participant_count(self, audience: str) -> int:
        result = await self._session.execute(select(func.count()).select_from(Partner).where(audience_clause(audience)))
        return int(result.scalar_one())

    async def participant_ids(self, audience: str) -> list[int]:
        result = await self._session.execute(select(Partner.id).where(audience_clause(audience)).order_by(Partner.id))
        return [int(i) for i in result.scalars().all()]

    async def participants_after(self, audience: str, after_id: int, limit: int) -> Sequence[Partner]:
        """The next `limit` reachable participants by id, for announcements in batches."""
        result = await self._session.execute(
            select(Partner)
            .where(Partner.id > after_id, Partner.unreachable.is_(False), audience_clause(audience))
            .order_by(Partner.id)
            .limit(limit)
        )
        return result.scalars().all()

    async def lead_exists(self, invite_code: str) -> bool:
        result = await self._session.execute(select(Partner.id).where(Partner.invite_code == invite_code))
        return result.first() is not None

    # ------------------------------------------------------------------ values

    async def values(
        self, metric: str, audience: str, starts_at: datetime, ends_at: datetime, currency: str
    ) -> dict[int, int]:
        """Per participant with a non-zero value: the metric counted in [starts_at, ends_at), one GROUP BY."""
        if metric in EVENT_METRICS:
            stmt = (
                select(Event.partner_id, func.count())
                .where(
                    Event.type == EVENT_METRICS[metric],
                    Event.occurred_at >= starts_at,
                    Event.occurred_at < ends_at,
                )
                .group_by(Event.partner_id)
            )
            member = Event.partner_id
        elif metric in ("orders", "gmv"):
            measure = func.count() if metric == "orders" else func.sum(Order.amount_minor - Order.refunded_minor)
            conditions = [Order.status == COUNTED_ORDER_STATUS, Order.paid_at >= starts_at, Order.paid_at < ends_at]
            if metric == "gmv":
                conditions.append(Order.currency == currency)
            stmt = select(Order.partner_id, measure).where(*conditions).group_by(Order.partner_id)
            member = Order.partner_id
        elif metric == "recruits":
            recruit = aliased(Partner)
            stmt = (
                select(recruit.upline_id, func.count())
                .where(recruit.joined_at >= starts_at, recruit.joined_at < ends_at, recruit.upline_id.is_not(None))
                .group_by(recruit.upline_id)
            )
            member = recruit.upline_id
        else:
            raise ValueError(f"unknown sprint metric {metric!r}")
        if audience != "everyone":  # the join only narrows: everyone's values need none
            stmt = stmt.join(Partner, Partner.id == member).where(audience_clause(audience))
        rows = (await self._session.execute(stmt)).all()
        return {int(p): int(v or 0) for p, v in rows if p is not None and v}

    # ------------------------------------------------------------------ results

    async def has_results(self, sprint_id: int) -> bool:
        result = await self._session.execute(
            select(SprintResult.partner_id).where(SprintResult.sprint_id == sprint_id).limit(1)
        )
        return result.first() is not None

    async def add_results(self, rows: Sequence[dict[str, Any]], *, chunk: int = 5000) -> None:
        for start in range(0, len(rows), chunk):
            await self._session.execute(insert(SprintResult), list(rows[start : start + chunk]))

    async def results(
        self, sprint_id: int, *, winners_only: bool = False, limit: int | None = None
    ) -> Sequence[SprintResult]:
        """Standings best first (ties by partner id)."""
        stmt = select(SprintResult).where(SprintResult.sprint_id == sprint_id)
        if winners_only:
            stmt = stmt.where(SprintResult.winner.is_(True))
        stmt = stmt.order_by(SprintResult.rank, SprintResult.partner_id)
        result = await self._session.execute(stmt if limit is None else stmt.limit(limit))
        return result.scalars().all()

    async def result_of(self, sprint_id: int, partner_id: int) -> SprintResult | None:
        return await self._session.get(SprintResult, (sprint_id, partner_id))

    async def result_count(self, sprint_id: int, *, winners_only: bool = False) -> int:
        stmt = select(func.count()).select_from(SprintResult).where(SprintResult.sprint_id == sprint_id)
        if winners_only:
            stmt = stmt.where(SprintResult.winner.is_(True))
        return int((await self._session.execute(stmt)).scalar_one())

    async def results_after(self, sprint_id: int, after_id: int, limit: int) -> Sequence[tuple[Partner, SprintResult]]:
        """The next `limit` reachable participants of an ended sprint with their standing, by partner id."""
        result = await self._session.execute(
            select(Partner, SprintResult)
            .join(SprintResult, SprintResult.partner_id == Partner.id)
            .where(SprintResult.sprint_id == sprint_id, Partner.id > after_id, Partner.unreachable.is_(False))
            .order_by(Partner.id)
            .limit(limit)
        )
        return [(p, r) for p, r in result.all()]
