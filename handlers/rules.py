"""/rules for admins: the commission plan's versions.

`/rules` shows the plan in force with a [📄 Plan file] button; `/rules upload` (or a .yaml document captioned
`/rules upload`) stores a new plan file as the draft; `/rules simulate` compares the draft with the plan in
force; `/rules publish` asks for confirmation, then makes the draft the plan in force.
Only the wait for the uploaded file lives in FSM state; drafts and versions live in the database.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.callbacks import RulesCallback
from bot.domain.errors import UsageError
from bot.domain.money import Money, format_money
from bot.domain.roles import Role
from bot.i18n import Texts
from bot.services.registry import UseCases
from bot.services.rules_admin import LevelRates, PlanUpload, PlanView, SampleCase, Simulation
from bot.services.views import PartnerView
from handlers.filters import HasRole, Inline
from handlers.wallet import MINUS, format_rate


class RulesForm(StatesGroup):
    file = State()


# -- rendering -----------------------------------------------------------------------------------------


def _button(text: str, action: str, version: int = 0, check: str = "") -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=text, callback_data=RulesCallback(action=action, version=version, check=check).pack()
    )


def _money(money: Money, t: Texts) -> str:
    return format_money(money, t.language)


def _signed(money: Money, t: Texts) -> str:
    sign = "+" if money.minor > 0 else MINUS if money.minor < 0 else "±"
    return sign + format_money(Money(abs(money.minor), money.currency), t.language)


def _moment(moment: datetime, view: PlanView) -> str:
    return moment.astimezone(view.zone).strftime("%Y-%m-%d %H:%M")


def _title(level: LevelRates, t: Texts) -> str:
    return level.titles.get(t.language) or level.name


def _rates(rates: tuple[Decimal | None, ...], t: Texts) -> str:
    """'L1 10% · L2 3%'; a tier a category override leaves out (None) keeps the level's rate and is not shown."""
    parts = [
        t("rules.tier", tier=n, rate=format_rate(rate)) for n, rate in enumerate(rates, start=1) if rate is not None
    ]
    return t("rules.separator").join(parts)


def render_plan(view: PlanView, t: Texts) -> str:
    """A stored plan version: rates per level, overrides, cap, self-purchase, hold and minimum withdrawal."""
    if view.status == "draft":
        parts = [t("rules.title_draft", version=view.version)]
        parts.append(t("rules.uploaded", date=_moment(view.created_at, view), zone=view.zone.key))
    else:
        parts = [t("rules.title", version=view.version, status=t(f"rules.status.{view.status}"))]
        published = view.published_at or view.created_at
        parts.append(t("rules.published", date=_moment(published, view), zone=view.zone.key))
    parts += [t("rules.currency", currency=view.currency), "", t("rules.levels")]
    parts += [t("rules.level", level=_title(level, t), rates=_rates(level.rates, t)) for level in view.levels]
    if view.categories:
        parts += ["", t("rules.categories")]
        titles = {level.name: _title(level, t) for level in view.levels}
        parts += [
            t("rules.category", category=c.category, level=titles.get(c.level, c.level), rates=_rates(c.rates, t))
            for c in view.categories
        ]
    else:
        parts += ["", t("rules.no_categories")]
    cap = view.cap_per_order
    parts += [
        t("rules.cap", amount=_money(cap, t)) if cap is not None else t("rules.no_cap"),
        t("rules.self_purchase_on" if view.self_purchase_rebate else "rules.self_purchase_off"),
        t("rules.hold", days=view.hold_days),
        t("rules.min_withdrawal", amount=_money(view.min_withdrawal, t)),
    ]
    return "\n".join(parts)


def _sample(case: SampleCase, t: Texts) -> list[str]:
    level = case.titles.get(t.language) or case.level
    lines = [t("rules.simulate.sample_case", level=level)]
    lines += [
        t("rules.simulate.sample_tier", tier=s.tier, current=_money(s.current, t), draft=_money(s.draft, t))
        for s in case.tiers
    ]
    return lines


def render_simulation(sim: Simulation, t: Texts) -> str:
    since = sim.since.astimezone(sim.zone).strftime("%Y-%m-%d")
    parts = [
        t("rules.simulate.title", draft=sim.draft_version, current=sim.current_version),
        t("rules.simulate.window", date=since, orders=sim.orders, skipped=sim.skipped),
    ]
    if sim.orders:
        parts.append(t("rules.simulate.partners", earners=sim.earners, changed=sim.changed))
        if sim.changes:
            parts += ["", t("rules.simulate.top")]
            parts += [
                t(
                    "rules.simulate.change",
                    name=c.name,
                    current=_money(c.current, t),
                    draft=_money(c.draft, t),
                    delta=_signed(c.delta, t),
                )
                for c in sim.changes
            ]
        else:
            parts.append(t("rules.simulate.no_changes"))
        delta = sim.total_draft - sim.total_current
        parts += [
            "",
            t(
                "rules.simulate.total",
                current=_money(sim.total_current, t),
                draft=_money(sim.total_draft, t),
                delta=_signed(delta, t),
            ),
        ]
    else:
        parts.append(t("rules.simulate.no_orders"))
    parts += ["", t("rules.simulate.sample", amount=_money(sim.sample_amount, t))]
    for case in sim.samples:
        parts += _sample(case, t)
    return "\n".join([*parts, "", t("rules.simulate.hint")])


def file_keyboard(version: int, t: Texts) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[_button(t("rules.file_button"), "file", version)]])


def publish_keyboard(view: PlanView, t: Texts) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(t("rules.publish.button", version=view.version), "publish", view.version, view.check),
                _button(t("rules.publish.cancel_button"), "cancel"),
            ]
        ]
    )


# -- commands ------------------------------------------------------------------------------------------


async def show(message: Message, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    view, draft = await uc.rules.in_force(partner)
    text = render_plan(view, t)
    if draft is not None:
        text += "\n\n" + t("rules.draft_waiting", version=draft)
    await message.answer(text, reply_markup=file_keyboard(view.version, t))


async def rules_command(
    message: Message, command: CommandObject, state: FSMContext, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    action = (command.args or "").strip().lower()
    if action == "":
        await show(message, partner, uc, t)
    elif action == "upload":
        await state.set_state(RulesForm.file)
        await message.answer(t("rules.upload.ask"))
    elif action == "simulate":
        await message.answer(render_simulation(await uc.rules.simulate(partner), t))
    elif action == "publish":
        view, current = await uc.rules.publish_offer(partner)
        text = t("rules.publish.confirm", version=view.version, current=current)
        await message.answer(text, reply_markup=publish_keyboard(view, t))
    else:
        raise UsageError("rules.usage")


async def got_file(message: Message, state: FSMContext, bot: Bot, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    """A plan file: stored as the draft, or refused with its problems listed (the wait goes on)."""
    document = message.document
    assert document is not None  # the filter says so
    upload = PlanUpload(document.file_id, document.file_name, document.file_size)
    result = await uc.rules.upload(partner, upload, bot)
    await state.clear()
    key = "rules.upload.replaced" if result.replaced else "rules.upload.saved"
    head = t(key, version=result.draft.version)
    text = "\n\n".join([head, render_plan(result.draft, t), t("rules.upload.next", current=result.in_force)])
    await message.answer(text)


async def captioned_file(
    message: Message, command: CommandObject, state: FSMContext, bot: Bot, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    """A document captioned `/rules upload`: the upload in one message."""
    if (command.args or "").strip().lower() != "upload":
        raise UsageError("rules.usage")
    await got_file(message, state, bot, partner, uc, t)


async def expect_file(message: Message, t: Texts) -> None:
    await message.answer(t("rules.upload.expect_file"))


async def cancel_command(message: Message, state: FSMContext, t: Texts) -> None:
    await state.clear()
    await message.answer(t("rules.upload.cancelled"))


# -- buttons -------------------------------------------------------------------------------------------


async def file_press(callback: CallbackQuery, callback_data: RulesCallback, bot: Bot, uc: UseCases, t: Texts) -> None:
    plan_file = await uc.rules.plan_file(callback_data.version)
    await callback.answer()
    await bot.send_document(
        callback.from_user.id,
        BufferedInputFile(plan_file.data, filename=plan_file.file_name),
        caption=t("rules.file_caption", version=callback_data.version),
    )


async def publish_press(
    callback: CallbackQuery, callback_data: RulesCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    version, previous = await uc.rules.publish(partner, callback_data.version, callback_data.check)
    await callback.answer(t("rules.publish.done_toast", version=version))
    if isinstance(callback.message, Message):
        await callback.message.edit_text(t("rules.publish.done", version=version, previous=previous))


async def cancel_press(callback: CallbackQuery, t: Texts) -> None:
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.edit_text(t("rules.publish.cancelled"))


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only).

    Admins only: for anyone else /rules falls through to `denied`, which refuses it and audits the try.
    """
    router = Router(name=__name__)
    router.message.filter(HasRole(Role.ADMIN))
    router.callback_query.filter(HasRole(Role.ADMIN))
    router.message.register(cancel_command, Command("cancel"), StateFilter(RulesForm.file))
    # a plan file captioned "/rules upload" is an upload in one message
    router.message.register(captioned_file, Command("rules"), Inline(F.document))
    router.message.register(rules_command, Command("rules"))
    not_command = Inline(~F.text.startswith("/"))
    router.message.register(got_file, StateFilter(RulesForm.file), Inline(F.document))
    router.message.register(expect_file, StateFilter(RulesForm.file), not_command)
    router.callback_query.register(file_press, RulesCallback.filter(F.action == "file"))
    router.callback_query.register(publish_press, RulesCallback.filter(F.action == "publish"))
    router.callback_query.register(cancel_press, RulesCallback.filter(F.action == "cancel"))
    return router
