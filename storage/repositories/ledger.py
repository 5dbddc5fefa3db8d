"""Orders, refunds, the append-only ledger, rule versions, customer bindings and coupons."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, Table, bindparam, cast, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import CustomerBinding, LedgerEntry, Order, OrderFlag, Refund, RuleVersion
from storage.repositories.dialect import dialect_insert


def _table(model: type[Any]) -> Table:
    """The Core table of a model: multi-row statements through Core skip the ORM's per-row bookkeeping."""
    table: Table = model.__table__
    return table


class LedgerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # ------------------------------------------------------------------ rule versions

    async def published_rules(self) -> RuleVersion | None:
        result = await self._session.execute(
            select(RuleVersion).where(RuleVersion.status == "published").order_by(RuleVersion.version.desc()).limit(1)
        )
        return result.scalar_one_or_none()

    async def rules_version(self, version: int) -> RuleVersion | None:
        result = await self._session.execute(select(RuleVersion).where(RuleVersion.version == version))
        return result.scalar_one_or_none()

    async def next_rules_version(self) -> int:
        result = await self._session.execute(select(func.coalesce(func.max(RuleVersion.version), 0)))
        return int(result.scalar_one()) + 1

    async def rule_history(self) -> Sequence[RuleVersion]:
        """Published and superseded versions, newest first."""
        result = await self._session.execute(
            select(RuleVersion)
            .where(RuleVersion.status.in_(["published", "superseded"]))
            .order_by(RuleVersion.version.desc())
        )
        return result.scalars().all()

    async def add_rules_once(self, values: Mapping[str, Any]) -> bool:
        """Insert a rule version unless its number is taken (two processes storing the default plan at once).
        True when this call inserted it."""
        stmt = dialect_insert(self._session)(RuleVersion).values(**values)
        stmt = stmt.on_conflict_do_nothing(index_elements=["version"])
        result = await self._session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    def add_rules(self, version: RuleVersion) -> RuleVersion:
        self._session.add(version)
        return version

    # ------------------------------------------------------------------ orders and refunds

    async def claim_orders(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
        """Insert the orders (of one source) unless their (source, external_id) exists: one multi-row INSERT, and
        the database decides, so concurrent replays cannot both win. Returns external id → new id for the rows
        this call inserted."""
        if not rows:
            return {}
        table = _table(Order)
        stmt = (
            dialect_insert(self._session)(table)
            .on_conflict_do_nothing(index_elements=["source", "external_id"])
            .returning(table.c.external_id, table.c.id)
        )
        return {str(external): int(new_id) for external, new_id in (await self._session.execute(stmt, rows)).all()}

    async def orders_by_external(self, source: str, external_ids: Collection[str]) -> dict[str, Order]:
        if not external_ids:
            return {}
        result = await self._session.execute(
            select(Order).where(Order.source == source, Order.external_id.in_(set(external_ids)))
        )
        return {order.external_id: order for order in result.scalars()}

    async def set_attributions(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Attribute freshly claimed orders: each row has `order_id`, `partner_id`, `attribution`, `status` and
        `rules_version`; one executemany UPDATE."""
        if not rows:
            return
        table = _table(Order)
        stmt = (
            update(table)
            .where(table.c.id == bindparam("order_id"))
            .values(
                partner_id=bindparam("partner_id"),
                attribution=bindparam("attribution"),
                status=bindparam("status"),
                rules_version=bindparam("rules_version"),
            )
        )
        await self._session.execute(stmt, list(rows))

    async def customer_paid_times(
        self, customer_ids: Collection[str], since: datetime, until: datetime
    ) -> list[tuple[str, datetime]]:
        """(customer, paid_at) of every order of these customers paid between `since` and `until`."""
        if not customer_ids:
            return []
        result = await self._session.execute(
            select(Order.customer_id, Order.paid_at).where(
                Order.customer_id.in_(set(customer_ids)), Order.paid_at >= since, Order.paid_at <= until
            )
        )
        return [(str(customer), paid_at) for customer, paid_at in result.all()]

    async def parked_refunds_for(self, order_external_ids: Collection[str]) -> dict[str, list[Refund]]:
        if not order_external_ids:
            return {}
        result = await self._session.execute(
            select(Refund)
            .where(Refund.order_external_id.in_(set(order_external_ids)), Refund.status == "parked")
            .order_by(Refund.id)
        )
        parked: dict[str, list[Refund]] = {}
        for refund in result.scalars():
            parked.setdefault(refund.order_external_id, []).append(refund)
        return parked

    async def order(self, source: str, external_id: str) -> Order | None:
        result = await self._session.execute(
            select(Order).where(Order.source == source, Order.external_id == external_id)
        )
        return result.scalar_one_or_none()

    async def order_by_id(self, order_id: int) -> Order | None:
        return await self._session.get(Order, order_id)

    async def claim_refund(self, values: Mapping[str, Any]) -> int | None:
        """As `claim_orders`, for one refund: its new id, or None when it was there already."""
        stmt = (
            dialect_insert(self._session)(Refund)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["source", "external_id"])
            .returning(Refund.id)
        )
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def refund(self, source: str, external_id: str) -> Refund | None:
        result = await self._session.execute(
            select(Refund).where(Refund.source == source, Refund.external_id == external_id)
        )
        return result.scalar_one_or_none()

    async def add_refunded(self, order_id: int, amount_minor: int) -> None:
        await self._session.execute(
            update(Order).where(Order.id == order_id).values(refunded_minor=Order.refunded_minor + amount_minor)
        )

    # ------------------------------------------------------------------ ledger

    async def post(self, lines: Sequence[Mapping[str, Any]]) -> bool:
        """Append one transaction's lines (they share `txn`; numbered by `line`). False, writing nothing, when
        the transaction was posted before: the (txn, line) uniqueness makes a replay a no-op."""
        if not lines:
            return False
        if sum(int(line["amount_minor"]) for line in lines) != 0:
            raise ValueError(f"transaction {lines[0]['txn']} does not balance")
        stmt = (
            dialect_insert(self._session)(LedgerEntry)
            .on_conflict_do_nothing(index_elements=["txn", "line"])
            .returning(LedgerEntry.id)
        )
        written = (await self._session.execute(stmt, [dict(line) for line in lines])).all()
        if written and len(written) != len(lines):
            raise RuntimeError(f"transaction {lines[0]['txn']} was partly posted before")
        return bool(written)

    async def entries_for(self, partner_id: int, limit: int) -> Sequence[LedgerEntry]:
        result = await self._session.execute(
            select(LedgerEntry)
            .where(LedgerEntry.partner_id == partner_id)
            .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
            .limit(limit)
        )
        return result.scalars().all()

    async def post_many(self, lines: Sequence[Mapping[str, Any]]) -> None:
        """Append the lines of several new transactions in one executemany INSERT. Each transaction must balance;
        none may have been posted before (their orders were claimed in this unit of work)."""
        if not lines:
            return
        totals: dict[str, int] = {}
        for line in lines:
            totals[line["txn"]] = totals.get(line["txn"], 0) + int(line["amount_minor"])
        unbalanced = [txn for txn, total in totals.items() if total]
        if unbalanced:
            raise ValueError(f"transactions {unbalanced[:3]} do not balance")
        # A plain INSERT: a (txn, line) that existed would be a bug, and its IntegrityError rolls the batch back.
        # Without RETURNING, asyncpg runs it as one prepared statement for any number of rows.
        await self._session.execute(insert(_table(LedgerEntry)), [dict(line) for line in lines])

    async def entries_of_orders(self, order_ids: Collection[int]) -> dict[int, list[LedgerEntry]]:
        if not order_ids:
            return {}
        result = await self._session.execute(
            select(LedgerEntry).where(LedgerEntry.order_id.in_(set(order_ids))).order_by(LedgerEntry.id)
        )
        entries: dict[int, list[LedgerEntry]] = {}
        for entry in result.scalars():
            if entry.order_id is not None:
                entries.setdefault(entry.order_id, []).append(entry)
        return entries

    async def entries_of_order(self, order_id: int) -> Sequence[LedgerEntry]:
        result = await self._session.execute(
            select(LedgerEntry).where(LedgerEntry.order_id == order_id).order_by(LedgerEntry.id)
        )
        return result.scalars().all()

    async def was_released(self, entry_id: int) -> bool:
        result = await self._session.execute(
            select(LedgerEntry.id).where(LedgerEntry.txn == f"release:{entry_id}").limit(1)
        )
        return result.first() is not None

    async def pending_reversals(self, entry: LedgerEntry) -> int:
        """What refunds took back from a commission line while it was still pending (zero or negative).

        A line is the earner's share of one order under one rule: with category overrides an earner may have
        several lines at one tier, each reversed on its own."""
        result = await self._session.execute(
            select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)).where(
                LedgerEntry.order_id == entry.order_id,
                LedgerEntry.partner_id == entry.partner_id,
                LedgerEntry.tier == entry.tier,
                LedgerEntry.rule == entry.rule,
                LedgerEntry.kind == "reversal",
                LedgerEntry.bucket == "pending",
            )
        )
        return int(result.scalar_one())

    async def balances(self, partner_id: int) -> dict[tuple[str, str], int]:
        """(bucket, currency) → sum of the partner's entries."""
        result = await self._session.execute(
            select(LedgerEntry.bucket, LedgerEntry.currency, func.sum(LedgerEntry.amount_minor))
            .where(LedgerEntry.partner_id == partner_id)
            .group_by(LedgerEntry.bucket, LedgerEntry.currency)
        )
        return {(bucket, currency): int(total) for bucket, currency, total in result.all()}

    async def matured(self, now: datetime, limit: int) -> Sequence[LedgerEntry]:
        """Pending commission lines whose hold has ended."""
        release = aliased(LedgerEntry)
        released = select(release.id).where(release.txn == literal("release:") + cast(LedgerEntry.id, String)).exists()
        result = await self._session.execute(
            select(LedgerEntry)
            .where(
                LedgerEntry.bucket == "pending",
                LedgerEntry.kind == "commission",
                LedgerEntry.available_at.is_not(None),
                LedgerEntry.available_at <= now,
                ~released,
            )
            .order_by(LedgerEntry.id)
            .limit(limit)
        )
        return result.scalars().all()

    # ------------------------------------------------------------------ attribution

    async def add_flags(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Record fraud flags (order_id, kind, detail, status, created_at) in one statement."""
        if rows:
            await self._session.execute(insert(_table(OrderFlag)), list(rows))

    async def close_open_flags(self, order_id: int, status: str, at: datetime) -> None:
        """An order's open fraud flags are settled without an admin (e.g. `refunded`: the order was refunded)."""
        await self._session.execute(
            update(OrderFlag)
            .where(OrderFlag.order_id == order_id, OrderFlag.status == "open")
            .values(status=status, decided_at=at)
        )

    async def bind_customers(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """`bind_customer` for many (customer_id, partner_id, bound_at) rows at once; sorted by customer, so two
        concurrent batches take their locks in the same order."""
        if not rows:
            return
        table = _table(CustomerBinding)
        stmt = dialect_insert(self._session)(table).on_conflict_do_nothing(index_elements=["customer_id"])
        await self._session.execute(stmt, sorted((dict(row) for row in rows), key=lambda row: row["customer_id"]))

    async def customer_owners(self, customer_ids: Collection[str]) -> dict[str, int]:
        if not customer_ids:
            return {}
        result = await self._session.execute(
            select(CustomerBinding.customer_id, CustomerBinding.partner_id).where(
                CustomerBinding.customer_id.in_(set(customer_ids))
            )
        )
        return {str(customer): int(partner) for customer, partner in result.all()}

    # ------------------------------------------------------------------ the partner's wallet

    async def statement_lines(self, partner_id: int, limit: int) -> Sequence[LedgerEntry]:
        """The partner's newest entries as a statement shows them: a release is one line (its available leg),
        and lines of zero (a release of fully refunded commission) are left out."""
        result = await self._session.execute(
            select(LedgerEntry)
            .where(
                LedgerEntry.partner_id == partner_id,
                LedgerEntry.amount_minor != 0,
                ~((LedgerEntry.kind == "release") & (LedgerEntry.bucket == "pending")),
            )
            .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
            .limit(limit)
        )
        return result.scalars().all()

    async def orders_by_ids(self, order_ids: Sequence[int]) -> dict[int, Order]:
        if not order_ids:
            return {}
        result = await self._session.execute(select(Order).where(Order.id.in_(set(order_ids))))
        return {order.id: order for order in result.scalars()}

    # ------------------------------------------------------------------ plan drafts and simulation (/rules)

    async def draft_rules(self) -> RuleVersion | None:
        """The plan version waiting to be published, if any (there is at most one: a new upload replaces it)."""
        result = await self._session.execute(
            select(RuleVersion).where(RuleVersion.status == "draft").order_by(RuleVersion.version.desc()).limit(1)
        )
        return result.scalar_one_or_none()

    async def attributed_orders_since(self, since: datetime) -> Sequence[Order]:
        """Orders paid at or after `since` that were attributed to a partner, oldest first."""
        result = await self._session.execute(
            select(Order).where(Order.paid_at >= since, Order.partner_id.is_not(None)).order_by(Order.paid_at, Order.id)
        )
        return result.scalars().all()
