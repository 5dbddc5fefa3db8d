"""The commission plan's versions, admin side (/rules): show the plan in force, upload a new plan file as a
draft, simulate the draft against the plan in force, publish it.

Decisions, for the record:
- There is at most one draft. A new upload replaces the draft in place: same row, same version number
  (the next number after the newest stored version), new text, checksum, author and time. Drafts never
  produced ledger entries, so nothing refers to the replaced text; the audit trail keeps every upload's
  checksum. Published versions are never changed, only superseded.
- The version number stored in the database is the plan's version; the file's own `version:` field is a
  label for humans.
- Publishing makes the draft "published" with `published_at` = now and the version published before it
  "superseded" (its `published_at` stays, so orders paid while it was in force still settle with it, see
  `SettlementService.plan_for`).
- The simulation recomputes, for each attributed order paid in the last 30 days, the commission of the
  attributed partner and their uplines (from today's tree and today's levels) under both plans; it writes
  nothing. Fully refunded orders and orders in another currency than the plans' are left out; partial
  refunds are ignored (both plans are compared on the amount paid). A level the plan does not have counts as
  its first level, as in the wallet.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import BinaryIO, Protocol
from zoneinfo import ZoneInfo

from bot.domain.errors import UsageError, UserFacingError
from bot.domain.money import Money, parse_money
from bot.domain.rules import Earner, Plan, PlanError, commission_lines, load_plan
from bot.domain.rules import Order as PlanOrder
from bot.domain.rules import OrderItem as PlanItem
from bot.services.context import ServiceContext
from bot.services.ledger import SettlementService, checksum
from bot.services.notify import partner_zone
from bot.services.partners import ancestor_ids, display_name
from bot.services.views import PartnerView
from storage.models import Order, Partner, RuleVersion
from storage.uow import UnitOfWork

MAX_PLAN_BYTES = 256 * 1024
SIMULATION_DAYS = 30
TOP_CHANGES = 10
MAX_ISSUES = 15
"""Validation issues listed in one reply; the rest are counted."""
SAMPLE_AMOUNT = "150.00"
CHECK_CHARS = 8
"""Checksum characters carried by the publish button (callback data is 64 bytes at most)."""
PLAN_EXTENSIONS = (".yaml", ".yml")


class FileDownloader(Protocol):
    """What reading an uploaded file needs from the Bot: `aiogram.Bot.download` fits."""

    async def download(self, file: str, destination: BinaryIO) -> object: ...


@dataclass(frozen=True, slots=True)
class PlanUpload:
    """The document the admin sent, read from their message by the handler."""

    file_id: str
    file_name: str | None
    file_size: int | None


@dataclass(frozen=True, slots=True)
class LevelRates:
    name: str
    titles: Mapping[str, str]
    """Title by language (zh, en)."""
    rates: tuple[Decimal, ...]
    """L1, L2 (and L3 when the plan pays it)."""


@dataclass(frozen=True, slots=True)
class CategoryRates:
    category: str
    level: str
    titles: Mapping[str, str]
    """The level's titles."""
    rates: tuple[Decimal | None, ...]
    """Per tier; None keeps the level's rate."""


@dataclass(frozen=True, slots=True)
class PlanView:
    """One stored version of the plan, as /rules shows it."""

    version: int
    status: str
    """draft | published | superseded."""
    published_at: datetime | None
    created_at: datetime
    zone: ZoneInfo
    """The admin's time zone, for dates."""
    checksum: str
    currency: str
    l3_enabled: bool
    levels: tuple[LevelRates, ...]
    """Lowest first."""
    categories: tuple[CategoryRates, ...]
    cap_per_order: Money | None
    self_purchase_rebate: bool
    hold_days: int
    min_withdrawal: Money

    @property
    def check(self) -> str:
        return self.checksum[:CHECK_CHARS]


@dataclass(frozen=True, slots=True)
class PlanFile:
    file_name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class UploadResult:
    draft: PlanView
    replaced: bool
    """An earlier draft was replaced by this upload."""
    in_force: int
    """The version in force now, the one `/rules simulate` compares with."""


@dataclass(frozen=True, slots=True)
class PartnerChange:
    partner_id: int
    name: str
    current: Money
    draft: Money

    @property
    def delta(self) -> Money:
        return self.draft - self.current


@dataclass(frozen=True, slots=True)
class SampleTier:
    tier: int
    current: Money
    draft: Money


@dataclass(frozen=True, slots=True)
class SampleCase:
    """A sample order sold by a partner of `level` whose uplines hold the same level."""

    level: str
    titles: Mapping[str, str]
    tiers: tuple[SampleTier, ...]


@dataclass(frozen=True, slots=True)
class Simulation:
    current_version: int
    draft_version: int
    since: datetime
    zone: ZoneInfo
    orders: int
    """Orders recomputed."""
    skipped: int
    """Orders left out: fully refunded, or in another currency than the plans'."""
    earners: int
    """Partners who earn something on those orders under either plan."""
    changed: int
    """Of those, partners whose commission would change."""
    changes: tuple[PartnerChange, ...]
    """The largest changes first (at most TOP_CHANGES)."""
    total_current: Money
    total_draft: Money
    sample_amount: Money
    samples: tuple[SampleCase, ...]


def _titles(plan: Plan, level: str) -> dict[str, str]:
    title = plan.levels[level].title
    return {"zh": title.zh, "en": title.en}


def _tiers(plan: Plan) -> tuple[int, ...]:
    return (1, 2, 3) if plan.l3_enabled else (1, 2)


def _level_in(plan: Plan, level: str) -> str:
    """The partner's level in `plan`'s terms: a level the plan does not have counts as its first."""
    return level if level in plan.levels else next(iter(plan.levels))


def _order_lines(order: Order, plan: Plan, chain: Sequence[Partner]) -> dict[int, int]:
    """What each partner of `chain` would earn on `order` under `plan`, in minor units (settlement's rules)."""
    items = tuple(
        PlanItem(Money(int(i["unit_price_minor"]) * int(i["quantity"]), order.currency), str(i["category"]))
        for i in order.items
    )
    plan_order = PlanOrder(id=order.external_id, amount=Money(order.amount_minor, order.currency), items=items)
    earners = [Earner(p.id, _level_in(plan, p.level), eligible=p.commission_eligible) for p in chain]
    earned: dict[int, int] = {}
    for line in commission_lines(plan, plan_order, earners):
        earned[line.earner_id] = earned.get(line.earner_id, 0) + line.amount.minor
    return earned


def _sample(current: Plan, draft: Plan, level: str) -> SampleCase:
    """A ¥150.00 order sold by a partner of `level` with uplines of the same level, under both plans."""
    tiers = sorted(set(_tiers(current)) | set(_tiers(draft)))
    amounts: list[dict[int, Money]] = []
    for plan in (current, draft):
        amount = parse_money(SAMPLE_AMOUNT, plan.currency)
        chain = [Earner(-tier, _level_in(plan, level)) for tier in tiers]
        by_tier = {tier: Money.zero(plan.currency) for tier in tiers}
        for line in commission_lines(plan, PlanOrder(id="sample", amount=amount), chain):
            by_tier[line.tier] = by_tier[line.tier] + line.amount
        amounts.append(by_tier)
    now, then = amounts
    return SampleCase(level, _titles(current, level), tuple(SampleTier(t, now[t], then[t]) for t in tiers))


class RulesService:
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    @property
    def _settlement(self) -> SettlementService:
        return SettlementService(self._uow, self._ctx)

    async def _zone(self, admin: PartnerView) -> ZoneInfo:
        partner = await self._uow.partners.get(admin.id)
        return partner_zone(self._ctx, partner) if partner is not None else self._ctx.timezone

    def _view(self, row: RuleVersion, plan: Plan, zone: ZoneInfo) -> PlanView:
        tiers = _tiers(plan)
        levels = tuple(
            LevelRates(name, _titles(plan, name), tuple(level.rate(t) for t in tiers))
            for name, level in plan.levels.items()
        )
        categories = tuple(
            CategoryRates(category, level, _titles(plan, level), tuple(rates.rate(t) for t in tiers))
            for category, by_level in plan.categories.items()
            for level, rates in by_level.items()
        )
        return PlanView(
            version=row.version,
            status=row.status,
            published_at=row.published_at,
            created_at=row.created_at,
            zone=zone,
            checksum=row.checksum,
            currency=plan.currency,
            l3_enabled=plan.l3_enabled,
            levels=levels,
            categories=categories,
            cap_per_order=plan.cap_per_order,
            self_purchase_rebate=plan.self_purchase_rebate,
            hold_days=plan.hold_days,
            min_withdrawal=plan.min_withdrawal,
        )

    async def _in_force(self) -> tuple[RuleVersion, Plan]:
        version, plan = await self._settlement.plan_for(self._ctx.clock.now())
        row = await self._uow.ledger.rules_version(version)
        assert row is not None  # plan_for read it
        return row, plan

    async def _draft(self) -> tuple[RuleVersion, Plan]:
        row = await self._uow.ledger.draft_rules()
        if row is None:
            raise UsageError("rules.no_draft")
        # Drafts are parsed afresh, never cached: a new upload replaces a draft's text under the same number.
        return row, load_plan(row.plan_text, f"rules v{row.version}")

    # ------------------------------------------------------------------ showing

    async def in_force(self, admin: PartnerView) -> tuple[PlanView, int | None]:
        """The plan in force now, and the version number of the waiting draft (None when there is none)."""
        row, plan = await self._in_force()
        draft = await self._uow.ledger.draft_rules()
        return self._view(row, plan, await self._zone(admin)), draft.version if draft is not None else None

    async def plan_file(self, version: int) -> PlanFile:
        """A stored version's YAML exactly as uploaded (the shipped default for version 1)."""
        await self._settlement.ensure_plan()
        row = await self._uow.ledger.rules_version(version)
        if row is None:
            raise UserFacingError("rules.not_found", version=version)
        return PlanFile(f"rules-v{row.version}.yaml", row.plan_text.encode())

    # ------------------------------------------------------------------ uploading

    async def upload(self, admin: PartnerView, upload: PlanUpload, downloader: FileDownloader) -> UploadResult:
        """Validate an uploaded plan file and store it as the draft. Nothing is stored when it does not load."""
        name = upload.file_name or "plan.yaml"
        if not name.lower().endswith(PLAN_EXTENSIONS):
            raise UsageError("rules.upload.not_yaml_file")
        if upload.file_size is not None and upload.file_size > MAX_PLAN_BYTES:
            raise UsageError("rules.upload.too_big", size_kb=upload.file_size // 1024, limit_kb=MAX_PLAN_BYTES // 1024)
        buffer = io.BytesIO()
        await downloader.download(upload.file_id, destination=buffer)
        data = buffer.getvalue()
        if len(data) > MAX_PLAN_BYTES:
            raise UsageError("rules.upload.too_big", size_kb=len(data) // 1024, limit_kb=MAX_PLAN_BYTES // 1024)
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise UsageError("rules.upload.not_utf8") from None
        try:
            plan = load_plan(text, name)
        except PlanError as exc:
            shown = "\n".join(f"• {issue}" for issue in exc.issues[:MAX_ISSUES])
            hidden = len(exc.issues) - MAX_ISSUES
            if hidden > 0:
                raise UsageError(
                    "rules.upload.invalid_more", count=len(exc.issues), issues=shown, hidden=hidden
                ) from None
            raise UsageError("rules.upload.invalid", count=len(exc.issues), issues=shown) from None
        current, _ = await self._in_force()  # on a fresh database this stores the shipped plan as version 1
        digest = checksum(text)
        if digest == current.checksum:
            raise UsageError("rules.upload.same", version=current.version)
        now = self._ctx.clock.now()
        row = await self._uow.ledger.draft_rules()
        replaced = row is not None
        if row is None:
            row = RuleVersion(version=await self._uow.ledger.next_rules_version(), status="draft", published_at=None)
            self._uow.ledger.add_rules(row)
        row.plan_text, row.checksum, row.created_by, row.created_at = text, digest, admin.id, now
        await self._uow.flush()
        self._audit(admin, "rules_upload", row.version, {"checksum": digest, "file": name, "replaced": replaced})
        return UploadResult(self._view(row, plan, await self._zone(admin)), replaced, current.version)

    # ------------------------------------------------------------------ simulating

    async def simulate(self, admin: PartnerView) -> Simulation:
        """What the draft would change, per partner, on the last 30 days of attributed orders and on samples."""
        draft_row, draft = await self._draft()
        current_row, current = await self._in_force()
        uow, now = self._uow, self._ctx.clock.now()
        since = now - timedelta(days=SIMULATION_DAYS)
        totals: dict[int, list[int]] = {}
        partners: dict[int, Partner] = {}
        counted = skipped = 0
        for order in await uow.ledger.attributed_orders_since(since):
            comparable = order.currency == current.currency == draft.currency
            chain = await self._chain(order, partners) if comparable and order.status != "refunded" else []
            if not chain:
                skipped += 1
                continue
            counted += 1
            for index, plan in enumerate((current, draft)):
                for partner_id, minor in _order_lines(order, plan, chain).items():
                    totals.setdefault(partner_id, [0, 0])[index] += minor
        currency = current.currency
        changes = [
            PartnerChange(pid, display_name(partners[pid]), Money(now_, currency), Money(then, currency))
            for pid, (now_, then) in totals.items()
            if now_ != then
        ]
        changes.sort(key=lambda c: (-abs(c.delta.minor), c.name, c.partner_id))
        levels = list(current.levels)
        sample_levels = [levels[0]] + ([levels[-1]] if len(levels) > 1 else [])
        return Simulation(
            current_version=current_row.version,
            draft_version=draft_row.version,
            since=since,
            zone=await self._zone(admin),
            orders=counted,
            skipped=skipped,
            earners=len(totals),
            changed=len(changes),
            changes=tuple(changes[:TOP_CHANGES]),
            total_current=Money(sum(v[0] for v in totals.values()), currency),
            total_draft=Money(sum(v[1] for v in totals.values()), currency),
            sample_amount=parse_money(SAMPLE_AMOUNT, currency),
            samples=tuple(_sample(current, draft, level) for level in sample_levels),
        )

    async def _chain(self, order: Order, seen: dict[int, Partner]) -> list[Partner]:
        """The attributed partner and their two nearest uplines, as settlement builds it."""
        partner = await self._partner(order.partner_id, seen) if order.partner_id is not None else None
        if partner is None:
            return []
        chain = [partner]
        for upline_id in ancestor_ids(partner)[:2]:
            upline = await self._partner(upline_id, seen)
            if upline is None:
                break
            chain.append(upline)
        return chain

    async def _partner(self, partner_id: int, seen: dict[int, Partner]) -> Partner | None:
        partner = seen.get(partner_id) or await self._uow.partners.get(partner_id)
        if partner is not None:
            seen[partner_id] = partner
        return partner

    # ------------------------------------------------------------------ publishing

    async def publish_offer(self, admin: PartnerView) -> tuple[PlanView, int]:
        """The draft to confirm, and the version it would replace."""
        row, plan = await self._draft()
        current, _ = await self._in_force()
        return self._view(row, plan, await self._zone(admin)), current.version

    async def publish(self, admin: PartnerView, version: int, check: str) -> tuple[int, int]:
        """Publish the draft the admin confirmed: it is in force for orders paid from now on.
        Returns (published version, superseded version)."""
        row, _ = await self._draft()
        if row.version != version or not check or not row.checksum.startswith(check):
            raise UserFacingError("rules.publish.stale")
        previous, _ = await self._in_force()
        now = self._ctx.clock.now()
        for old in await self._uow.ledger.rule_history():
            if old.status == "published":
                old.status = "superseded"
        row.status, row.published_at = "published", now
        await self._uow.flush()
        self._audit(admin, "rules_publish", row.version, {"checksum": row.checksum, "previous": previous.version})
        return row.version, previous.version

    def _audit(self, admin: PartnerView, action: str, version: int, details: dict[str, object]) -> None:
        self._uow.audit.add(
            actor_tg_id=admin.tg_user_id,
            actor_partner_id=admin.id,
            action=action,
            target=f"v{version}",
            outcome="ok",
            details=details,
            created_at=self._ctx.clock.now(),
        )
