"""The append-only behaviour event log."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Event


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(
        self,
        *,
        partner_id: int | None,
        type: str,
        occurred_at: datetime,
        source: str,
        payload: Mapping[str, Any] | None = None,
    ) -> Event:
        event = Event(
            partner_id=partner_id, type=type, payload=dict(payload or {}), occurred_at=occurred_at, source=source
        )
        self._session.add(event)
        return event

    async def count(self, *, partner_id: int | None = None, type: str | None = None) -> int:
        query = select(func.count()).select_from(Event)
        if partner_id is not None:
            query = query.where(Event.partner_id == partner_id)
        if type is not None:
            query = query.where(Event.type == type)
        return int((await self._session.execute(query)).scalar_one())
