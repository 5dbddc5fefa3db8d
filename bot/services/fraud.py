"""Fraud holds: flag suspicious orders at settlement, and let admins release or void them (/flags).

The hold: a flagged order is `held`; its commission is posted as usual but the partner lines carry no
`available_at`, so `SettlementService.release_matured` never releases them (ledger entries are append-only and
are never updated). An admin then decides, once (a conditional update of the order's status):

- Release: each held commission line is released now with a `release:<entry id>` transaction (pending → available,
  what refunds left of it), exactly as the hold job does, so `was_released` stays true; the admin's clearance
  replaces what was left of the hold. The order becomes `settled`.
- Void: each held commission line is reversed (kind `reversal`, bucket pending) in a `void:<order id>`
  transaction; the order becomes `void` and the seller is told, politely.

Both are audited; all open flags of the order take the decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from bot.domain.errors import UsageError
from bot.domain.money import Money, format_money
from bot.services.acting import Audited, language_of, require_admin
from bot.services.context import ServiceContext
from bot.services.notify import enqueue_text
from bot.services.partners import display_name
from bot.services.releases import PLATFORM_COMMISSION, release_entry
from bot.services.views import PartnerView
from storage.models import LedgerEntry, Order, OrderFlag, Partner
from storage.uow import UnitOfWork

LIST_LIMIT = 20


@dataclass(frozen=True, slots=True)
class FlagView:
    id: int
    kind: str
    detail: dict[str, Any]
    status: str
    order_id: str
    order_status: str
    amount: Money
    partner_name: str
    invite_code: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FlagList:
    items: list[FlagView]
    zone: ZoneInfo


@dataclass(frozen=True, slots=True)
class FlagDecision:
    flag: FlagView
    changed: bool
    """False when the order had been decided already (or is no longer held): nothing was written."""


class FraudService(Audited):
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    # ------------------------------------------------------------------ /flags

    async def open_flags(self, actor: PartnerView, limit: int = LIST_LIMIT) -> FlagList:
        require_admin(actor)
        result = await self._uow.session.execute(
            select(OrderFlag, Order, Partner)
            .join(Order, Order.id == OrderFlag.order_id)
            .join(Partner, Partner.id == Order.partner_id)
            .where(OrderFlag.status == "open")
            .order_by(OrderFlag.created_at.desc(), OrderFlag.id.desc())
            .limit(limit)
        )
        return FlagList([_view(f, o, p) for f, o, p in result.all()], self._ctx.timezone)

    async def release(self, actor: PartnerView, flag_id: int) -> FlagDecision:
        return await self._decide(actor, flag_id, "release")

    async def void(self, actor: PartnerView, flag_id: int) -> FlagDecision:
        return await self._decide(actor, flag_id, "void")

    async def _load(self, flag_id: int) -> FlagView:
        result = await self._uow.session.execute(
            select(OrderFlag, Order, Partner)
            .join(Order, Order.id == OrderFlag.order_id)
            .join(Partner, Partner.id == Order.partner_id)
            .where(OrderFlag.id == flag_id)
            .execution_options(populate_existing=True)
        )
        found = result.first()
        if found is None:
            raise UsageError("flags.not_found", id=flag_id)
        return _view(*found)

    async def _decide(self, actor: PartnerView, flag_id: int, action: str) -> FlagDecision:
        require_admin(actor)
        view = await self._load(flag_id)
        flag = await self._uow.session.get(OrderFlag, flag_id)
        assert flag is not None
        session, now = self._uow.session, self._ctx.clock.now()
        target = f"order_flag:{flag_id}"
        moved = await session.execute(
            update(Order)
            .where(Order.id == flag.order_id, Order.status == "held")
            .values(status="settled" if action == "release" else "void")
            .execution_options(synchronize_session=False)
        )
        if not getattr(moved, "rowcount", 0):
            self._audit(actor, f"flag_{action}", target, "noop", {})
            return FlagDecision(view, changed=False)
        await session.execute(
            update(OrderFlag)
            .where(OrderFlag.order_id == flag.order_id, OrderFlag.status == "open")
            .values(status="released" if action == "release" else "voided", decided_at=now, decided_by=actor.id)
            .execution_options(synchronize_session=False)
        )
        view = await self._load(flag_id)
        order = await self._uow.ledger.order_by_id(flag.order_id)
        assert order is not None
        entries = await self._uow.ledger.entries_of_order(order.id)
        held = [
            e
            for e in entries
            if e.kind == "commission" and e.partner_id is not None and e.bucket == "pending" and e.available_at is None
        ]
        if action == "release":
            moved_minor = await self._release(held)
        else:
            moved_minor = await self._void(order, held, entries)
        details = {"order_id": order.external_id, "amount": str(Money(moved_minor, order.currency).amount)}
        self._audit(actor, f"flag_{action}", target, "ok", details)
        if action == "void":
            await self._notify_void(order)
        return FlagDecision(view, changed=True)

    async def _release(self, held: Sequence[LedgerEntry]) -> int:
        uow = self._uow
        total = 0
        for entry in held:
            moved = await release_entry(uow, self._ctx, entry)
            if moved is not None and moved > 0 and entry.partner_id is not None:
                total += moved
        return total

    async def _void(self, order: Order, held: Sequence[LedgerEntry], entries: Sequence[LedgerEntry]) -> int:
        now = self._ctx.clock.now()
        lines: list[dict[str, Any]] = []
        total = 0
        for entry in held:
            reversed_so_far = sum(
                e.amount_minor
                for e in entries
                if e.kind == "reversal"
                and e.partner_id == entry.partner_id
                and e.tier == entry.tier
                and e.rule == entry.rule
            )
            remaining = entry.amount_minor + reversed_so_far
            if remaining == 0:
                continue
            total += remaining
            base = {
                "txn": f"void:{order.id}",
                "currency": order.currency,
                "kind": "reversal",
                "order_id": order.id,
                "tier": entry.tier,
                "level": entry.level,
                "rate": entry.rate,
                "rule": entry.rule,
                "rules_version": entry.rules_version,
                "created_at": now,
            }
            lines.append(
                {
                    **base,
                    "line": len(lines) + 1,
                    "account": entry.account,
                    "partner_id": entry.partner_id,
                    "bucket": "pending",
                    "amount_minor": -remaining,
                    "base_minor": None,
                }
            )
            lines.append(
                {
                    **base,
                    "line": len(lines) + 1,
                    "account": PLATFORM_COMMISSION,
                    "partner_id": None,
                    "bucket": "commission",
                    "amount_minor": remaining,
                    "base_minor": None,
                }
            )
        await self._uow.ledger.post(lines)
        return total

    async def _notify_void(self, order: Order) -> None:
        if order.partner_id is None:
            return
        seller = await self._uow.partners.get(order.partner_id)
        if seller is None:
            return
        language = language_of(self._ctx, seller)
        text = self._ctx.translator.texts(language)(
            "flags.notice.voided",
            order=order.external_id,
            total=format_money(Money(order.amount_minor, order.currency), language),
        )
        await enqueue_text(self._uow, self._ctx, recipient=seller, dedupe_key=f"flag-void:{order.id}", text=text)

    # ------------------------------------------------------------------ helpers


def _view(flag: OrderFlag, order: Order, partner: Partner) -> FlagView:
    return FlagView(
        id=flag.id,
        kind=flag.kind,
        detail=dict(flag.detail),
        status=flag.status,
        order_id=order.external_id,
        order_status=order.status,
        amount=Money(order.amount_minor, order.currency),
        partner_name=display_name(partner),
        invite_code=partner.invite_code,
        created_at=flag.created_at,
    )
