"""Tier 2: fraud holds — self-purchase, shared customers and velocity hold an order; /flags releases or voids it."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.callbacks import FlagCallback
from bot.domain.orders_api import RefundIn, parse_order
from bot.services.registry import UseCases
from storage.models import AuditEntry, Order, OrderFlag, OutboxMessage, Partner
from storage.uow import UnitOfWork
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

ADMIN = tg_user(ADMIN_ID, "Root", lang="en")
ALICE = tg_user(101, "Alice", lang="en")
BOB = tg_user(102, "Bob", lang="en")


async def partner(h: BotHarness, tg_id: int) -> Partner:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner).where(Partner.tg_user_id == tg_id))).scalar_one()


async def team(h: BotHarness) -> tuple[Partner, Partner]:
    """The admin; Alice recruits Bob."""
    await h.send(ADMIN, "/start")
    await h.send(ALICE, "/start")
    await h.send(BOB, f"/start {(await partner(h, ALICE.id)).invite_code}")
    h.session.clear()
    return await partner(h, ALICE.id), await partner(h, BOB.id)


async def sell(h: BotHarness, code: str, order_id: str, customer: str, amount: str = "150.00") -> str:
    body = {
        "order_id": order_id,
        "partner_code": code,
        "customer_id": customer,
        "currency": "CNY",
        "amount": amount,
        "items": [{"sku": "TEA-1", "category": "tea", "quantity": 1, "unit_price": amount}],
        "paid_at": h.clock.now().isoformat().replace("+00:00", "Z"),
    }
    async with UnitOfWork(h.sessionmaker) as uow:
        done = await UseCases(uow, h.ctx).settlement.ingest_order(parse_order(json.dumps(body).encode()))
    return str(done.result["status"])


async def release_after_hold(h: BotHarness) -> None:
    h.clock.advance(timedelta(days=15))
    async with UnitOfWork(h.sessionmaker) as uow:
        await UseCases(uow, h.ctx).settlement.release_matured()


async def balances(h: BotHarness, partner_id: int) -> dict[str, int]:
    async with UnitOfWork(h.sessionmaker) as uow:
        totals = await uow.ledger.balances(partner_id)
    return {bucket: total for (bucket, _), total in totals.items()}


async def flags(h: BotHarness) -> list[OrderFlag]:
    async with h.sessionmaker() as s:
        return list((await s.execute(select(OrderFlag).order_by(OrderFlag.id))).scalars())


async def order_status(h: BotHarness, order_id: str) -> str:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Order.status).where(Order.external_id == order_id))).scalar_one()


async def press(h: BotHarness, user: Any, action: str, flag_id: int) -> None:
    h.session.clear()
    await h.press(user, FlagCallback(action=action, id=flag_id).pack())


async def test_self_purchase_is_held_listed_and_released(harness: BotHarness) -> None:
    alice, bob = await team(harness)
    assert await sell(harness, bob.invite_code, "S1", f"tg:{BOB.id}") == "held"
    [flag] = await flags(harness)
    assert (flag.kind, flag.status) == ("self_purchase", "open")
    # the plan pays no L1 on self-purchase; Alice's L2 is held and the hold job leaves it alone
    await release_after_hold(harness)
    assert await balances(harness, alice.id) == {"pending": 450}
    assert await balances(harness, bob.id) == {}

    await harness.send(ADMIN, "/flags")
    [listing] = harness.session.of("sendMessage", ADMIN_ID)
    assert listing.text.split("\n")[0] == harness.t("en", "flags.list_title", count=1)
    assert "S1" in listing.text and "Bob" in listing.text and "¥150.00" in listing.text
    assert harness.t("en", "flags.kind.self_purchase") in listing.text
    assert [b["callback_data"] for b in listing.buttons()] == [
        FlagCallback(action="release", id=flag.id).pack(),
        FlagCallback(action="void", id=flag.id).pack(),
    ]

    await press(harness, ADMIN, "release", flag.id)
    assert harness.t("en", "flags.released_done", order="S1", amount="¥150.00", name="Bob") in harness.session.texts(
        ADMIN_ID
    )
    assert await balances(harness, alice.id) == {"pending": 0, "available": 450}
    assert await order_status(harness, "S1") == "settled"
    assert (await flags(harness))[0].status == "released"
    # once only: a second press (or a void) changes nothing
    await press(harness, ADMIN, "void", flag.id)
    assert harness.t("en", "flags.noop", order="S1", status="settled") in harness.session.texts(ADMIN_ID)
    assert await balances(harness, alice.id) == {"pending": 0, "available": 450}
    await release_after_hold(harness)
    assert await balances(harness, alice.id) == {"pending": 0, "available": 450}
    async with harness.sessionmaker() as s:
        audited = [(a.action, a.outcome) for a in (await s.execute(select(AuditEntry))).scalars()]
    assert ("flag_release", "ok") in audited and ("flag_void", "noop") in audited


async def test_shared_customer_is_held_and_voided(harness: BotHarness) -> None:
    alice, bob = await team(harness)
    assert await sell(harness, alice.invite_code, "C1", "cust-1") == "settled"
    assert await sell(harness, bob.invite_code, "C2", "cust-1") == "held"
    [flag] = await flags(harness)
    assert flag.kind == "shared_customer"
    assert flag.detail["bound_code"] == alice.invite_code and flag.detail["named_code"] == bob.invite_code
    await release_after_hold(harness)
    assert await balances(harness, bob.id) == {"pending": 1500}  # held, not released

    await press(harness, ADMIN, "void", flag.id)
    assert await balances(harness, bob.id) == {"pending": 0}
    assert await order_status(harness, "C2") == "void"
    assert (await flags(harness))[0].status == "voided"
    async with harness.sessionmaker() as s:
        notice = (
            await s.execute(select(OutboxMessage).where(OutboxMessage.dedupe_key.like("flag-void:%")))
        ).scalar_one()
    assert "C2" in notice.payload["text"]
    await harness.send(ADMIN, "/flags")
    assert harness.t("en", "flags.empty") in harness.session.texts(ADMIN_ID)


async def test_a_held_order_refunded_in_full_leaves_no_open_flag(harness: BotHarness) -> None:
    alice, bob = await team(harness)
    await sell(harness, alice.invite_code, "F1", "cust-f")
    assert await sell(harness, bob.invite_code, "F2", "cust-f") == "held"
    async with UnitOfWork(harness.sessionmaker) as uow:
        refund = RefundIn(refund_id="RF2", order_id="F2", amount_minor=15000, currency="CNY")
        await UseCases(uow, harness.ctx).settlement.ingest_refund(refund)

    assert await order_status(harness, "F2") == "refunded"
    assert [(f.kind, f.status) for f in await flags(harness)] == [("shared_customer", "refunded")]
    assert await balances(harness, bob.id) == {"pending": 0}
    await harness.send(ADMIN, "/flags")
    assert harness.t("en", "flags.empty") in harness.session.texts(ADMIN_ID)


async def test_velocity_allows_exactly_n_and_holds_the_next(harness: BotHarness) -> None:
    _, bob = await team(harness)
    limit = harness.ctx.fraud_velocity_orders
    for n in range(limit):
        assert await sell(harness, bob.invite_code, f"V{n}", "cust-v") == "settled"
        harness.clock.advance(timedelta(minutes=1))
    assert await sell(harness, bob.invite_code, "V-next", "cust-v") == "held"
    [flag] = await flags(harness)
    assert flag.kind == "velocity" and flag.detail["orders"] == limit + 1
    # outside the window the customer may buy again
    harness.clock.advance(timedelta(minutes=harness.ctx.fraud_velocity_minutes + 1))
    assert await sell(harness, bob.invite_code, "V-later", "cust-v") == "settled"


async def test_partners_cannot_list_or_decide_flags(harness: BotHarness) -> None:
    alice, bob = await team(harness)
    await sell(harness, bob.invite_code, "S1", f"tg:{BOB.id}")
    [flag] = await flags(harness)
    await harness.send(BOB, "/flags")
    assert harness.session.texts(BOB.id) == [harness.t("en", "denied.admin")]
    await press(harness, BOB, "release", flag.id)
    assert (await flags(harness))[0].status == "open"
    assert await balances(harness, alice.id) == {"pending": 450}
