"""Case stories, the featured-story queue and the weekly spotlight."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Event, Partner, Spotlight, Story
from storage.repositories.dialect import dialect_insert, on_postgres

FEATURE_QUEUE_LOCK = 7_140_014
"""PostgreSQL advisory lock key of the featured-story queue (two approvals never take the same day)."""


class StoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # ------------------------------------------------------------------ stories

    async def add(self, story: Story) -> Story:
        self._session.add(story)
        await self._session.flush()
        return story

    async def get(self, story_id: int) -> Story | None:
        result = await self._session.execute(
            select(Story).where(Story.id == story_id).execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def pending_of(self, partner_id: int) -> Story | None:
        result = await self._session.execute(
            select(Story).where(Story.partner_id == partner_id, Story.status == "pending").limit(1)
        )
        return result.scalar_one_or_none()

    async def decide(self, story_id: int, values: Mapping[str, Any]) -> bool:
        """Change a pending story; False when it is not pending any more (another admin decided first)."""
        result = await self._session.execute(
            update(Story)
            .where(Story.id == story_id, Story.status == "pending")
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def lock_feature_queue(self) -> None:
        """Hold the featured-story queue until the transaction ends. SQLite has a single writer, which serialises
        approvals anyway (the approval has written before it reads the queue)."""
        if on_postgres(self._session):
            await self._session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": FEATURE_QUEUE_LOCK})

    async def last_featured_day(self) -> str | None:
        return (await self._session.execute(select(func.max(Story.featured_on)))).scalar_one_or_none()

    async def set_featured(self, story_id: int, day: str) -> None:
        await self._session.execute(
            update(Story)
            .where(Story.id == story_id)
            .values(featured_on=day)
            .execution_options(synchronize_session=False)
        )

    async def featured_on(self, day: str) -> tuple[Story, Partner] | None:
        result = await self._session.execute(
            select(Story, Partner)
            .join(Partner, Partner.id == Story.partner_id)
            .where(Story.featured_on == day, Story.status == "approved")
        )
        row = result.first()
        return (row[0], row[1]) if row is not None else None

    async def count_listed(self, until_day: str) -> int:
        """Approved stories whose featured day has come."""
        query = (
            select(func.count()).select_from(Story).where(Story.status == "approved", Story.featured_on <= until_day)
        )
        return int((await self._session.execute(query)).scalar_one())

    async def listed(self, until_day: str, offset: int, limit: int) -> Sequence[tuple[Story, Partner]]:
        """Approved stories whose featured day has come, newest first, with their authors."""
        result = await self._session.execute(
            select(Story, Partner)
            .join(Partner, Partner.id == Story.partner_id)
            .where(Story.status == "approved", Story.featured_on <= until_day)
            .order_by(Story.featured_on.desc(), Story.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [(story, partner) for story, partner in result.all()]

    # ------------------------------------------------------------------ the spotlight

    async def spotlight(self, week: str) -> tuple[Spotlight, Partner] | None:
        result = await self._session.execute(
            select(Spotlight, Partner)
            .join(Partner, Partner.id == Spotlight.partner_id)
            .where(Spotlight.week_start == week)
            .execution_options(populate_existing=True)
        )
        row = result.first()
        return (row[0], row[1]) if row is not None else None

    async def pick(self, *, week: str, partner_id: int, blurb: str | None, picked_by: int, now: datetime) -> None:
        """An admin's pick for the week: it replaces whoever had the week (the top riser or another pick)."""
        values = {"partner_id": partner_id, "blurb": blurb, "picked_by": picked_by, "picked_at": now}
        stmt = dialect_insert(self._session)(Spotlight).values(week_start=week, **values)
        await self._session.execute(stmt.on_conflict_do_update(index_elements=["week_start"], set_=values))

    async def pick_once(self, *, week: str, partner_id: int, now: datetime) -> bool:
        """The weekly job's pick: only when nobody has the week yet. True when it was written."""
        stmt = (
            dialect_insert(self._session)(Spotlight)
            .values(week_start=week, partner_id=partner_id, blurb=None, picked_by=None, picked_at=now)
            .on_conflict_do_nothing(index_elements=["week_start"])
        )
        result = await self._session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    # ------------------------------------------------------------------ activity

    async def weekly_actions(
        self, types: Collection[str], start: datetime, middle: datetime, end: datetime
    ) -> list[tuple[int, int, int]]:
        """(partner id, events in [start, middle), events in [middle, end)) for every partner with any."""
        earlier = func.sum(case((Event.occurred_at < middle, 1), else_=0))
        later = func.sum(case((Event.occurred_at >= middle, 1), else_=0))
        result = await self._session.execute(
            select(Event.partner_id, earlier, later)
            .where(
                Event.type.in_(list(types)),
                Event.occurred_at >= start,
                Event.occurred_at < end,
                Event.partner_id.is_not(None),
            )
            .group_by(Event.partner_id)
        )
        return [(int(pid), int(before or 0), int(after or 0)) for pid, before, after in result.all()]

    async def action_counts(
        self, partner_id: int, types: Collection[str], since: datetime, until: datetime
    ) -> dict[str, int]:
        result = await self._session.execute(
            select(Event.type, func.count())
            .where(
                Event.partner_id == partner_id,
                Event.type.in_(list(types)),
                Event.occurred_at >= since,
                Event.occurred_at < until,
            )
            .group_by(Event.type)
        )
        return {kind: int(count) for kind, count in result.all()}
