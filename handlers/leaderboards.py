"""/rank: a leaderboard's top 10 and the partner's own place, with buttons to switch period, scope and metric."""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.callbacks import RankCallback
from bot.domain.leaderboards import Metric, Period, RankArgs, Scope, parse_rank_args
from bot.i18n import Texts
from bot.services.leaderboards import render_board
from bot.services.registry import UseCases
from bot.services.views import PartnerView


def rank_keyboard(args: RankArgs, t: Texts) -> InlineKeyboardMarkup:
    """One row per switch; the board shown is marked. Each button shows the board with one choice changed."""

    def button(label: str, chosen: bool, changed: RankArgs) -> InlineKeyboardButton:
        data = RankCallback(period=changed.period, scope=changed.scope, metric=changed.metric).pack()
        return InlineKeyboardButton(text=("• " if chosen else "") + label, callback_data=data)

    p, s, m = args.period, args.scope, args.metric
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [button(t(f"leaderboards.button_{x.value}"), x is p, RankArgs(x, s, m)) for x in Period],
            [button(t(f"leaderboards.button_{x.value}"), x is s, RankArgs(p, x, m)) for x in Scope],
            [button(t(f"leaderboards.button_{x.value}"), x is m, RankArgs(p, s, x)) for x in Metric],
        ]
    )


async def rank(message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    args = parse_rank_args(command.args)
    view = await uc.leaderboards.board(partner.id, args)
    await message.answer(render_board(view, t), reply_markup=rank_keyboard(view.args, t))


async def rank_button(
    callback: CallbackQuery, bot: Bot, callback_data: RankCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    args = parse_rank_args(f"{callback_data.period} {callback_data.scope} {callback_data.metric}")
    view = await uc.leaderboards.board(partner.id, args)
    text, keyboard = render_board(view, t), rank_keyboard(view.args, t)
    await callback.answer()
    if callback.message is None:  # too old for Telegram to hand back: a new message instead
        await bot.send_message(callback.from_user.id, text, reply_markup=keyboard)
        return
    await bot.edit_message_text(
        text, chat_id=callback.from_user.id, message_id=callback.message.message_id, reply_markup=keyboard
    )


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only)."""
    router = Router(name=__name__)
    router.message.register(rank, Command("rank"))
    router.callback_query.register(rank_button, RankCallback.filter())
    return router
