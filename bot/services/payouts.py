"""Withdrawals: a partner asks for their available balance, an admin approves or rejects, finance pays.

Money moves as balanced, once-only ledger transactions of the partner's buckets:
  request  `withdrawal:<id>:request`  available −X, requested +X
  reject   `withdrawal:<id>:reject`   requested −X, available +X
  paid     `withdrawal:<id>:paid`     requested −X, paid +X
Approval changes the status only. Every state change happens in the database only from the state it
expects, so two admins (or a double press) cannot decide one request twice, and only an approved request
can be paid: paid never exceeds approved. The available balance is net of refunds of commission already
paid out, so a negative balance is deducted from the next withdrawal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.errors import UsageError
from bot.domain.money import Money, MoneyError, format_money, parse_money
from bot.domain.roles import Role
from bot.services.acting import Audited, language_of, require_admin
from bot.services.context import ServiceContext
from bot.services.ledger import SettlementService
from bot.services.notify import enqueue_text, partner_zone
from bot.services.partners import display_name
from bot.services.views import PartnerView
from storage.models import Partner, Withdrawal
from storage.uow import UnitOfWork

OPEN = ("requested", "approved")
"""Requests still waiting for an admin or for the payment."""
ALLOWED_FROM: Mapping[str, tuple[str, ...]] = {
    "approve": ("requested",),
    "reject": ("requested", "approved"),
    "pay": ("approved",),
}
RESULT: Mapping[str, str] = {"approve": "approved", "reject": "rejected", "pay": "paid"}
LIST_LIMIT = 20
REASON_MAX = 500
REFERENCE_MAX = 128


@dataclass(frozen=True, slots=True)
class WithdrawOverview:
    """What /withdraw without an amount shows."""

    available: Money
    """Net of refunds of commission already paid out: it can be negative."""
    minimum: Money


@dataclass(frozen=True, slots=True)
class WithdrawalView:
    id: int
    partner_id: int
    partner_name: str
    invite_code: str
    amount: Money
    status: str
    """requested | approved | rejected | paid."""
    reason: str | None
    reference: str | None
    created_at: datetime
    decided_at: datetime | None
    paid_at: datetime | None


@dataclass(frozen=True, slots=True)
class PayoutList:
    items: tuple[WithdrawalView, ...]
    """Oldest first."""
    zone: ZoneInfo
    """The admin's time zone, for dates."""


@dataclass(frozen=True, slots=True)
class Requested:
    withdrawal: WithdrawalView
    available: Money
    """What is left available after the request."""
    requested: Money
    """Everything the partner has asked for and not been paid yet, this request included."""


@dataclass(frozen=True, slots=True)
class Decision:
    withdrawal: WithdrawalView
    changed: bool
    """False: the request was already in the state asked for, and nothing was written."""


def _view(row: Withdrawal, partner: Partner) -> WithdrawalView:
    return WithdrawalView(
        id=row.id,
        partner_id=row.partner_id,
        partner_name=display_name(partner),
        invite_code=partner.invite_code,
        amount=Money(row.amount_minor, row.currency),
        status=row.status,
        reason=row.reason,
        reference=row.reference,
        created_at=row.created_at,
        decided_at=row.decided_at,
        paid_at=row.paid_at,
    )


class PayoutService(Audited):
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    # ------------------------------------------------------------------ the partner's side

    async def overview(self, partner_id: int) -> WithdrawOverview:
        currency, minimum = await self._plan_terms()
        balances = await self._uow.ledger.balances(partner_id)
        return WithdrawOverview(Money(balances.get(("available", currency), 0), currency), minimum)

    async def request(self, partner: PartnerView, args: str | None) -> Requested:
        """Ask for `args` (an amount such as 60 or 60.50) out of the available balance.

        Refused, writing nothing, below the plan's minimum or above what is available."""
        currency, minimum = await self._plan_terms()
        amount = self._parse_amount(args, currency)
        language = partner.language
        await self._uow.withdrawals.lock_partner(partner.id)
        available = Money((await self._uow.ledger.balances(partner.id)).get(("available", currency), 0), currency)
        if amount < minimum:
            raise UsageError(
                "payouts.below_minimum", amount=format_money(amount, language), minimum=format_money(minimum, language)
            )
        if amount > available:
            raise UsageError(
                "payouts.over_available",
                amount=format_money(amount, language),
                available=format_money(available, language),
            )
        now = self._ctx.clock.now()
        row = await self._uow.withdrawals.add(
            Withdrawal(
                partner_id=partner.id,
                amount_minor=amount.minor,
                currency=currency,
                status="requested",
                created_at=now,
            )
        )
        await self._post(row, "request", "withdrawal", (("available", -amount.minor), ("requested", amount.minor)))
        balances = await self._uow.ledger.balances(partner.id)
        left = Money(balances.get(("available", currency), 0), currency)
        if left.minor < 0:
            # Another request got in first. The PostgreSQL lock makes this impossible there; on SQLite the
            # balance above may have been read before that request committed, and this re-check catches it.
            raise UsageError(
                "payouts.over_available",
                amount=format_money(amount, language),
                available=format_money(left + amount, language),
            )
        owner = await self._uow.partners.get(partner.id)
        assert owner is not None
        await self._tell_admins(row, owner)
        return Requested(_view(row, owner), left, Money(balances.get(("requested", currency), 0), currency))

    # ------------------------------------------------------------------ the admins' side

    async def open_requests(self, actor: PartnerView) -> PayoutList:
        """Requests waiting for a decision or a payment, oldest first."""
        require_admin(actor)
        admin = await self._uow.partners.get(actor.id)
        zone = partner_zone(self._ctx, admin) if admin is not None else self._ctx.timezone
        items = tuple(_view(w, p) for w, p in await self._uow.withdrawals.with_status(OPEN, LIST_LIMIT))
        return PayoutList(items, zone)

    async def prepare(self, actor: PartnerView, withdrawal_id: int, action: str) -> Decision:
        """Check that `action` (reject | pay) can be taken before asking the admin for its reason or
        reference. `changed` False: it was taken already."""
        require_admin(actor)
        row, partner = await self._load(withdrawal_id)
        return Decision(_view(row, partner), self._allowed(row, action))

    async def approve(self, actor: PartnerView, withdrawal_id: int) -> Decision:
        return await self._decide(actor, withdrawal_id, "approve", {})

    async def reject(self, actor: PartnerView, withdrawal_id: int, reason: str) -> Decision:
        """Reject with a reason for the partner; the amount goes back to their available balance."""
        text = " ".join(reason.split())
        if not text or len(text) > REASON_MAX:
            raise UsageError("payouts.bad_reason", limit=REASON_MAX)
        return await self._decide(actor, withdrawal_id, "reject", {"reason": text})

    async def mark_paid(self, actor: PartnerView, withdrawal_id: int, reference: str) -> Decision:
        """Record that an approved request was paid, with the payment's reference."""
        text = reference.strip()
        if not text or len(text) > REFERENCE_MAX or any(c in text for c in "\r\n"):
            raise UsageError("payouts.bad_reference", limit=REFERENCE_MAX)
        return await self._decide(actor, withdrawal_id, "pay", {"reference": text})

    # ------------------------------------------------------------------ internals

    async def _plan_terms(self) -> tuple[str, Money]:
        _, plan = await SettlementService(self._uow, self._ctx).plan_for(self._ctx.clock.now())
        return plan.currency, plan.min_withdrawal

    @staticmethod
    def _parse_amount(args: str | None, currency: str) -> Money:
        text = (args or "").strip()
        if not text:
            raise UsageError("payouts.usage")
        try:
            return parse_money(text, currency)
        except MoneyError:
            raise UsageError("payouts.bad_amount", value=text) from None

    async def _load(self, withdrawal_id: int) -> tuple[Withdrawal, Partner]:
        row = await self._uow.withdrawals.get(withdrawal_id)
        if row is None:
            raise UsageError("payouts.not_found", id=withdrawal_id)
        partner = await self._uow.partners.get(row.partner_id)
        assert partner is not None  # a foreign key
        return row, partner

    @staticmethod
    def _allowed(row: Withdrawal, action: str) -> bool:
        """True when `action` may change the request; False when it is in the resulting state already.
        Any other state refuses it with a message naming that state."""
        if row.status in ALLOWED_FROM[action]:
            return True
        if row.status == RESULT[action]:
            return False
        raise UsageError(f"payouts.refused.{row.status}", id=row.id)

    async def _decide(self, actor: PartnerView, withdrawal_id: int, action: str, extra: dict[str, Any]) -> Decision:
        require_admin(actor)
        row, partner = await self._load(withdrawal_id)
        target = f"withdrawal:{withdrawal_id}"
        if not self._allowed(row, action):
            self._audit(actor, f"payout_{action}", target, "noop", {})
            return Decision(_view(row, partner), changed=False)
        now = self._ctx.clock.now()
        values: dict[str, Any] = {"status": RESULT[action], **extra}
        if action == "pay":
            values["paid_at"] = now
        else:
            values.update(decided_at=now, decided_by=actor.id)
        if not await self._uow.withdrawals.transition(withdrawal_id, ALLOWED_FROM[action], values):
            # Someone decided it between our read and our write: answer as if we had come second.
            row, partner = await self._load(withdrawal_id)
            self._allowed(row, action)
            self._audit(actor, f"payout_{action}", target, "noop", {})
            return Decision(_view(row, partner), changed=False)
        row, partner = await self._load(withdrawal_id)
        x = row.amount_minor
        if action == "reject":
            await self._post(row, "reject", "withdrawal", (("requested", -x), ("available", x)))
        elif action == "pay":
            await self._post(row, "paid", "payout", (("requested", -x), ("paid", x)))
        details = {"amount": str(Money(x, row.currency).amount), "currency": row.currency, **extra}
        self._audit(actor, f"payout_{action}", target, "ok", details)
        await self._notify(row, partner, RESULT[action])
        return Decision(_view(row, partner), changed=True)

    async def _post(self, row: Withdrawal, step: str, kind: str, moves: tuple[tuple[str, int], ...]) -> None:
        now = self._ctx.clock.now()
        lines = [
            {
                "txn": f"withdrawal:{row.id}:{step}",
                "line": number,
                "account": f"partner:{row.partner_id}",
                "partner_id": row.partner_id,
                "bucket": bucket,
                "amount_minor": amount,
                "currency": row.currency,
                "kind": kind,
                "created_at": now,
            }
            for number, (bucket, amount) in enumerate(moves, start=1)
        ]
        if not await self._uow.ledger.post(lines):
            raise RuntimeError(f"withdrawal {row.id}: the {step} transaction was posted before")

    async def _notify(self, row: Withdrawal, partner: Partner, status: str) -> None:
        language = language_of(self._ctx, partner)
        t = self._ctx.translator.texts(language)
        text = t(
            f"payouts.notice.{status}",
            id=row.id,
            amount=format_money(Money(row.amount_minor, row.currency), language),
            reason=row.reason or "",
            reference=row.reference or "",
        )
        await enqueue_text(
            self._uow, self._ctx, recipient=partner, dedupe_key=f"withdrawal:{row.id}:{status}", text=text
        )

    async def _tell_admins(self, row: Withdrawal, requester: Partner) -> None:
        """A new request: every admin (stored or configured) hears of it, with the amount."""
        admins = {p.id: p for p in await self._uow.partners.with_roles([Role.ADMIN.value])}
        for tg_id in sorted(self._ctx.admin_ids):
            configured = await self._uow.partners.by_tg_id(tg_id)
            if configured is not None:
                admins[configured.id] = configured
        for admin in admins.values():
            language = language_of(self._ctx, admin)
            text = self._ctx.translator.texts(language)(
                "payouts.notice.new_request",
                id=row.id,
                name=display_name(requester),
                code=requester.invite_code,
                amount=format_money(Money(row.amount_minor, row.currency), language),
            )
            await enqueue_text(
                self._uow, self._ctx, recipient=admin, dedupe_key=f"withdrawal:{row.id}:new:{admin.id}", text=text
            )
