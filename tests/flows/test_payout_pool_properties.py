"""Properties of withdrawals and dividend-pool settlements over random sequences, through the real services on
the real database (each operation in its own unit of work, as a handler or job runs it).

Operations: orders in one of three closed months (they make the months' GMV and pending commission); posting a
month's pool (the partners' only source of `available` money here); withdrawal requests of random amounts; and
admin decisions (approve, reject, pay) on a random request, repeated decisions included.

After every step: every ledger transaction sums to zero; each partner's balances equal the sum of their entries
and what the model expects for available, requested and paid; a pool's partner lines plus what the platform
keeps make the pool, which is `share` of the GMV the model counted when it was first posted, shared equally
with the per-partner cap; posting any (pool, period) again writes nothing and says so; a withdrawal moves only
along requested → approved → paid (or → rejected), and each partner's paid bucket is what their paid requests
add up to, never more than they were approved for.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from bot.domain.errors import UsageError
from bot.domain.orders_api import OrderIn, OrderItemIn
from bot.services.ledger import DEFAULT_PLAN, checksum
from bot.services.partners import PartnerService
from bot.services.registry import UseCases
from bot.services.views import PartnerView
from storage.models import (
    AuditEntry,
    CustomerBinding,
    Event,
    LedgerEntry,
    Order,
    OrderFlag,
    OutboxMessage,
    Partner,
    Refund,
    RuleVersion,
    Withdrawal,
)
from storage.uow import UnitOfWork
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

ADMIN = tg_user(ADMIN_ID, "Root", lang="en")
PEOPLE = [tg_user(501, "Ann", lang="en"), tg_user(502, "Ben", lang="zh")]
MONTHS = ("2026-12", "2027-01", "2027-02")
SHARE = Decimal("0.05")
CAP = 30_000
MINIMUM = 5_000
POOLS = f"""pools:
  network:
    share: "5%"
    period: monthly
    split: equal
    cap: "{CAP // 100}.00"
"""


# ---------------------------------------------------------------------------------------------- operations


@dataclass(frozen=True, slots=True)
class Sell:
    seller: int
    month: int
    amount: int


@dataclass(frozen=True, slots=True)
class Settle:
    month: int


@dataclass(frozen=True, slots=True)
class Withdraw:
    who: int
    amount: int


@dataclass(frozen=True, slots=True)
class Decide:
    action: str
    """approve | reject | pay"""
    pick: int
    """Which request (modulo how many there are)."""


withdrawals = st.builds(Withdraw, st.integers(0, 1), st.one_of(st.integers(1_000, 25_000), st.sampled_from([MINIMUM])))
decisions = st.builds(Decide, st.sampled_from(["approve", "approve", "pay", "pay", "reject"]), st.integers(0, 2))
operations = st.lists(
    st.one_of(
        st.builds(Sell, st.integers(0, 1), st.integers(0, 2), st.integers(100, 2_000_000)),
        st.builds(Settle, st.integers(0, 2)),
        withdrawals,
        withdrawals,
        decisions,
        decisions,
    ),
    min_size=3,
    max_size=10,
)
OPENING: list[Sell | Settle | Withdraw | Decide] = [Sell(0, 0, 1_000_000), Settle(0)]
"""Every example starts with money to withdraw: a ¥10,000.00 December is a ¥500.00 pool, ¥166.67 each."""


# ---------------------------------------------------------------------------------------------- the model

NEXT = {"approve": ("requested",), "reject": ("requested", "approved"), "pay": ("approved",)}
RESULT = {"approve": "approved", "reject": "rejected", "pay": "paid"}


@dataclass
class Model:
    recipients: list[int]
    """Every partner, by id: the pool has no condition and all joined before the first month."""
    gmv: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    posted: dict[int, dict[int, int]] = field(default_factory=dict)
    """month → what each recipient got when it was first posted."""
    requests: list[tuple[int, int, str]] = field(default_factory=list)
    """(partner id, amount, status), in the order they were made."""
    approved: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def pool_lines(self, month: int) -> dict[int, int]:
        total = int((Decimal(self.gmv[month]) * SHARE).to_integral_value(rounding="ROUND_HALF_UP"))
        n = len(self.recipients)
        parts = [total // n + (1 if i < total % n else 0) for i in range(n)]  # remainder cents to the earlier
        return {pid: min(part, CAP) for pid, part in zip(self.recipients, parts, strict=True)}

    def buckets(self, pid: int) -> dict[str, int]:
        dividends = sum(lines.get(pid, 0) for lines in self.posted.values())
        mine = [(amount, status) for who, amount, status in self.requests if who == pid]
        requested = sum(a for a, s in mine if s in ("requested", "approved"))
        paid = sum(a for a, s in mine if s == "paid")
        return {"available": dividends - requested - paid, "requested": requested, "paid": paid}


def paid_at(month: int, n: int) -> datetime:
    year, mon = (int(x) for x in MONTHS[month].split("-"))
    return datetime(year, mon, 1 + n % 27, 6, n % 60, tzinfo=UTC)


def text_amount(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


# ---------------------------------------------------------------------------------------------- fixtures


@dataclass(frozen=True, slots=True)
class World:
    admin: int
    ids: list[int]
    codes: list[str]


@pytest.fixture
async def world(harness: BotHarness) -> World:
    """The admin, Ann and Ben join; plan v2 with the pool is published; the clock moves past the months."""
    for user in (ADMIN, *PEOPLE):
        await harness.send(user, "/start")
    text = DEFAULT_PLAN.read_text(encoding="utf-8").replace("pools: {}", POOLS)
    async with UnitOfWork(harness.sessionmaker) as uow:
        await UseCases(uow, harness.ctx).settlement.ensure_plan()
        uow.ledger.add_rules(
            RuleVersion(
                version=2, plan_text=text, checksum=checksum(text), status="published",
                created_at=harness.clock.now(), published_at=harness.clock.now() - timedelta(hours=1),
            )
        )  # fmt: skip
    harness.clock.advance(timedelta(days=110))  # mid-March 2027: the three months are closed
    async with harness.sessionmaker() as s:
        rows = {p.tg_user_id: p for p in (await s.execute(select(Partner))).scalars()}
    return World(rows[ADMIN_ID].id, [rows[u.id].id for u in PEOPLE], [rows[u.id].invite_code for u in PEOPLE])


async def forget(h: BotHarness) -> None:
    """Each example starts from an empty ledger; the partners and the plan stay."""
    async with h.sessionmaker() as s, s.begin():
        for model in (Withdrawal, LedgerEntry, Refund, OrderFlag, Order, CustomerBinding, OutboxMessage, Event):
            await s.execute(delete(model))
        await s.execute(delete(AuditEntry))


async def view(uow: UnitOfWork, h: BotHarness, partner_id: int) -> PartnerView:
    row = await uow.partners.get(partner_id)
    assert row is not None
    return PartnerService(uow, h.ctx).view(row)


async def entries_footprint(h: BotHarness) -> tuple[int, int, int]:
    async with h.sessionmaker() as s:
        count = (await s.execute(select(func.count()).select_from(LedgerEntry))).scalar_one()
        total = (await s.execute(select(func.coalesce(func.sum(func.abs(LedgerEntry.amount_minor)), 0)))).scalar_one()
        withdrawals = (await s.execute(select(func.count()).select_from(Withdrawal))).scalar_one()
    return int(count), int(total), int(withdrawals)


# ---------------------------------------------------------------------------------------------- steps


async def sell(h: BotHarness, w: World, model: Model, op: Sell, step: int) -> None:
    order = OrderIn(
        order_id=f"P{step}", partner_code=w.codes[op.seller], coupon=None, customer_id=f"cust-{step}",
        currency="CNY", amount_minor=op.amount,
        items=(OrderItemIn(sku="TEA", category="tea", quantity=1, unit_price_minor=op.amount),),
        paid_at=paid_at(op.month, step),
    )  # fmt: skip
    async with UnitOfWork(h.sessionmaker) as uow:
        await UseCases(uow, h.ctx).settlement.ingest_order(order)
    model.gmv[op.month] += op.amount  # a late order counts in a later preview, not in what was posted


async def settle(h: BotHarness, w: World, model: Model, month: int) -> None:
    async with UnitOfWork(h.sessionmaker) as uow:
        result = await UseCases(uow, h.ctx).pools.post("network", MONTHS[month], await view(uow, h, w.admin))
    # A pool with nothing to pay writes no line, so nothing marks it posted: a later post (after late orders
    # of the period arrived) can still pay it. Once a line is written, the (pool, period) is posted for good.
    first = month not in model.posted
    owed = {pid: amount for pid, amount in model.pool_lines(month).items() if amount > 0}
    assert result.posted is (first and bool(owed))
    if first and owed:
        model.posted[month] = owed
    preview = result.preview
    assert preview.gmv.minor == model.gmv[month]
    assert preview.paid.minor + preview.remainder.minor == preview.total.minor
    async with h.sessionmaker() as s:
        rows = (await s.execute(select(LedgerEntry).where(LedgerEntry.txn == f"pool:network:{MONTHS[month]}"))).all()
    lines = {e.partner_id: e.amount_minor for (e,) in rows}
    expected = model.posted.get(month, {})
    assert {pid: a for pid, a in lines.items() if pid is not None} == expected
    assert lines.get(None, 0) == -sum(expected.values())


async def withdraw(h: BotHarness, w: World, model: Model, op: Withdraw) -> None:
    pid = w.ids[op.who]
    available = model.buckets(pid)["available"]
    refusal: str | None = None
    try:
        async with UnitOfWork(h.sessionmaker) as uow:
            await UseCases(uow, h.ctx).payouts.request(await view(uow, h, pid), text_amount(op.amount))
    except UsageError as exc:
        refusal = exc.key
    if op.amount < MINIMUM:
        assert refusal == "payouts.below_minimum"
    elif op.amount > available:
        assert refusal == "payouts.over_available"
    else:
        assert refusal is None
        model.requests.append((pid, op.amount, "requested"))


async def decide(h: BotHarness, w: World, model: Model, op: Decide) -> None:
    if not model.requests:
        return
    index = op.pick % len(model.requests)
    pid, amount, status = model.requests[index]
    async with h.sessionmaker() as s:
        ids = list((await s.execute(select(Withdrawal.id).order_by(Withdrawal.id))).scalars())
    refusal: str | None = None
    changed = None
    try:
        async with UnitOfWork(h.sessionmaker) as uow:
            service, admin = UseCases(uow, h.ctx).payouts, await view(uow, h, w.admin)
            if op.action == "approve":
                decision = await service.approve(admin, ids[index])
            elif op.action == "reject":
                decision = await service.reject(admin, ids[index], "not this time")
            else:
                decision = await service.mark_paid(admin, ids[index], f"REF-{index}")
            changed = decision.changed
    except UsageError as exc:
        refusal = exc.key
    if status in NEXT[op.action]:
        assert changed is True
        model.requests[index] = (pid, amount, RESULT[op.action])
        if op.action == "approve":
            model.approved[pid] += amount
    elif status == RESULT[op.action]:
        assert changed is False  # a repeated decision writes nothing
    else:
        assert refusal == f"payouts.refused.{status}"


# ---------------------------------------------------------------------------------------------- checks


async def check(h: BotHarness, w: World, model: Model) -> None:
    async with h.sessionmaker() as s:
        entries = (await s.execute(select(LedgerEntry))).scalars().all()
        withdrawals = (await s.execute(select(Withdrawal).order_by(Withdrawal.id))).scalars().all()
    by_txn: dict[str, int] = defaultdict(int)
    for e in entries:
        by_txn[e.txn] += e.amount_minor
    assert all(total == 0 for total in by_txn.values()), by_txn

    assert [(r.partner_id, r.amount_minor, r.status) for r in withdrawals] == model.requests
    async with UnitOfWork(h.sessionmaker) as uow:
        for pid in [w.admin, *w.ids]:
            summed: dict[tuple[str, str], int] = defaultdict(int)
            for e in entries:
                if e.partner_id == pid:
                    summed[(e.bucket, e.currency)] += e.amount_minor
            balances = await uow.ledger.balances(pid)
            assert {k: v for k, v in balances.items() if v} == {k: v for k, v in summed.items() if v}
            for bucket, expected in model.buckets(pid).items():
                assert balances.get((bucket, "CNY"), 0) == expected, (pid, bucket)
            paid = balances.get(("paid", "CNY"), 0)
            assert paid == sum(r.amount_minor for r in withdrawals if r.partner_id == pid and r.status == "paid")
            assert paid <= model.approved[pid]  # paid never exceeds approved
            assert balances.get(("available", "CNY"), 0) >= 0  # nothing here takes money back once available


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
async def test_random_sales_settlements_and_withdrawals_keep_the_ledger_whole(
    harness: BotHarness, world: World, ops: list[Sell | Settle | Withdraw | Decide]
) -> None:
    await forget(harness)
    model = Model(recipients=sorted([world.admin, *world.ids]))
    for step, op in enumerate(OPENING + ops):
        if isinstance(op, Sell):
            await sell(harness, world, model, op, step)
        elif isinstance(op, Settle):
            await settle(harness, world, model, op.month)
        elif isinstance(op, Withdraw):
            await withdraw(harness, world, model, op)
        else:
            await decide(harness, world, model, op)
        await check(harness, world, model)

        # every (pool, period) posted so far, again: nothing is written and the answer says so
        before = await entries_footprint(harness)
        for month in list(model.posted):
            await settle(harness, world, model, month)
        assert await entries_footprint(harness) == before
