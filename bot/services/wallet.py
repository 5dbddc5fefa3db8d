"""A partner's wallet: balances per bucket, the recent ledger lines with what produced them, and the rates of
the plan in force. A dividend line is explained by its pool, period and recipients (see bot.services.pools)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.domain.money import Money
from bot.services.context import ServiceContext
from bot.services.ledger import SettlementService
from bot.services.notify import partner_zone
from bot.services.pools import DividendFacts, PoolService
from storage.models import Partner
from storage.uow import UnitOfWork

BUCKETS = ("pending", "available", "requested", "paid")
"""A partner's money moves left to right: held, withdrawable, asked for, paid out."""
STATEMENT_LINES = 10


class UnknownPartner(LookupError):
    """The partner id does not exist (the middleware registers everyone, so this is a bug in the caller)."""


@dataclass(frozen=True, slots=True)
class Balance:
    """One currency's buckets, each zero when the partner has nothing there."""

    currency: str
    buckets: Mapping[str, Money]


@dataclass(frozen=True, slots=True)
class StatementLine:
    kind: str
    """commission | reversal | release | withdrawal | payout | dividend | adjustment."""
    bucket: str
    amount: Money
    tier: int | None
    level: str | None
    rate: Decimal | None
    base: Money | None
    order_id: str | None
    """The shop's order id (A1001), when the line belongs to an order."""
    order_amount: Money | None
    rules_version: int | None
    available_at: datetime | None
    created_at: datetime
    dividend: DividendFacts | None = None
    """For a pool's line: the pool, period, split and recipient count that explain it."""


@dataclass(frozen=True, slots=True)
class WalletView:
    balances: tuple[Balance, ...]
    """The plan's currency first (shown even when empty), then any other currency the partner holds."""
    lines: tuple[StatementLine, ...]
    """Newest first."""
    zone: ZoneInfo
    """The partner's time zone, for dates."""


@dataclass(frozen=True, slots=True)
class LevelRates:
    name: str
    titles: Mapping[str, str]
    """Title by language (zh, en)."""
    rates: tuple[Decimal, ...]
    """L1, L2 (and L3 when the plan pays it)."""


@dataclass(frozen=True, slots=True)
class RatesView:
    rules_version: int
    levels: tuple[LevelRates, ...]
    """Lowest first."""
    current: LevelRates
    next: LevelRates | None
    """None at the top level."""


class WalletService:
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    async def _partner(self, partner_id: int) -> Partner:
        partner = await self._uow.partners.get(partner_id)
        if partner is None:
            raise UnknownPartner(partner_id)
        return partner

    async def wallet(self, partner_id: int) -> WalletView:
        """Balances per bucket and currency, and the last ten lines explained by their order and rule."""
        partner = await self._partner(partner_id)
        _, plan = await SettlementService(self._uow, self._ctx).plan_for(self._ctx.clock.now())
        totals = await self._uow.ledger.balances(partner_id)
        currencies = [plan.currency, *sorted({c for _, c in totals} - {plan.currency})]
        balances = tuple(
            Balance(currency, {bucket: Money(totals.get((bucket, currency), 0), currency) for bucket in BUCKETS})
            for currency in currencies
        )
        entries = await self._uow.ledger.statement_lines(partner_id, STATEMENT_LINES)
        orders = await self._uow.ledger.orders_by_ids([e.order_id for e in entries if e.order_id is not None])
        dividends = await PoolService(self._uow, self._ctx).dividend_facts(
            (e.txn, e.rule, e.rules_version) for e in entries if e.kind == "dividend"
        )
        lines = []
        for entry in entries:
            order = orders.get(entry.order_id) if entry.order_id is not None else None
            lines.append(
                StatementLine(
                    kind=entry.kind,
                    bucket=entry.bucket,
                    amount=Money(entry.amount_minor, entry.currency),
                    tier=entry.tier,
                    level=entry.level,
                    rate=Decimal(entry.rate) if entry.rate is not None else None,
                    base=Money(entry.base_minor, entry.currency) if entry.base_minor is not None else None,
                    order_id=order.external_id if order else None,
                    order_amount=Money(order.amount_minor, order.currency) if order else None,
                    rules_version=entry.rules_version,
                    available_at=entry.available_at,
                    created_at=entry.created_at,
                    dividend=dividends.get(entry.txn) if entry.kind == "dividend" else None,
                )
            )
        return WalletView(balances, tuple(lines), partner_zone(self._ctx, partner))

    async def rates(self, partner_id: int) -> RatesView:
        """The published plan's rates for every level, the partner's own level and the one above it."""
        partner = await self._partner(partner_id)
        version, plan = await SettlementService(self._uow, self._ctx).plan_for(self._ctx.clock.now())
        tiers = (1, 2, 3) if plan.l3_enabled else (1, 2)
        levels = tuple(
            LevelRates(name, {"zh": level.title.zh, "en": level.title.en}, tuple(level.rate(t) for t in tiers))
            for name, level in plan.levels.items()
        )
        # A level the plan no longer has counts as the first one, where everybody starts.
        here = next((i for i, lvl in enumerate(levels) if lvl.name == partner.level), 0)
        following = levels[here + 1] if here + 1 < len(levels) else None
        return RatesView(version, levels, levels[here], following)
