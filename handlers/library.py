"""/content for admins: the material center in chat.

`/content add` asks for the material (photo, video, picture file or text), then title, share text, target
URL, tags, audience and schedule, shows the item as partners will get it and saves it on [Save].
`/content` lists items with paging; an item's preview has edit, archive/restore and back buttons.
The form's answers live in FSM state; an item exists in the database only once saved.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.filters.callback_data import CallbackQueryFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, FSInputFile, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.callbacks import LibraryCallback
from bot.domain.content import LEVELS, SEGMENTS, Audience, Schedule
from bot.domain.roles import Role
from bot.i18n import Raw, Texts
from bot.services.library import (
    FIELDS,
    Draft,
    Field,
    ItemView,
    LibraryPage,
    LibraryService,
    Material,
    parse_command,
)
from bot.services.registry import UseCases
from bot.services.views import PartnerView
from handlers.filters import HasRole, Inline

BUTTON_TITLE_LIMIT = 40


class LibraryForm(StatesGroup):
    material = State()
    title = State()
    text = State()
    url = State()
    tags = State()
    audience = State()
    schedule = State()
    confirm = State()


class LibraryEdit(StatesGroup):
    value = State()


FORM_STATES: dict[Field, State] = {
    "title": LibraryForm.title,
    "text": LibraryForm.text,
    "url": LibraryForm.url,
    "tags": LibraryForm.tags,
    "audience": LibraryForm.audience,
    "schedule": LibraryForm.schedule,
}
FIELD_OF_STATE: dict[str | None, Field] = {state.state: name for name, state in FORM_STATES.items()}


# -- rendering -----------------------------------------------------------------------------------------


def _button(text: str, action: str, *, item: int = 0, page: int = 0, field: str = "") -> InlineKeyboardButton:
    data = LibraryCallback(action=action, item=item, page=page, field=field).pack()
    return InlineKeyboardButton(text=text, callback_data=data)


def describe_audience(audience: Audience, t: Texts) -> str:
    if audience.everyone:
        return t("library.everyone")
    parts = [", ".join(t(f"library.level.{level}") for level in audience.levels)] if audience.levels else []
    if audience.segments:
        parts.append(", ".join(t(f"library.segment.{segment}") for segment in audience.segments))
    return " · ".join(parts)


def describe_schedule(schedule: Schedule, t: Texts) -> str:
    if schedule.evergreen:
        return t("library.evergreen")
    days = [d.isoformat() for d in schedule.dates] + [t(f"library.weekday.{n}") for n in schedule.weekdays]
    return ", ".join(days)


def describe_tags(tags: tuple[str, ...], t: Texts) -> str:
    return " ".join(f"#{tag}" for tag in tags) if tags else t("library.no_tags")


def summary(
    t: Texts, *, title: str, kind: str | None, url: str, tags: tuple[str, ...], audience: Audience, schedule: Schedule
) -> str:
    return t(
        "library.summary",
        title=title,
        kind=t(f"library.kind.{kind or 'text'}"),
        url=url,
        tags=describe_tags(tags, t),
        audience=describe_audience(audience, t),
        schedule=describe_schedule(schedule, t),
    )


def card(view: ItemView, t: Texts) -> str:
    body = summary(
        t,
        title=view.title,
        kind=view.media_kind,
        url=view.url,
        tags=view.tags,
        audience=view.audience,
        schedule=view.schedule,
    )
    status = t(f"library.status.{view.status}")
    return t("library.card", id=view.id, status=status, revision=view.revision, summary=Raw(body))


def list_text(page: LibraryPage, t: Texts) -> str:
    if not page.total:
        return t("library.empty")
    return t("library.list", total=page.total, page=page.page + 1, pages=page.pages)


def list_keyboard(page: LibraryPage, t: Texts) -> InlineKeyboardMarkup:
    rows = []
    for item in page.items:
        key = "archived" if item.status == "archived" else (item.media_kind or "text")
        title = item.title if len(item.title) <= BUTTON_TITLE_LIMIT else f"{item.title[: BUTTON_TITLE_LIMIT - 1]}…"
        label = t(f"library.item_button.{key}", id=item.id, title=Raw(title))
        rows.append([_button(label, "open", item=item.id, page=page.page)])
    nav = []
    if page.has_prev:
        nav.append(_button(t("library.button.prev"), "page", page=page.page - 1))
    if page.has_next:
        nav.append(_button(t("library.button.next"), "page", page=page.page + 1))
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(inline_keyboard=rows)


def item_keyboard(view: ItemView, page: int, t: Texts) -> InlineKeyboardMarkup:
    def edit(name: Field) -> InlineKeyboardButton:
        return _button(t(f"library.button.edit_{name}"), "edit", item=view.id, page=page, field=name)

    status_action = "restore" if view.archived else "archive"
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [edit("title"), edit("text")],
            [edit("url"), edit("tags")],
            [edit("audience"), edit("schedule")],
            [
                _button(t(f"library.button.{status_action}"), status_action, item=view.id, page=page),
                _button(t("library.button.back"), "page", page=page),
            ],
        ]
    )


def everyone_keyboard(t: Texts) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[_button(t("library.button.everyone"), "everyone")]])


def confirm_keyboard(t: Texts) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[_button(t("library.button.save"), "save"), _button(t("library.button.cancel"), "cancel")]]
    )


async def send_copy(message: Message, kind: str | None, file_id: str | None, path: str | None, body: str) -> Message:
    """The item exactly as partners get it: its picture or video with the body as caption, or the body alone."""
    if kind in ("photo", "video") and (file_id or path):
        media: str | FSInputFile = file_id or FSInputFile(Path(str(path)))
        if kind == "photo":
            return await message.answer_photo(media, caption=body)
        return await message.answer_video(media, caption=body)
    return await message.answer(body)


async def show_item(message: Message, view: ItemView, page: int, t: Texts) -> None:
    await send_copy(message, view.media_kind, view.media_file_id, view.media_path, view.partner_body)
    await message.answer(card(view, t), reply_markup=item_keyboard(view, page, t))


def material_of(message: Message) -> Material:
    """What the admin sent as the item's body; the largest size of a photo."""
    if message.photo:
        photo = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        return Material("photo", photo.file_id, photo.file_size, "image/jpeg", None, message.caption or "")
    if message.video:
        video = message.video
        return Material(
            "video", video.file_id, video.file_size, video.mime_type, video.file_name, message.caption or ""
        )
    if message.document and not message.animation:
        doc = message.document
        return Material("document", doc.file_id, doc.file_size, doc.mime_type, doc.file_name, message.caption or "")
    if message.text:
        return Material("text", text=message.text)
    return Material("other")


async def leave_form(state: FSMContext, service: LibraryService) -> None:
    """Drop whatever form is open; a draft's downloaded file goes with it."""
    data = await state.get_data()
    if "draft" in data:
        await service.discard(Draft.from_data(data["draft"]))
    await state.clear()


# -- the add form --------------------------------------------------------------------------------------


async def content_command(
    message: Message, command: CommandObject, state: FSMContext, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    parsed = parse_command(command.args)
    await leave_form(state, uc.library)
    if parsed.action == "add":
        await state.set_state(LibraryForm.material)
        await message.answer(t("library.ask_material"))
    elif parsed.action == "list":
        page = await uc.library.page(0)
        await message.answer(list_text(page, t), reply_markup=list_keyboard(page, t) if page.total else None)
    elif parsed.action == "open":
        await show_item(message, await uc.library.get(parsed.item_id), 0, t)
    else:
        service = uc.library
        edit = await (service.archive if parsed.action == "archive" else service.restore)(partner, parsed.item_id)
        await message.answer(t(f"library.{parsed.action}d", id=edit.item.id, title=edit.item.title))


async def ask(message: Message, state: FSMContext, name: Field, draft: Draft, t: Texts) -> None:
    await state.set_state(FORM_STATES[name])
    if name == "text":
        key = "library.ask.text_keep" if draft.sent_text.strip() else "library.ask.text"
        await message.answer(t(key, marker="{link}"))
    elif name == "audience":
        prompt = t("library.ask.audience", levels=", ".join(LEVELS), segments=", ".join(SEGMENTS))
        await message.answer(prompt, reply_markup=everyone_keyboard(t))
    else:
        await message.answer(t(f"library.ask.{name}"))


async def got_material(message: Message, state: FSMContext, bot: Bot, uc: UseCases, t: Texts) -> None:
    draft = await uc.library.start_draft(material_of(message), bot)
    await state.update_data(draft=draft.to_data())
    await ask(message, state, "title", draft, t)


async def advance(message: Message, state: FSMContext, name: Field, value: str, uc: UseCases, t: Texts) -> None:
    """Take one answer; ask the next question, or show the preview after the last one."""
    draft = uc.library.fill(Draft.from_data((await state.get_data())["draft"]), name, value)
    await state.update_data(draft=draft.to_data())
    following = FIELDS.index(name) + 1
    if following < len(FIELDS):
        await ask(message, state, FIELDS[following], draft, t)
    else:
        await show_preview(message, state, draft, uc.library, t)


async def got_answer(message: Message, state: FSMContext, uc: UseCases, t: Texts) -> None:
    await advance(message, state, FIELD_OF_STATE[await state.get_state()], message.text or "", uc, t)


async def everyone_in_form(callback: CallbackQuery, state: FSMContext, uc: UseCases, t: Texts) -> None:
    if isinstance(callback.message, Message):
        await advance(callback.message, state, "audience", "all", uc, t)
    await callback.answer()


async def show_preview(message: Message, state: FSMContext, draft: Draft, service: LibraryService, t: Texts) -> None:
    """The item as partners will get it (sample link), then its details and [Save] [Cancel]."""
    sent = await send_copy(message, draft.media_kind, draft.media_file_id, draft.media_path, service.preview(draft))
    if draft.media_kind == "photo" and draft.media_file_id is None and sent.photo:
        # a picture sent as a file: the preview uploaded it as a photo; partners get that photo
        draft = replace(draft, media_file_id=sent.photo[-1].file_id)
        await state.update_data(draft=draft.to_data())
    await state.set_state(LibraryForm.confirm)
    body = summary(
        t,
        title=draft.title,
        kind=draft.media_kind,
        url=draft.url,
        tags=draft.tags,
        audience=draft.audience,
        schedule=draft.schedule,
    )
    await message.answer(t("library.confirm", summary=Raw(body)), reply_markup=confirm_keyboard(t))


async def save(callback: CallbackQuery, state: FSMContext, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    view = await uc.library.create(partner, Draft.from_data((await state.get_data())["draft"]))
    await state.clear()
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.answer(
            t("library.saved", id=view.id, title=view.title), reply_markup=item_keyboard(view, 0, t)
        )


async def cancel_button(callback: CallbackQuery, state: FSMContext, uc: UseCases, t: Texts) -> None:
    await leave_form(state, uc.library)
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.answer(t("library.cancelled"))


async def cancel_command(message: Message, state: FSMContext, uc: UseCases, t: Texts) -> None:
    await leave_form(state, uc.library)
    await message.answer(t("library.cancelled"))


async def expect_text(message: Message, t: Texts) -> None:
    await message.answer(t("library.expect_text"))


async def use_buttons(message: Message, t: Texts) -> None:
    await message.answer(t("library.use_buttons"))


# -- managing items ------------------------------------------------------------------------------------


async def page_press(callback: CallbackQuery, callback_data: LibraryCallback, uc: UseCases, t: Texts) -> None:
    page = await uc.library.page(callback_data.page)
    await callback.answer()
    if isinstance(callback.message, Message):
        markup = list_keyboard(page, t) if page.total else None
        await callback.message.edit_text(list_text(page, t), reply_markup=markup)


async def open_press(callback: CallbackQuery, callback_data: LibraryCallback, uc: UseCases, t: Texts) -> None:
    view = await uc.library.get(callback_data.item)
    await callback.answer()
    if isinstance(callback.message, Message):
        await show_item(callback.message, view, callback_data.page, t)


async def edit_press(
    callback: CallbackQuery, callback_data: LibraryCallback, state: FSMContext, uc: UseCases, t: Texts
) -> None:
    name = next((f for f in FIELDS if f == callback_data.field), None)
    view = await uc.library.get(callback_data.item)
    await callback.answer()
    if name is None or not isinstance(callback.message, Message):
        return
    await leave_form(state, uc.library)
    await state.set_state(LibraryEdit.value)
    await state.update_data(item=view.id, field=name, page=callback_data.page)
    current = {
        "title": view.title,
        "text": view.text,
        "url": view.url,
        "tags": describe_tags(view.tags, t),
        "audience": describe_audience(view.audience, t),
        "schedule": describe_schedule(view.schedule, t),
    }[name]
    prompt = t(f"library.edit.{name}", current=current, levels=", ".join(LEVELS), segments=", ".join(SEGMENTS))
    await callback.message.answer(prompt, reply_markup=everyone_keyboard(t) if name == "audience" else None)


async def apply_edit(
    message: Message, state: FSMContext, name: Field | None, value: str, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    """Save an edit of the item in FSM state: `name` None means the field its prompt asked for."""
    data = await state.get_data()
    edit = await uc.library.update(partner, data["item"], name or data["field"], value)
    await state.clear()
    outcome = t("library.updated" if edit.changed else "library.unchanged")
    text = "\n\n".join([outcome, card(edit.item, t)])
    await message.answer(text, reply_markup=item_keyboard(edit.item, data["page"], t))


async def got_edit(message: Message, state: FSMContext, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    await apply_edit(message, state, None, message.text or "", partner, uc, t)


async def everyone_in_edit(
    callback: CallbackQuery, state: FSMContext, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    if isinstance(callback.message, Message):
        await apply_edit(callback.message, state, "audience", "all", partner, uc, t)
    await callback.answer()


async def status_press(
    callback: CallbackQuery, callback_data: LibraryCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    service = uc.library
    change = service.archive if callback_data.action == "archive" else service.restore
    edit = await change(partner, callback_data.item)
    await callback.answer(t(f"library.{callback_data.action}d_toast"))
    if isinstance(callback.message, Message):
        markup = item_keyboard(edit.item, callback_data.page, t)
        await callback.message.edit_text(card(edit.item, t), reply_markup=markup)


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only).

    Admins only: for anyone else /content falls through to `denied`, which refuses it and audits the try.
    """
    router = Router(name=__name__)
    router.message.filter(HasRole(Role.ADMIN))
    router.callback_query.filter(HasRole(Role.ADMIN))
    any_form = StateFilter(LibraryForm, LibraryEdit)
    router.message.register(cancel_command, Command("cancel"), any_form)
    router.message.register(content_command, Command("content"))
    not_command = Inline(~F.text.startswith("/"))
    router.message.register(got_material, StateFilter(LibraryForm.material), not_command)
    router.message.register(got_answer, StateFilter(*FORM_STATES.values()), Inline(F.text), not_command)
    router.message.register(got_edit, StateFilter(LibraryEdit.value), Inline(F.text), not_command)
    router.message.register(use_buttons, StateFilter(LibraryForm.confirm), not_command)
    router.message.register(expect_text, StateFilter(*FORM_STATES.values(), LibraryEdit.value), not_command)

    def action(*names: str) -> CallbackQueryFilter:
        return LibraryCallback.filter(F.action.in_(set(names)))

    router.callback_query.register(save, StateFilter(LibraryForm.confirm), action("save"))
    router.callback_query.register(cancel_button, action("cancel"))
    router.callback_query.register(everyone_in_form, StateFilter(LibraryForm.audience), action("everyone"))
    router.callback_query.register(everyone_in_edit, StateFilter(LibraryEdit.value), action("everyone"))
    router.callback_query.register(page_press, action("page"))
    router.callback_query.register(open_press, action("open"))
    router.callback_query.register(edit_press, action("edit"))
    router.callback_query.register(status_press, action("archive", "restore"))
    return router
