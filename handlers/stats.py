"""/stats for admins: delivery health of the outbox. Every handler here sits behind the router-level admin filter."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.domain.roles import Role
from bot.i18n import Texts
from bot.services.registry import UseCases
from bot.services.stats import DeliveryReport, parse_section
from handlers.filters import HasRole


def render_delivery(report: DeliveryReport, t: Texts) -> str:
    lines = [t("stats.delivery.title"), t("stats.delivery.header")]
    for status in report.statuses:
        key = f"stats.status.{status}"
        label = t(key) if t.has(key) else status
        total, day = report.overall.get(status, 0), report.last_day.get(status, 0)
        lines.append(t("stats.delivery.line", status=label, total=total, day=day))
    if report.dead_reasons:
        lines.append(t("stats.delivery.reasons"))
        lines.extend(t("stats.delivery.reason", count=count, reason=reason) for reason, count in report.dead_reasons)
    else:
        lines.append(t("stats.delivery.no_dead"))
    return "\n".join(lines)


async def stats(message: Message, command: CommandObject, uc: UseCases, t: Texts) -> None:
    parse_section(command.args)
    await message.answer(render_delivery(await uc.stats.delivery(), t))


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only)."""
    router = Router(name=__name__)
    router.message.filter(HasRole(Role.ADMIN))
    router.message.register(stats, Command("stats"))
    return router
