"""Tier 2: the plan's `eligibility` condition, evaluated daily, decides who earns per-order commission."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.domain.orders_api import OrderIn, OrderItemIn
from bot.services.ledger import DEFAULT_PLAN, Settlement, checksum
from bot.services.registry import UseCases
from storage.models import LedgerEntry, Partner, RuleVersion
from storage.uow import UnitOfWork
from tests.flows.test_levels import add_orders
from tests.support.harness import BotHarness, tg_user

ALICE = tg_user(301, "Alice", lang="en")
BOB = tg_user(302, "Bob", lang="en")


async def publish_plan_with_eligibility(h: BotHarness, condition: str) -> None:
    text = DEFAULT_PLAN.read_text(encoding="utf-8")
    start = text.index("eligibility: null")
    text = text[:start] + f'eligibility: "{condition}"' + text[text.index("\n", start) :]
    now = h.clock.now() - timedelta(days=60)
    async with UnitOfWork(h.sessionmaker) as uow:
        uow.session.add(
            RuleVersion(
                version=1,
                plan_text=text,
                checksum=checksum(text),
                status="published",
                created_at=now,
                published_at=now,
            )
        )


async def partner(h: BotHarness, tg_id: int) -> Partner:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner).where(Partner.tg_user_id == tg_id))).scalar_one()


async def test_an_ineligible_upline_earns_nothing_until_the_next_evaluation(harness: BotHarness) -> None:
    await publish_plan_with_eligibility(harness, "sales_30d >= 1")
    await harness.send(ALICE, "/start")
    await harness.send(BOB, f"/start {(await partner(harness, ALICE.id)).invite_code}")
    alice, bob = await partner(harness, ALICE.id), await partner(harness, BOB.id)
    await add_orders(harness, bob.id, 1, harness.clock.now() - timedelta(days=1))  # Bob sold lately, Alice not
    async with UnitOfWork(harness.sessionmaker) as uow:
        run = await UseCases(uow, harness.ctx).levels.evaluate([alice.id, bob.id], harness.clock.now())
    assert run.eligibility == [(alice.id, False)]

    async def sell(order_id: str) -> list[tuple[int | None, int]]:
        order = OrderIn(
            order_id=order_id,
            partner_code=bob.invite_code,
            coupon=None,
            customer_id=f"cust-{order_id}",
            currency="CNY",
            amount_minor=15000,
            items=(OrderItemIn("TEA-1", "tea", 1, 15000),),
            paid_at=harness.clock.now(),
        )
        async with UnitOfWork(harness.sessionmaker) as uow:
            settled = await UseCases(uow, harness.ctx).settlement.ingest_order(order)
        assert isinstance(settled, Settlement)
        async with harness.sessionmaker() as s:
            rows = await s.execute(
                select(LedgerEntry.partner_id, LedgerEntry.amount_minor).where(
                    LedgerEntry.txn == f"order:api:{order_id}", LedgerEntry.partner_id.is_not(None)
                )
            )
            return [(partner_id, amount) for partner_id, amount in rows.all()]

    assert await sell("E1") == [(bob.id, 1500)]  # no L2 line for Alice, and her share is not passed on

    await add_orders(harness, alice.id, 1, harness.clock.now())
    async with UnitOfWork(harness.sessionmaker) as uow:
        run = await UseCases(uow, harness.ctx).levels.evaluate([alice.id, bob.id], harness.clock.now())
    assert run.eligibility == [(alice.id, True)]
    assert await sell("E2") == [(bob.id, 1500), (alice.id, 450)]
