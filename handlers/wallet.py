"""/wallet: the partner's balances, their recent ledger lines explained, and the rates button."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.callbacks import WalletCallback
from bot.domain.money import Money, format_money, percent_of
from bot.i18n import Raw, Texts
from bot.services.registry import UseCases
from bot.services.views import PartnerView
from bot.services.wallet import LevelRates, RatesView, StatementLine, WalletView

MINUS = "\u2212"
"""A real minus sign: '−¥15.00' reads better than a hyphen next to '+¥15.00'."""


def format_rate(rate: Decimal) -> str:
    """Decimal("0.10") → '10%', Decimal("0.125") → '12.5%'."""
    return f"{(rate * 100).normalize():f}%"


def _signed(money: Money, language: str) -> str:
    sign = "+" if money.minor > 0 else MINUS if money.minor < 0 else ""
    return sign + format_money(Money(abs(money.minor), money.currency), language)


def _date(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d")


def explain(line: StatementLine, t: Texts, zone: ZoneInfo) -> str:
    """One ledger line in words: what it is, which rate and order produced it, and when it matures."""
    lang = t.language
    order, total = line.order_id, line.order_amount
    if line.kind == "commission" and order is not None and total is not None and line.rate is not None:
        text = t(
            "wallet.line.commission",
            amount=_signed(line.amount, lang),
            rate=format_rate(line.rate),
            tier=line.tier,
            level=line.level,
            order=order,
            total=format_money(total, lang),
            version=line.rules_version,
        )
        if line.available_at is not None:
            text += t("wallet.line.available_from", date=_date(line.available_at, zone))
        return text
    if line.kind == "reversal" and order is not None and line.rate is not None:
        rate = format_rate(line.rate)
        return t("wallet.line.reversal", amount=_signed(line.amount, lang), order=order, rate=rate, tier=line.tier)
    if line.kind == "dividend" and line.rate is not None and line.base is not None:
        return _dividend(line, line.rate, line.base, t)
    if line.kind == "release" and order is not None:
        return t("wallet.line.release", amount=format_money(line.amount, lang), order=order)
    kind_key = f"wallet.kind.{line.kind}"
    kind = t(kind_key) if t.has(kind_key) else line.kind
    if order is not None:
        return t("wallet.line.other_order", amount=_signed(line.amount, lang), kind=kind, order=order)
    return t("wallet.line.other", amount=_signed(line.amount, lang), kind=kind)


def period_words(kind: str, label: str, t: Texts) -> str:
    """A pool period's label in words: 2026-11 → 'November 2026' / '2026年11月'; unknown shapes stay as they are."""
    year, _, rest = label.partition("-")
    try:
        if kind == "monthly":
            return t("wallet.period.monthly", year=year, month=t(f"wallet.month.m{int(rest)}"))
        if kind == "weekly":
            return t("wallet.period.weekly", year=year, week=int(rest.removeprefix("W")))
        if kind == "quarterly":
            return t("wallet.period.quarterly", year=year, quarter=int(rest.removeprefix("Q")))
    except (ValueError, KeyError):
        pass
    return label


def _dividend(line: StatementLine, rate: Decimal, base: Money, t: Texts) -> str:
    """'+¥80.00 = 1/12 of the November 2026 Gold pool (2% of ¥48,000.00 GMV)'; a weighted or capped share says
    so instead of '1/12', since it is not a twelfth."""
    lang, facts = t.language, line.dividend
    total = percent_of(base, rate)
    params: dict[str, object] = {
        "amount": _signed(line.amount, lang),
        "rate": format_rate(rate),
        "gmv": format_money(base, lang),
        "total": format_money(total, lang),
    }
    if facts is None:  # a line the plan cannot explain any more: its size is still known
        return t("wallet.line.dividend_plain", **params)
    params |= {
        "pool": facts.titles.get(lang) or facts.pool,
        "period": period_words(facts.period_kind, facts.period, t),
        "count": facts.recipients,
    }
    capped = facts.cap is not None and line.amount == facts.cap
    if facts.split == "equal" and not capped:
        return t("wallet.line.dividend", **params)
    text = t("wallet.line.dividend_share", split=t(f"pools.split.{facts.split}"), **params)
    if capped and facts.cap is not None:
        text += t("wallet.line.dividend_capped", cap=format_money(facts.cap, lang))
    return text


def render_wallet(view: WalletView, t: Texts) -> str:
    parts = [t("wallet.title")]
    for balance in view.balances:
        if len(view.balances) > 1:
            parts.append(t("wallet.currency", currency=balance.currency))
        parts += [
            t(f"wallet.bucket.{bucket}", amount=format_money(money, t.language))
            for bucket, money in balance.buckets.items()
        ]
    if not view.lines:
        return "\n".join([*parts, "", t("wallet.empty")])
    parts += ["", t("wallet.recent")]
    parts += [
        t("wallet.entry", date=_date(line.created_at, view.zone), text=Raw(explain(line, t, view.zone)))
        for line in view.lines
    ]
    return "\n".join([*parts, "", t("wallet.hold_hint")])


def _rates(level: LevelRates, t: Texts) -> str:
    tiers = [t("wallet.rates.tier", tier=n, rate=format_rate(rate)) for n, rate in enumerate(level.rates, start=1)]
    return t("wallet.rates.separator").join(tiers)


def _title(level: LevelRates, t: Texts) -> str:
    return level.titles.get(t.language) or level.name


def render_rates(view: RatesView, t: Texts) -> str:
    parts = [
        t("wallet.rates.title", version=view.rules_version),
        t("wallet.rates.now", level=_title(view.current, t), rates=_rates(view.current, t)),
    ]
    if view.next is not None:
        parts.append(t("wallet.rates.next", level=_title(view.next, t), rates=_rates(view.next, t)))
    else:
        parts.append(t("wallet.rates.top"))
    parts += ["", t("wallet.rates.all")]
    for level in view.levels:
        marker = t("wallet.rates.marker_current" if level.name == view.current.name else "wallet.rates.marker_other")
        parts.append(t("wallet.rates.level", marker=marker, level=_title(level, t), rates=_rates(level, t)))
    explain_key = "wallet.rates.explain_l3" if len(view.current.rates) > 2 else "wallet.rates.explain"
    return "\n".join([*parts, "", t(explain_key)])


def wallet_keyboard(t: Texts) -> InlineKeyboardMarkup:
    button = InlineKeyboardButton(text=t("wallet.rates_button"), callback_data=WalletCallback(action="rates").pack())
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


async def wallet(message: Message, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    view = await uc.wallet.wallet(partner.id)
    await message.answer(render_wallet(view, t), reply_markup=wallet_keyboard(t))


async def rates_button(callback: CallbackQuery, bot: Bot, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    view = await uc.wallet.rates(partner.id)
    await callback.answer()
    await bot.send_message(callback.from_user.id, render_rates(view, t))


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only)."""
    router = Router(name=__name__)
    router.message.register(wallet, Command("wallet"))
    router.callback_query.register(rates_button, WalletCallback.filter(F.action == "rates"))
    return router
