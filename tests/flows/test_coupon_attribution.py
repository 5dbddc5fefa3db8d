"""Tier 2: an order using a partner's campaign coupon is attributed to them and counted once as a redemption."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from bot.domain.events import EventType
from bot.domain.orders_api import OrderIn, OrderItemIn
from bot.services.ledger import Outcome
from bot.services.registry import UseCases
from storage.models import Coupon, CouponCampaign, CouponRedemption, Event, Order, Partner
from storage.uow import UnitOfWork
from tests.support.harness import BotHarness, tg_user

ALICE = tg_user(101, "Alice", lang="en")


async def alice(h: BotHarness) -> Partner:
    await h.send(ALICE, "/start")
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner).where(Partner.tg_user_id == ALICE.id))).scalar_one()


async def coupon(h: BotHarness, owner: Partner, *, max_uses: int | None, days: int = 7) -> str:
    now = h.clock.now()
    async with UnitOfWork(h.sessionmaker) as uow:
        campaign = CouponCampaign(
            name="Winter",
            discount_kind="percent",
            discount_value=10,
            valid_from=now - timedelta(days=1),
            valid_until=now + timedelta(days=days),
            max_uses=max_uses,
            eligible_levels=[],
            active=True,
            created_at=now,
        )
        uow.session.add(campaign)
        await uow.flush()
        uow.session.add(Coupon(code="WIN-ALICE", partner_id=owner.id, campaign_id=campaign.id, created_at=now))
    return "WIN-ALICE"


def order(h: BotHarness, order_id: str, code: str, *, paid_days_ago: int = 0) -> OrderIn:
    return OrderIn(
        order_id=order_id,
        partner_code=None,
        coupon=code.lower(),  # customers type codes in any case
        customer_id=f"cust-{order_id}",
        currency="CNY",
        amount_minor=15000,
        items=(OrderItemIn("TEA-1", "tea", 1, 15000),),
        paid_at=h.clock.now() - timedelta(days=paid_days_ago),
    )


async def settle(h: BotHarness, *orders: OrderIn) -> list[str]:
    async with UnitOfWork(h.sessionmaker) as uow:
        results = await UseCases(uow, h.ctx).settlement.ingest_orders(list(orders))
    return [
        r.result["attribution"] if not isinstance(r, Exception) and r.outcome is not Outcome.CONFLICT else ""
        for r in results
    ]


async def redemptions(h: BotHarness) -> tuple[int, int]:
    async with h.sessionmaker() as s:
        rows = (await s.execute(select(func.count()).select_from(CouponRedemption))).scalar_one()
        events = (
            await s.execute(select(func.count()).select_from(Event).where(Event.type == EventType.COUPON_REDEEMED))
        ).scalar_one()
    return int(rows), int(events)


async def test_a_coupon_attributes_the_order_and_counts_once(harness: BotHarness) -> None:
    owner = await alice(harness)
    code = await coupon(harness, owner, max_uses=None)
    assert await settle(harness, order(harness, "K1", code)) == ["coupon"]
    assert await settle(harness, order(harness, "K1", code)) == ["coupon"]  # a replay: counted once
    assert await redemptions(harness) == (1, 1)
    async with harness.sessionmaker() as s:
        assert (await s.execute(select(Order.partner_id).where(Order.external_id == "K1"))).scalar_one() == owner.id


async def test_uses_run_out_within_one_batch_and_expired_codes_attribute_nothing(harness: BotHarness) -> None:
    owner = await alice(harness)
    code = await coupon(harness, owner, max_uses=2)
    attributed = await settle(harness, *(order(harness, f"M{n}", code) for n in range(3)))
    assert attributed == ["coupon", "coupon", "none"]  # the third use is one too many
    assert await redemptions(harness) == (2, 2)
    # paid before the campaign started: the code was not valid then
    assert await settle(harness, order(harness, "OLD", code, paid_days_ago=3)) == ["none"]
