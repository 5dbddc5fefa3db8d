"""Withdrawals: /withdraw for partners; /payouts for admins (`/export payouts` is in handlers/exports.py).

/payouts lists open requests with [Approve] [Reject] (requested) or [Mark paid] [Reject] (approved) buttons.
Reject asks for the reason and Mark paid for the payment reference; the request's id waits in FSM state
until the answer comes. The request and its state live in the database.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.callbacks import PayoutCallback
from bot.domain.money import format_money
from bot.domain.roles import Role
from bot.i18n import Texts
from bot.services.payouts import Decision, PayoutList, WithdrawalView
from bot.services.registry import UseCases
from bot.services.views import PartnerView
from handlers.filters import HasRole, Inline

DONE_KEYS = {"approve": "payouts.approved_done", "reject": "payouts.rejected_done", "pay": "payouts.paid_done"}
RESULT_STATUS = {"approve": "approved", "reject": "rejected", "pay": "paid"}


class PayoutForm(StatesGroup):
    reason = State()
    reference = State()


# -- rendering -----------------------------------------------------------------------------------------


def _date(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d")


def _button(t: Texts, action: str, withdrawal_id: int) -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=t(f"payouts.button.{action}", id=withdrawal_id),
        callback_data=PayoutCallback(action=action, id=withdrawal_id).pack(),
    )


def list_text(listing: PayoutList, t: Texts) -> str:
    if not listing.items:
        return t("payouts.empty")
    lines = [t("payouts.list_title", count=len(listing.items))]
    lines += [
        t(
            f"payouts.item.{item.status}",
            id=item.id,
            name=item.partner_name,
            code=item.invite_code,
            amount=format_money(item.amount, t.language),
            date=_date(item.created_at, listing.zone),
        )
        for item in listing.items
    ]
    return "\n".join(lines)


def list_keyboard(listing: PayoutList, t: Texts) -> InlineKeyboardMarkup | None:
    if not listing.items:
        return None
    rows = [
        [_button(t, "approve" if item.status == "requested" else "pay", item.id), _button(t, "reject", item.id)]
        for item in listing.items
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def outcome_text(decision: Decision, action: str, t: Texts) -> str:
    view = decision.withdrawal
    if not decision.changed:
        return t(f"payouts.noop.{RESULT_STATUS[action]}", id=view.id)
    return t(
        DONE_KEYS[action],
        id=view.id,
        amount=format_money(view.amount, t.language),
        name=view.partner_name,
        reference=view.reference or "",
    )


def _params(view: WithdrawalView, t: Texts) -> dict[str, object]:
    return {"id": view.id, "amount": format_money(view.amount, t.language), "name": view.partner_name}


# -- partners ------------------------------------------------------------------------------------------


async def withdraw(message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    if not (command.args or "").strip():
        view = await uc.payouts.overview(partner.id)
        lang = t.language
        available, minimum = format_money(view.available, lang), format_money(view.minimum, lang)
        await message.answer(t("payouts.overview", available=available, minimum=minimum))
        return
    done = await uc.payouts.request(partner, command.args)
    await message.answer(
        t(
            "payouts.requested",
            id=done.withdrawal.id,
            amount=format_money(done.withdrawal.amount, t.language),
            available=format_money(done.available, t.language),
            requested=format_money(done.requested, t.language),
        )
    )


# -- admins --------------------------------------------------------------------------------------------


async def payouts_command(message: Message, state: FSMContext, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    await state.clear()
    listing = await uc.payouts.open_requests(partner)
    await message.answer(list_text(listing, t), reply_markup=list_keyboard(listing, t))


async def approve_press(
    callback: CallbackQuery, callback_data: PayoutCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    decision = await uc.payouts.approve(partner, callback_data.id)
    await callback.answer()
    await refresh(callback, outcome_text(decision, "approve", t), partner, uc, t)


async def refresh(callback: CallbackQuery, outcome: str, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    """Say what happened, and replace the list the button was pressed in with the current one."""
    if not isinstance(callback.message, Message):
        return
    await callback.message.answer(outcome)
    listing = await uc.payouts.open_requests(partner)
    await callback.message.edit_text(list_text(listing, t), reply_markup=list_keyboard(listing, t))


async def ask_press(
    callback: CallbackQuery,
    callback_data: PayoutCallback,
    state: FSMContext,
    partner: PartnerView,
    uc: UseCases,
    t: Texts,
) -> None:
    """[Reject] and [Mark paid]: check the request can still take the step, then ask for its text."""
    action = callback_data.action
    decision = await uc.payouts.prepare(partner, callback_data.id, action)
    if not decision.changed:
        await callback.answer(outcome_text(decision, action, t), show_alert=True)
        return
    await callback.answer()
    await state.set_state(PayoutForm.reason if action == "reject" else PayoutForm.reference)
    await state.update_data(withdrawal=decision.withdrawal.id)
    if isinstance(callback.message, Message):
        key = "payouts.ask_reason" if action == "reject" else "payouts.ask_reference"
        await callback.message.answer(t(key, **_params(decision.withdrawal, t)))


async def got_reason(message: Message, state: FSMContext, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    withdrawal_id = int((await state.get_data())["withdrawal"])
    decision = await uc.payouts.reject(partner, withdrawal_id, message.text or "")
    await state.clear()
    await message.answer(outcome_text(decision, "reject", t))


async def got_reference(message: Message, state: FSMContext, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    withdrawal_id = int((await state.get_data())["withdrawal"])
    decision = await uc.payouts.mark_paid(partner, withdrawal_id, message.text or "")
    await state.clear()
    await message.answer(outcome_text(decision, "pay", t))


async def cancel_command(message: Message, state: FSMContext, t: Texts) -> None:
    await state.clear()
    await message.answer(t("payouts.cancelled"))


async def expect_text(message: Message, t: Texts) -> None:
    await message.answer(t("payouts.expect_text"))


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only).

    /withdraw is for everyone. The admin part is filtered by role: for anyone else /payouts falls
    through to `denied`, which refuses them and audits the try; their button presses count as expired.
    """
    router = Router(name=__name__)
    router.message.register(withdraw, Command("withdraw"))

    admin = Router(name=f"{__name__}.admin")
    admin.message.filter(HasRole(Role.ADMIN))
    admin.callback_query.filter(HasRole(Role.ADMIN))
    form = StateFilter(PayoutForm)
    not_command = Inline(~F.text.startswith("/"))
    admin.message.register(cancel_command, Command("cancel"), form)
    admin.message.register(payouts_command, Command("payouts"))
    admin.message.register(got_reason, StateFilter(PayoutForm.reason), Inline(F.text), not_command)
    admin.message.register(got_reference, StateFilter(PayoutForm.reference), Inline(F.text), not_command)
    admin.message.register(expect_text, form, not_command)
    admin.callback_query.register(approve_press, PayoutCallback.filter(F.action == "approve"))
    admin.callback_query.register(ask_press, PayoutCallback.filter(F.action.in_({"reject", "pay"})))
    router.include_router(admin)
    return router
