"""/settings: time zone, daily push hour and quiet hours, by buttons or by typed arguments."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.callbacks import SettingsCallback
from bot.domain.schedule import PUSH_OFF, SettingChange, format_clock, parse_setting
from bot.i18n import Texts
from bot.services.registry import UseCases
from bot.services.settings import SettingsView
from bot.services.views import PartnerView
from handlers.keyboards import settings_choices_keyboard, settings_keyboard


def render_settings(view: SettingsView, t: Texts) -> str:
    push = (
        t("settings.push_at", time=format_clock(view.push_hour * 60))
        if view.push_hour is not None
        else t("settings.off")
    )
    quiet = (
        t("settings.quiet_range", start=format_clock(view.quiet[0]), end=format_clock(view.quiet[1]))
        if view.quiet
        else t("settings.off")
    )
    title = t("settings.title", tz=view.timezone, now=view.local_now.strftime("%H:%M"), push=push, quiet=quiet)
    ranks = t("leaderboards.settings_line", state=t("leaderboards.on" if view.rank_pushes else "leaderboards.off"))
    if view.digest_minute is None:
        return f"{title}\n{ranks}"
    daily = t("settings.off") if view.digest_minute < 0 else format_clock(view.digest_minute)
    weekly = t("digests.on" if view.weekly_digest else "digests.off")
    return f"{title}\n{ranks}\n{t('digests.settings_line', time=daily, weekly=weekly)}"


def change_from_button(data: SettingsCallback) -> SettingChange:
    if data.field == "tz":
        return SettingChange(timezone=data.value)
    if data.field == "push":
        return SettingChange(push_hour=PUSH_OFF if data.value == "off" else int(data.value))
    if data.field == "ranks":
        return SettingChange(rank_pushes=data.value == "on")
    start, _, end = data.value.partition("-")
    return SettingChange(quiet=(0, 0) if data.value == "off" else (int(start), int(end)))


async def settings(message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    if command.args:
        view = await uc.settings.change(partner.id, parse_setting(command.args))
        text = t("settings.saved") + "\n\n" + render_settings(view, t)
    else:
        view = await uc.settings.view(partner.id)
        text = render_settings(view, t)
    await message.answer(text, reply_markup=settings_keyboard(t, rank_pushes=view.rank_pushes))


async def settings_button(
    callback: CallbackQuery, callback_data: SettingsCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    if callback.message is None:
        await callback.answer()
        return
    chat_id, message_id = callback.from_user.id, callback.message.message_id
    bot = callback.bot
    assert bot is not None
    if callback_data.action == "menu":
        await callback.answer()
        await bot.edit_message_text(
            t(f"settings.choose_{callback_data.field}"),
            chat_id=chat_id,
            message_id=message_id,
            reply_markup=settings_choices_keyboard(t, callback_data.field),
        )
        return
    if callback_data.action == "back":
        view = await uc.settings.view(partner.id)
    else:
        view = await uc.settings.change(partner.id, change_from_button(callback_data))
    await callback.answer(t("settings.saved") if callback_data.action == "set" else None)
    await bot.edit_message_text(
        render_settings(view, t),
        chat_id=chat_id,
        message_id=message_id,
        reply_markup=settings_keyboard(t, rank_pushes=view.rank_pushes),
    )


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only)."""
    router = Router(name=__name__)
    router.message.register(settings, Command("settings"))
    router.callback_query.register(settings_button, SettingsCallback.filter())
    return router
