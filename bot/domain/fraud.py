"""Fraud checks on an attributed order: plain facts in, the flags to raise out (no IO, no clock).

- self_purchase: the buyer is the attributed partner (the shop names a Telegram buyer `tg:<telegram user id>`)
  and the plan pays no rebate on self-purchase;
- shared_customer: the order named a partner (code or coupon) but the customer was bound to another partner
  by an earlier order (first touch keeps the customer; the admin should look);
- velocity: more than `limit` orders from one customer paid within `minutes` minutes (this one included).

An order with any flag is held: its commission is posted but not released until an admin decides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class FlagKind(StrEnum):
    SELF_PURCHASE = "self_purchase"
    SHARED_CUSTOMER = "shared_customer"
    VELOCITY = "velocity"


@dataclass(frozen=True, slots=True)
class VelocityRule:
    limit: int = 5
    """FRAUD_VELOCITY_ORDERS: this many orders in the window are fine, one more is flagged."""
    minutes: int = 10
    """FRAUD_VELOCITY_MINUTES."""


@dataclass(frozen=True, slots=True)
class OrderFacts:
    customer_id: str
    partner_tg_user_id: int
    """The attributed partner's Telegram id."""
    attribution: str
    """partner_code | coupon | customer."""
    attributed_partner_id: int
    bound_partner_id: int | None
    """Whom the customer is bound to after this order's attribution (first touch keeps an earlier binding)."""
    orders_in_window: int
    """Orders from this customer paid within the velocity window ending at this order's paid_at, this one too."""
    self_purchase_rebate: bool
    velocity: VelocityRule = field(default_factory=VelocityRule)


@dataclass(frozen=True, slots=True)
class Flag:
    kind: FlagKind
    detail: dict[str, Any]


def self_purchase_customer(tg_user_id: int) -> str:
    """The customer id under which the shop reports a buyer whose Telegram id it knows."""
    return f"tg:{tg_user_id}"


def is_self_purchase(customer_id: str, partner_tg_user_id: int) -> bool:
    return customer_id == self_purchase_customer(partner_tg_user_id)


def decide_flags(facts: OrderFacts) -> list[Flag]:
    flags: list[Flag] = []
    if is_self_purchase(facts.customer_id, facts.partner_tg_user_id) and not facts.self_purchase_rebate:
        flags.append(Flag(FlagKind.SELF_PURCHASE, {"customer_id": facts.customer_id}))
    if (
        facts.attribution in ("partner_code", "coupon")
        and facts.bound_partner_id is not None
        and facts.bound_partner_id != facts.attributed_partner_id
    ):
        flags.append(
            Flag(
                FlagKind.SHARED_CUSTOMER,
                {
                    "customer_id": facts.customer_id,
                    "via": facts.attribution,
                    "named_partner_id": facts.attributed_partner_id,
                    "bound_partner_id": facts.bound_partner_id,
                },
            )
        )
    if facts.orders_in_window > facts.velocity.limit:
        flags.append(
            Flag(
                FlagKind.VELOCITY,
                {
                    "customer_id": facts.customer_id,
                    "orders": facts.orders_in_window,
                    "minutes": facts.velocity.minutes,
                    "limit": facts.velocity.limit,
                },
            )
        )
    return flags
