"""Broadcasts, their audiences and their delivery counts."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Broadcast, OutboxMessage, Partner


@dataclass(frozen=True, slots=True)
class Recipient:
    partner_id: int
    tg_user_id: int
    unreachable: bool
    timezone: str | None
    quiet_start_min: int | None
    quiet_end_min: int | None


class BroadcastRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, broadcast: Broadcast) -> Broadcast:
        self._session.add(broadcast)
        await self._session.flush()
        return broadcast

    async def get(self, broadcast_id: int) -> Broadcast | None:
        return await self._session.get(Broadcast, broadcast_id)

    async def running(self) -> Sequence[Broadcast]:
        result = await self._session.execute(select(Broadcast).where(Broadcast.status == "running"))
        return result.scalars().all()

    @staticmethod
    def audience_query(
        *,
        role: str | None = None,
        configured_admins: Collection[int] = (),
        subtree_of: str | None = None,
        codes: Sequence[str] = (),
        level: str | None = None,
        segment: str | None = None,
    ) -> Select:  # type: ignore[type-arg]
        """Recipients' delivery facts. A role means the effective one: ADMIN_IDS admins are admins."""
        query = select(
            Partner.id,
            Partner.tg_user_id,
            Partner.unreachable,
            Partner.timezone,
            Partner.quiet_start_min,
            Partner.quiet_end_min,
        )
        admins = list(configured_admins)
        if role == "admin":
            query = query.where(or_(Partner.role == role, Partner.tg_user_id.in_(admins)))
        elif role is not None:
            query = query.where(Partner.role == role, Partner.tg_user_id.not_in(admins))
        if subtree_of is not None:
            query = query.where(
                Partner.tree_path.startswith(subtree_of, autoescape=True), Partner.tree_path != subtree_of
            )
        if codes:
            query = query.where(Partner.invite_code.in_(list(codes)))
        if level is not None:
            query = query.where(Partner.level == level)
        if segment is not None:
            query = query.where(Partner.segment == segment)
        return query.order_by(Partner.id)

    async def recipients(self, query: Select) -> list[Recipient]:  # type: ignore[type-arg]
        rows = await self._session.execute(query)
        return [Recipient(*row) for row in rows]

    async def counts(self, broadcast_id: int) -> dict[str, int]:
        result = await self._session.execute(
            select(OutboxMessage.status, func.count())
            .where(OutboxMessage.broadcast_id == broadcast_id)
            .group_by(OutboxMessage.status)
        )
        return {status: int(count) for status, count in result.all()}

    async def cancel_pending(self, broadcast_id: int) -> int:
        result = await self._session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.broadcast_id == broadcast_id, OutboxMessage.status == "pending")
            .values(status="cancelled")
        )
        return int(getattr(result, "rowcount", 0))
