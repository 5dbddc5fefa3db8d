"""Team-lead digests: the team's behaviour at the lead's local morning (daily, and weekly on Monday), the same view
on demand in /team, a member drill-down, and the [Nudge dormant members] button.

Decisions, for the record:
- The daily digest reports on *yesterday* (the deployment's calendar, as the rollups) against the day before; the
  weekly one on the 7 days up to yesterday (Monday to Sunday) against the 7 before. /team shows today so far
  against yesterday.
- The team is the lead's referral subtree. Metrics count the lead too (they are part of the team); the member
  lists (dormant, top performers, new members) leave the lead out.
- A digest goes once per lead and period (`digests_sent`): the sweep builds it when the lead's local time reaches
  their digest time (default 08:30; /settings) and marks it in the same transaction as the outbox rows.
- Dormant: no action for `DORMANT_DAYS` (3) days or more. A nudge goes to each dormant member at most once in 7
  days (whoever's lead pressed), as a friendly personal reminder through the outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from bot.callbacks import DigestCallback
from bot.domain.behaviour import DORMANT_DAYS, DayCounts, PeriodName, dormant, precedes_orders, total
from bot.domain.errors import UserFacingError
from bot.domain.roles import Role, has_at_least
from bot.i18n import Texts
from bot.services.acting import language_of
from bot.services.behaviour import BehaviourReport, BehaviourService, behaviour_lines, trend_chart
from bot.services.context import ServiceContext
from bot.services.leads import LeadService, MemberLeads
from bot.services.notify import enqueue_photo, enqueue_text, partner_zone
from bot.services.partners import PartnerService, display_name
from bot.services.playbooks import ONBOARDING, PlaybookService
from bot.services.views import PartnerView, TeamView
from storage.models import Partner
from storage.uow import UnitOfWork

DAILY, WEEKLY = "daily", "weekly"
DEFAULT_DIGEST_MINUTE = 8 * 60 + 30
LIST_LIMIT = 10
TOP_PERFORMERS = 3
NEW_MEMBER_DAYS = 7
NUDGE_EVERY_DAYS = 7
MEMBER_WINDOW_DAYS = 30


@dataclass(frozen=True, slots=True)
class Digest:
    """A digest ready to send: the text, its keyboard (the nudge button when someone is dormant) and the chart."""

    text: str
    keyboard: dict[str, Any] | None
    chart: bytes
    chart_caption: str


@dataclass(frozen=True, slots=True)
class DigestPage:
    seen: int
    sent: int
    last_id: int


@dataclass(frozen=True, slots=True)
class NudgeResult:
    nudged: int
    skipped: int
    """Dormant members already nudged in the last 7 days."""


@dataclass(frozen=True, slots=True)
class TeamDigest:
    """/team: the team at a glance and the digest's view of today."""

    team: TeamView
    digest: Digest


@dataclass(frozen=True, slots=True)
class MemberReport:
    leads: MemberLeads
    name: str
    week: DayCounts
    month: DayCounts
    precedes: list[tuple[str, str]]
    """(behaviour, share followed by an order) over the lead's team, highest first."""


def nudge_key(member_id: int, day: str) -> str:
    """A nudge's outbox key: one per member and day; the last 7 days' keys are looked up before nudging again."""
    return f"nudge:{member_id}:{day}"


def digest_minute(partner: Partner) -> int:
    return DEFAULT_DIGEST_MINUTE if partner.digest_minute is None else partner.digest_minute


class DigestService:
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    # --- the sweep -------------------------------------------------------------------------------------------

    async def send_due(self, now: datetime, after_id: int, limit: int) -> DigestPage:
        """Leads (by id after `after_id`) whose digest time has come today get the daily digest, and on Monday the
        weekly one, once each."""
        leads = await self._uow.digests.leads_after(after_id, limit)
        sent = 0
        for lead in leads:
            local = now.astimezone(partner_zone(self._ctx, lead))
            if local.hour * 60 + local.minute < digest_minute(lead):
                continue
            today = local.date()
            due = [(DAILY, today.isoformat())]
            if today.weekday() == 0 and lead.weekly_digest:
                due.append((WEEKLY, today.isoformat()))
            for kind, period in due:
                if await self._uow.digests.was_sent(lead.id, kind, period):
                    continue
                await self._enqueue(lead, kind, period, now)
                sent += 1
        return DigestPage(seen=len(leads), sent=sent, last_id=leads[-1].id if leads else after_id)

    async def _enqueue(self, lead: Partner, kind: str, period: str, now: datetime) -> None:
        language = language_of(self._ctx, lead)
        yesterday = BehaviourService(self._uow, self._ctx).today(now) - timedelta(days=1)
        name = PeriodName.TODAY if kind == DAILY else PeriodName.DAYS_7
        digest = await self._build(lead, name, yesterday, kind, self._ctx.translator.texts(language))
        key = f"digest:lead:{lead.id}:{kind}:{period}"
        await enqueue_text(
            self._uow, self._ctx, recipient=lead, dedupe_key=key, text=digest.text, reply_markup=digest.keyboard
        )
        await enqueue_photo(
            self._uow,
            self._ctx,
            recipient=lead,
            dedupe_key=f"{key}:chart",
            photo=digest.chart,
            caption=digest.chart_caption,
        )
        await self._uow.digests.mark_sent(lead.id, kind, period, now)

    # --- on demand -------------------------------------------------------------------------------------------

    async def team_view(self, actor: PartnerView, language: str) -> TeamDigest:
        """/team: the team at a glance, and the digest's view of today so far."""
        lead = await self._lead(actor)
        today = BehaviourService(self._uow, self._ctx).today(self._ctx.clock.now())
        team = await PartnerService(self._uow, self._ctx).team(lead.id)
        digest = await self._build(lead, PeriodName.TODAY, today, "live", self._ctx.translator.texts(language))
        return TeamDigest(team=team, digest=digest)

    async def member(self, actor: PartnerView, handle: str) -> MemberReport:
        """`/team <member>`: a member's funnel over 7 and 30 days and which behaviours precede orders in the lead's
        team, with the member's prospects as LeadService shows them to a lead (phones masked, no other contact)."""
        lead = await self._lead(actor)
        leads = await LeadService(self._uow, self._ctx).member_leads(actor, handle)
        member = await self._uow.partners.by_handle(handle.strip())
        in_team = member is not None and member.id != lead.id and member.tree_path.startswith(lead.tree_path)
        if member is None or not (in_team or has_at_least(actor.role, Role.ADMIN)):
            raise UserFacingError("leads.team.not_member", handle=handle)
        behaviour = BehaviourService(self._uow, self._ctx)
        today = behaviour.today(self._ctx.clock.now())
        rollups = self._uow.rollups
        first = today - timedelta(days=MEMBER_WINDOW_DAYS - 1)
        own = (await rollups.daily_rows(first, today, member.tree_path)).get(member.id, {})
        week = total(c for d, c in own.items() if d > today - timedelta(days=7))
        team_days = await rollups.daily_rows(first, today, lead.tree_path)
        ranked = [(name, ratio.percent()) for name, ratio in precedes_orders(team_days)]
        return MemberReport(
            leads=leads, name=display_name(member), week=week, month=total(own.values()), precedes=ranked
        )

    async def nudge_dormant(self, actor: PartnerView) -> NudgeResult:
        """[Nudge dormant members]: each dormant member of the lead's team not nudged in the last 7 days gets a
        friendly personal reminder."""
        lead = await self._lead(actor)
        now = self._ctx.clock.now()
        today = BehaviourService(self._uow, self._ctx).today(now)
        members = await self._uow.digests.members(lead.tree_path)
        quiet, _ = await self._dormant(lead, members, today)
        days = [(today - timedelta(days=n)).isoformat() for n in range(NUDGE_EVERY_DAYS)]
        recent = await self._uow.outbox.existing_keys([nudge_key(m.id, day) for m in quiet for day in days])
        nudged = skipped = 0
        for member in quiet:
            if any(nudge_key(member.id, day) in recent for day in days):
                skipped += 1
                continue
            t = self._ctx.translator.texts(language_of(self._ctx, member))
            await enqueue_text(
                self._uow,
                self._ctx,
                recipient=member,
                dedupe_key=nudge_key(member.id, today.isoformat()),
                text=t("digests.nudge_message", name=member.first_name, lead=display_name(lead)),
            )
            nudged += 1
        return NudgeResult(nudged=nudged, skipped=skipped)

    # --- building --------------------------------------------------------------------------------------------

    async def _lead(self, actor: PartnerView) -> Partner:
        if not has_at_least(actor.role, Role.LEAD):
            raise UserFacingError("denied.lead")
        lead = await self._uow.partners.get(actor.id)
        if lead is None:
            raise LookupError(f"partner {actor.id} does not exist")
        return lead

    async def _dormant(
        self, lead: Partner, members: Sequence[Partner], today: date
    ) -> tuple[list[Partner], dict[int, date]]:
        """The dormant members, longest quiet first, and every member's last action day (read once)."""
        last = await self._uow.rollups.last_action_days(today, lead.tree_path)
        zone = self._ctx.timezone
        joined = {m.id: m.joined_at.astimezone(zone).date() for m in members}
        by_id = {m.id: m for m in members}
        return [by_id[p] for p in dormant(last, joined, today, DORMANT_DAYS)], last

    async def _build(self, lead: Partner, name: PeriodName, until: date, kind: str, t: Texts) -> Digest:
        behaviour = BehaviourService(self._uow, self._ctx)
        report = await behaviour.report(name, lead.tree_path, today=until)
        members = list(await self._uow.digests.members(lead.tree_path))
        quiet, last = await self._dormant(lead, members, until)
        lines = [self._title(report, kind, len(members), t), *behaviour_lines(report, t), ""]
        lines += self._dormant_lines(quiet, last, t)
        overdue = await LeadService(self._uow, self._ctx).overdue_by_member(lead)
        names = {m.id: display_name(m) for m in members}
        if overdue:
            lines.append(t("digests.overdue_title"))
            ranked = sorted(overdue.items(), key=lambda item: (-item[1], item[0]))
            lines += [t("digests.overdue_item", name=names.get(p, "?"), count=n) for p, n in ranked[:LIST_LIMIT]]
        lines += await self._top_lines(report, lead, names, t)
        lines += await self._newcomer_lines(members, t)
        keyboard = None
        if quiet:
            button = {
                "text": t("digests.nudge_button", count=len(quiet)),
                "callback_data": DigestCallback(action="nudge").pack(),
            }
            keyboard = {"inline_keyboard": [[button]]}
        labels = (t("behaviour.chart.shares"), t("behaviour.chart.followups"), t("behaviour.chart.orders"))
        chart = await trend_chart(report.trend, t("digests.chart_title"), labels)
        return Digest(
            text="\n".join(lines).rstrip("\n"), keyboard=keyboard, chart=chart, chart_caption=t("digests.chart_caption")
        )

    @staticmethod
    def _title(report: BehaviourReport, kind: str, members: int, t: Texts) -> str:
        period = report.period
        if kind == WEEKLY:
            return t(
                "digests.weekly_title", first=period.first.isoformat(), last=period.last.isoformat(), members=members
            )
        if kind == DAILY:
            return t("digests.daily_title", day=period.last.isoformat(), members=members)
        return t("digests.live_title", members=members)

    @staticmethod
    def _dormant_lines(quiet: list[Partner], last: dict[int, date], t: Texts) -> list[str]:
        if not quiet:
            return [t("digests.dormant_none")]
        lines = [t("digests.dormant_title", count=len(quiet), days=DORMANT_DAYS)]
        for member in quiet[:LIST_LIMIT]:
            day = last.get(member.id)
            if day is None:
                lines.append(t("digests.dormant_never", name=display_name(member)))
            else:
                lines.append(t("digests.dormant_item", name=display_name(member), last=day.isoformat()))
        if len(quiet) > LIST_LIMIT:
            lines.append(t("digests.more", count=len(quiet) - LIST_LIMIT))
        return lines

    async def _top_lines(self, report: BehaviourReport, lead: Partner, names: dict[int, str], t: Texts) -> list[str]:
        period = report.period
        sums = await self._uow.rollups.sums(period.first, period.last, lead.tree_path)
        ranked = sorted(
            ((p, c) for p, c in sums.items() if p in names and c.actions > 0),
            key=lambda item: (-item[1].actions, -item[1].shares, item[0]),
        )[:TOP_PERFORMERS]
        if not ranked:
            return []
        lines = [t("digests.top_title")]
        for rank, (partner_id, counts) in enumerate(ranked, start=1):
            lines.append(
                t(
                    "digests.top_item",
                    rank=rank,
                    name=names[partner_id],
                    actions=counts.actions,
                    shares=counts.shares,
                    followups=counts.followups,
                    orders=counts.orders,
                )
            )
        return lines

    async def _newcomer_lines(self, members: list[Partner], t: Texts) -> list[str]:
        since = self._ctx.clock.now() - timedelta(days=NEW_MEMBER_DAYS)
        newcomers = [m for m in members if m.joined_at >= since]
        if not newcomers:
            return []
        playbooks = PlaybookService(self._uow, self._ctx)
        lines = [t("digests.new_title")]
        for member in newcomers[-LIST_LIMIT:]:
            checklist = await playbooks.checklist(member.id, t.language, ONBOARDING, advance=False)
            if checklist is None:
                lines.append(t("digests.new_none", name=display_name(member)))
            else:
                lines.append(
                    t(
                        "digests.new_item",
                        name=display_name(member),
                        day=checklist.day,
                        total=checklist.total,
                        done=checklist.done,
                        steps=len(checklist.items),
                    )
                )
        return lines
