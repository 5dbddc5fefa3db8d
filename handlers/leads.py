"""Prospects and follow-ups: /lead, /leads, /followup, the lead card, reminders, /deletelead, /mydata.

The multi-step forms (adding a lead, logging a follow-up, choosing a reminder time) keep only their answers so
far in FSM state; leads, follow-ups and reminders live in the database.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageOriginHiddenUser,
    MessageOriginUser,
)

from bot.callbacks import LeadCallback, LeadListCallback
from bot.domain.errors import UsageError
from bot.domain.leads import NAME_MAX, LeadDraft, normalise_phone, parse_contact
from bot.i18n import Texts
from bot.services.leads import (
    CHANNELS,
    REMIND_PRESETS,
    AddResult,
    FollowupResult,
    LeadCard,
    LeadPage,
    card_keyboard,
    card_text,
)
from bot.services.registry import UseCases
from bot.services.views import PartnerView
from handlers.filters import Inline

QUERY_IN_BUTTON = 20
"""Search texts up to this long ride in the paging buttons (callback data is limited to 64 bytes)."""


class LeadForm(StatesGroup):
    name = State()
    contact = State()
    note = State()


class FollowupForm(StatesGroup):
    channel = State()
    outcome = State()
    note = State()
    next = State()


class RemindForm(StatesGroup):
    when = State()


# -- rendering -----------------------------------------------------------------------------------------


def _markup(raw: dict[str, Any]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup.model_validate(raw)


def _btn(text: str, action: str, lead_id: int = 0, value: str = "") -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=LeadCallback(action=action, id=lead_id, value=value).pack())


def render_card(card: LeadCard, uc: UseCases, t: Texts) -> str:
    return card_text(card, t, uc.ctx.lead_stages.label(card.stage, t.language))


async def send_card(message: Message, card: LeadCard, uc: UseCases, t: Texts, intro: str | None = None) -> None:
    text = render_card(card, uc, t)
    await message.answer(f"{intro}\n\n{text}" if intro else text, reply_markup=_markup(card_keyboard(card, t)))


def _filter_label(page: LeadPage, uc: UseCases, t: Texts) -> str:
    if page.filter == "overdue":
        return t("leads.list.filter_overdue")
    if page.filter == "q":
        return t("leads.list.filter_search", query=page.query)
    if page.filter != "all":
        return t("leads.list.filter_stage", stage=uc.ctx.lead_stages.label(page.filter, t.language))
    return ""


def list_text(page: LeadPage, uc: UseCases, t: Texts) -> str:
    label = _filter_label(page, uc, t)
    if not page.items:
        return t("leads.list.empty_filtered", filter=label) if label else t("leads.list.empty")
    lines = [t("leads.list.title", count=page.total, page=page.page + 1, pages=page.pages)]
    if label:
        lines.append(label)
    for card in page.items:
        key = "leads.list.item_overdue" if card.overdue else "leads.list.item"
        lines.append(t(key, number=card.number, name=card.name, stage=uc.ctx.lead_stages.label(card.stage, t.language)))
    return "\n".join(lines)


def list_keyboard(page: LeadPage, uc: UseCases, t: Texts) -> InlineKeyboardMarkup:
    buttons = [_btn(f"#{c.number} {c.name}"[:40], "open", c.id) for c in page.items]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    query = page.query if len(page.query) <= QUERY_IN_BUTTON and ":" not in page.query else ""
    nav: list[InlineKeyboardButton] = []
    if page.page > 0:
        data = LeadListCallback(kind=page.filter, page=page.page - 1, query=query).pack()
        nav.append(InlineKeyboardButton(text=t("leads.list.prev"), callback_data=data))
    if page.page + 1 < page.pages and (page.filter != "q" or query):
        data = LeadListCallback(kind=page.filter, page=page.page + 1, query=query).pack()
        nav.append(InlineKeyboardButton(text=t("leads.list.next"), callback_data=data))
    if nav:
        rows.append(nav)
    filters = [("all", t("leads.list.all")), ("overdue", t("leads.list.overdue"))]
    filters += [(s.key, s.label(t.language)) for s in uc.ctx.lead_stages.stages]
    chips = [
        InlineKeyboardButton(text=label, callback_data=LeadListCallback(kind=kind).pack())
        for kind, label in filters
        if kind != page.filter
    ]
    rows += [chips[i : i + 4] for i in range(0, len(chips), 4)]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _skip(t: Texts, step: str, lead_id: int = 0) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[_btn(t("leads.button.skip"), "skip", lead_id, step)]])


def _when(card: LeadCard, t: Texts) -> str:
    assert card.reminder_at is not None
    return card.reminder_at.astimezone(card.zone).strftime("%Y-%m-%d %H:%M")


# -- adding --------------------------------------------------------------------------------------------


async def lead_command(
    message: Message, command: CommandObject, state: FSMContext, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    if not (command.args or "").strip():
        await state.set_state(LeadForm.name)
        await state.set_data({"source": "form"})
        await message.answer(t("leads.form.ask_name"))
        return
    draft = uc.leads.parse_line(command.args)
    result = await uc.leads.add(partner.id, draft, "command")
    await answer_added(message, state, result, draft, "command", uc, t)


async def answer_added(
    message: Message,
    state: FSMContext,
    result: AddResult,
    draft: LeadDraft,
    source: str,
    uc: UseCases,
    t: Texts,
) -> None:
    await state.clear()
    if result.created:
        await send_card(message, result.card, uc, t, intro=t("leads.added", number=result.card.number))
        return
    await state.set_data({"dup": asdict(draft), "source": source})
    existing = result.card
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _btn(t("leads.button.open_existing"), "open", existing.id),
                _btn(t("leads.button.add_anyway"), "dup"),
            ]
        ]
    )
    await message.answer(t("leads.duplicate", number=existing.number, name=existing.name), reply_markup=keyboard)


async def add_anyway(callback: CallbackQuery, state: FSMContext, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    data = await state.get_data()
    if "dup" not in data or not isinstance(callback.message, Message):
        await callback.answer(t("leads.gone"), show_alert=True)
        return
    draft = LeadDraft(**data["dup"])
    result = await uc.leads.add(partner.id, draft, str(data.get("source", "command")), force=True)
    await callback.answer()
    await answer_added(callback.message, state, result, draft, "command", uc, t)


async def form_name(message: Message, state: FSMContext, t: Texts) -> None:
    name = (message.text or "").strip()
    if not name or len(name) > NAME_MAX:
        raise UsageError("leads.usage.add_name")
    await state.update_data(name=name)
    await state.set_state(LeadForm.contact)
    await message.answer(t("leads.form.ask_contact", name=name), reply_markup=_skip(t, "contact"))


async def form_contact(message: Message, state: FSMContext, t: Texts) -> None:
    contact = parse_contact(message.text or "")
    if contact is None:
        raise UsageError("leads.form.bad_contact", part=(message.text or "").strip())
    await state.update_data(phone=contact.phone, wechat=contact.wechat, telegram=contact.telegram)
    await ask_note(message, state, t)


async def ask_note(message: Message, state: FSMContext, t: Texts) -> None:
    await state.set_state(LeadForm.note)
    await message.answer(t("leads.form.ask_note"), reply_markup=_skip(t, "note"))


async def form_note(message: Message, state: FSMContext, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    await save_form(message, state, (message.text or "").strip() or None, partner, uc, t)


async def save_form(
    message: Message, state: FSMContext, note: str | None, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    data = await state.get_data()
    draft = LeadDraft(
        name=str(data.get("name", "")),
        phone=data.get("phone"),
        wechat=data.get("wechat"),
        telegram=data.get("telegram"),
        tg_user_id=data.get("tg_user_id"),
        note=note,
    )
    source = str(data.get("source", "form"))
    result = await uc.leads.add(partner.id, draft, source)
    await answer_added(message, state, result, draft, source, uc, t)


async def forwarded(message: Message, state: FSMContext, t: Texts) -> None:
    """A message forwarded from a person pre-fills the form with their name and Telegram account."""
    origin = message.forward_origin
    data: dict[str, Any] = {"source": "forward"}
    if isinstance(origin, MessageOriginUser):
        user = origin.sender_user
        data.update(name=user.full_name, tg_user_id=user.id, telegram=(user.username or "").lower() or None)
    else:
        assert isinstance(origin, MessageOriginHiddenUser)  # the router lets only these two through
        data.update(name=origin.sender_user_name)
    await state.set_data(data)
    await message.answer(t("leads.form.prefilled", name=data["name"]))
    await ask_note(message, state, t)


async def shared_contact(message: Message, state: FSMContext, t: Texts) -> None:
    """A shared contact card pre-fills the form with the name and phone."""
    contact = message.contact
    assert contact is not None
    name = " ".join(p for p in (contact.first_name, contact.last_name) if p)
    await state.set_data(
        {
            "source": "contact",
            "name": name,
            "phone": normalise_phone(contact.phone_number),
            "tg_user_id": contact.user_id,
        }
    )
    await message.answer(t("leads.form.prefilled", name=name))
    await ask_note(message, state, t)


# -- listing and the card ------------------------------------------------------------------------------


async def leads_command(message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    page = await uc.leads.listing(partner.id, command.args)
    await message.answer(list_text(page, uc, t), reply_markup=list_keyboard(page, uc, t))


async def list_press(
    callback: CallbackQuery, callback_data: LeadListCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    page = await uc.leads.page(partner.id, callback_data.kind, callback_data.query, callback_data.page)
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.edit_text(list_text(page, uc, t), reply_markup=list_keyboard(page, uc, t))


async def open_press(
    callback: CallbackQuery, callback_data: LeadCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    card = await uc.leads.card(partner.id, callback_data.id)
    await callback.answer()
    if isinstance(callback.message, Message):
        await send_card(callback.message, card, uc, t)


async def stage_menu(
    callback: CallbackQuery, callback_data: LeadCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    card = await uc.leads.card(partner.id, callback_data.id)
    await callback.answer()
    buttons = [
        _btn(s.label(t.language), "set", card.id, s.key) for s in uc.ctx.lead_stages.stages if s.key != card.stage
    ]
    rows = [buttons[i : i + 3] for i in range(0, len(buttons), 3)]
    if isinstance(callback.message, Message):
        await callback.message.answer(
            t("leads.stage.choose", number=card.number, name=card.name),
            reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
        )


async def stage_press(
    callback: CallbackQuery, callback_data: LeadCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    stage = callback_data.value if callback_data.action == "set" else callback_data.action
    card = await uc.leads.change_stage(partner.id, callback_data.id, stage)
    label = uc.ctx.lead_stages.label(card.stage, t.language)
    await callback.answer(t("leads.stage.changed", number=card.number, stage=label))
    if isinstance(callback.message, Message):
        await send_card(callback.message, card, uc, t)


async def hint_press(
    callback: CallbackQuery, callback_data: LeadCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    """[Quote] and [Invite]: the command that does it, ready to complete."""
    card = await uc.leads.card(partner.id, callback_data.id)
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.answer(t(f"leads.hint.{callback_data.action}", number=card.number))


# -- follow-ups ----------------------------------------------------------------------------------------


async def followup_command(
    message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    result = await uc.leads.followup_line(partner.id, command.args)
    await answer_followup(message, result, uc, t)


async def answer_followup(message: Message, result: FollowupResult, uc: UseCases, t: Texts) -> None:
    parts = [t("leads.followup.saved_revisit" if result.revisit else "leads.followup.saved", number=result.card.number)]
    if result.reminder_at is not None:
        parts.append(t("leads.remind.set", when=_when(result.card, t)))
    await send_card(message, result.card, uc, t, intro="\n".join(parts))


async def followup_press(
    callback: CallbackQuery,
    callback_data: LeadCallback,
    state: FSMContext,
    partner: PartnerView,
    uc: UseCases,
    t: Texts,
) -> None:
    card = await uc.leads.card(partner.id, callback_data.id)
    await callback.answer()
    await state.set_state(FollowupForm.channel)
    await state.set_data({"lead": card.id})
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[_btn(t(f"leads.channel.{c}"), "ch", card.id, c) for c in CHANNELS]]
    )
    if isinstance(callback.message, Message):
        await callback.message.answer(
            t("leads.followup.ask_channel", number=card.number, name=card.name), reply_markup=keyboard
        )


async def channel_press(callback: CallbackQuery, callback_data: LeadCallback, state: FSMContext, t: Texts) -> None:
    if callback_data.value not in CHANNELS or (await state.get_data()).get("lead") != callback_data.id:
        await callback.answer(t("leads.gone"), show_alert=True)
        return
    await callback.answer()
    await state.update_data(channel=callback_data.value)
    await state.set_state(FollowupForm.outcome)
    if isinstance(callback.message, Message):
        await callback.message.answer(t("leads.followup.ask_outcome"), reply_markup=_skip(t, "outcome"))


async def followup_outcome(message: Message, state: FSMContext, t: Texts) -> None:
    outcome = (message.text or "").strip()
    if len(outcome) > 200:
        raise UsageError("leads.usage.too_long")
    await state.update_data(outcome=outcome)
    await state.set_state(FollowupForm.note)
    await message.answer(t("leads.followup.ask_note"))


async def followup_note(message: Message, state: FSMContext, t: Texts) -> None:
    await state.update_data(note=(message.text or "").strip())
    await state.set_state(FollowupForm.next)
    await message.answer(t("leads.followup.ask_next"), reply_markup=_skip(t, "next"))


async def followup_next(message: Message, state: FSMContext, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    await save_followup(message, state, (message.text or "").strip() or None, partner, uc, t)


async def save_followup(
    message: Message, state: FSMContext, next_step: str | None, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    data = await state.get_data()
    result = await uc.leads.followup(
        partner.id,
        int(data["lead"]),
        channel=str(data.get("channel", "")),
        outcome=data.get("outcome") or None,
        note=str(data.get("note") or data.get("outcome") or t("leads.followup.no_note")),
        next_step=next_step,
    )
    await state.clear()
    await answer_followup(message, result, uc, t)


async def skip_press(
    callback: CallbackQuery,
    callback_data: LeadCallback,
    state: FSMContext,
    partner: PartnerView,
    uc: UseCases,
    t: Texts,
) -> None:
    """[Skip] on a form step: only the step the form is at (an old button does nothing)."""
    current = await state.get_state()
    expected = {
        "contact": LeadForm.contact.state,
        "note": LeadForm.note.state,
        "outcome": FollowupForm.outcome.state,
        "next": FollowupForm.next.state,
    }.get(callback_data.value)
    if expected is None or current != expected or not isinstance(callback.message, Message):
        await callback.answer(t("leads.gone"), show_alert=True)
        return
    await callback.answer()
    message = callback.message
    if callback_data.value == "contact":
        await ask_note(message, state, t)
    elif callback_data.value == "note":
        await save_form(message, state, None, partner, uc, t)
    elif callback_data.value == "outcome":
        await state.set_state(FollowupForm.note)
        await message.answer(t("leads.followup.ask_note"))
    else:
        await save_followup(message, state, None, partner, uc, t)


# -- reminders -----------------------------------------------------------------------------------------


async def remind_press(
    callback: CallbackQuery,
    callback_data: LeadCallback,
    state: FSMContext,
    partner: PartnerView,
    uc: UseCases,
    t: Texts,
) -> None:
    card = await uc.leads.card(partner.id, callback_data.id)
    await callback.answer()
    await state.set_state(RemindForm.when)
    await state.set_data({"lead": card.id})
    presets = [_btn(t(f"leads.remind.preset.{key}"), "at", card.id, key) for key in REMIND_PRESETS]
    if isinstance(callback.message, Message):
        await callback.message.answer(
            t("leads.remind.ask", number=card.number, name=card.name),
            reply_markup=InlineKeyboardMarkup(inline_keyboard=[presets]),
        )


async def preset_press(
    callback: CallbackQuery,
    callback_data: LeadCallback,
    state: FSMContext,
    partner: PartnerView,
    uc: UseCases,
    t: Texts,
) -> None:
    if callback_data.value not in REMIND_PRESETS:
        await callback.answer(t("leads.gone"), show_alert=True)
        return
    card = await uc.leads.remind(partner.id, callback_data.id, callback_data.value)
    await callback.answer()
    await state.clear()
    if isinstance(callback.message, Message):
        await send_card(callback.message, card, uc, t, intro=t("leads.remind.set", when=_when(card, t)))


async def remind_text(message: Message, state: FSMContext, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    lead_id = int((await state.get_data())["lead"])
    card = await uc.leads.remind(partner.id, lead_id, (message.text or "").strip())
    await state.clear()
    await send_card(message, card, uc, t, intro=t("leads.remind.set", when=_when(card, t)))


async def done_press(
    callback: CallbackQuery, callback_data: LeadCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    card = await uc.leads.done(partner.id, callback_data.id)
    await callback.answer(t("leads.remind.done", number=card.number))


async def snooze_press(
    callback: CallbackQuery, callback_data: LeadCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    card = await uc.leads.snooze(partner.id, callback_data.id, callback_data.value)
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.answer(t("leads.remind.snoozed", number=card.number, when=_when(card, t)))


# -- privacy -------------------------------------------------------------------------------------------


async def mydata_command(message: Message, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    export = await uc.leads.export(partner.id)
    document = BufferedInputFile(export.data, filename=export.filename)
    await message.answer_document(document, caption=t("leads.mydata.caption", leads=export.leads))


async def deletelead_command(
    message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    token = (command.args or "").strip()
    if not token or " " in token:
        raise UsageError("leads.usage.delete")
    card = await uc.leads.card_by_ref(partner.id, token)
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [_btn(t("leads.button.delete"), "del", card.id), _btn(t("leads.button.keep"), "keep", card.id)]
        ]
    )
    await message.answer(t("leads.delete.confirm", number=card.number, name=card.name), reply_markup=keyboard)


async def delete_press(
    callback: CallbackQuery, callback_data: LeadCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    number = await uc.leads.delete(partner, callback_data.id)
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.edit_text(t("leads.delete.done", number=number))


async def keep_press(callback: CallbackQuery, t: Texts) -> None:
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.edit_text(t("leads.delete.kept"))


# -- form plumbing -------------------------------------------------------------------------------------


async def cancel_command(message: Message, state: FSMContext, t: Texts) -> None:
    await state.clear()
    await message.answer(t("leads.form.cancelled"))


async def expect_text(message: Message, t: Texts) -> None:
    await message.answer(t("leads.form.expect_text"))


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only)."""
    router = Router(name=__name__)
    forms = StateFilter(LeadForm, FollowupForm, RemindForm)
    text = Inline(F.text & ~F.text.startswith("/"))
    router.message.register(cancel_command, Command("cancel"), forms)
    router.message.register(lead_command, Command("lead"))
    router.message.register(leads_command, Command("leads"))
    router.message.register(followup_command, Command("followup"))
    router.message.register(mydata_command, Command("mydata"))
    router.message.register(deletelead_command, Command("deletelead"))
    prefill = StateFilter(None, LeadForm)
    router.message.register(shared_contact, Inline(F.contact), prefill)
    router.message.register(forwarded, Inline(F.forward_origin.type.in_({"user", "hidden_user"})), prefill)
    router.message.register(form_name, StateFilter(LeadForm.name), text)
    router.message.register(form_contact, StateFilter(LeadForm.contact), text)
    router.message.register(form_note, StateFilter(LeadForm.note), text)
    router.message.register(followup_outcome, StateFilter(FollowupForm.outcome), text)
    router.message.register(followup_note, StateFilter(FollowupForm.note), text)
    router.message.register(followup_next, StateFilter(FollowupForm.next), text)
    router.message.register(remind_text, StateFilter(RemindForm.when), text)
    router.message.register(expect_text, forms, Inline(~F.text.startswith("/")))

    cb = router.callback_query
    cb.register(list_press, LeadListCallback.filter())
    cb.register(open_press, LeadCallback.filter(F.action == "open"))
    cb.register(add_anyway, LeadCallback.filter(F.action == "dup"))
    cb.register(stage_menu, LeadCallback.filter(F.action == "stage"))
    cb.register(stage_press, LeadCallback.filter(F.action.in_({"set", "won", "lost"})))
    cb.register(hint_press, LeadCallback.filter(F.action.in_({"quote", "invite"})))
    cb.register(followup_press, LeadCallback.filter(F.action == "fu"))
    cb.register(channel_press, LeadCallback.filter(F.action == "ch"), StateFilter(FollowupForm.channel))
    cb.register(skip_press, LeadCallback.filter(F.action == "skip"))
    cb.register(remind_press, LeadCallback.filter(F.action == "remind"))
    cb.register(preset_press, LeadCallback.filter(F.action == "at"))
    cb.register(done_press, LeadCallback.filter(F.action == "done"))
    cb.register(snooze_press, LeadCallback.filter(F.action == "snooze"))
    cb.register(delete_press, LeadCallback.filter(F.action == "del"))
    cb.register(keep_press, LeadCallback.filter(F.action == "keep"))
    return router
