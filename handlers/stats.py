"""/stats for admins: the behaviour dashboard (the four behaviour metrics, the funnel and a 14-day trend chart) and
the delivery health of the outbox. Every handler here sits behind the router-level admin filter; the behaviour use
case checks the role again."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, Message

from bot.domain.behaviour import PeriodName
from bot.domain.roles import Role
from bot.i18n import Texts
from bot.services.behaviour import render_report, trend_chart
from bot.services.registry import UseCases
from bot.services.stats import DeliveryReport, parse_section
from bot.services.views import PartnerView
from handlers.filters import HasRole


def render_delivery(report: DeliveryReport, t: Texts) -> str:
    lines = [t("stats.delivery.title"), t("stats.delivery.header", days=report.kept_days)]
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


async def stats(message: Message, command: CommandObject, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    section = parse_section(command.args)
    if not isinstance(section, PeriodName):
        await message.answer(render_delivery(await uc.stats.delivery(), t))
        return
    report = await uc.behaviour.network(partner, section)
    await message.answer(render_report(report, t))
    labels = (t("behaviour.chart.shares"), t("behaviour.chart.followups"), t("behaviour.chart.orders"))
    chart = await trend_chart(report.trend, t("behaviour.chart.title"), labels)
    await message.answer_photo(BufferedInputFile(chart, "trend.png"), caption=t("behaviour.chart.caption"))


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only)."""
    router = Router(name=__name__)
    router.message.filter(HasRole(Role.ADMIN))
    router.message.register(stats, Command("stats"))
    return router
