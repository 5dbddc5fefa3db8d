"""Partners' tiered-operations rhythm state, their segments, and the bulk reads and writes of the daily
segmentation (one query per batch of partners, never one per partner)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, distinct, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import load_only

from storage.models import Event, Partner, RhythmProgress
from storage.repositories.dialect import among, dialect_insert

# Core tables for the daily run's bulk writes: no ORM objects for 100,000 partners.
RHYTHM = cast(Table, RhythmProgress.__table__)
PARTNERS = cast(Table, Partner.__table__)
EVENTS = cast(Table, Event.__table__)


class RhythmRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def partners_after(self, after_id: int, limit: int) -> Sequence[Partner]:
        """The next `limit` partners by id after `after_id` (keyset paging of the daily run), with only what the
        segments' metrics and the run read loaded."""
        wanted = load_only(Partner.id, Partner.segment, Partner.timezone, Partner.joined_at, Partner.level)
        result = await self._session.execute(
            select(Partner).options(wanted).where(Partner.id > after_id).order_by(Partner.id).limit(limit)
        )
        return result.scalars().all()

    async def states(self, partner_ids: Collection[int], rhythm: str) -> dict[int, RhythmProgress]:
        if not partner_ids:
            return {}
        result = await self._session.execute(
            select(RhythmProgress).where(RhythmProgress.rhythm == rhythm, RhythmProgress.partner_id.in_(partner_ids))
        )
        return {row.partner_id: row for row in result.scalars()}

    async def segments(self, first_id: int, last_id: int, rhythm: str) -> dict[int, str | None]:
        """The stored segment of each partner with an id from `first_id` to `last_id` who has a rhythm row (a
        range: the daily run's batches are consecutive ids)."""
        result = await self._session.execute(
            select(RHYTHM.c.partner_id, RHYTHM.c.segment).where(
                RHYTHM.c.rhythm == rhythm, RHYTHM.c.partner_id.between(first_id, last_id)
            )
        )
        return {int(p): segment for p, segment in result.all()}

    async def restart(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert or reset rhythm rows (all the `RhythmProgress` columns but `paused_by`) in one executemany; an
        existing row keeps its status (a partner paused stays paused)."""
        if not rows:
            return
        stmt = dialect_insert(self._session)(RHYTHM)
        fresh = {c: stmt.excluded[c] for c in ("segment", "segment_since", "touches", "stopped_at", "wake_at")}
        stmt = stmt.on_conflict_do_update(
            index_elements=["partner_id", "rhythm"], set_={**fresh, "updated_at": stmt.excluded.updated_at}
        )
        await self._session.execute(stmt, list(rows))

    async def set_partner_segments(self, segments: Mapping[int, str]) -> None:
        """`partners.segment` for each partner id: one UPDATE per segment (there are a handful)."""
        by_segment: dict[str, list[int]] = {}
        for partner_id, segment in segments.items():
            by_segment.setdefault(segment, []).append(partner_id)
        for segment, ids in by_segment.items():
            await self._session.execute(
                update(PARTNERS).where(among(self._session, PARTNERS.c.id, ids)).values(segment=segment)
            )

    async def state(self, partner_id: int, rhythm: str) -> RhythmProgress | None:
        return (await self.states([partner_id], rhythm)).get(partner_id)

    async def due(self, rhythm: str, now: datetime, limit: int) -> Sequence[RhythmProgress]:
        """Active rows whose wake-up time has come, earliest first."""
        result = await self._session.execute(
            select(RhythmProgress)
            .where(
                RhythmProgress.rhythm == rhythm,
                RhythmProgress.status == "active",
                RhythmProgress.wake_at.is_not(None),
                RhythmProgress.wake_at <= now,
            )
            .order_by(RhythmProgress.wake_at, RhythmProgress.id)
            .limit(limit)
        )
        return result.scalars().all()

    async def events_of(
        self, partner_ids: Collection[int], types: Collection[str], since: datetime
    ) -> dict[int, list[Event]]:
        """Per partner: their events of `types` since `since`, oldest first."""
        if not partner_ids or not types:
            return {}
        result = await self._session.execute(
            select(Event)
            .where(Event.partner_id.in_(partner_ids), Event.type.in_(types), Event.occurred_at >= since)
            .order_by(Event.occurred_at, Event.id)
        )
        out: dict[int, list[Event]] = {}
        for event in result.scalars():
            if event.partner_id is not None:
                out.setdefault(event.partner_id, []).append(event)
        return out

    async def add_events_once(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert events (each with a `dedupe_key`) in one statement; keys recorded before are left alone."""
        if not rows:
            return
        stmt = dialect_insert(self._session)(EVENTS).on_conflict_do_nothing(index_elements=["dedupe_key"])
        await self._session.execute(stmt, list(rows))  # executemany: batched multi-row INSERTs, compiled once

    async def segment_mix(self) -> dict[str | None, int]:
        """Partners per segment (None: not segmented yet)."""
        rows = (await self._session.execute(select(Partner.segment, func.count()).group_by(Partner.segment))).all()
        return {segment: int(count) for segment, count in rows}

    async def moved_between(self, event_type: str, pairs: Collection[tuple[str, str]], since: datetime) -> int:
        """Partners with a segment change event from `previous` to `segment` of one of `pairs` since `since`."""
        if not pairs:
            return 0
        previous, segment = Event.payload["previous"].as_string(), Event.payload["segment"].as_string()
        moved = or_(*(and_(previous == a, segment == b) for a, b in pairs))
        query = select(func.count(distinct(Event.partner_id))).where(
            Event.type == event_type, Event.occurred_at >= since, moved
        )
        return int((await self._session.execute(query)).scalar_one())

    async def counts(self, rhythm: str) -> tuple[int, int]:
        """(rows paused for their partner, active rows whose touches stopped for lack of answers)."""
        of_rhythm = select(func.count()).select_from(RhythmProgress).where(RhythmProgress.rhythm == rhythm)
        paused = await self._session.execute(of_rhythm.where(RhythmProgress.status == "paused"))
        stopped = await self._session.execute(
            of_rhythm.where(RhythmProgress.status == "active", RhythmProgress.stopped_at.is_not(None))
        )
        return int(paused.scalar_one()), int(stopped.scalar_one())
