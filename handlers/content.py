"""Partners' content: /today, /poster, /link, the item buttons and inline-mode sharing."""

from __future__ import annotations

from pathlib import Path

from aiogram import Bot, Router
from aiogram.enums import ChatAction
from aiogram.filters import Command, CommandObject
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    ChosenInlineResult,
    FSInputFile,
    InlineKeyboardMarkup,
    InlineQuery,
    InlineQueryResultArticle,
    InlineQueryResultCachedPhoto,
    InlineQueryResultCachedVideo,
    InlineQueryResultUnion,
    InputTextMessageContent,
    Message,
)

from bot.callbacks import ContentCallback
from bot.i18n import Raw, Texts
from bot.media.posters import PosterData, PosterRenderer
from bot.services.content import InlineItem, LinksView, PackItem, PosterPlan, item_body, item_keyboard
from bot.services.registry import UseCases
from bot.services.views import PartnerView
from handlers.keyboards import share_keyboard

INLINE_CACHE_SECONDS = 30
CAPTION_MAX = 1024


def _markup(t: Texts, item: PackItem) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup.model_validate(item_keyboard(t, item))


async def _send_item(bot: Bot, chat_id: int, item: PackItem, uc: UseCases, t: Texts) -> None:
    """One pack item: its picture or video with the text as caption, or the text alone, with the four buttons."""
    markup = _markup(t, item)
    if item.media_kind in ("photo", "video") and (item.file_id or item.path):
        media: str | FSInputFile = item.file_id or FSInputFile(Path(str(item.path)))
        if item.media_kind == "photo":
            sent = await bot.send_photo(chat_id, media, caption=item_body(item), reply_markup=markup)
            uploaded = sent.photo[-1].file_id if sent.photo else None
        else:
            sent = await bot.send_video(chat_id, media, caption=item_body(item), reply_markup=markup)
            uploaded = sent.video.file_id if sent.video else None
        if item.file_id is None and uploaded:
            await uc.content.remember_file(item.file_key, uploaded)
        return
    await bot.send_message(chat_id, item_body(item), reply_markup=markup)


async def today(message: Message, bot: Bot, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    pack = await uc.content.today(partner.id)
    if pack.overdue is not None:  # overdue prospects first, as at the top of the pushed pack
        await message.answer(pack.overdue)
    if pack.featured is not None:  # then the story of the day and the week's spotlight
        if pack.featured.photo_file_id is not None:
            await message.answer_photo(pack.featured.photo_file_id, caption=pack.featured.text)
        else:
            await message.answer(pack.featured.text)
    if not pack.items:
        await message.answer(t("content.today.empty"))
        return
    key = "content.pack.header" if pack.scheduled else "content.pack.header_evergreen"
    await message.answer(t(key, day=pack.day.isoformat(), count=len(pack.items)))
    for item in pack.items:
        await _send_item(bot, message.chat.id, item, uc, t)


LINK_TITLE_LIMIT = 60
"""Titles in /link are cut so 20 items and products stay well within one message."""


def _short(title: str) -> str:
    return title if len(title) <= LINK_TITLE_LIMIT else title[: LINK_TITLE_LIMIT - 1] + "…"


def render_links(view: LinksView, t: Texts) -> str:
    lines = [t("content.links.title"), t("content.links.recruit", link=view.deep_link)]
    if view.content:
        lines.append(t("content.links.content_header"))
        lines += [t("content.links.line", title=_short(c.title), clicks=c.clicks, link=c.link) for c in view.content]
    else:
        lines.append(t("content.links.none"))
    if view.products:
        lines.append(t("content.links.product_header"))
        lines += [t("content.links.line", title=_short(p.title), clicks=p.clicks, link=p.link) for p in view.products]
    return "\n".join(lines)


async def links(message: Message, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    view = await uc.content.links(partner.id)
    await message.answer(render_links(view, t), reply_markup=share_keyboard(t, view.deep_link))


async def _send_poster(
    bot: Bot, chat_id: int, plan: PosterPlan, uc: UseCases, t: Texts, posters: PosterRenderer
) -> None:
    """The partner's poster of an item: Telegram's stored copy when this exact poster was made before."""
    caption = t("content.poster.caption", title=plan.title, link=plan.link)
    if plan.file_id is not None:
        await bot.send_photo(chat_id, plan.file_id, caption=caption)
        return
    await bot.send_chat_action(chat_id, ChatAction.UPLOAD_PHOTO)
    image = await posters.render_async(
        PosterData(
            partner_name=plan.partner_name,
            title=plan.title,
            tagline=plan.tagline,
            link=plan.link,
            footer=t("content.poster.footer"),
            image_path=plan.image_path,
        )
    )
    sent = await bot.send_photo(chat_id, BufferedInputFile(image, f"poster-{plan.content_id}.jpg"), caption=caption)
    if sent.photo:
        await uc.content.remember_file(plan.cache_key, sent.photo[-1].file_id)


async def poster_command(
    message: Message,
    command: CommandObject,
    bot: Bot,
    partner: PartnerView,
    uc: UseCases,
    t: Texts,
    posters: PosterRenderer,
) -> None:
    content_id = await uc.content.resolve_item(partner.id, command.args)
    await _send_poster(bot, message.chat.id, await uc.content.poster(partner.id, content_id), uc, t, posters)


async def item_button(
    callback: CallbackQuery,
    callback_data: ContentCallback,
    bot: Bot,
    partner: PartnerView,
    uc: UseCases,
    t: Texts,
    posters: PosterRenderer,
) -> None:
    chat_id = callback.from_user.id
    if callback_data.action == "shared":
        result = await uc.content.mark_shared(partner.id, callback_data.id)
        key = "content.shared.thanks" if result.recorded else "content.shared.already"
        await callback.answer(t(key, count=result.shared_today))
        return
    if callback_data.action == "copy":
        text = await uc.content.copy_text(partner.id, callback_data.id)
        await callback.answer()
        await bot.send_message(chat_id, t("content.copy_hint"))
        await bot.send_message(chat_id, text, parse_mode=None)
        return
    if callback_data.action == "poster":
        plan = await uc.content.poster(partner.id, callback_data.id)  # an item gone (or not theirs) answers here, once
        await callback.answer(t("content.poster.rendering"))
        await _send_poster(bot, chat_id, plan, uc, t, posters)
        return
    await callback.answer()


def inline_results(items: list[InlineItem], t: Texts) -> list[InlineQueryResultUnion]:
    results: list[InlineQueryResultUnion] = []
    for item in items:
        caption = item.share_text if len(item.share_text) <= CAPTION_MAX else None
        if item.poster_file_id and caption:
            results.append(
                InlineQueryResultCachedPhoto(
                    id=f"q:{item.content_id}",
                    photo_file_id=item.poster_file_id,
                    title=t("content.inline.poster_title", title=Raw(item.title)),
                    caption=caption,
                    parse_mode=None,
                )
            )
        if item.media_kind == "photo" and item.media_file_id and caption:
            results.append(
                InlineQueryResultCachedPhoto(
                    id=f"p:{item.content_id}",
                    photo_file_id=item.media_file_id,
                    title=t("content.inline.photo_title", title=Raw(item.title)),
                    caption=caption,
                    parse_mode=None,
                )
            )
        elif item.media_kind == "video" and item.media_file_id and caption:
            results.append(
                InlineQueryResultCachedVideo(
                    id=f"v:{item.content_id}",
                    video_file_id=item.media_file_id,
                    title=item.title,
                    caption=caption,
                    parse_mode=None,
                )
            )
        results.append(
            InlineQueryResultArticle(
                id=f"t:{item.content_id}",
                title=item.title,
                description=item.share_text[:200],
                input_message_content=InputTextMessageContent(message_text=item.share_text, parse_mode=None),
            )
        )
    return results[:50]


async def inline_query(query: InlineQuery, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    items = await uc.content.inline_items(partner.id, query.query)
    results = inline_results(items, t)
    if not results:
        results = [
            InlineQueryResultArticle(
                id="none",
                title=t("content.inline.empty_title"),
                input_message_content=InputTextMessageContent(message_text=t("content.inline.empty_text")),
            )
        ]
    await query.answer(results, cache_time=INLINE_CACHE_SECONDS, is_personal=True)


async def chosen_result(chosen: ChosenInlineResult, partner: PartnerView, uc: UseCases) -> None:
    await uc.content.record_inline_share(partner.id, chosen.result_id, chosen.inline_message_id)


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only)."""
    router = Router(name=__name__)
    router.message.register(today, Command("today"))
    router.message.register(links, Command("link"))
    router.message.register(poster_command, Command("poster"))
    router.callback_query.register(item_button, ContentCallback.filter())
    router.inline_query.register(inline_query)
    router.chosen_inline_result.register(chosen_result)
    return router
