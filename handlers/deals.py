"""Deal progression: /product (admins), /quote, /order and the admins' /orders queue.

[Confirm] and [Reject] come on the admins' notice of a new order and in /orders. Reject asks for the reason;
the order's id waits in FSM state until the answer comes (the order and its state live in the database).
A non-admin's press is refused with the denied text and audited, like their /product and /orders.
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.callbacks import ChatOrderCallback, ProductPageCallback
from bot.domain.money import format_money
from bot.domain.roles import Role
from bot.i18n import Texts
from bot.media.quote_cards import QuoteCardData, render_quote_card_async
from bot.services.deals import (
    ChatOrderView,
    OrderDecision,
    PendingOrders,
    ProductChange,
    ProductPage,
    ProductView,
    QuoteView,
    order_keyboard,
    order_notice,
)
from bot.services.registry import UseCases
from bot.services.views import PartnerView
from handlers.filters import HasRole, Inline

DONE_KEYS = {"confirm": "deals.orders.confirmed_done", "reject": "deals.orders.rejected_done"}
RESULT = {"confirm": "confirmed", "reject": "rejected"}


class RejectForm(StatesGroup):
    reason = State()


# -- rendering -----------------------------------------------------------------------------------------


def _level(t: Texts, level: str) -> str:
    key = f"level.{level}"
    return t(key) if t.has(key) else level


def _price(product: ProductView, t: Texts) -> str:
    return format_money(product.list_price, t.language) if product.list_price else t("deals.product.no_price")


def _level_prices(product: ProductView, t: Texts) -> str:
    if not product.level_prices:
        return t("deals.product.none")
    return " · ".join(
        f"{_level(t, level)} {price.describe(product.currency, t.language)}"
        for level, price in product.level_prices.items()
    )


def product_detail(product: ProductView, t: Texts) -> str:
    return t(
        "deals.product.detail",
        name=product.name,
        sku=product.sku,
        status=t("deals.product.status_active" if product.active else "deals.product.status_archived"),
        category=product.category or t("deals.product.none"),
        price=_price(product, t),
        levels=_level_prices(product, t),
        url=product.url,
    )


def page_text(page: ProductPage, t: Texts) -> str:
    if not page.items:
        return t("deals.product.empty")
    lines = [t("deals.product.title", total=page.total, page=page.page + 1, pages=page.pages)]
    lines += [
        t(
            "deals.product.line",
            sku=p.sku,
            name=p.name,
            price=_price(p, t),
            extra="" if p.active else t("deals.product.archived"),
        )
        for p in page.items
    ]
    return "\n".join(lines)


def page_keyboard(page: ProductPage, t: Texts) -> InlineKeyboardMarkup | None:
    buttons = []
    if page.page > 0:
        buttons.append(
            InlineKeyboardButton(
                text=t("deals.button.prev"), callback_data=ProductPageCallback(page=page.page - 1).pack()
            )
        )
    if page.page + 1 < page.pages:
        buttons.append(
            InlineKeyboardButton(
                text=t("deals.button.next"), callback_data=ProductPageCallback(page=page.page + 1).pack()
            )
        )
    return InlineKeyboardMarkup(inline_keyboard=[buttons]) if buttons else None


def change_text(change: ProductChange, t: Texts) -> str:
    product = change.product
    if change.action == "add":
        return t("deals.product.added", sku=product.sku, name=product.name, price=_price(product, t))
    if not change.changed:
        return t("deals.product.unchanged", sku=product.sku)
    if change.action == "archive":
        return t("deals.product.archived_done", sku=product.sku)
    if change.action == "restore":
        return t("deals.product.restored_done", sku=product.sku)
    return t("deals.product.changed", sku=product.sku) + "\n\n" + product_detail(product, t)


def quote_caption(view: QuoteView, t: Texts) -> str:
    return t(
        "deals.quote.caption",
        id=view.id,
        lead=view.lead_name,
        product=view.product,
        sku=view.sku,
        quantity=view.quantity,
        unit=format_money(view.unit_price, t.language),
        total=format_money(view.total, t.language),
        valid=f"{view.valid_until:%Y-%m-%d %H:%M}",
        level=_level(t, view.level),
        link=view.link,
    )


def quote_card(view: QuoteView, t: Texts) -> QuoteCardData:
    contact = f"{view.partner_name} · {view.contact}" if view.contact else view.partner_name
    return QuoteCardData(
        title=t("deals.card.title", lead=view.lead_name),
        product=view.product,
        sku=view.sku,
        rows=(
            (t("deals.card.quantity"), str(view.quantity)),
            (t("deals.card.unit"), format_money(view.unit_price, t.language)),
            (t("deals.card.total"), format_money(view.total, t.language)),
            (t("deals.card.valid"), f"{view.valid_until:%Y-%m-%d %H:%M}"),
        ),
        partner=contact,
        link=view.link,
        scan_label=t("deals.card.scan"),
    )


def pending_text(listing: PendingOrders, t: Texts) -> str:
    if not listing.items:
        return t("deals.orders.empty")
    return "\n\n".join(
        [t("deals.orders.title", count=len(listing.items)), *(order_notice(o, t) for o in listing.items)]
    )


def pending_keyboard(listing: PendingOrders, t: Texts) -> InlineKeyboardMarkup | None:
    if not listing.items:
        return None
    rows = [order_keyboard(t, o.id, "l")["inline_keyboard"][0] for o in listing.items]
    return InlineKeyboardMarkup.model_validate({"inline_keyboard": rows})


def outcome_text(decision: OrderDecision, action: str, t: Texts) -> str:
    view = decision.order
    if not decision.changed:
        return t(f"deals.orders.noop.{RESULT[action]}", id=view.id)
    return t(DONE_KEYS[action], id=view.id, amount=format_money(view.amount, t.language), name=view.partner_name)


def _params(view: ChatOrderView, t: Texts) -> dict[str, object]:
    return {"id": view.id, "amount": format_money(view.amount, t.language), "name": view.partner_name}


# -- partners ------------------------------------------------------------------------------------------


async def quote_command(message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    view = await uc.deals.quote(partner, command.args)
    png = await render_quote_card_async(quote_card(view, t))
    photo = BufferedInputFile(png, filename=f"quote-{view.id}.png")
    await message.answer_photo(photo, caption=quote_caption(view, t))


async def order_command(message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    view = await uc.deals.register_order(partner, command.args)
    await message.answer(
        t(
            "deals.order.registered",
            id=view.id,
            quantity=view.quantity,
            product=view.product,
            lead=view.lead_name or "—",
            amount=format_money(view.amount, t.language),
        )
    )


# -- admins --------------------------------------------------------------------------------------------


async def product_command(
    message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    result = await uc.deals.product_command(partner, command.args)
    if isinstance(result, ProductPage):
        await message.answer(page_text(result, t), reply_markup=page_keyboard(result, t))
    elif isinstance(result, ProductView):
        await message.answer(product_detail(result, t))
    else:
        await message.answer(change_text(result, t))


async def product_page_press(
    callback: CallbackQuery, callback_data: ProductPageCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    result = await uc.deals.product_command(partner, f"page {callback_data.page + 1}")
    await callback.answer()
    if isinstance(callback.message, Message) and isinstance(result, ProductPage):
        await callback.message.edit_text(page_text(result, t), reply_markup=page_keyboard(result, t))


async def orders_command(message: Message, state: FSMContext, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    await state.clear()
    listing = await uc.deals.pending_orders(partner)
    await message.answer(pending_text(listing, t), reply_markup=pending_keyboard(listing, t))


async def _after_decision(
    callback: CallbackQuery, source: str, outcome: str, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    """Say what happened; redraw the /orders list, or take the buttons off the notice that was pressed."""
    if not isinstance(callback.message, Message):
        return
    await callback.message.answer(outcome)
    if source == "l":
        listing = await uc.deals.pending_orders(partner)
        await callback.message.edit_text(pending_text(listing, t), reply_markup=pending_keyboard(listing, t))
    else:
        await callback.message.edit_reply_markup(reply_markup=None)


async def confirm_press(
    callback: CallbackQuery, callback_data: ChatOrderCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    decision = await uc.deals.confirm(partner, callback_data.id)
    await callback.answer()
    await _after_decision(callback, callback_data.src, outcome_text(decision, "confirm", t), partner, uc, t)


async def reject_press(
    callback: CallbackQuery,
    callback_data: ChatOrderCallback,
    state: FSMContext,
    partner: PartnerView,
    uc: UseCases,
    t: Texts,
) -> None:
    """[Reject]: check the order can still be rejected, then ask for the reason."""
    decision = await uc.deals.prepare_reject(partner, callback_data.id)
    if not decision.changed:
        await callback.answer(outcome_text(decision, "reject", t), show_alert=True)
        return
    await callback.answer()
    await state.set_state(RejectForm.reason)
    await state.update_data(chat_order=decision.order.id)
    if isinstance(callback.message, Message):
        await callback.message.answer(t("deals.orders.ask_reason", **_params(decision.order, t)))


async def got_reason(message: Message, state: FSMContext, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    order_id = int((await state.get_data())["chat_order"])
    decision = await uc.deals.reject(partner, order_id, message.text or "")
    await state.clear()
    await message.answer(outcome_text(decision, "reject", t))


async def cancel_command(message: Message, state: FSMContext, t: Texts) -> None:
    await state.clear()
    await message.answer(t("deals.orders.cancelled"))


async def expect_text(message: Message, t: Texts) -> None:
    await message.answer(t("deals.orders.expect_text"))


async def denied_press(callback: CallbackQuery, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    """Someone without the admin role pressed an order's or the catalogue's button: refuse and audit."""
    uc.roles.denied(partner.tg_user_id, partner.id, "chat_order_button")
    await callback.answer(t("denied.admin"), show_alert=True)


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only).

    /quote and /order are for every partner. The admin part is filtered by role: anyone else's /product and
    /orders fall through to `denied`, and their presses of these buttons are refused here, after the admin part.
    """
    router = Router(name=__name__)
    router.message.register(quote_command, Command("quote"))
    router.message.register(order_command, Command("order"))

    admin = Router(name=f"{__name__}.admin")
    admin.message.filter(HasRole(Role.ADMIN))
    admin.callback_query.filter(HasRole(Role.ADMIN))
    form = StateFilter(RejectForm)
    not_command = Inline(~F.text.startswith("/"))
    admin.message.register(cancel_command, Command("cancel"), form)
    admin.message.register(product_command, Command("product"))
    admin.message.register(orders_command, Command("orders"))
    admin.message.register(got_reason, StateFilter(RejectForm.reason), Inline(F.text), not_command)
    admin.message.register(expect_text, form, not_command)
    admin.callback_query.register(confirm_press, ChatOrderCallback.filter(F.action == "confirm"))
    admin.callback_query.register(reject_press, ChatOrderCallback.filter(F.action == "reject"))
    admin.callback_query.register(product_page_press, ProductPageCallback.filter())
    router.include_router(admin)

    refused = Router(name=f"{__name__}.refused")
    refused.callback_query.register(denied_press, ChatOrderCallback.filter())
    refused.callback_query.register(denied_press, ProductPageCallback.filter())
    router.include_router(refused)
    return router
