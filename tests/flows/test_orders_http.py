"""Tier 2: the signed orders and refunds API over HTTP, settled into the ledger: 201 / 200 / 409 / 401 / 422,
attribution, L1 and L2 commission, proportional refunds, parked refunds, the hold and the notices."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.domain.orders_api import sign
from bot.orders_http import OrdersEndpoint, install_unconfigured
from bot.services.registry import UseCases
from storage.models import LedgerEntry, Order, Partner
from storage.uow import UnitOfWork
from tests.support.harness import BotHarness, tg_user

SECRET = b"shop-secret"
ALICE = tg_user(101, "Alice", lang="en")  # the upline
BOB = tg_user(102, "Bob", lang="en")


@pytest.fixture
async def api(harness: BotHarness) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    app = web.Application()
    OrdersEndpoint(SECRET, harness.sessionmaker, harness.ctx, on_outbox=harness.sender.wake).install(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


async def code_of(h: BotHarness, tg_id: int) -> str:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner.invite_code).where(Partner.tg_user_id == tg_id))).scalar_one()


async def team(h: BotHarness) -> str:
    """Alice recruits Bob; returns Bob's invite code."""
    await h.send(ALICE, "/start")
    await h.send(BOB, f"/start {await code_of(h, ALICE.id)}")
    return await code_of(h, BOB.id)


def order(code: str | None, order_id: str = "A1001", amount: str = "150.00", **extra: Any) -> dict[str, Any]:
    body = {
        "order_id": order_id,
        "customer_id": "cust-1",
        "currency": "CNY",
        "amount": amount,
        "items": [{"sku": "TEA-1", "category": "tea", "quantity": 1, "unit_price": amount}],
        "paid_at": "2026-11-25T00:30:00Z",
        **extra,
    }
    if code:
        body["partner_code"] = code
    return body


async def post(
    client: TestClient[web.Request, web.Application], h: BotHarness, path: str, body: Any, *, secret: bytes = SECRET
) -> tuple[int, Any]:
    raw = json.dumps(body).encode()
    timestamp = int(h.clock.now().timestamp())
    headers = {"X-Timestamp": str(timestamp), "X-Signature": sign(secret, timestamp, raw)}
    response = await client.post(path, data=raw, headers=headers)
    return response.status, await response.json()


async def balances(h: BotHarness, tg_id: int) -> dict[str, int]:
    async with UnitOfWork(h.sessionmaker) as uow:
        partner = await uow.partners.by_tg_id(tg_id)
        assert partner is not None
        return {bucket: amount for (bucket, _), amount in (await uow.ledger.balances(partner.id)).items()}


async def ledger_sum(h: BotHarness) -> tuple[int, int]:
    async with h.sessionmaker() as s:
        total = (await s.execute(select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0)))).scalar_one()
        count = (await s.execute(select(func.count()).select_from(LedgerEntry))).scalar_one()
    return int(total), int(count)


async def test_a_signed_order_pays_l1_and_l2_and_a_replay_changes_nothing(harness: BotHarness, api: Any) -> None:
    bob_code = await team(harness)
    harness.session.clear()
    status, created = await post(api, harness, "/api/orders", order(bob_code))
    assert status == 201
    assert created["attribution"] == "partner_code" and created["rules_version"] == 1
    assert sorted((c["tier"], c["amount"]) for c in created["commission"]) == [(1, "15.00"), (2, "4.50")]
    assert await balances(harness, BOB.id) == {"pending": 1500}
    assert await balances(harness, ALICE.id) == {"pending": 450}
    assert (await ledger_sum(harness))[0] == 0  # double entry: every transaction balances

    # the same order again, keys in another order: 200 with the original result, nothing written
    before = await ledger_sum(harness)
    status, replay = await post(api, harness, "/api/orders", dict(reversed(list(order(bob_code).items()))))
    assert (status, replay) == (200, created)
    assert await ledger_sum(harness) == before
    # the same id with another amount: 409
    status, conflict = await post(api, harness, "/api/orders", order(bob_code, amount="99.00"))
    assert status == 409 and conflict["error"] == "conflict"
    assert await ledger_sum(harness) == before

    # the notices went through the outbox (Alice's chat already had a notice: one message a second per chat)
    await harness.drain_outbox()
    await harness.pass_time(2)
    await harness.drain_outbox()
    assert any("You earned ¥15.00" in t for t in harness.session.texts(BOB.id))
    assert any("Bob" in t and "¥4.50" in t for t in harness.session.texts(ALICE.id))


async def test_bad_signatures_and_bodies(harness: BotHarness, api: Any) -> None:
    bob_code = await team(harness)
    status, body = await post(api, harness, "/api/orders", order(bob_code), secret=b"wrong")
    assert (status, body["error"]) == (401, "bad_signature")
    raw = json.dumps(order(bob_code)).encode()
    stale = int((harness.clock.now() - timedelta(minutes=6)).timestamp())
    response = await api.post(
        "/api/orders", data=raw, headers={"X-Timestamp": str(stale), "X-Signature": sign(SECRET, stale, raw)}
    )
    assert response.status == 401
    status, body = await post(api, harness, "/api/orders", {"order_id": "", "currency": "XXX", "amount": 1.5})
    assert status == 422
    paths = {f["path"] for f in body["fields"]}
    assert {"order_id", "currency", "amount", "customer_id", "items", "paid_at"} <= paths
    assert (await ledger_sum(harness))[1] == 0


async def test_refunds_reverse_in_proportion_and_a_refund_before_its_order_waits(harness: BotHarness, api: Any) -> None:
    bob_code = await team(harness)
    await post(api, harness, "/api/orders", order(bob_code))
    status, partial = await post(
        api, harness, "/api/refunds", {"refund_id": "R1", "order_id": "A1001", "amount": "50.00", "currency": "CNY"}
    )
    assert (status, partial["status"]) == (201, "applied")
    assert await balances(harness, BOB.id) == {"pending": 1000}  # ¥15.00 × 100/150
    assert await balances(harness, ALICE.id) == {"pending": 300}
    status, _ = await post(
        api, harness, "/api/refunds", {"refund_id": "R1", "order_id": "A1001", "amount": "50.00", "currency": "CNY"}
    )
    assert status == 200  # a second identical refund is a no-op
    status, body = await post(
        api, harness, "/api/refunds", {"refund_id": "R2", "order_id": "A1001", "amount": "500.00", "currency": "CNY"}
    )
    assert status == 422 and body["fields"][0]["path"] == "amount"
    await post(
        api, harness, "/api/refunds", {"refund_id": "R3", "order_id": "A1001", "amount": "100.00", "currency": "CNY"}
    )
    assert await balances(harness, BOB.id) == {"pending": 0}
    assert await balances(harness, ALICE.id) == {"pending": 0}
    async with harness.sessionmaker() as s:
        assert (await s.execute(select(Order.status))).scalar_one() == "refunded"

    # a refund that arrives before its order is parked, then applied when the order comes
    status, parked = await post(
        api, harness, "/api/refunds", {"refund_id": "R9", "order_id": "B2002", "amount": "150.00", "currency": "CNY"}
    )
    assert (status, parked["status"]) == (201, "parked")
    await post(api, harness, "/api/orders", order(bob_code, order_id="B2002"))
    assert await balances(harness, BOB.id) == {"pending": 0}
    assert (await ledger_sum(harness))[0] == 0


async def test_attribution_by_coupon_then_by_bound_customer(harness: BotHarness, api: Any) -> None:
    await team(harness)
    async with UnitOfWork(harness.sessionmaker) as uow:
        bob = await uow.partners.by_tg_id(BOB.id)
        assert bob is not None
        from storage.models import Coupon

        uow.session.add(Coupon(code="BOB10", partner_id=bob.id, active=True, created_at=harness.clock.now()))
    status, first = await post(api, harness, "/api/orders", order(None, coupon="BOB10"))
    assert (status, first["attribution"]) == (201, "coupon")
    status, second = await post(api, harness, "/api/orders", order(None, order_id="A1002"))
    assert (status, second["attribution"]) == (201, "customer")  # cust-1 was bound to Bob by the first order
    status, stranger = await post(api, harness, "/api/orders", order(None, order_id="A1003", customer_id="cust-2"))
    assert (status, stranger["attribution"], stranger["commission"]) == (201, "none", [])


async def test_the_hold_ends_and_commission_becomes_available(harness: BotHarness, api: Any) -> None:
    bob_code = await team(harness)
    await post(api, harness, "/api/orders", order(bob_code))
    async with UnitOfWork(harness.sessionmaker) as uow:
        assert await UseCases(uow, harness.ctx).settlement.release_matured() == 0
    harness.clock.advance(timedelta(days=14))
    async with UnitOfWork(harness.sessionmaker) as uow:
        assert await UseCases(uow, harness.ctx).settlement.release_matured() == 2
    async with UnitOfWork(harness.sessionmaker) as uow:
        assert await UseCases(uow, harness.ctx).settlement.release_matured() == 0  # once
    assert await balances(harness, BOB.id) == {"pending": 0, "available": 1500}
    # a refund after the hold takes the commission back from what is available
    await post(
        api, harness, "/api/refunds", {"refund_id": "R1", "order_id": "A1001", "amount": "150.00", "currency": "CNY"}
    )
    assert await balances(harness, BOB.id) == {"pending": 0, "available": 0}


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_three_concurrent_deliveries_write_one_set_of_entries(harness: BotHarness, api: Any) -> None:
    bob_code = await team(harness)
    results = await asyncio.gather(*(post(api, harness, "/api/orders", order(bob_code)) for _ in range(3)))
    assert sorted(status for status, _ in results) == [200, 200, 201]
    assert (await ledger_sum(harness)) == (0, 4)


async def test_without_a_secret_the_api_says_it_is_not_configured() -> None:
    app = web.Application()
    install_unconfigured(app)
    async with TestClient(TestServer(app)) as client:
        response = await client.post("/api/orders", data=b"{}")
        assert response.status == 503
        assert (await response.json())["error"] == "not_configured"


async def test_category_overrides_are_reversed_and_released_line_by_line(harness: BotHarness, api: Any) -> None:
    from bot.services.ledger import DEFAULT_PLAN, checksum
    from storage.models import RuleVersion

    bob_code = await team(harness)
    text = DEFAULT_PLAN.read_text(encoding="utf-8").replace(
        "categories: {}", 'categories:\n  tea:\n    member: {l1: "18%"}'
    )
    async with UnitOfWork(harness.sessionmaker) as uow:
        await UseCases(uow, harness.ctx).settlement.ensure_plan()
        uow.ledger.add_rules(
            RuleVersion(
                version=2, plan_text=text, checksum=checksum(text), status="published",
                created_at=harness.clock.now(), published_at=harness.clock.now() - timedelta(hours=1),
            )
        )  # fmt: skip
    body = order(bob_code, amount="200.00")
    body["items"] = [
        {"sku": "TEA-1", "category": "tea", "quantity": 1, "unit_price": "100.00"},
        {"sku": "CUP-1", "category": "cups", "quantity": 1, "unit_price": "100.00"},
    ]
    status, created = await post(api, harness, "/api/orders", body)
    assert status == 201 and created["rules_version"] == 2
    assert sorted(c["amount"] for c in created["commission"] if c["tier"] == 1) == ["10.00", "18.00"]
    await post(
        api, harness, "/api/refunds", {"refund_id": "R1", "order_id": "A1001", "amount": "100.00", "currency": "CNY"}
    )
    assert (await balances(harness, BOB.id))["pending"] == 1400
    harness.clock.advance(timedelta(days=14))
    async with UnitOfWork(harness.sessionmaker) as uow:
        await UseCases(uow, harness.ctx).settlement.release_matured()
    assert await balances(harness, BOB.id) == {"pending": 0, "available": 1400}


async def test_an_order_in_a_currency_the_plan_does_not_pay_in_is_refused(harness: BotHarness, api: Any) -> None:
    bob_code = await team(harness)
    body = order(bob_code)
    body["currency"] = "USD"
    status, answer = await post(api, harness, "/api/orders", body)
    assert status == 422
    assert answer["fields"] == [{"path": "currency", "message": "the commission plan pays in CNY"}]
    assert (await ledger_sum(harness))[1] == 0
