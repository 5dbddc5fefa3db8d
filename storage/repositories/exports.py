"""Read-only queries of the admin exports: a count, then the rows in batches from a server-side cursor.

Each kind is one SELECT of plain columns (no ORM objects, so nothing piles up in the session's identity map)
ordered by id and filtered on the kind's own time column. `batches` streams it with `yield_per`, so an export of
millions of rows holds one batch in memory at a time.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Collection, Iterable
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from storage.models import Event, Lead, LeadReminder, LedgerEntry, Order, Partner, Withdrawal

R = TypeVar("R")


class PartnerRecord(NamedTuple):
    id: int
    tg_user_id: int
    first_name: str
    last_name: str | None
    username: str | None
    invite_code: str
    upline_code: str | None
    level: str
    segment: str | None
    role: str
    language: str | None
    timezone: str | None
    joined_at: datetime
    last_action_at: datetime | None


class EventRecord(NamedTuple):
    id: int
    partner_id: int | None
    first_name: str | None
    last_name: str | None
    invite_code: str | None
    type: str
    source: str
    occurred_at: datetime
    payload: dict[str, Any]


class LeadRecord(NamedTuple):
    partner_id: int
    first_name: str
    last_name: str | None
    invite_code: str
    id: int
    number: int
    name: str
    phone: str | None
    stage: str
    source: str
    created_at: datetime
    last_followup_at: datetime | None
    next_reminder_at: datetime | None


class OrderRecord(NamedTuple):
    id: int
    external_id: str
    source: str
    partner_id: int | None
    first_name: str | None
    last_name: str | None
    invite_code: str | None
    amount_minor: int
    refunded_minor: int
    currency: str
    status: str
    attribution: str
    paid_at: datetime


class LedgerRecord(NamedTuple):
    id: int
    txn: str
    partner_id: int | None
    first_name: str | None
    last_name: str | None
    invite_code: str | None
    account: str
    bucket: str
    kind: str
    tier: int | None
    amount_minor: int
    currency: str
    order_id: int | None
    order_external_id: str | None
    rules_version: int | None
    created_at: datetime


class PayoutRecord(NamedTuple):
    id: int
    tg_user_id: int
    first_name: str
    last_name: str | None
    invite_code: str
    amount_minor: int
    currency: str
    status: str
    created_at: datetime
    decided_at: datetime | None
    paid_at: datetime | None
    reference: str | None
    reason: str | None


TIME_COLUMNS: dict[str, InstrumentedAttribute[datetime]] = {
    "partners": Partner.joined_at,
    "events": Event.occurred_at,
    "leads": Lead.created_at,
    "orders": Order.paid_at,
    "ledger": LedgerEntry.created_at,
    "payouts": Withdrawal.created_at,
}
"""What a period filters on, per kind: when the partner joined, the event happened, the lead was added, the
order was paid, the ledger line or the withdrawal request was written."""


def _window(column: InstrumentedAttribute[datetime], since: datetime | None, until: datetime | None) -> list[Any]:
    conditions: list[ColumnElement[bool]] = []
    if since is not None:
        conditions.append(column >= since)
    if until is not None:
        conditions.append(column < until)
    return conditions


class ExportRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def count(self, kind: str, since: datetime | None, until: datetime | None) -> int:
        """Rows of `kind` in the window, for the progress percentage."""
        column = TIME_COLUMNS[kind]
        stmt = select(func.count()).select_from(column.class_).where(*_window(column, since, until))
        return int((await self._session.execute(stmt)).scalar_one())

    def partners(
        self, since: datetime | None, until: datetime | None, batch: int, action_types: Collection[str]
    ) -> AsyncGenerator[list[PartnerRecord], None]:
        """Partners who joined in the window, with their upline's code and their last action event."""
        upline = aliased(Partner)
        last_action = (
            select(func.max(Event.occurred_at))
            .where(Event.partner_id == Partner.id, Event.type.in_(list(action_types)))
            .scalar_subquery()
        )
        stmt = (
            select(
                Partner.id,
                Partner.tg_user_id,
                Partner.first_name,
                Partner.last_name,
                Partner.username,
                Partner.invite_code,
                upline.invite_code,
                Partner.level,
                Partner.segment,
                Partner.role,
                Partner.language,
                Partner.timezone,
                Partner.joined_at,
                last_action,
            )
            .outerjoin(upline, upline.id == Partner.upline_id)
            .where(*_window(Partner.joined_at, since, until))
            .order_by(Partner.id)
        )
        return self._batches(stmt, batch, PartnerRecord._make)

    def events(
        self, since: datetime | None, until: datetime | None, batch: int
    ) -> AsyncGenerator[list[EventRecord], None]:
        stmt = (
            select(
                Event.id,
                Event.partner_id,
                Partner.first_name,
                Partner.last_name,
                Partner.invite_code,
                Event.type,
                Event.source,
                Event.occurred_at,
                Event.payload,
            )
            .outerjoin(Partner, Partner.id == Event.partner_id)
            .where(*_window(Event.occurred_at, since, until))
            .order_by(Event.id)
        )
        return self._batches(stmt, batch, EventRecord._make)

    def leads(
        self, since: datetime | None, until: datetime | None, batch: int
    ) -> AsyncGenerator[list[LeadRecord], None]:
        """Leads added in the window with their owner and next pending reminder; the caller masks contacts."""
        next_reminder = (
            select(func.min(LeadReminder.due_at))
            .where(LeadReminder.lead_id == Lead.id, LeadReminder.status == "pending")
            .scalar_subquery()
        )
        stmt = (
            select(
                Lead.partner_id,
                Partner.first_name,
                Partner.last_name,
                Partner.invite_code,
                Lead.id,
                Lead.number,
                Lead.name,
                Lead.phone,
                Lead.stage,
                Lead.source,
                Lead.created_at,
                Lead.last_followup_at,
                next_reminder,
            )
            .join(Partner, Partner.id == Lead.partner_id)
            .where(*_window(Lead.created_at, since, until))
            .order_by(Lead.id)
        )
        return self._batches(stmt, batch, LeadRecord._make)

    def orders(
        self, since: datetime | None, until: datetime | None, batch: int
    ) -> AsyncGenerator[list[OrderRecord], None]:
        stmt = (
            select(
                Order.id,
                Order.external_id,
                Order.source,
                Order.partner_id,
                Partner.first_name,
                Partner.last_name,
                Partner.invite_code,
                Order.amount_minor,
                Order.refunded_minor,
                Order.currency,
                Order.status,
                Order.attribution,
                Order.paid_at,
            )
            .outerjoin(Partner, Partner.id == Order.partner_id)
            .where(*_window(Order.paid_at, since, until))
            .order_by(Order.id)
        )
        return self._batches(stmt, batch, OrderRecord._make)

    def ledger(
        self, since: datetime | None, until: datetime | None, batch: int
    ) -> AsyncGenerator[list[LedgerRecord], None]:
        stmt = (
            select(
                LedgerEntry.id,
                LedgerEntry.txn,
                LedgerEntry.partner_id,
                Partner.first_name,
                Partner.last_name,
                Partner.invite_code,
                LedgerEntry.account,
                LedgerEntry.bucket,
                LedgerEntry.kind,
                LedgerEntry.tier,
                LedgerEntry.amount_minor,
                LedgerEntry.currency,
                LedgerEntry.order_id,
                Order.external_id,
                LedgerEntry.rules_version,
                LedgerEntry.created_at,
            )
            .outerjoin(Partner, Partner.id == LedgerEntry.partner_id)
            .outerjoin(Order, Order.id == LedgerEntry.order_id)
            .where(*_window(LedgerEntry.created_at, since, until))
            .order_by(LedgerEntry.id)
        )
        return self._batches(stmt, batch, LedgerRecord._make)

    def payouts(
        self, since: datetime | None, until: datetime | None, batch: int
    ) -> AsyncGenerator[list[PayoutRecord], None]:
        """Withdrawals requested in the window, in the order they were requested."""
        stmt = (
            select(
                Withdrawal.id,
                Partner.tg_user_id,
                Partner.first_name,
                Partner.last_name,
                Partner.invite_code,
                Withdrawal.amount_minor,
                Withdrawal.currency,
                Withdrawal.status,
                Withdrawal.created_at,
                Withdrawal.decided_at,
                Withdrawal.paid_at,
                Withdrawal.reference,
                Withdrawal.reason,
            )
            .join(Partner, Partner.id == Withdrawal.partner_id)
            .where(*_window(Withdrawal.created_at, since, until))
            .order_by(Withdrawal.id)
        )
        return self._batches(stmt, batch, PayoutRecord._make)

    async def _batches(
        self, stmt: Select[*tuple[Any, ...]], batch: int, make: Callable[[Iterable[Any]], R]
    ) -> AsyncGenerator[list[R], None]:
        """The statement's rows `batch` at a time, read through a server-side cursor (PostgreSQL) or a stepping
        cursor (SQLite), never all at once."""
        result = await self._session.stream(stmt.execution_options(yield_per=batch))
        try:
            async for rows in result.partitions():
                yield [make(row) for row in rows]
        finally:
            await result.close()
