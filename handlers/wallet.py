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
        # the pool's name and period are on the entry's rule ("pools.<name>:<period>"); the statement line
        # does not carry it yet, so the text names the pool by its size
        return t(
            "wallet.line.dividend",
            amount=_signed(line.amount, lang),
            total=format_money(percent_of(line.base, line.rate), lang),
            rate=format_rate(line.rate),
            gmv=format_money(line.base, lang),
        )
    if line.kind == "release" and order is not None:
        return t("wallet.line.release", amount=format_money(line.amount, lang), order=order)
    kind_key = f"wallet.kind.{line.kind}"
    kind = t(kind_key) if t.has(kind_key) else line.kind
    if order is not None:
        return t("wallet.line.other_order", amount=_signed(line.amount, lang), kind=kind, order=order)
    return t("wallet.line.other", amount=_signed(line.amount, lang), kind=kind)


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
