"""Settlement: orders and refunds in, commission out, into the append-only double-entry ledger.

Every external event is idempotent by its (source, external id): the database's unique index decides which of
several concurrent deliveries records it; the others find it and answer with the original result.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.events import EventSource, EventType
from bot.domain.fraud import is_self_purchase
from bot.domain.money import Money, format_money
from bot.domain.orders_api import OrderIn, RefundIn, payload_fingerprint
from bot.domain.rules import CommissionLine, Earner, Plan, commission_lines, load_plan
from bot.domain.rules import Order as PlanOrder
from bot.domain.rules import OrderItem as PlanItem
from bot.services.context import ServiceContext
from bot.services.fraud import FraudService
from bot.services.notify import enqueue_text, partner_zone
from bot.services.partners import ancestor_ids, display_name
from bot.services.releases import PLATFORM_COMMISSION, release_entry
from storage.models import Order, Partner, Refund, RuleVersion
from storage.uow import UnitOfWork

DEFAULT_PLAN = Path(__file__).resolve().parents[1] / "plans" / "default.yaml"
RELEASE_BATCH = 500


class Outcome(StrEnum):
    CREATED = "created"
    """Recorded now (HTTP 201)."""
    REPLAY = "replay"
    """The same event again: nothing written, the original result (HTTP 200)."""
    CONFLICT = "conflict"
    """The same id with a different payload (HTTP 409)."""


@dataclass(frozen=True, slots=True)
class Settlement:
    outcome: Outcome
    result: dict[str, Any]
    """The JSON the API answers with; the same for the original delivery and its replays."""


class CurrencyNotInPlan(ValueError):
    """An order in a currency the commission plan does not pay in."""

    def __init__(self, currency: str) -> None:
        super().__init__(currency)
        self.currency = currency


class RefundTooLarge(ValueError):
    """A refund larger than what is left of its order, or in another currency."""


def _round_half_up(value: Fraction) -> int:
    """To the nearest integer, halves away from zero (the rounding of bot.domain.money.percent_of)."""
    magnitude = int(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class SettlementService:
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    # ------------------------------------------------------------------ the plan

    async def ensure_plan(self) -> RuleVersion:
        """The published plan; on a fresh database the shipped default becomes version 1."""
        current = await self._uow.ledger.published_rules()
        if current is not None:
            return current
        text = DEFAULT_PLAN.read_text(encoding="utf-8")
        load_plan(text, DEFAULT_PLAN.name)  # a broken shipped plan must fail loudly, not settle with it
        now = self._ctx.clock.now()
        # Concurrent first orders may both get here: the unique version number lets exactly one insert win.
        await self._uow.ledger.add_rules_once(
            {
                "version": await self._uow.ledger.next_rules_version(),
                "plan_text": text,
                "checksum": checksum(text),
                "status": "published",
                "created_at": now,
                "published_at": now,
            }
        )
        current = await self._uow.ledger.published_rules()
        if current is None:
            raise RuntimeError("could not store the default commission plan")
        return current

    async def plan_for(self, paid_at: datetime) -> tuple[int, Plan]:
        """The plan in force when the order was paid (the first one for orders paid before any was published)."""
        versions = await self._uow.ledger.rule_history()
        if not versions:
            await self.ensure_plan()
            versions = await self._uow.ledger.rule_history()
        chosen = next((v for v in versions if v.published_at and v.published_at <= paid_at), versions[-1])
        return chosen.version, self._parsed(chosen)

    def _parsed(self, row: RuleVersion) -> Plan:
        cached = self._ctx.plans.get(row.version)
        if cached is None:
            cached = self._ctx.plans[row.version] = load_plan(row.plan_text, f"rules v{row.version}")
        return cached

    # ------------------------------------------------------------------ orders

    async def ingest_order(self, order: OrderIn, *, source: str = "api") -> Settlement:
        """Record an order, attribute it and post its commission; a replay writes nothing.

        Raises `CurrencyNotInPlan` for an order in another currency than the plan in force pays in."""
        uow, now = self._uow, self._ctx.clock.now()
        _, plan = await self.plan_for(order.paid_at)
        if order.currency != plan.currency:
            raise CurrencyNotInPlan(plan.currency)
        fingerprint = payload_fingerprint(order)
        claimed = await uow.ledger.claim_order(
            {
                "source": source,
                "external_id": order.order_id,
                "fingerprint": fingerprint,
                "customer_id": order.customer_id,
                "partner_id": None,
                "attribution": "none",
                "coupon": order.coupon,
                "currency": order.currency,
                "amount_minor": order.amount_minor,
                "refunded_minor": 0,
                "items": [
                    {
                        "sku": i.sku,
                        "category": i.category,
                        "quantity": i.quantity,
                        "unit_price_minor": i.unit_price_minor,
                    }
                    for i in order.items
                ],
                "paid_at": order.paid_at,
                "status": "unattributed",
                "created_at": now,
            }
        )
        if claimed is None:
            existing = await uow.ledger.order(source, order.order_id)
            assert existing is not None  # the unique index said so
            outcome = Outcome.REPLAY if existing.fingerprint == fingerprint else Outcome.CONFLICT
            return Settlement(outcome, await self._order_result(existing))
        row = await uow.ledger.order_by_id(claimed)
        assert row is not None
        partner, how = await self._attribute(order)
        if partner is not None:
            # Fraud checks: a flagged order is held; its commission is posted but not released until an admin
            # decides in /flags (see bot.services.fraud).
            flags = await FraudService(uow, self._ctx).check(row, partner, how, plan)
            row.partner_id, row.attribution = partner.id, how
            row.status = "held" if flags else "settled"
            await self._post_commission(row, partner, held=bool(flags))
            uow.events.add(
                partner_id=partner.id,
                type=EventType.ORDER_ATTRIBUTED,
                occurred_at=now,
                source=EventSource.API if source == "api" else EventSource.ADMIN,
                payload={"order_id": order.order_id, "amount_minor": order.amount_minor, "currency": order.currency},
            )
        for parked in await uow.ledger.parked_refunds(order.order_id):
            if parked.currency == row.currency and parked.amount_minor <= row.amount_minor - row.refunded_minor:
                await self._apply_refund(row, parked)
        return Settlement(Outcome.CREATED, await self._order_result(row))

    async def _attribute(self, order: OrderIn) -> tuple[Partner | None, str]:
        """Explicit partner code, then a partner's coupon, then the partner the customer is bound to."""
        uow, now = self._uow, self._ctx.clock.now()
        partner: Partner | None = None
        how = "none"
        if order.partner_code:
            partner, how = await uow.partners.by_invite_code(order.partner_code), "partner_code"
        if partner is None and order.coupon:
            owner = await uow.ledger.coupon_owner(order.coupon)
            partner, how = (await uow.partners.get(owner) if owner else None), "coupon"
        if partner is not None:
            await uow.ledger.bind_customer(order.customer_id, partner.id, now)  # the first partner keeps the customer
            return partner, how
        bound_to = await uow.ledger.customer_owner(order.customer_id)
        if bound_to is not None:
            return await uow.partners.get(bound_to), "customer"
        return None, "none"

    async def _post_commission(self, row: Order, partner: Partner, *, held: bool = False) -> None:
        """Post the order's commission. A held order's partner lines get no `available_at` (the hold job never
        releases them) and no "earned" notices: an admin releases or voids them (bot.services.fraud)."""
        uow = self._uow
        version, plan = await self.plan_for(row.paid_at)
        row.rules_version = version
        chain = [partner]
        for upline_id in ancestor_ids(partner)[:2]:
            upline = await uow.partners.get(upline_id)
            if upline is None:
                break
            chain.append(upline)
        items = tuple(
            PlanItem(Money(int(i["unit_price_minor"]) * int(i["quantity"]), row.currency), str(i["category"]))
            for i in row.items
        )
        plan_order = PlanOrder(
            id=row.external_id,
            amount=Money(row.amount_minor, row.currency),
            items=items,
            self_purchase=is_self_purchase(row.customer_id, partner.tg_user_id),
        )
        lines = commission_lines(plan, plan_order, [Earner(p.id, p.level) for p in chain])
        if not lines:
            return
        available_at = row.paid_at + timedelta(days=plan.hold_days)
        entries: list[dict[str, Any]] = []
        for line in lines:
            entries.append(
                self._commission_entry(row, line, version, None if held else available_at, number=len(entries) + 1)
            )
            entries.append(
                self._line(
                    row,
                    len(entries) + 1,
                    account=PLATFORM_COMMISSION,
                    partner_id=None,
                    bucket="commission",
                    kind="commission",
                    amount=-line.amount.minor,
                    # the same keys as the partner lines, so one INSERT carries the whole transaction
                    tier=None,
                    level=None,
                    rate=None,
                    base_minor=None,
                    rule=None,
                    rules_version=version,
                    available_at=None,
                )
            )
        await uow.ledger.post(entries)
        if held:
            return
        by_id = {p.id: p for p in chain}
        for line in lines:
            await self._notify_earned(by_id[line.earner_id], partner, row, line, available_at)

    def _line(
        self,
        row: Order,
        number: int,
        *,
        account: str,
        partner_id: int | None,
        bucket: str,
        kind: str,
        amount: int,
        **extra: Any,
    ) -> dict[str, Any]:
        return {
            "txn": f"order:{row.source}:{row.external_id}",
            "line": number,
            "account": account,
            "partner_id": partner_id,
            "bucket": bucket,
            "amount_minor": amount,
            "currency": row.currency,
            "kind": kind,
            "order_id": row.id,
            "created_at": self._ctx.clock.now(),
            **extra,
        }

    def _commission_entry(
        self, row: Order, line: CommissionLine, version: int, available_at: datetime | None, *, number: int
    ) -> dict[str, Any]:
        return self._line(
            row,
            number,
            account=f"partner:{line.earner_id}",
            partner_id=line.earner_id,
            bucket="pending",
            kind="commission",
            amount=line.amount.minor,
            tier=line.tier,
            level=line.level,
            rate=str(line.rate),
            base_minor=line.base.minor,
            rule=line.rule,
            rules_version=version,
            available_at=available_at,
        )

    async def _notify_earned(
        self, earner: Partner, seller: Partner, row: Order, line: CommissionLine, available_at: datetime
    ) -> None:
        language = self._ctx.translator.resolve_language(earner.language, earner.tg_language_code)
        t = self._ctx.translator.texts(language)
        zone = self._zone(earner)
        params = {
            "amount": format_money(line.amount, language),
            "order": row.external_id,
            "total": format_money(Money(row.amount_minor, row.currency), language),
            "date": available_at.astimezone(zone).strftime("%Y-%m-%d"),
            "member": display_name(seller),
        }
        key = "wallet.notice.earned" if line.tier == 1 else "wallet.notice.team_earned"
        await enqueue_text(
            self._uow,
            self._ctx,
            recipient=earner,
            dedupe_key=f"earned:{row.source}:{row.external_id}:{line.tier}:{earner.id}",
            text=t(key, **params),
        )

    async def _order_result(self, row: Order) -> dict[str, Any]:
        entries = await self._uow.ledger.entries_of_order(row.id)
        return {
            "order_id": row.external_id,
            "status": row.status,
            "attribution": row.attribution,
            "rules_version": row.rules_version,
            "amount": str(Money(row.amount_minor, row.currency).amount),
            "currency": row.currency,
            "refunded": str(Money(row.refunded_minor, row.currency).amount),
            "commission": [
                {
                    "partner_id": e.partner_id,
                    "tier": e.tier,
                    "amount": str(Money(e.amount_minor, e.currency).amount),
                    "kind": e.kind,
                    "bucket": e.bucket,
                }
                for e in entries
                if e.partner_id is not None
            ],
        }

    # ------------------------------------------------------------------ refunds

    async def ingest_refund(self, refund: RefundIn, *, source: str = "api") -> Settlement:
        """Reverse commission in proportion to the refunded amount; a refund before its order is parked."""
        uow, now = self._uow, self._ctx.clock.now()
        fingerprint = payload_fingerprint(refund)
        order = await uow.ledger.order(source, refund.order_id)
        if order is not None and (
            refund.currency != order.currency or refund.amount_minor > order.amount_minor - order.refunded_minor
        ):
            existing = await uow.ledger.refund(source, refund.refund_id)
            if existing is None:
                raise RefundTooLarge(refund.refund_id)
        claimed = await uow.ledger.claim_refund(
            {
                "source": source,
                "external_id": refund.refund_id,
                "order_external_id": refund.order_id,
                "fingerprint": fingerprint,
                "currency": refund.currency,
                "amount_minor": refund.amount_minor,
                "status": "parked",
                "created_at": now,
            }
        )
        if claimed is None:
            existing = await uow.ledger.refund(source, refund.refund_id)
            assert existing is not None
            outcome = Outcome.REPLAY if existing.fingerprint == fingerprint else Outcome.CONFLICT
            return Settlement(outcome, self._refund_result(existing))
        row = await uow.ledger.refund(source, refund.refund_id)
        assert row is not None
        if order is not None:
            await self._apply_refund(order, row)
        return Settlement(Outcome.CREATED, self._refund_result(row))

    async def _apply_refund(self, order: Order, refund: Refund) -> None:
        """Each commission line is reversed so that, after this refund, it pays its share of what was kept."""
        uow = self._uow
        refund.status, refund.applied_at = "applied", self._ctx.clock.now()
        refunded_after = order.refunded_minor + refund.amount_minor
        entries = await uow.ledger.entries_of_order(order.id)
        commissions = [e for e in entries if e.kind == "commission" and e.partner_id is not None]
        lines: list[dict[str, Any]] = []
        txn = f"refund:{refund.source}:{refund.external_id}"
        for entry in commissions:
            reversed_so_far = sum(
                e.amount_minor
                for e in entries
                if e.kind == "reversal"
                and e.partner_id == entry.partner_id
                and e.tier == entry.tier
                and e.rule == entry.rule
            )
            # Exact arithmetic: the line's share of what the customer kept, rounded half away from zero once.
            should_remain = _round_half_up(
                Fraction(entry.amount_minor * (order.amount_minor - refunded_after), order.amount_minor or 1)
            )
            reversal = should_remain - (entry.amount_minor + reversed_so_far)
            if reversal == 0:
                continue
            released = await uow.ledger.was_released(entry.id)
            base = {
                "txn": txn,
                "currency": order.currency,
                "kind": "reversal",
                "order_id": order.id,
                "tier": entry.tier,
                "level": entry.level,
                "rate": entry.rate,
                "rule": entry.rule,
                "rules_version": entry.rules_version,
                "created_at": self._ctx.clock.now(),
            }
            lines.append(
                {
                    **base,
                    "line": len(lines) + 1,
                    "account": entry.account,
                    "partner_id": entry.partner_id,
                    "bucket": "available" if released else "pending",
                    "amount_minor": reversal,
                    "base_minor": -refund.amount_minor,
                }
            )
            lines.append(
                {
                    **base,
                    "line": len(lines) + 1,
                    "account": PLATFORM_COMMISSION,
                    "partner_id": None,
                    "bucket": "commission",
                    "amount_minor": -reversal,
                    "base_minor": None,
                }
            )
        await uow.ledger.post(lines)
        await uow.ledger.add_refunded(order.id, refund.amount_minor)
        order.refunded_minor = refunded_after
        if refunded_after >= order.amount_minor:
            order.status = "refunded"

    @staticmethod
    def _refund_result(row: Refund) -> dict[str, Any]:
        return {
            "refund_id": row.external_id,
            "order_id": row.order_external_id,
            "status": row.status,
            "amount": str(Money(row.amount_minor, row.currency).amount),
            "currency": row.currency,
        }

    # ------------------------------------------------------------------ the hold

    async def release_matured(self, limit: int = RELEASE_BATCH) -> int:
        """Commission whose hold has ended moves from pending to available (what refunds left of it)."""
        uow, now = self._uow, self._ctx.clock.now()
        released = 0
        for entry in await uow.ledger.matured(now, limit):
            if await release_entry(uow, self._ctx, entry) is not None:
                released += 1
        return released

    def _zone(self, partner: Partner) -> ZoneInfo:
        return partner_zone(self._ctx, partner)
