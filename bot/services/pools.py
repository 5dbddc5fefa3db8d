"""Dividend pools (分红): preview a closed period's split, post it once, and tell the admins when one closes.

Decisions, for the record:
- GMV of a period: attributed orders (a partner is set) paid within the period's local days, status neither
  void nor held, counted as amount minus refunded. The pool total is `percent_of(GMV, share)`. A team pool
  (`team: <invite code>`) counts only the orders of the root partner's subtree, and pays only its members; an
  invite code nobody has is a `pools.error` with the reason.
- Qualifying: the pool's `qualify` condition and the plan's `eligibility` (when set) must both hold, evaluated
  on metrics as of the period's end, so a preview is the same whenever it is run. The metrics service
  (bot.services.metrics) counts up to *now*, so this module computes the ones it can fix at the period's end:
  `level` (the partner's current level: levels are not historised per day), `sales_30d` and `gmv_30d_minor`
  (the 30 days before the period's end), `recruits_total` (direct recruits who joined before the end) and
  `days_since_join` (at the end). A condition naming another metric is refused with a clear message, rather
  than evaluated on numbers that would change with the day the preview is run.
- Points (split by_points): one per order of the recipient in the period that was not fully refunded.
- Posting: one ledger transaction `pool:<name>:<period>`, kind "dividend"; partner lines go straight to
  "available" (the period is closed, there is no refund window to wait for); one balancing line on
  `platform:dividends`. Each partner line stores rule = "pools.<name>:<period>", rate = the share,
  base_minor = the period's GMV; the number of recipients is the number of partner lines of the same txn.
  The (txn, line) uniqueness makes a second post write nothing, and the answer says so.
- The cap is per partner (see bot.domain.pools); the remainder is shown and kept by the platform.
- Explaining a posted line (/wallet, `dividend_facts`): everything comes from the ledger and the plan version
  the entry records, with no extra column: the pool and period from the rule, the percent and GMV from rate
  and base_minor, the recipients from the partner lines of the same txn, the title, split and cap from the
  plan version.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from bot.callbacks import PoolCallback
from bot.domain.errors import UsageError
from bot.domain.money import Money, format_money, percent_of
from bot.domain.pools import Period, PoolError, parse_period, previous_period, split_pool, weights_for
from bot.domain.roles import Role, has_at_least
from bot.domain.rules import Plan, Pool, load_plan
from bot.services.acting import language_of
from bot.services.context import ServiceContext
from bot.services.ledger import SettlementService
from bot.services.notify import enqueue_text
from bot.services.partners import display_name
from bot.services.views import PartnerView
from storage.models import LedgerEntry, Partner, PoolPreviewSent
from storage.uow import UnitOfWork

PLATFORM_DIVIDENDS = "platform:dividends"
POOL_METRICS = frozenset({"level", "sales_30d", "gmv_30d_minor", "recruits_total", "days_since_join"})
EXCLUDED_STATUSES = ("void", "held")


@dataclass(frozen=True, slots=True)
class Recipient:
    partner_id: int
    name: str
    weight: int
    amount: Money
    capped: bool


@dataclass(frozen=True, slots=True)
class PoolPreview:
    name: str
    title: str
    period: Period
    split: str
    share: Decimal
    gmv: Money
    total: Money
    recipients: tuple[Recipient, ...]
    remainder: Money
    cap: Money | None
    posted: bool
    rules_version: int
    team: str | None = None
    """The display name of the team pool's root partner; None for a network-wide pool."""

    @property
    def cut_by_cap(self) -> Money:
        """The part of the remainder the per-partner cap cut off (the split itself is exact, so when anybody
        has a weight the whole remainder is the cap's cut; otherwise nothing was paid and nothing cut)."""
        if any(r.capped for r in self.recipients):
            return self.remainder
        return Money.zero(self.total.currency)

    @property
    def paid(self) -> Money:
        return self.total - self.remainder


@dataclass(frozen=True, slots=True)
class PoolSummary:
    name: str
    title: str
    period: str
    """The last closed period's label."""
    posted: bool


@dataclass(frozen=True, slots=True)
class PostResult:
    preview: PoolPreview
    posted: bool
    """False when nothing was written: the (pool, period) had been posted before (`preview.posted`), or it had
    nothing to pay (no lines; it stays open for orders that arrive late)."""


@dataclass(frozen=True, slots=True)
class DividendFacts:
    """What explains one posted pool line: which pool and period, how it was shared and between how many."""

    pool: str
    titles: Mapping[str, str]
    """By language; empty when the pool has no title (show `pool`)."""
    period: str
    """The period's label: 2026-11, 2026-W48, 2026-Q4."""
    period_kind: str
    split: str
    recipients: int
    """Partners paid from the pool in that period."""
    cap: Money | None


def pool_title(pool: Pool, name: str, language: str) -> str:
    if pool.title is None:
        return name
    return pool.title.zh if language == "zh" else pool.title.en


def txn_key(name: str, period: str) -> str:
    return f"pool:{name}:{period}"


class PoolService:
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    # ------------------------------------------------------------------ reading

    async def _plan(self) -> tuple[int, Plan]:
        return await SettlementService(self._uow, self._ctx).plan_for(self._ctx.clock.now())

    def _today(self) -> Any:
        return self._ctx.clock.now().astimezone(self._ctx.timezone).date()

    def _utc(self, day: Any) -> datetime:
        return datetime.combine(day, time(), tzinfo=self._ctx.timezone).astimezone(UTC)

    async def is_posted(self, name: str, period: str) -> bool:
        stmt = select(func.count()).select_from(LedgerEntry).where(LedgerEntry.txn == txn_key(name, period))
        return int((await self._uow.session.execute(stmt)).scalar_one()) > 0

    async def pools(self, language: str = "en") -> list[PoolSummary]:
        """The pools of the plan in force, each with its last closed period and whether that was posted."""
        _, plan = await self._plan()
        out = []
        for name, pool in plan.pools.items():
            period = previous_period(self._today(), pool.period)
            out.append(
                PoolSummary(
                    name, pool_title(pool, name, language), period.label, await self.is_posted(name, period.label)
                )
            )
        return out

    async def preview(self, name: str, period: str | None = None, language: str = "en") -> PoolPreview:
        """The pool's total, recipients and amounts for `period` (default: the last closed one)."""
        version, plan = await self._plan()
        pool = plan.pools.get(name)
        if pool is None:
            raise UsageError("pools.unknown", name=name)
        try:
            chosen = parse_period(period, pool.period) if period else previous_period(self._today(), pool.period)
            if chosen.end > self._today():
                raise UsageError("pools.not_closed", period=chosen.label)
            for condition in (pool.qualify, plan.eligibility):
                if condition is not None and not condition.metrics <= POOL_METRICS:
                    missing = ", ".join(sorted(condition.metrics - POOL_METRICS))
                    raise PoolError(
                        f"{condition.text!r}: pools cannot use {missing} yet (only {', '.join(sorted(POOL_METRICS))})"
                    )
            return await self._compute(name, pool, plan, version=version, period=chosen, language=language)
        except PoolError as exc:
            raise UsageError("pools.error", message=str(exc)) from None

    async def _compute(
        self, name: str, pool: Pool, plan: Plan, *, version: int, period: Period, language: str
    ) -> PoolPreview:
        start, end = self._utc(period.start), self._utc(period.end)
        window = end - timedelta(days=30)
        partners = (await self._uow.session.execute(select(Partner).order_by(Partner.id))).scalars().all()
        root: Partner | None = None
        if pool.team is not None:
            root = next((p for p in partners if p.invite_code == pool.team), None)
            if root is None:
                raise PoolError(f"team: no partner has the invite code {pool.team!r}")
            prefix = root.tree_path
            partners = [p for p in partners if p.tree_path.startswith(prefix)]
        members = {p.id for p in partners}
        orders = [
            o
            for o in await self._uow.ledger.attributed_orders_since(min(start, window))
            if o.status not in EXCLUDED_STATUSES
            and o.currency == plan.currency
            and _aware(o.paid_at) < end
            and o.partner_id in members
        ]
        gmv_by: dict[int, int] = {}
        points: dict[int, int] = {}
        sales_30d: dict[int, int] = {}
        gmv_30d: dict[int, int] = {}
        for o in orders:
            kept = o.amount_minor - o.refunded_minor
            assert o.partner_id is not None
            paid_at = _aware(o.paid_at)
            if paid_at >= start:
                gmv_by[o.partner_id] = gmv_by.get(o.partner_id, 0) + kept
                if kept > 0:
                    points[o.partner_id] = points.get(o.partner_id, 0) + 1
            if paid_at >= window and kept > 0:
                sales_30d[o.partner_id] = sales_30d.get(o.partner_id, 0) + 1
                gmv_30d[o.partner_id] = gmv_30d.get(o.partner_id, 0) + kept
        recruits: dict[int, int] = {}
        for p in partners:
            if p.upline_id is not None and _aware(p.joined_at) < end:
                recruits[p.upline_id] = recruits.get(p.upline_id, 0) + 1
        gmv = Money(sum(gmv_by.values()), plan.currency)
        total = percent_of(gmv, pool.share)

        def qualifies(p: Partner) -> bool:
            metrics: dict[str, int | str] = {
                "level": p.level,
                "sales_30d": sales_30d.get(p.id, 0),
                "gmv_30d_minor": gmv_30d.get(p.id, 0),
                "recruits_total": recruits.get(p.id, 0),
                "days_since_join": max(0, (end - _aware(p.joined_at)).days),
            }
            return all(c is None or c.evaluate(metrics) for c in (plan.eligibility, pool.qualify))

        qualified = [p for p in partners if _aware(p.joined_at) < end and qualifies(p)]
        weights = weights_for(
            pool.split, [gmv_by.get(p.id, 0) for p in qualified], [points.get(p.id, 0) for p in qualified]
        )
        share = split_pool(total, [(p.id, w) for p, w in zip(qualified, weights, strict=True)], pool.cap)
        names = {p.id: display_name(p) for p in qualified}
        recipients = tuple(
            Recipient(line.partner_id, names[line.partner_id], line.weight, line.amount, line.capped)
            for line in share.lines
        )
        return PoolPreview(
            name=name,
            title=pool_title(pool, name, language),
            period=period,
            split=pool.split.value,
            share=pool.share,
            gmv=gmv,
            total=total,
            recipients=recipients,
            remainder=share.remainder,
            cap=pool.cap,
            posted=await self.is_posted(name, period.label),
            rules_version=version,
            team=display_name(root) if root is not None else None,
        )

    async def dividend_facts(self, lines: Iterable[tuple[str, str | None, int | None]]) -> dict[str, DividendFacts]:
        """Facts for dividend ledger lines given as (txn, rule, rules version), keyed by txn. A line whose rule
        is not `pools.<name>:<period>`, or whose plan version lacks the pool, is left out."""
        wanted: dict[str, tuple[str, str, int]] = {}
        for txn, rule, version in lines:
            if rule is None or version is None or not rule.startswith("pools.") or ":" not in rule:
                continue
            name, period = rule.removeprefix("pools.").split(":", 1)
            wanted[txn] = (name, period, version)
        if not wanted:
            return {}
        stmt = (
            select(LedgerEntry.txn, func.count())
            .where(LedgerEntry.txn.in_(list(wanted)), LedgerEntry.partner_id.is_not(None))
            .group_by(LedgerEntry.txn)
        )
        counts = {str(txn): int(n) for txn, n in (await self._uow.session.execute(stmt)).all()}
        out: dict[str, DividendFacts] = {}
        for txn, (name, period, version) in wanted.items():
            plan = await self._plan_version(version)
            pool = plan.pools.get(name) if plan is not None else None
            if pool is None:
                continue
            titles = {"zh": pool.title.zh, "en": pool.title.en} if pool.title is not None else {}
            out[txn] = DividendFacts(
                name, titles, period, pool.period.value, pool.split.value, counts.get(txn, 0), pool.cap
            )
        return out

    async def _plan_version(self, version: int) -> Plan | None:
        cached = self._ctx.plans.get(version)
        if cached is None:
            row = await self._uow.ledger.rules_version(version)
            if row is None:
                return None
            cached = self._ctx.plans[version] = load_plan(row.plan_text, f"rules v{version}")
        return cached

    # ------------------------------------------------------------------ posting

    async def post(self, name: str, period: str, admin: PartnerView) -> PostResult:
        """Post the pool's split for `period` once; a second post writes nothing and says so."""
        if not has_at_least(admin.role, Role.ADMIN):
            raise UsageError("denied.admin")
        preview = await self.preview(name, period)
        now = self._ctx.clock.now()
        key = txn_key(name, preview.period.label)
        paying = [r for r in preview.recipients if r.amount.minor > 0]
        lines: list[dict[str, Any]] = []
        for r in paying:
            lines.append(
                self._line(
                    preview,
                    key,
                    len(lines) + 1,
                    account=f"partner:{r.partner_id}",
                    partner_id=r.partner_id,
                    amount=r.amount,
                )
            )
        if paying:
            lines.append(
                self._line(
                    preview, key, len(lines) + 1, account=PLATFORM_DIVIDENDS, partner_id=None, amount=-preview.paid
                )
            )
        posted = False if preview.posted else await self._uow.ledger.post(lines)
        details = {
            "period": preview.period.label,
            "gmv": str(preview.gmv.amount),
            "total": str(preview.total.amount),
            "remainder": str(preview.remainder.amount),
            "recipients": len(paying),
        }
        self._uow.audit.add(
            actor_tg_id=admin.tg_user_id,
            actor_partner_id=admin.id,
            action="pool_post",
            target=key,
            outcome="ok" if posted else "noop",
            details=details,
            created_at=now,
        )
        if posted:
            for r in paying:
                await self._notify(preview, r)
        return PostResult(preview, posted)

    def _line(
        self, preview: PoolPreview, key: str, number: int, *, account: str, partner_id: int | None, amount: Money
    ) -> dict[str, Any]:
        partner_line = partner_id is not None
        return {
            "txn": key,
            "line": number,
            "account": account,
            "partner_id": partner_id,
            "bucket": "available" if partner_line else "dividends",
            "amount_minor": amount.minor,
            "currency": amount.currency,
            "kind": "dividend",
            "order_id": None,
            "tier": None,
            "level": None,
            "rate": str(preview.share) if partner_line else None,
            "base_minor": preview.gmv.minor if partner_line else None,
            "rule": f"pools.{preview.name}:{preview.period.label}" if partner_line else None,
            "rules_version": preview.rules_version,
            "available_at": None,
            "created_at": self._ctx.clock.now(),
        }

    async def _notify(self, preview: PoolPreview, recipient: Recipient) -> None:
        partner = await self._uow.partners.get(recipient.partner_id)
        if partner is None:
            return
        language = language_of(self._ctx, partner)
        text = self._ctx.translator.texts(language)(
            "pools.notice.paid",
            amount=format_money(recipient.amount, language),
            pool=preview.title,
            period=preview.period.label,
        )
        key = f"{txn_key(preview.name, preview.period.label)}:{partner.id}"
        await enqueue_text(self._uow, self._ctx, recipient=partner, dedupe_key=key, text=text)

    # ------------------------------------------------------------------ the period-end job

    async def announce_closed(self) -> int:
        """Every pool whose last period is closed and not posted: each admin gets its preview with [Post]."""
        _, plan = await self._plan()
        admins = {p.id: p for p in await self._uow.partners.with_roles([Role.ADMIN.value])}
        for tg_id in sorted(self._ctx.admin_ids):
            configured = await self._uow.partners.by_tg_id(tg_id)
            if configured is not None:
                admins[configured.id] = configured
        queued = 0
        for name, pool in plan.pools.items():
            period = previous_period(self._today(), pool.period).label
            if await self.is_posted(name, period):
                continue
            told = await self._previewed(name, period)
            previews: dict[str, PoolPreview] = {}
            for admin in admins.values():
                if admin.id in told:  # once per admin: the outbox row that said so is deleted after retention
                    continue
                language = language_of(self._ctx, admin)
                t = self._ctx.translator.texts(language)
                if language not in previews:
                    try:
                        previews[language] = await self.preview(name, period, language=language)
                    except UsageError:
                        break  # a pool that cannot be settled as defined: /pools shows the reason
                preview = previews[language]
                button = {
                    "text": t("pools.button.post"),
                    "callback_data": PoolCallback(action="post", pool=name, period=period).pack(),
                }
                if await enqueue_text(
                    self._uow,
                    self._ctx,
                    recipient=admin,
                    dedupe_key=f"pool:{name}:{period}:preview:{admin.id}",
                    text=preview_text(preview, t),
                    reply_markup={"inline_keyboard": [[button]]},
                ):
                    queued += 1
                self._uow.session.add(
                    PoolPreviewSent(pool=name, period=period, admin_id=admin.id, sent_at=self._ctx.clock.now())
                )
        return queued

    async def _previewed(self, name: str, period: str) -> set[int]:
        """The admins already sent this pool period's preview."""
        stmt = select(PoolPreviewSent.admin_id).where(PoolPreviewSent.pool == name, PoolPreviewSent.period == period)
        return set((await self._uow.session.scalars(stmt)).all())


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def format_share(rate: Decimal) -> str:
    return f"{(rate * 100).normalize():f}%"


def preview_text(preview: PoolPreview, t: Any) -> str:
    """The preview in words (shared by /pools and the period-end notice to admins)."""
    lang = t.language
    parts = [
        t(
            "pools.preview.title",
            pool=preview.title,
            period=preview.period.label,
            share=format_share(preview.share),
            gmv=format_money(preview.gmv, lang),
            total=format_money(preview.total, lang),
            split=t(f"pools.split.{preview.split}"),
        )
    ]
    if preview.team is not None:
        parts.append(t("pools.preview.team", name=preview.team))
    if not preview.recipients:
        parts.append(t("pools.preview.nobody"))
    for r in preview.recipients:
        key = "pools.preview.capped" if r.capped else "pools.preview.line"
        parts.append(t(key, name=r.name, weight=r.weight, amount=format_money(r.amount, lang)))
    parts.append(t("pools.preview.remainder", amount=format_money(preview.remainder, lang)))
    if preview.cap is not None:
        cap, cut = format_money(preview.cap, lang), format_money(preview.cut_by_cap, lang)
        parts.append(t("pools.preview.cap", cap=cap, cut=cut))
    if preview.posted:
        parts.append(t("pools.preview.posted"))
    return "\n".join(parts)
