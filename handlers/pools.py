"""/pools for admins: the plan's dividend pools with their last closed period, [Preview] and [Post]."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.callbacks import PoolCallback
from bot.domain.money import format_money
from bot.domain.roles import Role
from bot.i18n import Texts
from bot.services.pools import PoolPreview, PoolSummary, preview_text
from bot.services.registry import UseCases
from bot.services.views import PartnerView
from handlers.filters import HasRole


def list_text(pools: list[PoolSummary], t: Texts) -> str:
    if not pools:
        return t("pools.empty")
    lines = [t("pools.list_title")]
    lines += [t("pools.item_posted" if p.posted else "pools.item_open", pool=p.title, period=p.period) for p in pools]
    return "\n".join(lines)


def list_keyboard(pools: list[PoolSummary], t: Texts) -> InlineKeyboardMarkup | None:
    if not pools:
        return None
    rows = [
        [
            InlineKeyboardButton(
                text=t("pools.button.preview", pool=p.title, period=p.period),
                callback_data=PoolCallback(action="preview", pool=p.name, period=p.period).pack(),
            )
        ]
        for p in pools
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def preview_keyboard(preview: PoolPreview, t: Texts) -> InlineKeyboardMarkup | None:
    if preview.posted:
        return None
    button = InlineKeyboardButton(
        text=t("pools.button.post"),
        callback_data=PoolCallback(action="post", pool=preview.name, period=preview.period.label).pack(),
    )
    return InlineKeyboardMarkup(inline_keyboard=[[button]])


async def pools_command(message: Message, uc: UseCases, t: Texts) -> None:
    pools = await uc.pools.pools(t.language)
    await message.answer(list_text(pools, t), reply_markup=list_keyboard(pools, t))


async def preview_press(callback: CallbackQuery, callback_data: PoolCallback, uc: UseCases, t: Texts) -> None:
    preview = await uc.pools.preview(callback_data.pool, callback_data.period, t.language)
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.answer(preview_text(preview, t), reply_markup=preview_keyboard(preview, t))


async def post_press(
    callback: CallbackQuery, callback_data: PoolCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    result = await uc.pools.post(callback_data.pool, callback_data.period, partner)
    await callback.answer()
    preview = result.preview
    params = {"pool": preview.name, "period": preview.period.label}
    if result.posted:
        paid = [r for r in preview.recipients if r.amount.minor > 0]
        text = t("pools.posted", amount=format_money(preview.paid, t.language), count=len(paid), **params)
    elif preview.posted:
        text = t("pools.already_posted", **params)
    else:  # nothing to pay: no lines, so the period stays open for orders that arrive late
        text = t("pools.nothing_to_pay", **params)
    if isinstance(callback.message, Message):
        await callback.message.answer(text)


def build_router() -> Router:
    """A fresh router with this module's handlers. For anyone but admins /pools falls through to `denied`."""
    router = Router(name=__name__)
    router.message.filter(HasRole(Role.ADMIN))
    router.callback_query.filter(HasRole(Role.ADMIN))
    router.message.register(pools_command, Command("pools"))
    router.callback_query.register(preview_press, PoolCallback.filter(F.action == "preview"))
    router.callback_query.register(post_press, PoolCallback.filter(F.action == "post"))
    return router
