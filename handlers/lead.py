"""Team lead commands, behind the router-level lead filter (admins pass it too)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.domain.roles import Role
from bot.i18n import Raw, Texts
from bot.services.leads import LeadCard, MemberLeads
from bot.services.registry import UseCases
from bot.services.views import PartnerView
from handlers.filters import HasRole


async def team(message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    if (command.args or "").strip():
        await message.answer(member_leads_text(await uc.leads.member_leads(partner, command.args or ""), t, uc))
        return
    view = await uc.partners.team(partner.id)
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
    await message.answer("\n".join(lines))


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
    return router
