"""Case stories and the spotlight: /story and /stories for everyone; the review buttons and /spotlight for admins.

`/story <text>` (or a photo captioned `/story <text>`) submits at once; `/story` alone opens a one-step form that
takes a text or a captioned photo (`/cancel` leaves). An admin's [Reject] asks for the reason, with the story's id
waiting in FSM state until it comes. Stories and their review live in the database.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.callbacks import StoriesPageCallback, StoryCallback
from bot.domain.roles import Role
from bot.i18n import Raw, Texts
from bot.services.registry import UseCases
from bot.services.stories import Review, SpotlightAnswer, StoriesPage, StoryView, spotlight_text
from bot.services.views import PartnerView
from handlers.filters import HasRole, Inline


class StoryForm(StatesGroup):
    story = State()


class StoryReview(StatesGroup):
    reason = State()


# -- rendering -----------------------------------------------------------------------------------------


def submitted_text(view: StoryView, t: Texts) -> str:
    return t("stories.submitted", id=view.id)


def story_text(view: StoryView, t: Texts) -> str:
    day = view.featured_on.isoformat() if view.featured_on else ""
    return t("stories.item", name=view.author_name, day=day, text=view.text)


def page_keyboard(listing: StoriesPage, t: Texts) -> InlineKeyboardMarkup | None:
    row = []
    if listing.page > 0:
        data = StoriesPageCallback(page=listing.page - 1).pack()
        row.append(InlineKeyboardButton(text=t("stories.button.newer"), callback_data=data))
    if listing.page + 1 < listing.pages:
        data = StoriesPageCallback(page=listing.page + 1).pack()
        row.append(InlineKeyboardButton(text=t("stories.button.older"), callback_data=data))
    return InlineKeyboardMarkup(inline_keyboard=[row]) if row else None


async def send_page(bot: Bot, chat_id: int, listing: StoriesPage, t: Texts) -> None:
    """The page's stories, each with its photo when it has one, then the page line with its buttons."""
    if not listing.items:
        await bot.send_message(chat_id, t("stories.empty"))
        return
    for view in listing.items:
        if view.photo_file_id is not None:
            await bot.send_photo(chat_id, view.photo_file_id, caption=story_text(view, t))
        else:
            await bot.send_message(chat_id, story_text(view, t))
    await bot.send_message(
        chat_id,
        t("stories.page", page=listing.page + 1, pages=listing.pages),
        reply_markup=page_keyboard(listing, t),
    )


def already_text(review: Review, t: Texts) -> str:
    return t(f"stories.review.already.{review.story.status}", id=review.story.id, name=review.reviewer or "—")


def spotlight_answer(answer: SpotlightAnswer, t: Texts) -> str:
    week = answer.week.isoformat()
    view = answer.spotlight
    if view is None:
        return t("spotlight.none", week=week)
    profile = Raw(spotlight_text(view, t))
    if answer.picked:
        return t("spotlight.picked", week=week, profile=profile)
    by = view.picked_by if view.picked_by is not None else t("spotlight.by_riser")
    return t("spotlight.current", week=week, by=by, profile=profile)


# -- partners ------------------------------------------------------------------------------------------


async def story_command(
    message: Message, command: CommandObject, state: FSMContext, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    if not (command.args or "").strip():
        await uc.stories.start_form(partner.id)
        await state.set_state(StoryForm.story)
        await message.answer(t("stories.form.ask"))
        return
    view = await uc.stories.submit(partner.id, command.args)
    await state.clear()
    await message.answer(submitted_text(view, t))


async def story_photo_command(
    message: Message, command: CommandObject, state: FSMContext, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    """A photo captioned `/story <text>`."""
    photo = message.photo[-1] if message.photo else None
    assert photo is not None  # the F.photo filter
    view = await uc.stories.submit(partner.id, command.args, photo_file_id=photo.file_id, photo_size=photo.file_size)
    await state.clear()
    await message.answer(submitted_text(view, t))


async def form_text(message: Message, state: FSMContext, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    view = await uc.stories.submit(partner.id, message.text)
    await state.clear()
    await message.answer(submitted_text(view, t))


async def form_photo(message: Message, state: FSMContext, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    photo = message.photo[-1] if message.photo else None
    assert photo is not None  # the F.photo filter
    if not (message.caption or "").strip():
        await message.answer(t("stories.form.caption_needed"))
        return
    view = await uc.stories.submit(partner.id, message.caption, photo_file_id=photo.file_id, photo_size=photo.file_size)
    await state.clear()
    await message.answer(submitted_text(view, t))


async def form_other(message: Message, t: Texts) -> None:
    await message.answer(t("stories.form.expect"))


async def cancel_command(message: Message, state: FSMContext, t: Texts) -> None:
    await state.clear()
    await message.answer(t("stories.form.cancelled"))


async def stories_command(message: Message, bot: Bot, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    await send_page(bot, message.chat.id, await uc.stories.page(partner.id, 0), t)


async def page_press(
    callback: CallbackQuery,
    bot: Bot,
    callback_data: StoriesPageCallback,
    partner: PartnerView,
    uc: UseCases,
    t: Texts,
) -> None:
    listing = await uc.stories.page(partner.id, callback_data.page)
    await callback.answer()
    await send_page(bot, callback.from_user.id, listing, t)


# -- admins --------------------------------------------------------------------------------------------


async def approve_press(
    callback: CallbackQuery, callback_data: StoryCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    review = await uc.stories.approve(partner, callback_data.id)
    if not review.changed:
        await callback.answer(already_text(review, t), show_alert=True)
        return
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(reply_markup=None)
        day = review.story.featured_on.isoformat() if review.story.featured_on else ""
        await callback.message.answer(
            t("stories.review.approved", id=review.story.id, name=review.story.author_name, day=day)
        )


async def reject_press(
    callback: CallbackQuery,
    callback_data: StoryCallback,
    state: FSMContext,
    partner: PartnerView,
    uc: UseCases,
    t: Texts,
) -> None:
    review = await uc.stories.prepare_reject(partner, callback_data.id)
    if not review.changed:
        await callback.answer(already_text(review, t), show_alert=True)
        return
    await callback.answer()
    await state.set_state(StoryReview.reason)
    await state.update_data(story=review.story.id)
    if isinstance(callback.message, Message):
        await callback.message.answer(t("stories.review.ask_reason", id=review.story.id, name=review.story.author_name))


async def got_reason(message: Message, state: FSMContext, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    story_id = int((await state.get_data())["story"])
    review = await uc.stories.reject(partner, story_id, message.text)
    await state.clear()
    if not review.changed:
        await message.answer(already_text(review, t))
        return
    await message.answer(t("stories.review.rejected", id=review.story.id, name=review.story.author_name))


async def expect_reason(message: Message, t: Texts) -> None:
    await message.answer(t("stories.review.expect_reason"))


async def spotlight_command(
    message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    await message.answer(spotlight_answer(await uc.stories.spotlight(partner, command.args), t))


async def review_refused(callback: CallbackQuery, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    """A review button pressed by someone who is not an admin (a forwarded notice): refused and audited."""
    uc.roles.denied(partner.tg_user_id, partner.id, "story_review")
    await callback.answer(t("denied.admin"), show_alert=True)


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only).

    /story and /stories are for everyone. The admin part is filtered by role: for anyone else /spotlight falls
    through to `denied`, and a review button gets `denied.admin` here (audited)."""
    router = Router(name=__name__)
    not_command = Inline(~F.text.startswith("/"))
    router.message.register(cancel_command, Command("cancel"), StateFilter(StoryForm, StoryReview))
    router.message.register(story_photo_command, Command("story"), Inline(F.photo))
    router.message.register(story_command, Command("story"))
    router.message.register(stories_command, Command("stories"))
    router.message.register(form_text, StateFilter(StoryForm.story), Inline(F.text), not_command)
    router.message.register(form_photo, StateFilter(StoryForm.story), Inline(F.photo))
    router.message.register(form_other, StateFilter(StoryForm.story), not_command)
    router.callback_query.register(page_press, StoriesPageCallback.filter())

    admin = Router(name=f"{__name__}.admin")
    admin.message.filter(HasRole(Role.ADMIN))
    admin.callback_query.filter(HasRole(Role.ADMIN))
    admin.message.register(spotlight_command, Command("spotlight"))
    admin.message.register(got_reason, StateFilter(StoryReview.reason), Inline(F.text), not_command)
    admin.message.register(expect_reason, StateFilter(StoryReview.reason), not_command)
    admin.callback_query.register(approve_press, StoryCallback.filter(F.action == "approve"))
    admin.callback_query.register(reject_press, StoryCallback.filter(F.action == "reject"))
    refused = Router(name=f"{__name__}.refused")  # after the admin part: a router's own handlers come first
    refused.callback_query.register(review_refused, StoryCallback.filter())
    router.include_routers(admin, refused)
    return router
