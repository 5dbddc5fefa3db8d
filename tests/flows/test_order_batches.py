"""Tier 2: orders settled in batches (`ingest_orders`, `OrderBatcher`) end exactly as if settled one by one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.domain.orders_api import OrderIn, OrderItemIn
from bot.order_batcher import OrderBatcher
from bot.services.ledger import CurrencyNotInPlan, Outcome, Settlement, SettlementService
from bot.services.registry import UseCases
from storage.models import CustomerBinding, LedgerEntry, Order, OrderFlag, OutboxMessage, Partner
from storage.uow import UnitOfWork
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

ADMIN = tg_user(ADMIN_ID, "Root", lang="en")
ALICE = tg_user(101, "Alice", lang="en")
BOB = tg_user(102, "Bob", lang="en")
CAROL = tg_user(103, "Carol", lang="en")


async def partner(h: BotHarness, tg_id: int) -> Partner:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner).where(Partner.tg_user_id == tg_id))).scalar_one()


async def network(h: BotHarness) -> dict[str, Partner]:
    """Alice recruits Bob, Bob recruits Carol: Carol's sales pay L1 and L2."""
    await h.send(ADMIN, "/start")
    await h.send(ALICE, "/start")
    await h.send(BOB, f"/start {(await partner(h, ALICE.id)).invite_code}")
    await h.send(CAROL, f"/start {(await partner(h, BOB.id)).invite_code}")
    return {name: await partner(h, user.id) for name, user in (("alice", ALICE), ("bob", BOB), ("carol", CAROL))}


def stream(h: BotHarness, p: dict[str, Partner], tag: str) -> list[OrderIn]:
    """A stream exercising every path, its ids and customers prefixed with `tag` (so two copies don't meet)."""
    start = h.clock.now() - timedelta(hours=1)

    def order(n: int, code: str | None, customer: str, minor: int = 15000, currency: str = "CNY") -> OrderIn:
        return OrderIn(
            order_id=f"{tag}-{n}",
            partner_code=code,
            coupon=None,
            customer_id=f"{tag}-{customer}",
            currency=currency,
            amount_minor=minor,
            items=(OrderItemIn("TEA-1", "tea", 1, minor),),
            paid_at=start + timedelta(minutes=n),
        )

    carol, bob = p["carol"].invite_code, p["bob"].invite_code
    first = order(1, carol, "c1")
    orders = [
        first,
        order(2, None, "c1"),  # no code: the customer Carol bound one order earlier, in the same batch
        order(3, bob, "c1"),  # another partner named for Carol's customer: shared_customer, held
        first,  # the same delivery again within the batch: a replay
        replace(first, amount_minor=100, items=(OrderItemIn("TEA-1", "tea", 1, 100),)),
        order(4, None, "nobody"),  # unattributed
        order(5, carol, "c2", currency="USD"),  # not in the plan's currency
        order(6, "no-such-code", "c3"),  # an unknown code and an unbound customer: unattributed
    ]
    orders += [order(10 + n, bob, "busy") for n in range(7)]  # more than 5 in 10 minutes: velocity holds
    return orders


async def settle_one_by_one(h: BotHarness, orders: Sequence[OrderIn]) -> list[Settlement | CurrencyNotInPlan]:
    results: list[Settlement | CurrencyNotInPlan] = []
    for order in orders:
        try:
            async with UnitOfWork(h.sessionmaker) as uow:
                results.append(await UseCases(uow, h.ctx).settlement.ingest_order(order))
        except CurrencyNotInPlan as exc:
            results.append(exc)
    return results


def outcome(result: Settlement | CurrencyNotInPlan, tag: str) -> Any:
    if isinstance(result, CurrencyNotInPlan):
        return ("currency", result.currency)
    return (result.outcome.value, {**result.result, "order_id": result.result["order_id"].removeprefix(tag)})


async def written(h: BotHarness, tag: str) -> dict[str, Any]:
    """Everything the stream wrote, with its tag removed, in a comparable form."""
    async with h.sessionmaker() as s:
        orders = (await s.execute(select(Order).where(Order.external_id.like(f"{tag}-%")))).scalars().all()
        ids = {o.id: o.external_id.removeprefix(tag) for o in orders}
        entries = (await s.execute(select(LedgerEntry).where(LedgerEntry.order_id.in_(ids)))).scalars().all()
        flags = (await s.execute(select(OrderFlag).where(OrderFlag.order_id.in_(ids)))).scalars().all()
        bindings = (
            await s.execute(select(CustomerBinding).where(CustomerBinding.customer_id.like(f"{tag}-%")))
        ).scalars()
        notices = (
            await s.execute(
                select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.like(f"earned:api:{tag}-%"))
            )
        ).scalars()
    return {
        "orders": sorted(
            (ids[o.id], o.partner_id, o.attribution, o.status, o.rules_version, o.amount_minor) for o in orders
        ),
        "entries": sorted(
            (ids[e.order_id or 0], e.line, e.account, e.bucket, e.amount_minor, e.tier, e.level, e.rate, e.available_at)
            for e in entries
        ),
        "flags": sorted((ids[f.order_id], f.kind, f.status) for f in flags),
        "bindings": sorted((b.customer_id.removeprefix(tag), b.partner_id) for b in bindings),
        "notices": sorted(key.replace(tag, "") for key in notices),
    }


async def test_a_batch_ends_exactly_as_one_by_one(harness: BotHarness) -> None:
    p = await network(harness)
    alone = await settle_one_by_one(harness, stream(harness, p, "A"))
    async with UnitOfWork(harness.sessionmaker) as uow:
        batched = await UseCases(uow, harness.ctx).settlement.ingest_orders(stream(harness, p, "B"))

    assert [outcome(r, "A") for r in alone] == [outcome(r, "B") for r in batched]
    one_by_one, together = await written(harness, "A"), await written(harness, "B")
    assert one_by_one == together
    # and what they wrote is what the stream means
    kinds = [outcome(r, "B")[0] for r in batched]
    assert kinds[:8] == ["created", "created", "created", "replay", "conflict", "created", "currency", "created"]
    statuses = {number: status for number, _, _, status, _, _ in together["orders"]}
    assert statuses["-1"] == statuses["-2"] == "settled"
    assert statuses["-3"] == "held" and statuses["-4"] == statuses["-6"] == "unattributed"
    assert [n for n, kind, _ in together["flags"] if kind == "velocity"] == ["-15", "-16"]
    assert together["bindings"] == [("-busy", p["bob"].id), ("-c1", p["carol"].id)]


async def test_replaying_a_batch_writes_nothing(harness: BotHarness) -> None:
    p = await network(harness)
    orders = stream(harness, p, "R")
    async with UnitOfWork(harness.sessionmaker) as uow:
        first = await UseCases(uow, harness.ctx).settlement.ingest_orders(orders)
    before = await written(harness, "R")
    async with UnitOfWork(harness.sessionmaker) as uow:
        again = await UseCases(uow, harness.ctx).settlement.ingest_orders(orders)

    assert await written(harness, "R") == before
    for was, now in zip(first, again, strict=True):
        if isinstance(was, Settlement):
            assert isinstance(now, Settlement)
            assert now.outcome in (Outcome.REPLAY, Outcome.CONFLICT)
            if was.outcome is Outcome.CREATED:
                assert (now.outcome, now.result) == (Outcome.REPLAY, was.result)


async def test_the_batcher_settles_concurrent_orders_together_and_isolates_a_bad_one(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = await network(harness)
    sizes: list[int] = []
    real = SettlementService.ingest_orders

    async def ingest_orders(self: SettlementService, orders: Sequence[OrderIn], **kw: Any) -> Any:
        sizes.append(len(orders))
        if any(o.order_id == "P-poison" for o in orders):
            raise RuntimeError("this order breaks its batch")
        return await real(self, orders, **kw)

    monkeypatch.setattr(SettlementService, "ingest_orders", ingest_orders)
    orders = [o for o in stream(harness, p, "P") if o.currency == "CNY"][:6]
    poison = replace(orders[0], order_id="P-poison")
    batcher = OrderBatcher(harness.sessionmaker, harness.ctx, runners=1)
    try:
        results = await asyncio.gather(
            *(batcher.settle(o) for o in [*orders[:3], poison, *orders[3:]]), return_exceptions=True
        )
    finally:
        await batcher.close()

    assert isinstance(results[3], RuntimeError)
    good = [r for i, r in enumerate(results) if i != 3]
    assert all(isinstance(r, Settlement) for r in good)
    assert [r.outcome for r in good if isinstance(r, Settlement)][:3] == [Outcome.CREATED] * 3
    assert sizes[0] == 7  # all seven waited together and went in one batch, which failed for the poison
    assert sizes[1:] == [1] * 7  # then each settled alone
    async with harness.sessionmaker() as s:
        assert (await s.execute(select(Order.id).where(Order.external_id == "P-poison"))).first() is None


async def test_a_runner_outlives_a_batch_that_breaks_after_its_transaction(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = await network(harness)
    real = SettlementService.ingest_orders
    broken = {"on": True}

    async def ingest_orders(self: SettlementService, orders: Sequence[OrderIn], **kw: Any) -> Any:
        results = await real(self, orders, **kw)
        return results[:-1] if broken["on"] else results  # one result short: a bug after the commit

    monkeypatch.setattr(SettlementService, "ingest_orders", ingest_orders)
    first, second = [o for o in stream(harness, p, "X") if o.currency == "CNY"][:2]
    batcher = OrderBatcher(harness.sessionmaker, harness.ctx, runners=1)
    try:
        with pytest.raises(ValueError, match="shorter"):
            await asyncio.wait_for(batcher.settle(first), timeout=10)
        broken["on"] = False
        settled = await asyncio.wait_for(batcher.settle(second), timeout=10)  # the runner is still there
    finally:
        await batcher.close()
    assert settled.outcome is Outcome.CREATED
