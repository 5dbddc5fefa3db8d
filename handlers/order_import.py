"""Admins send a CSV of orders: a preview (orders, rows, total, problems per row), then [Import] settles the
valid orders exactly as the signed API would (source "csv", so the same order id from the API is another order)."""

from __future__ import annotations

import io

from aiogram import Bot, F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.callbacks import OrdersCsvCallback
from bot.domain.errors import UsageError
from bot.domain.money import Money, format_money
from bot.domain.orders_csv import MAX_BYTES, CsvOrders
from bot.domain.roles import Role
from bot.i18n import Texts
from bot.services.registry import UseCases
from bot.services.views import PartnerView
from handlers.filters import HasRole, Inline

PROBLEMS_SHOWN = 15


class OrdersCsvForm(StatesGroup):
    confirm = State()


def is_csv(message: Message) -> bool:
    document = message.document
    if document is None:
        return False
    name = (document.file_name or "").lower()
    return name.endswith(".csv") or document.mime_type in ("text/csv", "application/csv")


async def _read(bot: Bot, file_id: str, size: int | None) -> bytes:
    if size is not None and size > MAX_BYTES:
        raise UsageError("orders.csv.too_big", limit_kb=MAX_BYTES // 1024)
    buffer = io.BytesIO()
    await bot.download(file_id, destination=buffer)
    return buffer.getvalue()


def render_preview(preview: CsvOrders, t: Texts) -> str:
    totals = ", ".join(format_money(Money(minor, cur), t.language) for cur, minor in preview.total_minor.items())
    lines = [t("orders.csv.preview", orders=len(preview.orders), rows=preview.rows, total=totals or "0")]
    if preview.problems:
        lines.append(t("orders.csv.problems", count=len(preview.problems)))
        for problem in preview.problems[:PROBLEMS_SHOWN]:
            rows = ", ".join(str(n) for n in problem.rows)
            where = f"{problem.path}: " if problem.path else ""
            lines.append(
                t("orders.csv.problem", rows=rows, order=problem.order_id or "-", where=where, message=problem.message)
            )
        if len(preview.problems) > PROBLEMS_SHOWN:
            lines.append(t("orders.csv.more", count=len(preview.problems) - PROBLEMS_SHOWN))
    return "\n".join(lines)


async def got_csv(message: Message, state: FSMContext, bot: Bot, uc: UseCases, t: Texts) -> None:
    assert message.document is not None
    data = await _read(bot, message.document.file_id, message.document.file_size)
    preview = uc.order_import.preview(data)
    markup = None
    if preview.orders:
        await state.set_state(OrdersCsvForm.confirm)
        await state.update_data(file_id=message.document.file_id)
        markup = InlineKeyboardMarkup(
            inline_keyboard=[
                [
                    InlineKeyboardButton(
                        text=t("orders.csv.import_button", count=len(preview.orders)),
                        callback_data=OrdersCsvCallback(action="import").pack(),
                    ),
                    InlineKeyboardButton(
                        text=t("orders.csv.cancel_button"), callback_data=OrdersCsvCallback(action="cancel").pack()
                    ),
                ]
            ]
        )
    await message.answer(render_preview(preview, t), reply_markup=markup)


async def confirmed(
    callback: CallbackQuery,
    callback_data: OrdersCsvCallback,
    state: FSMContext,
    bot: Bot,
    partner: PartnerView,
    uc: UseCases,
    t: Texts,
) -> None:
    file_id = (await state.get_data()).get("file_id")
    await state.clear()
    if callback_data.action != "import" or not file_id:
        await callback.answer(t("orders.csv.cancelled"))
        return
    await callback.answer()
    result = await uc.order_import.import_orders(partner, await _read(bot, str(file_id), None))
    text = t("orders.csv.done", created=result.created, replayed=result.replayed, conflicts=len(result.conflicts))
    if result.conflicts:
        text += "\n" + t("orders.csv.conflicts", ids=", ".join(result.conflicts[:20]))
    await bot.send_message(callback.from_user.id, text)


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only)."""
    router = Router(name=__name__)
    router.message.filter(HasRole(Role.ADMIN))
    router.callback_query.filter(HasRole(Role.ADMIN))
    router.message.register(got_csv, StateFilter(None), Inline(F.document), Inline(F.func(is_csv)))
    router.callback_query.register(confirmed, StateFilter(OrdersCsvForm.confirm), OrdersCsvCallback.filter())
    return router
