"""Partners' progress through playbooks, and playbooks paused for everyone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Event, PlaybookProgress, PlaybookSwitch


class PlaybookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def progress(self, partner_id: int, playbook: str) -> PlaybookProgress | None:
        result = await self._session.execute(
            select(PlaybookProgress).where(
                PlaybookProgress.partner_id == partner_id, PlaybookProgress.playbook == playbook
            )
        )
        return result.scalar_one_or_none()

    async def progress_of(self, partner_ids: Sequence[int], playbook: str) -> dict[int, PlaybookProgress]:
        """`progress` of several partners at once: partner id → their row (partners without one left out)."""
        if not partner_ids:
            return {}
        result = await self._session.execute(
            select(PlaybookProgress).where(
                PlaybookProgress.partner_id.in_(set(partner_ids)), PlaybookProgress.playbook == playbook
            )
        )
        return {row.partner_id: row for row in result.scalars().all()}

    def add(self, row: PlaybookProgress) -> None:
        self._session.add(row)

    async def due(self, now: datetime, *, paused_playbooks: Sequence[str], limit: int) -> Sequence[PlaybookProgress]:
        """Active rows whose wake-up time has come, or whose partner recorded an event since the last run."""
        newer_event = exists().where(
            Event.partner_id == PlaybookProgress.partner_id, Event.occurred_at > PlaybookProgress.updated_at
        )
        query = (
            select(PlaybookProgress)
            .where(
                PlaybookProgress.status == "active",
                PlaybookProgress.playbook.not_in(list(paused_playbooks)),
                or_(and_(PlaybookProgress.wake_at.is_not(None), PlaybookProgress.wake_at <= now), newer_event),
                PlaybookProgress.updated_at < now,
            )
            .order_by(PlaybookProgress.id)
            .limit(limit)
        )
        return (await self._session.execute(query)).scalars().all()

    async def all_of(self, playbook: str) -> Sequence[PlaybookProgress]:
        result = await self._session.execute(select(PlaybookProgress).where(PlaybookProgress.playbook == playbook))
        return result.scalars().all()

    async def events_since(self, partner_id: int, since: datetime) -> Sequence[Event]:
        result = await self._session.execute(
            select(Event)
            .where(Event.partner_id == partner_id, Event.occurred_at >= since)
            .order_by(Event.occurred_at, Event.id)
        )
        return result.scalars().all()

    async def paused_playbooks(self) -> list[str]:
        result = await self._session.execute(select(PlaybookSwitch.playbook).where(PlaybookSwitch.paused))
        return list(result.scalars().all())

    async def set_paused(self, playbook: str, paused: bool, now: datetime) -> None:
        switch = await self._session.get(PlaybookSwitch, playbook)
        if switch is None:
            self._session.add(PlaybookSwitch(playbook=playbook, paused=paused, updated_at=now))
        else:
            switch.paused, switch.updated_at = paused, now
        await self._session.flush()
