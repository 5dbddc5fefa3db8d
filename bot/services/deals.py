"""Deal progression: the product catalogue, quotes and offline orders registered in chat.

- Admins keep the catalogue with /product or `run_bot.py products import FILE` (YAML or CSV, by SKU).
- A partner's /quote prices a product for one of their leads at the partner's level price, stores the quote
  and moves the lead to `quoted`; the handler draws the quote card.
- A partner's /order registers an offline order (pending); every admin hears of it with [Confirm] [Reject].
  Confirming settles it through the ledger's order service as source `chat`, external id `chat-<id>`,
  attributed to the partner by their invite code, and moves the lead to `won`. The order's state changes in
  the database only from `pending`, so a second press or a second admin changes nothing.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from bot.callbacks import ChatOrderCallback
from bot.domain.content import new_slug, tracked_link
from bot.domain.content_import import Checked, Problem
from bot.domain.deals import (
    DEFAULT_QUOTE_VALID_DAYS,
    LIST_LEVEL,
    NONE_WORDS,
    PRODUCT_FILE_FIELDS,
    LevelPrice,
    ProductCommand,
    ProductEntry,
    check_level,
    check_product_entries,
    order_items,
    parse_level_price,
    parse_order_args,
    parse_price,
    parse_product_command,
    parse_quote_args,
    unit_price,
    valid_until,
    validate_category,
    validate_name,
    validate_product_url,
)
from bot.domain.errors import UsageError
from bot.domain.events import EventSource, EventType
from bot.domain.money import Money, MoneyError, format_money, parse_money
from bot.domain.orders_api import OrderIn, OrderItemIn
from bot.domain.roles import Role
from bot.i18n import Raw, Texts
from bot.services.acting import Audited, language_of, require_admin
from bot.services.content_import import ImportFileError, ImportIssue, read_text_file
from bot.services.context import ServiceContext
from bot.services.leads import LeadService
from bot.services.ledger import CurrencyNotInPlan, Outcome, SettlementService
from bot.services.notify import enqueue_text, partner_zone
from bot.services.partners import display_name
from bot.services.views import PartnerView
from storage.models import ChatOrder, Lead, Partner, Product, Quote
from storage.uow import UnitOfWork

PAGE_SIZE = 10
PENDING_LIMIT = 20
REASON_MAX = 300
"""chat_orders.reason holds 300 characters."""
SLUG_ATTEMPTS = 8
STAGE_KEEP_ON_QUOTE = frozenset({"won"})
"""A won lead stays won when quoted again (a repeat purchase); any other stage, lost included, becomes quoted."""


# ---------------------------------------------------------------------------------------------------- views


@dataclass(frozen=True, slots=True)
class ProductView:
    sku: str
    name: str
    url: str
    category: str | None
    currency: str
    list_price: Money | None
    level_prices: Mapping[str, LevelPrice]
    active: bool


@dataclass(frozen=True, slots=True)
class ProductPage:
    items: tuple[ProductView, ...]
    page: int
    """From 0."""
    pages: int
    total: int


@dataclass(frozen=True, slots=True)
class ProductChange:
    product: ProductView
    action: str
    """add | price | category | url | archive | restore."""
    changed: bool
    """False when the product already was as asked (archive an archived product…)."""
    level: str = ""


@dataclass(frozen=True, slots=True)
class QuoteView:
    id: int
    lead_number: int
    lead_name: str
    product: str
    sku: str
    quantity: int
    unit_price: Money
    total: Money
    level: str
    valid_until: datetime
    """In the partner's own time zone."""
    partner_name: str
    contact: str | None
    """@username when the partner has one."""
    link: str
    """The partner's tracked link to the product."""
    stage: str
    """The lead's stage after the quote."""


@dataclass(frozen=True, slots=True)
class ChatOrderView:
    id: int
    partner_name: str
    invite_code: str
    lead_number: int | None
    lead_name: str | None
    product: str
    sku: str
    quantity: int
    amount: Money
    status: str
    reason: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class OrderDecision:
    order: ChatOrderView
    changed: bool
    """False: the order already was in the state asked for, and nothing was written."""


@dataclass(frozen=True, slots=True)
class PendingOrders:
    items: tuple[ChatOrderView, ...]
    zone: ZoneInfo


# ---------------------------------------------------------------------------------------------- import file


@dataclass(frozen=True, slots=True)
class ProductFile:
    """A products file, parsed but not checked: its entries and how the report numbers them."""

    path: Path
    entries: Sequence[object]
    csv: bool = False
    """CSV rows are reported by their line in the file (the header is line 1)."""


def read_products_file(path: Path) -> ProductFile:
    """A `.csv` file with a header row, or YAML: a list of products or a mapping with a `products:` list.
    Blocking IO. Raises ImportFileError when the file as a whole is unusable."""
    source = read_text_file(path, encoding="utf-8-sig")  # spreadsheets save CSV with a byte-order mark
    if path.suffix.lower() == ".csv":
        return _read_csv(path, source)
    try:
        data = yaml.safe_load(source)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:  # a date like 2026-02-30; too deep nesting
        raise ImportFileError(f"not valid YAML: {' '.join(str(exc).split())}") from None
    if isinstance(data, dict) and set(data) == {"products"}:
        data = data["products"]
    if not isinstance(data, list) or not data:
        raise ImportFileError("expected a list of products, or a `products:` list (see the README's Products)")
    return ProductFile(path, data)


def _read_csv(path: Path, source: str) -> ProductFile:
    try:
        rows = list(csv.DictReader(io.StringIO(source, newline="")))
        header = next(csv.reader(io.StringIO(source, newline="")), [])
    except csv.Error as exc:
        raise ImportFileError(f"not valid CSV: {exc}") from None
    missing = [name for name in ("sku", "name", "url") if name not in header]
    if missing:
        raise ImportFileError(f"the header row lacks {', '.join(missing)} (columns: {', '.join(PRODUCT_FILE_FIELDS)})")
    if not rows:
        raise ImportFileError("no products after the header row")
    entries: list[object] = []
    for row in rows:
        extra = row.pop(None, None)  # cells beyond the header
        entry: dict[object, object] = dict(row)
        if extra:
            entry["(extra cells)"] = ",".join(extra)
        entries.append(entry)
    return ProductFile(path, entries, csv=True)


@dataclass(slots=True)
class ProductImportReport:
    issues: list[ImportIssue] = field(default_factory=list)
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0

    @property
    def exit_code(self) -> int:
        """0 when every product was imported, 1 when some were skipped."""
        return 1 if self.skipped else 0

    def summary(self) -> str:
        imported = self.new + self.updated + self.unchanged
        text = f"Imported {imported} product{'' if imported == 1 else 's'}"
        text += f" ({self.new} new, {self.updated} updated, {self.unchanged} unchanged)"
        if self.skipped:
            text += f"; {self.skipped} skipped"
        return text + "."

    def lines(self) -> list[str]:
        return [*map(str, self.issues), self.summary()]


# -------------------------------------------------------------------------------------------------- helpers


def product_view(product: Product, default_currency: str) -> ProductView:
    currency = product.currency or default_currency
    prices = {level: p for level, raw in (product.level_prices or {}).items() if (p := LevelPrice.from_stored(raw))}
    return ProductView(
        sku=product.sku,
        name=product.name,
        url=product.url,
        category=product.category,
        currency=currency,
        list_price=Money(product.list_price_minor, currency) if product.list_price_minor is not None else None,
        level_prices=prices,
        active=product.active,
    )


def _order_view(row: ChatOrder, partner: Partner, lead: Lead | None, product_name: str) -> ChatOrderView:
    return ChatOrderView(
        id=row.id,
        partner_name=display_name(partner),
        invite_code=partner.invite_code,
        lead_number=lead.number if lead else None,
        lead_name=lead.name if lead else None,
        product=product_name,
        sku=row.sku,
        quantity=row.quantity,
        amount=Money(row.amount_minor, row.currency),
        status=row.status,
        reason=row.reason,
        created_at=row.created_at,
    )


def order_keyboard(t: Texts, order_id: int, source: str) -> dict[str, Any]:
    """[Confirm] [Reject] as plain Bot API JSON (outbox rows and replies alike); `source` n: a notice, l: /orders."""
    return {
        "inline_keyboard": [
            [
                {
                    "text": t(f"deals.button.{action}", id=order_id),
                    "callback_data": ChatOrderCallback(action=action, id=order_id, src=source).pack(),
                }
                for action in ("confirm", "reject")
            ]
        ]
    }


# -------------------------------------------------------------------------------------------------- service


class DealService(Audited):
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    # ------------------------------------------------------------------ the catalogue (admins)

    async def product_command(self, actor: PartnerView, args: str | None) -> ProductPage | ProductView | ProductChange:
        """/product …: a page of the catalogue, one product, or a change to one (audited)."""
        require_admin(actor)
        command = parse_product_command(args)
        currency, levels = await self._plan_terms()
        if command.action == "list":
            return await self._page(command.page, currency)
        if command.action == "add":
            return await self._add(actor, command, currency)
        product = await self._uow.products.by_sku(command.sku)
        if product is None:
            raise UsageError("deals.error.unknown_sku", sku=command.sku)
        if command.action == "show":
            return product_view(product, currency)
        values: dict[str, Any] = {}
        if command.action == "price":
            values = self._price_values(product, command.level, command.value, currency, levels)
        elif command.action == "category":
            values = {"category": validate_category(command.value)}
        elif command.action == "url":
            values = {"url": validate_product_url(command.url)}
        else:
            values = {"active": command.action == "restore"}
        changed = {k: v for k, v in values.items() if getattr(product, k) != v}
        for name, value in changed.items():
            setattr(product, name, value)
        if changed:
            product.updated_at = self._ctx.clock.now()
            await self._uow.flush()
        details = {"sku": product.sku, "level": command.level} if command.level else {"sku": product.sku}
        self._audit(actor, f"product_{command.action}", f"product:{product.sku}", "ok" if changed else "noop", details)
        view = product_view(product, currency)
        return ProductChange(view, command.action, bool(changed), level=command.level)

    async def _page(self, page: int, currency: str) -> ProductPage:
        total = await self._uow.deals.product_count()
        pages = max(1, -(-total // PAGE_SIZE))
        page = min(page, pages - 1)
        rows = await self._uow.deals.product_page(offset=page * PAGE_SIZE, limit=PAGE_SIZE)
        return ProductPage(tuple(product_view(p, currency) for p in rows), page, pages, total)

    async def _add(self, actor: PartnerView, command: ProductCommand, currency: str) -> ProductChange:
        sku = command.sku
        minor = parse_price(command.price, currency)
        link = validate_product_url(command.url)
        title = validate_name(command.name)
        if await self._uow.products.by_sku(sku) is not None:
            raise UsageError("deals.error.sku_exists", sku=sku)
        now = self._ctx.clock.now()
        product = self._uow.products.add(
            Product(
                sku=sku,
                name=title,
                url=link,
                category=None,
                active=True,
                list_price_minor=minor,
                currency=currency,
                level_prices={},
                created_at=now,
                updated_at=now,
            )
        )
        await self._uow.flush()
        self._audit(actor, "product_add", f"product:{sku}", "ok", {"sku": sku, "price_minor": minor})
        return ProductChange(product_view(product, currency), "add", True)

    @staticmethod
    def _price_values(
        product: Product, level: str, value: str, default_currency: str, levels: Sequence[str]
    ) -> dict[str, Any]:
        currency = product.currency or default_currency
        if level == LIST_LEVEL:
            if value.lower() in NONE_WORDS:
                return {"list_price_minor": None, "currency": currency}
            return {"list_price_minor": parse_price(value, currency), "currency": currency}
        check_level(level, levels)
        prices = dict(product.level_prices or {})
        if value.lower() in NONE_WORDS:
            prices.pop(level, None)
        else:
            prices[level] = parse_level_price(value, currency).stored()
        return {"level_prices": prices, "currency": currency}

    # ------------------------------------------------------------------ import

    async def import_products(self, source: ProductFile, texts: Texts) -> ProductImportReport:
        """Import every valid entry (by SKU: new products are added, known ones replaced by the file's
        description); every invalid one is reported and skipped. One transaction: the caller commits."""
        currency, levels = await self._plan_terms()
        report = ProductImportReport()
        checked = check_product_entries(source.entries, levels=levels, default_currency=currency)
        now = self._ctx.clock.now()
        for one in checked:
            for problem in one.problems:
                report.issues.append(self._issue(one, problem, source, texts))
            if one.spec is None:
                report.skipped += 1
                continue
            await self._store_entry(one.spec, now, report)
        await self._uow.flush()
        return report

    @staticmethod
    def _issue(one: Checked[ProductEntry], problem: Problem, source: ProductFile, texts: Texts) -> ImportIssue:
        reason = texts(problem.key, **{name: Raw(str(value)) for name, value in problem.params.items()})
        entry, number = ("row", one.number + 1) if source.csv else ("product", one.number)
        return ImportIssue(entry, number, one.label, problem.field, reason)

    async def _store_entry(self, spec: ProductEntry, now: datetime, report: ProductImportReport) -> None:
        values: dict[str, Any] = {
            "name": spec.name,
            "url": spec.url,
            "category": spec.category,
            "currency": spec.currency,
            "list_price_minor": spec.price_minor,
            "level_prices": spec.stored_level_prices(),
            "active": spec.active,
        }
        existing = await self._uow.products.by_sku(spec.sku)
        if existing is None:
            self._uow.products.add(Product(sku=spec.sku, **values, created_at=now, updated_at=now))
            await self._uow.flush()
            report.new += 1
            return
        changed = {k: v for k, v in values.items() if getattr(existing, k) != v}
        for name, value in changed.items():
            setattr(existing, name, value)
        if changed:
            existing.updated_at = now
            report.updated += 1
        else:
            report.unchanged += 1

    # ------------------------------------------------------------------ quotes (partners)

    async def quote(self, partner: PartnerView, args: str | None) -> QuoteView:
        """Price a product for one of the partner's leads at the partner's level, store the quote, move the
        lead to `quoted` and record `quote_sent`. The card is drawn by the caller."""
        parsed = parse_quote_args(args)
        owner = await self._owner(partner.id)
        lead = await LeadService(self._uow, self._ctx).resolve(owner.id, parsed.lead)
        product, currency = await self._sellable(parsed.sku)
        unit = self._unit_price(product, owner)
        now = self._ctx.clock.now()
        days = parsed.valid_days or DEFAULT_QUOTE_VALID_DAYS
        row = self._uow.deals.add_quote(
            Quote(
                partner_id=owner.id,
                lead_id=lead.id,
                product_id=product.id,
                sku=product.sku,
                quantity=parsed.quantity,
                unit_price_minor=unit,
                total_minor=unit * parsed.quantity,
                currency=currency,
                valid_until=valid_until(now, days),
                created_at=now,
            )
        )
        await self._uow.flush()
        if lead.stage not in STAGE_KEEP_ON_QUOTE and lead.stage != "quoted":
            await LeadService(self._uow, self._ctx).set_stage(lead, "quoted")
        self._uow.events.add(
            partner_id=owner.id,
            type=EventType.QUOTE_SENT,
            occurred_at=now,
            source=EventSource.BOT,
            payload={
                "quote_id": row.id,
                "lead_id": lead.id,
                "sku": product.sku,
                "quantity": parsed.quantity,
                "total_minor": row.total_minor,
                "currency": currency,
            },
        )
        return QuoteView(
            id=row.id,
            lead_number=lead.number,
            lead_name=lead.name,
            product=product.name,
            sku=product.sku,
            quantity=parsed.quantity,
            unit_price=Money(unit, currency),
            total=Money(row.total_minor, currency),
            level=owner.level,
            valid_until=row.valid_until.astimezone(partner_zone(self._ctx, owner)),
            partner_name=display_name(owner),
            contact=f"@{owner.username}" if owner.username else None,
            link=await self._product_link(owner.id, product.id),
            stage=lead.stage,
        )

    # ------------------------------------------------------------------ orders (partners)

    async def register_order(self, partner: PartnerView, args: str | None) -> ChatOrderView:
        """Register an offline order for an admin to confirm. The amount defaults to the price of the
        partner's latest still-valid quote of the product to this lead, else their level price, × quantity."""
        parsed = parse_order_args(args)
        owner = await self._owner(partner.id)
        lead = await LeadService(self._uow, self._ctx).resolve(owner.id, parsed.lead)
        product, currency = await self._sellable(parsed.sku)
        now = self._ctx.clock.now()
        if parsed.amount is not None:
            try:
                amount = parse_money(parsed.amount, currency).minor
            except MoneyError:
                raise UsageError("deals.error.bad_amount", value=parsed.amount) from None
            if amount <= 0:
                raise UsageError("deals.error.bad_amount", value=parsed.amount)
        else:
            quote = await self._uow.deals.latest_quote(owner.id, lead.id, product.id)
            fresh = quote is not None and quote.currency == currency and quote.valid_until >= now
            unit = quote.unit_price_minor if quote is not None and fresh else self._unit_price(product, owner)
            amount = unit * parsed.quantity
        row = self._uow.deals.add_order(
            ChatOrder(
                partner_id=owner.id,
                lead_id=lead.id,
                product_id=product.id,
                sku=product.sku,
                category=product.category,
                quantity=parsed.quantity,
                amount_minor=amount,
                currency=currency,
                status="pending",
                created_at=now,
            )
        )
        await self._uow.flush()
        self._uow.events.add(
            partner_id=owner.id,
            type=EventType.ORDER_REGISTERED,
            occurred_at=now,
            source=EventSource.BOT,
            payload={
                "chat_order_id": row.id,
                "lead_id": lead.id,
                "sku": product.sku,
                "quantity": parsed.quantity,
                "amount_minor": amount,
                "currency": currency,
            },
        )
        view = _order_view(row, owner, lead, product.name)
        await self._tell_admins(view)
        return view

    # ------------------------------------------------------------------ orders (admins)

    async def pending_orders(self, actor: PartnerView) -> PendingOrders:
        require_admin(actor)
        admin = await self._uow.partners.get(actor.id)
        zone = partner_zone(self._ctx, admin) if admin is not None else self._ctx.timezone
        views = []
        for row, partner, lead in await self._uow.deals.pending(PENDING_LIMIT):
            product = await self._uow.deals.product(row.product_id)
            views.append(_order_view(row, partner, lead, product.name if product else row.sku))
        return PendingOrders(tuple(views), zone)

    async def confirm(self, actor: PartnerView, order_id: int) -> OrderDecision:
        """Settle the order through the ledger, attributed to its partner, and mark the lead won. One
        transaction; a second press (or a second admin) finds it confirmed and writes nothing."""
        require_admin(actor)
        row = await self._load(order_id)
        target = f"chat_order:{order_id}"
        if not self._allowed(row, "confirmed"):
            self._audit(actor, "chat_order_confirm", target, "noop", {})
            return OrderDecision(await self._view(row), changed=False)
        now = self._ctx.clock.now()
        values = {"status": "confirmed", "decided_by": actor.id, "decided_at": now}
        if not await self._uow.deals.transition(order_id, "pending", values):
            row = await self._load(order_id)
            self._allowed(row, "confirmed")
            self._audit(actor, "chat_order_confirm", target, "noop", {})
            return OrderDecision(await self._view(row), changed=False)
        row = await self._load(order_id)
        partner = await self._owner(row.partner_id)
        external_id = f"chat-{row.id}"
        order = OrderIn(
            order_id=external_id,
            partner_code=partner.invite_code,
            coupon=None,
            customer_id=f"lead-{row.lead_id}" if row.lead_id is not None else external_id,
            currency=row.currency,
            amount_minor=row.amount_minor,
            items=tuple(
                OrderItemIn(sku=row.sku, category=row.category or "", quantity=q, unit_price_minor=u)
                for q, u in order_items(row.amount_minor, row.quantity)
            ),
            paid_at=now,
        )
        try:
            settlement = await SettlementService(self._uow, self._ctx).ingest_order(order, source="chat")
        except CurrencyNotInPlan as exc:
            raise UsageError("deals.orders.currency", id=row.id, currency=row.currency, plan=exc.currency) from None
        if settlement.outcome is Outcome.CONFLICT:
            raise RuntimeError(f"chat order {row.id}: the ledger holds a different order {external_id}")
        stored = await self._uow.ledger.order("chat", external_id)
        assert stored is not None  # just ingested
        row.order_id = stored.id
        lead = await self._uow.deals.lead(row.lead_id) if row.lead_id is not None else None
        if lead is not None:
            await LeadService(self._uow, self._ctx).set_stage(lead, "won")
        await self._uow.flush()
        self._audit(actor, "chat_order_confirm", target, "ok", {"amount_minor": row.amount_minor, "order": external_id})
        view = await self._view(row)
        await self._notify(partner, view, "confirmed")
        return OrderDecision(view, changed=True)

    async def prepare_reject(self, actor: PartnerView, order_id: int) -> OrderDecision:
        """Check the order can still be rejected before asking for the reason; `changed` False: it was."""
        require_admin(actor)
        row = await self._load(order_id)
        return OrderDecision(await self._view(row), self._allowed(row, "rejected"))

    async def reject(self, actor: PartnerView, order_id: int, reason: str) -> OrderDecision:
        """Reject with a reason the partner is told; nothing enters the ledger."""
        require_admin(actor)
        text = " ".join(reason.split())
        if not text or len(text) > REASON_MAX:
            raise UsageError("deals.orders.bad_reason", limit=REASON_MAX)
        row = await self._load(order_id)
        target = f"chat_order:{order_id}"
        values = {"status": "rejected", "reason": text, "decided_by": actor.id, "decided_at": self._ctx.clock.now()}
        if not self._allowed(row, "rejected") or not await self._uow.deals.transition(order_id, "pending", values):
            row = await self._load(order_id)
            self._allowed(row, "rejected")
            self._audit(actor, "chat_order_reject", target, "noop", {})
            return OrderDecision(await self._view(row), changed=False)
        row = await self._load(order_id)
        self._audit(actor, "chat_order_reject", target, "ok", {"reason": text})
        view = await self._view(row)
        await self._notify(await self._owner(row.partner_id), view, "rejected")
        return OrderDecision(view, changed=True)

    # ------------------------------------------------------------------ internals

    async def _plan_terms(self) -> tuple[str, list[str]]:
        """The plan's currency (new products' default) and its level names."""
        _, plan = await SettlementService(self._uow, self._ctx).plan_for(self._ctx.clock.now())
        return plan.currency, list(plan.levels)

    async def _owner(self, partner_id: int) -> Partner:
        owner = await self._uow.partners.get(partner_id)
        if owner is None:
            raise UsageError("error.generic")
        return owner

    async def _sellable(self, sku: str) -> tuple[Product, str]:
        """An active product by SKU, and its currency."""
        product = await self._uow.products.by_sku(sku)
        if product is None or not product.active:
            raise UsageError("deals.error.unknown_sku", sku=sku)
        currency = product.currency or (await self._plan_terms())[0]
        return product, currency

    @staticmethod
    def _unit_price(product: Product, owner: Partner) -> int:
        price = unit_price(product.list_price_minor, product.level_prices or {}, owner.level)
        if price is None:
            raise UsageError("deals.error.no_price", sku=product.sku)
        return price

    async def _product_link(self, partner_id: int, product_id: int) -> str:
        """The partner's tracked link to the product, created on first need (as /link does)."""
        uow, base, now = self._uow, self._ctx.public_base_url, self._ctx.clock.now()
        for _ in range(SLUG_ATTEMPTS):
            existing = await uow.links.for_products(partner_id, [product_id])
            if existing:
                return tracked_link(base, existing[product_id].slug)
            slug = new_slug(self._ctx.choice)
            if await uow.links.insert(
                slug=slug, partner_id=partner_id, content_id=None, product_id=product_id, now=now
            ):
                return tracked_link(base, slug)
        raise RuntimeError("could not find a free link slug")

    async def _load(self, order_id: int) -> ChatOrder:
        row = await self._uow.deals.order(order_id)
        if row is None:
            raise UsageError("deals.orders.not_found", id=order_id)
        return row

    @staticmethod
    def _allowed(row: ChatOrder, status: str) -> bool:
        """True when a pending order may become `status`; False when it already is; any other state refuses."""
        if row.status == "pending":
            return True
        if row.status == status:
            return False
        raise UsageError(f"deals.orders.refused.{row.status}", id=row.id)

    async def _view(self, row: ChatOrder) -> ChatOrderView:
        partner = await self._owner(row.partner_id)
        lead = await self._uow.deals.lead(row.lead_id) if row.lead_id is not None else None
        product = await self._uow.deals.product(row.product_id)
        return _order_view(row, partner, lead, product.name if product else row.sku)

    async def _admins(self) -> list[Partner]:
        """Every admin: stored with the role, or configured in ADMIN_IDS (once they have started the bot)."""
        admins = {p.id: p for p in await self._uow.partners.with_roles([Role.ADMIN.value])}
        for tg_id in sorted(self._ctx.admin_ids):
            configured = await self._uow.partners.by_tg_id(tg_id)
            if configured is not None:
                admins[configured.id] = configured
        return list(admins.values())

    async def _tell_admins(self, view: ChatOrderView) -> None:
        for admin in await self._admins():
            language = language_of(self._ctx, admin)
            t = self._ctx.translator.texts(language)
            await enqueue_text(
                self._uow,
                self._ctx,
                recipient=admin,
                dedupe_key=f"chat_order:{view.id}:new:{admin.id}",
                text=order_notice(view, t),
                reply_markup=order_keyboard(t, view.id, "n"),
            )

    async def _notify(self, partner: Partner, view: ChatOrderView, status: str) -> None:
        language = language_of(self._ctx, partner)
        t = self._ctx.translator.texts(language)
        text = t(
            f"deals.notice.{status}",
            id=view.id,
            amount=format_money(view.amount, language),
            product=view.product,
            quantity=view.quantity,
            lead=view.lead_name or "—",
            reason=view.reason or "",
        )
        await enqueue_text(
            self._uow, self._ctx, recipient=partner, dedupe_key=f"chat_order:{view.id}:{status}", text=text
        )


def order_notice(view: ChatOrderView, t: Texts) -> str:
    """An order as admins see it, in the notice and in /orders."""
    return t(
        "deals.orders.item",
        id=view.id,
        name=view.partner_name,
        code=view.invite_code,
        lead=view.lead_name or "—",
        product=view.product,
        sku=view.sku,
        quantity=view.quantity,
        amount=format_money(view.amount, t.language),
    )


async def load_products_file(path: Path) -> ProductFile:
    return await asyncio.to_thread(read_products_file, path)
