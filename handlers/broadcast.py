"""/broadcast for admins: message → audience → preview with the recipient count → confirm → progress.

The form's answers live in FSM state; the broadcast itself, once confirmed, lives in the database.
"""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.callbacks import BroadcastCallback
from bot.domain.broadcasts import Audience, AudienceKind, parse_codes
from bot.domain.content import LEVELS, SEGMENTS
from bot.domain.roles import Role
from bot.i18n import Texts
from bot.services.broadcasts import AudiencePreview, BroadcastService, stop_markup
from bot.services.registry import UseCases
from bot.services.views import PartnerView
from handlers.filters import HasRole, Inline

AUDIENCE_BUTTONS = (
    ("everyone", ""),
    ("role", Role.PARTNER.value),
    ("role", Role.LEAD.value),
    ("role", Role.ADMIN.value),
    ("team", ""),
    ("codes", ""),
    ("level", ""),
    ("segment", ""),
)
GROUPS = {"level": LEVELS, "segment": SEGMENTS}


class BroadcastForm(StatesGroup):
    message = State()
    audience = State()
    lead = State()
    codes = State()
    confirm = State()


def _button(text: str, action: str, value: str = "") -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=BroadcastCallback(action=action, value=value).pack())


def audience_keyboard(t: Texts) -> InlineKeyboardMarkup:
    buttons = [_button(t(f"broadcast.audience_{a}{'_' + v if v else ''}"), a, v) for a, v in AUDIENCE_BUTTONS]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append([_button(t("broadcast.abort_button"), "abort")])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def group_keyboard(t: Texts, kind: str) -> InlineKeyboardMarkup:
    """Levels or activity segments to choose from, two per row."""
    buttons = [_button(t(f"{kind}.{value}"), kind, value) for value in GROUPS[kind]]
    rows = [buttons[i : i + 3] for i in range(0, len(buttons), 3)]
    rows.append([_button(t("broadcast.abort_button"), "abort")])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def confirm_keyboard(t: Texts) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(t("broadcast.confirm_button"), "confirm"), _button(t("broadcast.abort_button"), "abort")]
        ]
    )


def describe(audience: Audience, preview: AudiencePreview, t: Texts) -> str:
    if audience.kind is AudienceKind.ROLE:
        return t("broadcast.describe_role", role=t(f"role.{audience.role}"))
    if audience.kind is AudienceKind.TEAM:
        return t("broadcast.describe_team", lead=preview.lead_name or audience.lead or "")
    if audience.kind is AudienceKind.CODES:
        return t("broadcast.describe_codes", count=len(audience.codes))
    if audience.kind is AudienceKind.LEVEL:
        return t("broadcast.describe_level", level=t(f"level.{audience.group}"))
    if audience.kind is AudienceKind.SEGMENT:
        return t("broadcast.describe_segment", segment=t(f"segment.{audience.group}"))
    return t("broadcast.describe_everyone")


async def begin(message: Message, state: FSMContext, t: Texts) -> None:
    await state.set_state(BroadcastForm.message)
    await message.answer(
        t("broadcast.ask_message"),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[[_button(t("broadcast.abort_button"), "abort")]]),
    )


async def got_message(message: Message, state: FSMContext, t: Texts) -> None:
    if message.photo:
        content: dict[str, Any] = {
            "kind": "photo",
            "file_id": message.photo[-1].file_id,
            "caption": message.html_text or None,
        }
    elif message.text:
        content = {"kind": "text", "text": message.html_text}
    else:
        await message.answer(t("broadcast.unsupported"))
        return
    await state.update_data(content=content)
    await state.set_state(BroadcastForm.audience)
    await message.answer(t("broadcast.ask_audience"), reply_markup=audience_keyboard(t))


async def chose_audience(
    callback: CallbackQuery, callback_data: BroadcastCallback, state: FSMContext, uc: UseCases, t: Texts
) -> None:
    await callback.answer()
    if not isinstance(callback.message, Message):
        return
    if callback_data.action == "team":
        await state.set_state(BroadcastForm.lead)
        await callback.message.answer(t("broadcast.ask_lead"))
        return
    if callback_data.action == "codes":
        await state.set_state(BroadcastForm.codes)
        await callback.message.answer(t("broadcast.ask_codes"))
        return
    if callback_data.action in GROUPS:
        if callback_data.value not in GROUPS[callback_data.action]:
            await callback.message.answer(
                t(f"broadcast.ask_{callback_data.action}"), reply_markup=group_keyboard(t, callback_data.action)
            )
            return
        group_kind = AudienceKind(callback_data.action)
        await show_preview(callback.message, Audience(group_kind, group=callback_data.value), state, uc.broadcasts, t)
        return
    kind = AudienceKind(callback_data.action)
    audience = Audience(kind, role=callback_data.value or None)
    await show_preview(callback.message, audience, state, uc.broadcasts, t)


async def got_lead(message: Message, state: FSMContext, uc: UseCases, t: Texts) -> None:
    await show_preview(message, Audience(AudienceKind.TEAM, lead=(message.text or "").strip()), state, uc.broadcasts, t)


async def got_codes(message: Message, state: FSMContext, uc: UseCases, t: Texts) -> None:
    await show_preview(
        message, Audience(AudienceKind.CODES, codes=parse_codes(message.text or "")), state, uc.broadcasts, t
    )


async def show_preview(
    message: Message, audience: Audience, state: FSMContext, service: BroadcastService, t: Texts
) -> None:
    """Show the message exactly as recipients will see it, then the count and Confirm / Cancel."""
    preview = await service.preview(audience)
    content = (await state.get_data())["content"]
    if content["kind"] == "photo":
        await message.answer_photo(content["file_id"], caption=content.get("caption"))
    else:
        await message.answer(content["text"])
    await state.update_data(audience=audience.to_json())
    await state.set_state(BroadcastForm.confirm)
    summary = t(
        "broadcast.preview",
        audience=describe(audience, preview, t),
        total=f"{preview.total:,}",
        reachable=f"{preview.reachable:,}",
        unreachable=f"{preview.total - preview.reachable:,}",
    )
    await message.answer(summary, reply_markup=confirm_keyboard(t) if preview.reachable else None)
    if not preview.reachable:
        await state.clear()


async def confirm(callback: CallbackQuery, state: FSMContext, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    data = await state.get_data()
    await state.clear()
    if not isinstance(callback.message, Message):
        return
    audience = Audience.from_json(data["audience"])
    view = await uc.broadcasts.start(partner, audience, data["content"], progress_chat_id=callback.from_user.id)
    await callback.answer(t("broadcast.started_toast"))
    text = BroadcastService.progress_text(t, view, view.progress)
    sent = await callback.message.answer(
        text, reply_markup=InlineKeyboardMarkup.model_validate(stop_markup(t("broadcast.stop_button"), view.id))
    )
    await uc.broadcasts.attach_progress_message(view.id, sent.message_id)


async def abort(callback: CallbackQuery, state: FSMContext, t: Texts) -> None:
    await state.clear()
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.answer(t("broadcast.aborted"))


async def stop(callback: CallbackQuery, callback_data: BroadcastCallback, uc: UseCases, t: Texts) -> None:
    view = await uc.broadcasts.cancel(int(callback_data.value))
    await callback.answer(t("broadcast.stopped_toast"))
    if callback.message is None or callback.bot is None:
        return
    await callback.bot.edit_message_text(
        BroadcastService.progress_text(t, view, view.progress),
        chat_id=callback.from_user.id,
        message_id=callback.message.message_id,
    )


async def cancel_command(message: Message, state: FSMContext, t: Texts) -> None:
    await state.clear()
    await message.answer(t("broadcast.aborted"))


async def unexpected(message: Message, t: Texts) -> None:
    await message.answer(t("broadcast.use_buttons"))


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only)."""
    router = Router(name=__name__)
    router.message.filter(HasRole(Role.ADMIN))
    router.callback_query.filter(HasRole(Role.ADMIN))
    router.message.register(begin, Command("broadcast"))
    router.callback_query.register(abort, BroadcastCallback.filter(F.action == "abort"))
    router.callback_query.register(stop, BroadcastCallback.filter(F.action == "stop"))
    router.message.register(cancel_command, Command("cancel"), StateFilter(BroadcastForm))
    router.message.register(got_message, StateFilter(BroadcastForm.message), Inline(~F.text.startswith("/")))
    router.callback_query.register(
        chose_audience,
        StateFilter(BroadcastForm.audience),
        BroadcastCallback.filter(F.action.in_({"everyone", "role", "team", "codes", "level", "segment"})),
    )
    router.message.register(got_lead, StateFilter(BroadcastForm.lead), Inline(F.text))
    router.message.register(got_codes, StateFilter(BroadcastForm.codes), Inline(F.text))
    router.callback_query.register(
        confirm, StateFilter(BroadcastForm.confirm), BroadcastCallback.filter(F.action == "confirm")
    )
    router.message.register(unexpected, StateFilter(BroadcastForm.audience, BroadcastForm.confirm))
    return router
