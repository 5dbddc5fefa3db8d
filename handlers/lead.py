"""Team lead commands, behind the router-level lead filter (admins pass it too): /team with the digest view, a
member drill-down, and the digest's [Nudge dormant members] button."""

from __future__ import annotations

from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, Message

from bot.callbacks import DigestCallback
from bot.domain.roles import Role
from bot.i18n import Raw, Texts
from bot.services.digests import MemberReport
from bot.services.leads import LeadCard, MemberLeads
from bot.services.registry import UseCases
from bot.services.views import PartnerView, TeamView
from handlers.filters import HasRole


async def team(message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    if (command.args or "").strip():
        report = await uc.digests.member(partner, command.args or "")
        await message.answer(member_report_text(report, t) + "\n\n" + member_leads_text(report.leads, t, uc))
        return
    view = await uc.digests.team_view(partner, t.language)
    await message.answer(team_text(view.team, t, uc))
    await message.answer(view.digest.text, reply_markup=_markup(view.digest.keyboard))
    await message.answer_photo(
        BufferedInputFile(view.digest.chart, "team-trend.png"), caption=view.digest.chart_caption
    )


async def nudge_press(callback: CallbackQuery, partner: PartnerView, uc: UseCases, t: Texts, bot: Bot) -> None:
    result = await uc.digests.nudge_dormant(partner)
    if result.nudged == 0 and result.skipped == 0:
        text = t("digests.nudge_none")
    else:
        text = t("digests.nudged", count=result.nudged)
        if result.skipped:
            text += "\n" + t("digests.nudged_skipped", count=result.skipped)
    await callback.answer()
    await bot.send_message(callback.from_user.id, text)


def _markup(keyboard: dict[str, Any] | None) -> InlineKeyboardMarkup | None:
    return InlineKeyboardMarkup.model_validate(keyboard) if keyboard else None


def team_text(view: TeamView, t: Texts, uc: UseCases) -> str:
    lines = [t("team.summary", size=view.size, l1=view.level1, l2=view.level2)]
    if view.newest:
        tz = uc.ctx.timezone
        lines.append(t("team.recent"))
        lines += [
            t("team.member", name=m.name, joined=m.joined_at.astimezone(tz).strftime("%Y-%m-%d")) for m in view.newest
        ]
    else:
        lines.append(t("team.empty"))
    if view.overdue:
        lines += [t("leads.team.overdue_title")]
        lines += [t("leads.team.overdue_item", name=name, count=count) for name, count in view.overdue]
    return "\n".join(lines)


def member_report_text(report: MemberReport, t: Texts) -> str:
    """A member's funnel, 7 and 30 days, and what precedes orders in the team."""
    lines = [t("digests.member_title", name=report.name)]
    for name in ("content_sent", "shares", "clicks", "leads", "followups", "quotes", "orders"):
        week, month = getattr(report.week, name), getattr(report.month, name)
        lines.append(t("digests.member_line", label=t(f"digests.behaviours.{name}"), week=week, month=month))
    if report.precedes:
        lines.append(t("digests.member_precedes_title"))
        lines += [
            t("digests.member_precedes_item", behaviour=t(f"digests.behaviours.{name}"), share=share)
            for name, share in report.precedes
        ]
    return "\n".join(lines)


def _contacts(card: LeadCard, t: Texts) -> str:
    """The phone (masked unless an admin looks), and for admins the other contacts too."""
    parts = [t("leads.team.phone", phone=card.phone)] if card.phone else []
    if card.wechat:
        parts.append(t("leads.team.wechat", wechat=card.wechat))
    if card.telegram:
        parts.append(t("leads.team.telegram", telegram=card.telegram))
    return "".join(parts)


def member_leads_text(view: MemberLeads, t: Texts, uc: UseCases) -> str:
    """A member's prospects as their team lead sees them: name, stage, dates, phone masked; no other contact."""
    if not view.cards:
        return t("leads.team.empty", name=view.member_name)
    lines = [t("leads.team.title", name=view.member_name, count=len(view.cards))]
    for card in view.cards:
        last = card.last_followup
        lines.append(
            t(
                "leads.team.item",
                number=card.number,
                name=card.name,
                stage=uc.ctx.lead_stages.label(card.stage, t.language),
                added=card.created_at.astimezone(card.zone).strftime("%Y-%m-%d"),
                last=last.created_at.astimezone(card.zone).strftime("%Y-%m-%d") if last else t("leads.team.never"),
                phone=Raw(_contacts(card, t)),
            )
        )
    return "\n".join(lines)


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only)."""
    router = Router(name=__name__)
    router.message.filter(HasRole(Role.LEAD))
    router.message.register(team, Command("team"))
    # the use case checks the role on every press (a partner pressing a forwarded digest is refused)
    router.callback_query.register(nudge_press, DigestCallback.filter(F.action == "nudge"))
    return router
