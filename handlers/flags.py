"""/flags (admins): orders held by the fraud checks, newest first, with [Release] and [Void] buttons.

For anyone else /flags falls through to `denied`, which refuses it and audits the try; their presses count as
expired buttons.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.callbacks import FlagCallback
from bot.domain.money import format_money
from bot.domain.roles import Role
from bot.i18n import Texts
from bot.services.fraud import FlagDecision, FlagList, FlagView
from bot.services.registry import UseCases
from bot.services.views import PartnerView
from handlers.filters import HasRole

DONE_KEYS = {"release": "flags.released_done", "void": "flags.voided_done"}


def _detail(item: FlagView, t: Texts) -> str:
    d = item.detail
    return t(
        f"flags.detail.{item.kind}",
        customer=d.get("customer_id", ""),
        bound=d.get("bound_code", ""),
        named=d.get("named_code", ""),
        via=d.get("via", ""),
        orders=d.get("orders", ""),
        minutes=d.get("minutes", ""),
        limit=d.get("limit", ""),
    )


def list_text(listing: FlagList, t: Texts) -> str:
    if not listing.items:
        return t("flags.empty")
    lines = [t("flags.list_title", count=len(listing.items))]
    lines += [
        t(
            "flags.item",
            id=item.id,
            order=item.order_id,
            name=item.partner_name,
            code=item.invite_code,
            amount=format_money(item.amount, t.language),
            date=item.created_at.astimezone(listing.zone).strftime("%Y-%m-%d %H:%M"),
            kind=t(f"flags.kind.{item.kind}"),
            detail=_detail(item, t),
        )
        for item in listing.items
    ]
    return "\n".join(lines)


def _button(t: Texts, action: str, flag_id: int) -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=t(f"flags.button.{action}", id=flag_id), callback_data=FlagCallback(action=action, id=flag_id).pack()
    )


def list_keyboard(listing: FlagList, t: Texts) -> InlineKeyboardMarkup | None:
    if not listing.items:
        return None
    rows = [[_button(t, "release", item.id), _button(t, "void", item.id)] for item in listing.items]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def outcome_text(decision: FlagDecision, action: str, t: Texts) -> str:
    view = decision.flag
    if not decision.changed:
        return t("flags.noop", order=view.order_id, status=view.order_status)
    return t(
        DONE_KEYS[action], order=view.order_id, amount=format_money(view.amount, t.language), name=view.partner_name
    )


async def flags_command(message: Message, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    listing = await uc.fraud.open_flags(partner)
    await message.answer(list_text(listing, t), reply_markup=list_keyboard(listing, t))


async def decide_press(
    callback: CallbackQuery, callback_data: FlagCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    action = callback_data.action
    if action == "release":
        decision = await uc.fraud.release(partner, callback_data.id)
    else:
        decision = await uc.fraud.void(partner, callback_data.id)
    await callback.answer()
    if not isinstance(callback.message, Message):
        return
    await callback.message.answer(outcome_text(decision, action, t))
    listing = await uc.fraud.open_flags(partner)
    await callback.message.edit_text(list_text(listing, t), reply_markup=list_keyboard(listing, t))


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only)."""
    router = Router(name=__name__)
    router.message.filter(HasRole(Role.ADMIN))
    router.callback_query.filter(HasRole(Role.ADMIN))
    router.message.register(flags_command, Command("flags"))
    router.callback_query.register(decide_press, FlagCallback.filter(F.action.in_({"release", "void"})))
    return router
