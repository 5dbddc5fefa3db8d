"""Withdrawal requests: creation, state changes that only happen from the expected state, and listings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Partner, Withdrawal


class WithdrawalRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def lock_partner(self, partner_id: int) -> None:
        """Hold the partner's row until the transaction ends (SELECT … FOR UPDATE on PostgreSQL), so two
        withdrawals of one partner are checked against the balance one after the other. SQLite has a single
        writer, which serialises them anyway."""
        await self._session.execute(select(Partner.id).where(Partner.id == partner_id).with_for_update())

    async def add(self, withdrawal: Withdrawal) -> Withdrawal:
        self._session.add(withdrawal)
        await self._session.flush()
        return withdrawal

    async def get(self, withdrawal_id: int) -> Withdrawal | None:
        result = await self._session.execute(
            select(Withdrawal).where(Withdrawal.id == withdrawal_id).execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def transition(self, withdrawal_id: int, from_status: Sequence[str], values: Mapping[str, Any]) -> bool:
        """Change the row only while it is in one of `from_status`; False when it was not (a concurrent
        decision got there first, or the state does not allow it). The database decides, atomically."""
        result = await self._session.execute(
            update(Withdrawal)
            .where(Withdrawal.id == withdrawal_id, Withdrawal.status.in_(list(from_status)))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def with_status(self, statuses: Sequence[str], limit: int) -> Sequence[tuple[Withdrawal, Partner]]:
        """Oldest first, with their partners."""
        result = await self._session.execute(
            select(Withdrawal, Partner)
            .join(Partner, Partner.id == Withdrawal.partner_id)
            .where(Withdrawal.status.in_(list(statuses)))
            .order_by(Withdrawal.created_at, Withdrawal.id)
            .limit(limit)
        )
        return [(w, p) for w, p in result.all()]
