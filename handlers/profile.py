"""/me and the profile card (/link lives with the content handlers: it lists tracked links too)."""

from __future__ import annotations

from collections.abc import Mapping
from zoneinfo import ZoneInfo

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import BufferedInputFile, CallbackQuery, Message

from bot.callbacks import ProfileCallback
from bot.i18n import Raw, Texts
from bot.media.cards import CardData, render_profile_card_async
from bot.services.registry import UseCases
from bot.services.views import PartnerView, ProfileView, StandingView, StreakView
from handlers.keyboards import profile_keyboard
from handlers.playbooks import me_line


def render_profile(view: ProfileView, t: Texts, tz: ZoneInfo) -> str:
    joined = view.partner.joined_at.astimezone(tz).strftime("%Y-%m-%d")
    body = t(
        "me.body",
        role=t(f"role.{view.partner.role.value}"),
        joined=joined,
        code=view.partner.invite_code,
        link=view.deep_link,
        upline=view.upline_name or t("me.no_upline"),
        l1=view.level1,
        l2=view.level2,
    )
    return "\n".join([t("me.title", name=view.partner.display_name), body, "", render_standing(view.standing, t)])


def _label(titles: Mapping[str, str], name: str, t: Texts) -> str:
    """The plan's title in the reader's language, else the locale's name for the level, else the plan key."""
    if titles.get(t.language):
        return titles[t.language]
    return t(f"level.{name}") if t.has(f"level.{name}") else name


def render_streak(streak: StreakView, t: Texts) -> str:
    """🔥 Streak: 5 day(s) · kept today ✅ · ❄️ 2/2 freezes left this month."""
    parts = [t("streaks.me.line", days=streak.days) if streak.days else t("streaks.me.none")]
    if streak.days:
        parts.append(t("streaks.me.safe") if streak.active_today else t("streaks.me.open"))
    if streak.freezes_per_month > 0:
        parts.append(t("streaks.me.freezes", left=streak.freezes_left, total=streak.freezes_per_month))
    return t("levels.me.separator").join(parts)


def render_standing(standing: StandingView, t: Texts) -> str:
    """Level, badges and what the next level asks for, in a few short lines."""
    lines = [t("levels.me.level", level=_label(standing.titles, standing.level, t))]
    if standing.badges:
        names = [t("levels.me.badge", icon=b.icon, title=b.titles.get(t.language) or b.name) for b in standing.badges]
        lines.append(t("levels.me.badges", badges=Raw(t("levels.me.separator").join(names))))
    else:
        lines.append(t("levels.me.no_badges"))
    if standing.streak is not None:
        lines.append(render_streak(standing.streak, t))
    following = standing.next
    if following is None:
        lines.append(t("levels.me.top"))
        return "\n".join(lines)
    level = _label(following.titles, following.name, t)
    if following.condition is None:
        lines.append(t("levels.me.next_manual", level=level))
        return "\n".join(lines)
    lines.append(t("levels.me.next", level=level, condition=following.condition))
    values = [
        t("levels.me.value", metric=t(f"levels.metric.{m}") if t.has(f"levels.metric.{m}") else m, value=v)
        for m, v in following.values
    ]
    if values:
        lines.append(t("levels.me.now", values=Raw(t("levels.me.separator").join(values))))
    if following.met:
        lines.append(t("levels.me.met"))
    return "\n".join(lines)


def card_data(view: ProfileView, t: Texts) -> CardData:
    return CardData(
        name=view.partner.display_name,
        role_label=t(f"role.{view.partner.role.value}"),
        code_label=t("card.label_code"),
        code=view.partner.invite_code,
        team_label=t("card.label_team"),
        team=f"L1 {view.level1} · L2 {view.level2}",
        scan_label=t("card.label_scan"),
        deep_link=view.deep_link,
    )


async def me(message: Message, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    view = await uc.partners.profile(partner.id)
    text = render_profile(view, t, uc.ctx.timezone)
    start7 = await uc.playbooks.checklist(partner.id, t.language)
    if start7 is not None:
        text = f"{text}\n{me_line(start7, t)}"
    await message.answer(text, reply_markup=profile_keyboard(t, view.deep_link))


async def _send_card(bot: Bot, chat_id: int, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    view = await uc.partners.profile(partner.id)
    png = await render_profile_card_async(card_data(view, t))
    await uc.partners.record_card(partner.id)
    await bot.send_photo(chat_id, BufferedInputFile(png, f"card-{partner.invite_code}.png"), caption=t("card.caption"))


async def card_command(message: Message, bot: Bot, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    await _send_card(bot, message.chat.id, partner, uc, t)


async def card_button(callback: CallbackQuery, bot: Bot, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    await callback.answer()
    await _send_card(bot, callback.from_user.id, partner, uc, t)


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only)."""
    router = Router(name=__name__)
    router.message.register(me, Command("me"))
    router.message.register(card_command, Command("card"))
    router.callback_query.register(card_button, ProfileCallback.filter(F.action == "card"))
    return router
