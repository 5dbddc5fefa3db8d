"""The pure fraud decisions: which facts raise which flags."""

from __future__ import annotations

from dataclasses import replace

from bot.domain.fraud import FlagKind, OrderFacts, VelocityRule, decide_flags

CLEAN = OrderFacts(
    customer_id="cust-1",
    partner_tg_user_id=102,
    attribution="partner_code",
    attributed_partner_id=2,
    bound_partner_id=2,
    orders_in_window=1,
    self_purchase_rebate=False,
    velocity=VelocityRule(limit=5, minutes=10),
)


def kinds(facts: OrderFacts) -> list[FlagKind]:
    return [flag.kind for flag in decide_flags(facts)]


def test_a_clean_order_raises_nothing() -> None:
    assert kinds(CLEAN) == []


def test_self_purchase_only_when_the_plan_pays_no_rebate() -> None:
    assert kinds(replace(CLEAN, customer_id="tg:102")) == [FlagKind.SELF_PURCHASE]
    assert kinds(replace(CLEAN, customer_id="tg:102", self_purchase_rebate=True)) == []
    assert kinds(replace(CLEAN, customer_id="tg:103")) == []


def test_shared_customer_only_when_a_named_partner_differs_from_the_binding() -> None:
    assert kinds(replace(CLEAN, bound_partner_id=1)) == [FlagKind.SHARED_CUSTOMER]
    assert kinds(replace(CLEAN, bound_partner_id=1, attribution="coupon")) == [FlagKind.SHARED_CUSTOMER]
    assert kinds(replace(CLEAN, bound_partner_id=1, attribution="customer")) == []


def test_velocity_allows_exactly_the_limit() -> None:
    assert kinds(replace(CLEAN, orders_in_window=5)) == []
    assert kinds(replace(CLEAN, orders_in_window=6)) == [FlagKind.VELOCITY]
