"""Settlement: orders and refunds in, commission out, into the append-only double-entry ledger.

Every external event is idempotent by its (source, external id): the database's unique index decides which of
several concurrent deliveries records it; the others find it and answer with the original result.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.events import EventSource, EventType
from bot.domain.fraud import Flag, FlagKind, OrderFacts, VelocityRule, decide_flags, is_self_purchase
from bot.domain.money import Money, format_money
from bot.domain.orders_api import OrderIn, RefundIn, payload_fingerprint
from bot.domain.rules import Earner, Plan, commission_lines, load_plan
from bot.domain.rules import Order as PlanOrder
from bot.domain.rules import OrderItem as PlanItem
from bot.services.acting import language_of
from bot.services.context import ServiceContext
from bot.services.notify import partner_zone, text_row
from bot.services.partners import ancestor_ids, display_name
from bot.services.releases import PLATFORM_COMMISSION, release_entry
from storage.models import LedgerEntry, Order, Partner, Refund, RuleVersion
from storage.uow import UnitOfWork

DEFAULT_PLAN = Path(__file__).resolve().parents[1] / "plans" / "default.yaml"
SHIPPED_PLANS = DEFAULT_PLAN.parent / "shipped"
"""Every default plan shipped before the current one, byte for byte: a deployment whose plan in force is one of
them (nobody uploaded their own) is moved to the current default at start-up, see `ensure_plan`."""
RELEASE_BATCH = 500

log = logging.getLogger(__name__)


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


def _shipped_checksums() -> set[str]:
    return {checksum(path.read_text(encoding="utf-8")) for path in SHIPPED_PLANS.glob("*.yaml")}


def _event_source(source: str) -> str:
    """Orders from the shop's API are `api` events; CSV imports and orders confirmed in chat are an admin's."""
    return (EventSource.API if source == "api" else EventSource.ADMIN).value


def _order_result(row: Order, entries: Sequence[LedgerEntry]) -> dict[str, Any]:
    """The API's answer for an order as it stands: its state and the partners' ledger lines."""
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


@dataclass(slots=True)
class _Writes:
    """The rows a batch of orders writes, collected so each kind goes in with one statement."""

    attributions: list[dict[str, Any]] = field(default_factory=list)
    bindings: list[dict[str, Any]] = field(default_factory=list)
    flags: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    notices: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class _BatchFacts:
    """What a batch of claimed orders is decided on, read up front; `bound` grows as orders bind customers."""

    by_code: dict[str, Partner]
    coupon_owner: dict[str, int]
    """Order id → the partner whose coupon it used (valid when it was paid)."""
    bound: dict[str, int]
    partners: dict[int, Partner]
    paid_times: dict[str, list[datetime]]
    """Per customer, when their orders in the batch's velocity window were paid, the batch's own included."""
    parked: dict[str, list[Refund]]
    velocity: VelocityRule
    redemptions: list[dict[str, Any]]
    """`coupon_redeemed` events of the batch's orders."""

    def attribute(self, order: OrderIn) -> tuple[Partner | None, str]:
        """Explicit partner code, then a partner's coupon, then the partner the customer is bound to."""
        if order.partner_code and order.partner_code in self.by_code:
            return self.by_code[order.partner_code], "partner_code"
        owner = self.coupon_owner.get(order.order_id)
        if owner is not None and owner in self.partners:
            return self.partners[owner], "coupon"
        owner = self.bound.get(order.customer_id)
        if owner is not None and owner in self.partners:
            return self.partners[owner], "customer"
        return None, "none"

    def flags(self, order: OrderIn, partner: Partner, how: str, plan: Plan) -> list[Flag]:
        """The fraud flags of an attributed order (after its customer binding); see bot.domain.fraud."""
        since = order.paid_at - timedelta(minutes=self.velocity.minutes)
        flags = decide_flags(
            OrderFacts(
                customer_id=order.customer_id,
                partner_tg_user_id=partner.tg_user_id,
                attribution=how,
                attributed_partner_id=partner.id,
                bound_partner_id=self.bound.get(order.customer_id),
                orders_in_window=sum(
                    1 for paid in self.paid_times.get(order.customer_id, ()) if since <= paid <= order.paid_at
                ),
                self_purchase_rebate=plan.self_purchase_rebate,
                velocity=self.velocity,
            )
        )
        for flag in flags:
            if flag.kind is FlagKind.SHARED_CUSTOMER:  # name both partners for the admin deciding in /flags
                owner = self.partners.get(int(flag.detail["bound_partner_id"]))
                flag.detail["bound_code"] = owner.invite_code if owner else ""
                flag.detail["named_code"] = partner.invite_code
        return flags


class SettlementService:
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    # ------------------------------------------------------------------ the plan

    async def ensure_plan(self) -> RuleVersion:
        """The published plan; on a fresh database the shipped default becomes version 1.

        A database whose plan in force is an unchanged earlier shipped default (bot/plans/shipped/) gets the
        current default as its next version, published now (e.g. the badges added with icons), so upgrading the
        code upgrades a plan nobody customised. A plan an admin uploaded is never replaced, and nothing happens
        while a draft waits (publishing it later must supersede what is in force, and versions are ordered by
        number): the admin adds what they want from the new default with /rules."""
        current = await self._uow.ledger.published_rules()
        text = DEFAULT_PLAN.read_text(encoding="utf-8")
        if current is not None:
            if current.checksum == checksum(text) or current.checksum not in _shipped_checksums():
                return current
            if await self._uow.ledger.draft_rules() is not None:
                return current
        load_plan(text, DEFAULT_PLAN.name)  # a broken shipped plan must fail loudly, not settle with it
        now = self._ctx.clock.now()
        if current is not None:  # every process starting at once may get here: the first insert wins
            if not await self._uow.ledger.add_rules_once(
                {
                    "version": await self._uow.ledger.next_rules_version(),
                    "plan_text": text,
                    "checksum": checksum(text),
                    "status": "published",
                    "created_at": now,
                    "published_at": now,
                }
            ):
                return await self._uow.ledger.published_rules() or current
            current.status = "superseded"
            await self._uow.flush()
            log.info("commission plan v%s (the shipped default) replaced by the new default", current.version)
            upgraded = await self._uow.ledger.published_rules()
            if upgraded is None:
                raise RuntimeError("could not store the new default commission plan")
            return upgraded
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
        return self._choose(await self._history(), paid_at)

    async def _history(self) -> Sequence[RuleVersion]:
        """Published and superseded versions, newest first; never empty."""
        versions = await self._uow.ledger.rule_history()
        if not versions:
            await self.ensure_plan()
            versions = await self._uow.ledger.rule_history()
        return versions

    def _choose(self, history: Sequence[RuleVersion], paid_at: datetime) -> tuple[int, Plan]:
        chosen = next((v for v in history if v.published_at and v.published_at <= paid_at), history[-1])
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
        (settled,) = await self.ingest_orders([order], source=source)
        if isinstance(settled, CurrencyNotInPlan):
            raise settled
        return settled

    async def ingest_orders(
        self, orders: Sequence[OrderIn], *, source: str = "api"
    ) -> list[Settlement | CurrencyNotInPlan]:
        """Settle a batch of orders in this unit of work, with a fixed number of statements per batch.

        The result for each order, in the given order, is what `ingest_order` returns for it alone, or the
        `CurrencyNotInPlan` it would raise. Orders are claimed first (one multi-row INSERT that skips ids already
        there), so attribution, fraud checks and commission are computed only for orders this call recorded;
        an id repeated within the batch is a replay of its first occurrence. Customer bindings made by an earlier
        order of the batch count for the later ones, as if they had arrived one by one.
        """
        uow, now = self._uow, self._ctx.clock.now()
        history = await self._history()
        results: list[Settlement | CurrencyNotInPlan | None] = [None] * len(orders)
        first: dict[str, int] = {}
        repeats: list[int] = []
        plans: dict[int, tuple[int, Plan]] = {}
        for i, order in enumerate(orders):
            version, plan = self._choose(history, order.paid_at)
            if order.currency != plan.currency:
                results[i] = CurrencyNotInPlan(plan.currency)
            elif order.order_id in first:
                repeats.append(i)
            else:
                first[order.order_id] = i
                plans[i] = (version, plan)
        fingerprints = {i: payload_fingerprint(orders[i]) for i in [*first.values(), *repeats]}
        claimed = await uow.ledger.claim_orders(
            [self._order_values(orders[i], source, fingerprints[i], now) for i in sorted(first.values())]
        )
        fresh = [i for i in sorted(first.values()) if orders[i].order_id in claimed]
        settled = await self._settle_claimed(
            [(orders[i], claimed[orders[i].order_id], plans[i]) for i in fresh], source
        )
        for i, result in zip(fresh, settled, strict=True):
            results[i] = Settlement(Outcome.CREATED, result)
        # Replays: ids that were there before this call, and repeats within the batch.
        pending = [i for i, result in enumerate(results) if result is None]
        if pending:
            existing = await uow.ledger.orders_by_external(source, {orders[i].order_id for i in pending})
            entries = await uow.ledger.entries_of_orders([row.id for row in existing.values()])
            for i in pending:
                row = existing[orders[i].order_id]  # the unique index put it there
                outcome = Outcome.REPLAY if row.fingerprint == fingerprints[i] else Outcome.CONFLICT
                results[i] = Settlement(outcome, _order_result(row, entries.get(row.id, [])))
        return [result for result in results if result is not None]

    @staticmethod
    def _order_values(order: OrderIn, source: str, fingerprint: str, now: datetime) -> dict[str, Any]:
        return {
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
                {"sku": i.sku, "category": i.category, "quantity": i.quantity, "unit_price_minor": i.unit_price_minor}
                for i in order.items
            ],
            "paid_at": order.paid_at,
            "rules_version": None,
            "status": "unattributed",
            "created_at": now,
        }

    async def _settle_claimed(
        self, claimed: Sequence[tuple[OrderIn, int, tuple[int, Plan]]], source: str
    ) -> list[dict[str, Any]]:
        """Attribute, check and post the commission of orders just claimed; their API results, in order.

        Reads what the batch needs in a handful of set-based queries, decides in memory, then writes each kind
        of row with one multi-row statement."""
        if not claimed:
            return []
        uow = self._uow
        facts = await self._batch_facts(claimed, source)
        writes = _Writes(events=facts.redemptions)
        results = [
            self._settle_one(order, order_id=order_id, plan_in_force=plan, facts=facts, writes=writes, source=source)
            for order, order_id, plan in claimed
        ]
        await uow.ledger.set_attributions(writes.attributions)
        await uow.ledger.bind_customers(writes.bindings)
        await uow.ledger.add_flags(writes.flags)
        await uow.ledger.post_many(writes.lines)
        await uow.events.add_many(writes.events)
        if writes.notices:
            await uow.outbox.enqueue_rows(sorted(writes.notices, key=lambda row: row["dedupe_key"]))
            uow.outbox_dirty = True  # at worst a needless wake-up of the sender, if every key was there
        for (order, order_id, _), result in zip(claimed, results, strict=True):
            for refund in facts.parked.get(order.order_id, []):  # refunds that arrived before their order
                row = await uow.ledger.order_by_id(order_id)
                assert row is not None
                if refund.currency == row.currency and refund.amount_minor <= row.amount_minor - row.refunded_minor:
                    await self._apply_refund(row, refund)
                    result.update(_order_result(row, await uow.ledger.entries_of_order(order_id)))
        return results

    async def _batch_facts(self, claimed: Sequence[tuple[OrderIn, int, tuple[int, Plan]]], source: str) -> _BatchFacts:
        uow = self._uow
        orders = [order for order, _, _ in claimed]
        by_code = await uow.partners.by_invite_codes({o.partner_code for o in orders if o.partner_code})
        coupon_owner, redemptions = await self._redeem_coupons(claimed, source)
        bound = await uow.ledger.customer_owners({o.customer_id for o in orders})
        partners = {p.id: p for p in by_code.values()}
        await self._load_partners(partners, {*coupon_owner.values(), *bound.values()})
        await self._load_partners(partners, {a for p in list(partners.values()) for a in ancestor_ids(p)[:2]})
        window = timedelta(minutes=self._ctx.fraud_velocity_minutes)
        paid_times = await uow.ledger.customer_paid_times(
            {o.customer_id for o in orders},
            min(o.paid_at for o in orders) - window,
            max(o.paid_at for o in orders),
        )  # the batch's own orders are among them: they were claimed already
        by_customer: dict[str, list[datetime]] = {}
        for customer, paid_at in paid_times:
            by_customer.setdefault(customer, []).append(paid_at)
        return _BatchFacts(
            by_code=by_code,
            coupon_owner=coupon_owner,
            bound=bound,
            partners=partners,
            paid_times=by_customer,
            parked=await uow.ledger.parked_refunds_for([o.order_id for o in orders]),
            redemptions=redemptions,
            velocity=VelocityRule(limit=self._ctx.fraud_velocity_orders, minutes=self._ctx.fraud_velocity_minutes),
        )

    async def _redeem_coupons(
        self, claimed: Sequence[tuple[OrderIn, int, tuple[int, Plan]]], source: str
    ) -> tuple[dict[str, int], list[dict[str, Any]]]:
        """Record each claimed order's use of a partner's coupon that was valid when it was paid; the owners by
        order id, and the `coupon_redeemed` events. One by one, in order: each use counts against the code's
        remaining uses before the next order is checked (orders with coupons are few)."""
        uow, now = self._uow, self._ctx.clock.now()
        owners: dict[str, int] = {}
        events: list[dict[str, Any]] = []
        for order, order_id, _ in claimed:
            if not order.coupon:
                continue
            owner = await uow.campaigns.redeemable_owner(order.coupon, order.paid_at)
            if owner is None:
                continue
            owners[order.order_id] = owner
            if await uow.campaigns.record_redemption(order.coupon, order_id, owner, now):
                events.append(
                    {
                        "partner_id": owner,
                        "type": EventType.COUPON_REDEEMED.value,
                        "payload": {"code": order.coupon, "order_id": order.order_id},
                        "occurred_at": now,
                        "source": _event_source(source),
                        "dedupe_key": None,
                    }
                )
        return owners, events

    def _settle_one(
        self,
        order: OrderIn,
        *,
        order_id: int,
        plan_in_force: tuple[int, Plan],
        facts: _BatchFacts,
        writes: _Writes,
        source: str,
    ) -> dict[str, Any]:
        """Decide one claimed order: its attribution, flags, commission, event and notices go into `writes`."""
        now = self._ctx.clock.now()
        version, plan = plan_in_force
        result: dict[str, Any] = {
            "order_id": order.order_id,
            "status": "unattributed",
            "attribution": "none",
            "rules_version": None,
            "amount": str(Money(order.amount_minor, order.currency).amount),
            "currency": order.currency,
            "refunded": str(Money(0, order.currency).amount),
            "commission": [],
        }
        partner, how = facts.attribute(order)
        if partner is None:
            return result
        if how != "customer" and order.customer_id not in facts.bound:
            facts.bound[order.customer_id] = partner.id  # first touch; later orders of the batch see it
            writes.bindings.append({"customer_id": order.customer_id, "partner_id": partner.id, "bound_at": now})
        flags = facts.flags(order, partner, how, plan)
        writes.flags += [
            {"order_id": order_id, "kind": flag.kind.value, "detail": flag.detail, "status": "open", "created_at": now}
            for flag in flags
        ]
        status = "held" if flags else "settled"
        writes.attributions.append(
            {
                "order_id": order_id,
                "partner_id": partner.id,
                "attribution": how,
                "status": status,
                "rules_version": version,
            }
        )
        result.update(status=status, attribution=how, rules_version=version)
        chain = [partner]
        for upline_id in ancestor_ids(partner)[:2]:
            upline = facts.partners.get(upline_id)
            if upline is None:
                break
            chain.append(upline)
        commission = self._commission(
            order, order_id=order_id, source=source, chain=chain, version=version, plan=plan, held=bool(flags)
        )
        writes.lines += commission
        earned = [line for line in commission if line["partner_id"] is not None]
        result["commission"] = [
            {
                "partner_id": line["partner_id"],
                "tier": line["tier"],
                "amount": str(Money(line["amount_minor"], line["currency"]).amount),
                "kind": line["kind"],
                "bucket": line["bucket"],
            }
            for line in earned
        ]
        if not flags:  # a held order's earners hear of it when an admin releases it
            writes.notices += [
                self._earned_notice(facts.partners[line["partner_id"]], partner, order, source, line) for line in earned
            ]
        writes.events.append(
            {
                "partner_id": partner.id,
                "type": EventType.ORDER_ATTRIBUTED.value,
                "payload": {"order_id": order.order_id, "amount_minor": order.amount_minor, "currency": order.currency},
                "occurred_at": now,
                "source": _event_source(source),
                "dedupe_key": None,
            }
        )
        return result

    async def _load_partners(self, partners: dict[int, Partner], ids: Collection[int | None]) -> None:
        missing = {i for i in ids if i is not None and i not in partners}
        partners.update(await self._uow.partners.by_ids(missing))

    def _commission(
        self,
        order: OrderIn,
        *,
        order_id: int,
        source: str,
        chain: Sequence[Partner],
        version: int,
        plan: Plan,
        held: bool,
    ) -> list[dict[str, Any]]:
        """The order's commission transaction: per commission line, the earner's pending entry and the platform's
        opposite entry. A held order's lines get no `available_at` (the hold job never releases them): an admin
        releases or voids them (bot.services.fraud)."""
        plan_order = PlanOrder(
            id=order.order_id,
            amount=Money(order.amount_minor, order.currency),
            items=tuple(
                PlanItem(Money(i.unit_price_minor * i.quantity, order.currency), i.category) for i in order.items
            ),
            self_purchase=is_self_purchase(order.customer_id, chain[0].tg_user_id),
        )
        available_at = None if held else order.paid_at + timedelta(days=plan.hold_days)
        base = {
            "txn": f"order:{source}:{order.order_id}",
            "currency": order.currency,
            "kind": "commission",
            "order_id": order_id,
            "rules_version": version,
            "created_at": self._ctx.clock.now(),
        }
        entries: list[dict[str, Any]] = []
        for line in commission_lines(
            plan, plan_order, [Earner(p.id, p.level, eligible=p.commission_eligible) for p in chain]
        ):
            entries.append(
                {
                    **base,
                    "line": len(entries) + 1,
                    "account": f"partner:{line.earner_id}",
                    "partner_id": line.earner_id,
                    "bucket": "pending",
                    "amount_minor": line.amount.minor,
                    "tier": line.tier,
                    "level": line.level,
                    "rate": str(line.rate),
                    "base_minor": line.base.minor,
                    "rule": line.rule,
                    "available_at": available_at,
                }
            )
            entries.append(
                {
                    **base,
                    "line": len(entries) + 1,
                    "account": PLATFORM_COMMISSION,
                    "partner_id": None,
                    "bucket": "commission",
                    "amount_minor": -line.amount.minor,
                    "tier": None,
                    "level": None,
                    "rate": None,
                    "base_minor": None,
                    "rule": None,
                    "available_at": None,
                }
            )
        return entries

    def _earned_notice(
        self, earner: Partner, seller: Partner, order: OrderIn, source: str, line: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The outbox row telling an earner what they earned: "You earned ¥X, pending until D" (L1), or the
        upline's "your team member B sold ¥Y, you earned ¥Z" (L2)."""
        language = language_of(self._ctx, earner)
        t = self._ctx.translator.texts(language)
        available_at: datetime = line["available_at"]
        params = {
            "amount": format_money(Money(line["amount_minor"], order.currency), language),
            "order": order.order_id,
            "total": format_money(Money(order.amount_minor, order.currency), language),
            "date": available_at.astimezone(self._zone(earner)).strftime("%Y-%m-%d"),
            "member": display_name(seller),
        }
        key = "wallet.notice.earned" if line["tier"] == 1 else "wallet.notice.team_earned"
        return text_row(
            self._ctx,
            recipient=earner,
            dedupe_key=f"earned:{source}:{order.order_id}:{line['tier']}:{earner.id}",
            text=t(key, **params),
        )

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
            if order.status == "held":  # nothing left for an admin to release or void
                await uow.ledger.close_open_flags(order.id, "refunded", self._ctx.clock.now())
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
