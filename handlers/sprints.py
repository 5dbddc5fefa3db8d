"""/sprint: a partner's progress in the running sprint; for admins `/sprint new …`, `/sprint end <id>`,
`/sprint list` (one-line forms; `/sprint help` shows the syntax). Everything lives in the database; no FSM state.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.domain.errors import UsageError
from bot.domain.roles import Role
from bot.i18n import Raw, Texts
from bot.services.registry import UseCases
from bot.services.sprints import (
    SprintLine,
    SprintList,
    SprintOverview,
    amount_text,
    audience_text,
    card_text,
    first_minute,
    last_minute,
    metric_text,
)
from bot.services.views import PartnerView
from handlers.filters import HasRole

ADMIN_SUBCOMMANDS = frozenset({"new", "end", "list", "help"})


def _sub(command: CommandObject) -> tuple[str, str]:
    sub, _, rest = (command.args or "").strip().partition(" ")
    return sub.lower(), rest


def _is_admin_sub(args: str | None) -> bool:
    return (args or "").strip().partition(" ")[0].lower() in ADMIN_SUBCOMMANDS


def overview_text(view: SprintOverview, t: Texts) -> str:
    parts = [card_text(card, t, view.zone, view.now) for card in view.cards]
    if not parts:
        parts.append(t("sprints.none"))
    if view.upcoming:
        lines = [t("sprints.upcoming_title")]
        lines += [
            t(
                "sprints.upcoming_item",
                title=line.title,
                metric=metric_text(line, t),
                start=first_minute(line, view.zone),
                end=last_minute(line, view.zone),
            )
            for line in view.upcoming
        ]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def list_text(listing: SprintList, t: Texts) -> str:
    if not listing.items:
        return t("sprints.list_empty")
    lines = [t("sprints.list_title")]
    for line in listing.items:
        lines.append(
            t(
                "sprints.list_item",
                id=line.id,
                title=line.title,
                metric=metric_text(line, t),
                target=amount_text(line, line.target, t),
                start=first_minute(line, listing.zone),
                end=last_minute(line, listing.zone),
                audience=audience_text(line.audience, t),
                state=t(f"sprints.state.{line.state}"),
            )
        )
        if line.state == "ended":
            lines.append(t("sprints.list_winners", count=line.winners))
    return "\n".join(lines)


def created_text(line: SprintLine, t: Texts, zone: ZoneInfo) -> str:
    return t(
        "sprints.created",
        id=line.id,
        title=line.title,
        metric=metric_text(line, t),
        target=amount_text(line, line.target, t),
        start=first_minute(line, zone),
        end=last_minute(line, zone),
        audience=Raw(audience_text(line.audience, t)),
        prizes=line.prizes,
    )


async def sprint_command(
    message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    if (command.args or "").strip():
        raise UsageError("sprints.partner_usage")
    await message.answer(overview_text(await uc.sprints.overview(partner.id), t))


async def admin_command(message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    sub, rest = _sub(command)
    if sub == "new":
        created = await uc.sprints.create(partner, rest)
        await message.answer(created_text(created.sprint, t, created.zone))
    elif sub == "end":
        ended = await uc.sprints.end(partner, rest)
        await message.answer(t(f"sprints.{ended.outcome}", id=ended.sprint.id, title=ended.sprint.title))
    elif sub == "list":
        await message.answer(list_text(await uc.sprints.listing(partner), t))
    else:
        raise UsageError("sprints.usage")


async def refuse(message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    """A partner tried an admin subcommand: the same refusal (and audit row) as any admin command."""
    uc.roles.denied(partner.tg_user_id, partner.id, f"sprint {_sub(command)[0]}")
    await message.answer(t("denied.admin"))


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only).

    For admins, `/sprint` with words goes to the admin part (unknown words get the usage); for anyone else
    `/sprint new|end|list|help` are refused and audited (the service checks the role again). A router tries its
    own handlers before its children's, so both parts are children, admins first."""
    admin_args = F.args.func(_is_admin_sub)
    admin = Router(name=f"{__name__}.admin")
    admin.message.filter(HasRole(Role.ADMIN))
    admin.message.register(admin_command, Command("sprint", magic=F.args))  # any other words: the usage
    partners = Router(name=f"{__name__}.partners")
    partners.message.register(refuse, Command("sprint", magic=admin_args))
    partners.message.register(sprint_command, Command("sprint"))
    router = Router(name=__name__)
    router.include_routers(admin, partners)
    return router
