"""Reads and marks behind streaks (freezes, the evening at-risk check) and the event cursor of on-event level
evaluation. Every read answers for a set or a page of partners with one query."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date, datetime

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Event, JobCursor, Partner, PartnerStreak
from storage.repositories.dialect import dialect_insert


def _in_zone(timezone: str | None, is_default_zone: bool) -> ColumnElement[bool]:
    """Partners whose time zone is `timezone` (None: the deployment's; a named zone equal to the deployment's
    also takes the partners who have none)."""
    zone: ColumnElement[bool] = Partner.timezone.is_(None) if timezone is None else Partner.timezone == timezone
    if timezone is not None and is_default_zone:
        zone = or_(zone, Partner.timezone.is_(None))
    return zone


class StreakRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def frozen_days(self, ids: Collection[int], type: str, since: datetime) -> dict[int, set[date]]:
        """Per partner: the local days (payload `day`) of `type` events (streak freezes) recorded since `since`."""
        if not ids:
            return {}
        day = Event.payload["day"].as_string()
        stmt = select(Event.partner_id, day).where(
            Event.partner_id.in_(ids), Event.type == type, Event.occurred_at >= since
        )
        result: dict[int, set[date]] = {}
        for partner_id, text in (await self._session.execute(stmt)).all():
            if partner_id is not None and text:
                result.setdefault(int(partner_id), set()).add(date.fromisoformat(str(text)))
        return result

    async def candidates(
        self,
        *,
        timezone: str | None,
        is_default_zone: bool,
        types: Collection[str],
        since: datetime,
        done: ColumnElement[bool],
        after_id: int,
        limit: int,
    ) -> Sequence[Partner]:
        """Reachable partners of one time zone, after `after_id` by id, with an event of `types` since `since`
        and whose streak row does not satisfy `done`."""
        recent = (
            select(Event.id)
            .where(Event.partner_id == Partner.id, Event.type.in_(list(types)), Event.occurred_at >= since)
            .exists()
        )
        finished = exists().where(PartnerStreak.partner_id == Partner.id, done)
        query = (
            select(Partner)
            .where(
                _in_zone(timezone, is_default_zone),
                Partner.id > after_id,
                Partner.unreachable.is_(False),
                recent,
                ~finished,
            )
            .order_by(Partner.id)
            .limit(limit)
        )
        return (await self._session.execute(query)).scalars().all()

    @staticmethod
    def evening_done(day: str) -> ColumnElement[bool]:
        return PartnerStreak.evening_day == day

    @staticmethod
    def checked_through(day: str) -> ColumnElement[bool]:
        return and_(PartnerStreak.checked_day.is_not(None), PartnerStreak.checked_day >= day)

    async def mark(self, partner_ids: Collection[int], now: datetime, **days: str) -> None:
        """Set `checked_day` and/or `evening_day` for these partners (rows are created on first use)."""
        if not partner_ids:
            return
        rows = [{"partner_id": pid, "updated_at": now, **days} for pid in sorted(partner_ids)]
        stmt = dialect_insert(self._session)(PartnerStreak)
        stmt = stmt.on_conflict_do_update(
            index_elements=["partner_id"],
            set_={**{name: getattr(stmt.excluded, name) for name in days}, "updated_at": stmt.excluded.updated_at},
        )
        await self._session.execute(stmt, rows)  # one prepared statement, many rows (not one huge VALUES list)

    async def timezones(self) -> list[str | None]:
        result = await self._session.execute(select(Partner.timezone).distinct())
        return list(result.scalars().all())

    # ------------------------------------------------------------------ the event cursor

    async def cursor(self, name: str) -> int | None:
        """The cursor's position, or None before its first use."""
        row = await self._session.get(JobCursor, name)
        return None if row is None else int(row.position)

    async def move_cursor(self, name: str, position: int, now: datetime) -> None:
        stmt = dialect_insert(self._session)(JobCursor).values(name=name, position=position, updated_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"], set_={"position": stmt.excluded.position, "updated_at": now}
        )
        await self._session.execute(stmt)

    async def last_event_id(self) -> int:
        return int((await self._session.execute(select(func.coalesce(func.max(Event.id), 0)))).scalar_one())

    async def partners_with_events(
        self, after_id: int, up_to_id: int, types: Collection[str], limit: int
    ) -> tuple[list[int], int]:
        """Partners with an event of `types` whose id is in (after_id, up_to_id], reading at most `limit` events
        in id order; and the id the next read starts after (`up_to_id` when fewer than `limit` were found)."""
        stmt = (
            select(Event.id, Event.partner_id)
            .where(Event.id > after_id, Event.id <= up_to_id, Event.type.in_(list(types)))
            .order_by(Event.id)
            .limit(limit)
        )
        rows = (await self._session.execute(stmt)).all()
        partners = sorted({int(p) for _, p in rows if p is not None})
        position = int(rows[-1][0]) if len(rows) >= limit else up_to_id
        return partners, position
