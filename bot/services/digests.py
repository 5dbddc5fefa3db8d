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

import asyncio
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, TypeVar

from bot.callbacks import DigestCallback
from bot.delivery.media import persist_photo
from bot.domain.behaviour import (
    DORMANT_DAYS,
    Behaviour,
    DayCounts,
    Period,
    PeriodName,
    behaviour,
    dormant,
    period_for,
    precedes_orders,
    total,
)
from bot.domain.errors import UserFacingError
from bot.domain.roles import Role, has_at_least
from bot.i18n import Texts
from bot.services.acting import language_of
from bot.services.behaviour import BehaviourService, behaviour_lines, trend_chart
from bot.services.context import ServiceContext
from bot.services.leads import LeadService, MemberLeads
from bot.services.notify import enqueue_text, partner_zone, photo_row, text_row
from bot.services.partners import Named, PartnerService, display_name
from bot.services.playbooks import ONBOARDING, Checklist, PlaybookService
from bot.services.views import PartnerView, TeamView
from storage.models import Partner
from storage.repositories.digests import TeamMember
from storage.uow import UnitOfWork

DAILY, WEEKLY = "daily", "weekly"
DEFAULT_DIGEST_MINUTE = 8 * 60 + 30
LIST_LIMIT = 10
TOP_PERFORMERS = 3
NEW_MEMBER_DAYS = 7
NUDGE_EVERY_DAYS = 7
MEMBER_WINDOW_DAYS = 30
TREND_DAYS = 14


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


class _Member(Named, Protocol):
    """A team member as dormancy sees them: a mapped `Partner` or a digest's `TeamMember`."""

    @property
    def id(self) -> int: ...
    @property
    def joined_at(self) -> datetime: ...


M = TypeVar("M", bound=_Member)


@dataclass(frozen=True, slots=True)
class _Wanted:
    lead: Partner
    name: PeriodName
    kind: str
    """daily, weekly or live (/team)."""
    t: Texts


@dataclass(frozen=True, slots=True)
class _Drawing:
    """A digest whose chart is still being drawn."""

    text: str
    keyboard: dict[str, Any] | None
    chart: asyncio.Task[bytes]
    chart_caption: str


@dataclass(frozen=True, slots=True)
class _Reads:
    """What a page of digests shows, read once for all their teams."""

    teams: dict[int, list[TeamMember]]
    """Lead id → their team: the lead and their subtree, oldest first."""
    windows: dict[tuple[date, date], int]
    """(first, last) → where that period's sums are in each `sums` list."""
    sums: dict[int, list[DayCounts]]
    last: dict[int, date]
    overdue: dict[int, int]
    checklists: dict[str, dict[int, Checklist]]
    """Language → newcomer id → their 7-day start."""
    charts: list[asyncio.Task[bytes]]
    """Each wanted digest's chart of its team's last 14 days, being drawn."""


@dataclass(frozen=True, slots=True)
class _TeamReport:
    """What a digest shows of a team's behaviour report (see `BehaviourService.report`)."""

    period: Period
    now: Behaviour
    before: Behaviour
    last_7d: Behaviour
    last_30d: Behaviour
    sums: dict[int, DayCounts]
    """Each team partner's counts over the period (the top performers)."""


class _Charts:
    """The charts of a page being drawn, as tasks: any not awaited when the page ends (it failed) is cancelled."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[bytes]] = []

    def draw(self, chart: Coroutine[Any, Any, bytes]) -> asyncio.Task[bytes]:
        task = asyncio.create_task(chart)
        self._tasks.append(task)
        return task

    async def __aenter__(self) -> _Charts:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.cancel()

    async def cancel(self) -> None:
        """Cancel the charts still being drawn (none after a page was queued) and wait for them to stop."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass(slots=True)
class ReadDigests:
    """A page of due digests, read (their charts being drawn), not yet composed (`DigestService.compose`)."""

    due: list[tuple[Partner, str, str]]
    """(lead, kind, period) of each digest."""
    wanted: list[_Wanted]
    reads: _Reads | None
    """None when no digest of the page is due."""
    until: date
    charts: _Charts
    page: DigestPage


@dataclass(slots=True)
class PreparedDigests:
    """A page of due digests, read and with their charts being drawn, not yet queued (`DigestService.queue`)."""

    due: list[tuple[Partner, str, str]]
    """(lead, kind, period) of each digest, in `drawings` order."""
    drawings: list[_Drawing]
    charts: _Charts
    page: DigestPage


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

    async def read_due(self, now: datetime, after_id: int, limit: int) -> ReadDigests:
        """Leads (by id after `after_id`) whose digest time has come today and who have not had it yet (the daily
        digest, and on Monday the weekly one), read together: a few queries for all their teams, the charts started
        in worker processes. Nothing is written: `compose` then `queue` follow, in later units of work, so that the
        digest job reads the next page while it composes this one."""
        leads = await self._uow.digests.leads_after(after_id, limit)
        due: list[tuple[Partner, str, str]] = []
        for lead in leads:
            local = now.astimezone(partner_zone(self._ctx, lead))
            if local.hour * 60 + local.minute < digest_minute(lead):
                continue
            today = local.date()
            due.append((lead, DAILY, today.isoformat()))
            if today.weekday() == 0 and lead.weekly_digest:
                due.append((lead, WEEKLY, today.isoformat()))
        done = await self._uow.digests.sent_among([(lead.id, kind, period) for lead, kind, period in due])
        due = [(lead, kind, period) for lead, kind, period in due if (lead.id, kind, period) not in done]
        yesterday = BehaviourService(self._uow, self._ctx).today(now) - timedelta(days=1)
        wanted = [
            _Wanted(
                lead,
                PeriodName.TODAY if kind == DAILY else PeriodName.DAYS_7,
                kind,
                self._ctx.translator.texts(language_of(self._ctx, lead)),
            )
            for lead, kind, _ in due
        ]
        charts = _Charts()
        try:
            reads = await self._read(wanted, yesterday, charts) if wanted else None
        except BaseException:
            await charts.cancel()
            raise
        page = DigestPage(seen=len(leads), sent=len(due), last_id=leads[-1].id if leads else after_id)
        return ReadDigests(due, wanted, reads, yesterday, charts, page)

    async def compose(self, read: ReadDigests) -> PreparedDigests:
        """The texts of a page read by `read_due` (no query: the reads are all in `read`)."""
        try:
            drawings = [] if read.reads is None else await self._compose(read.wanted, read.reads, read.until)
        except BaseException:
            await read.charts.cancel()
            raise
        return PreparedDigests(read.due, drawings, read.charts, read.page)

    async def queue(self, prepared: PreparedDigests, now: datetime) -> int:
        """Queue a prepared page's digests (the text, then the chart once drawn) and mark them sent; how many."""
        rows: list[dict[str, Any]] = []
        async with prepared.charts:
            for (lead, kind, period), digest in zip(prepared.due, prepared.drawings, strict=True):
                rows += await self._rows(lead, f"digest:lead:{lead.id}:{kind}:{period}", digest)
        if rows and await self._uow.outbox.enqueue_many(rows):
            self._uow.outbox_dirty = True
        await self._uow.digests.mark_all_sent([(lead.id, kind, period) for lead, kind, period in prepared.due], now)
        return len(prepared.due)

    async def _rows(self, lead: Partner, key: str, digest: _Drawing) -> list[dict[str, Any]]:
        """The digest's two outbox rows, the text (and its keyboard) then the chart, once the chart is drawn."""
        ctx = self._ctx
        text = text_row(ctx, recipient=lead, dedupe_key=key, text=digest.text, reply_markup=digest.keyboard)
        path = await persist_photo(ctx.media_dir, await digest.chart)
        photo = photo_row(ctx, recipient=lead, dedupe_key=f"{key}:chart", path=path, caption=digest.chart_caption)
        return [text, photo]

    # --- on demand -------------------------------------------------------------------------------------------

    async def team_view(self, actor: PartnerView, language: str) -> TeamDigest:
        """/team: the team at a glance, and the digest's view of today so far."""
        lead = await self._lead(actor)
        today = BehaviourService(self._uow, self._ctx).today(self._ctx.clock.now())
        team = await PartnerService(self._uow, self._ctx).team(lead.id)
        wanted = _Wanted(lead, PeriodName.TODAY, "live", self._ctx.translator.texts(language))
        async with _Charts() as charts:
            [drawing] = await self._build_many([wanted], today, charts)
            chart = await drawing.chart
        digest = Digest(drawing.text, drawing.keyboard, chart, drawing.chart_caption)
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
        quiet = await self._dormant(lead, members, today)
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

    async def _dormant(self, lead: Partner, members: Sequence[Partner], today: date) -> list[Partner]:
        """The dormant members of the lead's team, longest quiet first."""
        return self._quiet(members, await self._uow.rollups.last_action_days(today, lead.tree_path), today)

    def _quiet(self, members: Sequence[M], last: dict[int, date], today: date) -> list[M]:
        """The dormant `members`, longest quiet first, by each one's last action day (`last`)."""
        zone = self._ctx.timezone
        joined = {m.id: m.joined_at.astimezone(zone).date() for m in members}
        by_id = {m.id: m for m in members}
        return [by_id[p] for p in dormant(last, joined, today, DORMANT_DAYS)]

    async def _build_many(self, wanted: Sequence[_Wanted], until: date, charts: _Charts) -> list[_Drawing]:
        """Each wanted digest of the period ending `until`, from one set of reads for all the leads' teams (their
        members, rollup sums, trends, last action days, overdue revisits and newcomers' progress); the charts are
        drawn by `charts` meanwhile."""
        if not wanted:
            return []
        return await self._compose(wanted, await self._read(wanted, until, charts), until)

    async def _compose(self, wanted: Sequence[_Wanted], reads: _Reads, until: date) -> list[_Drawing]:
        """Each wanted digest's text and keyboard, from the page's reads (its chart is `reads.charts`)."""
        drawings = []
        for one, chart in zip(wanted, reads.charts, strict=True):
            await asyncio.sleep(0)  # a page is a hundred digests: let other work in between
            lead, t = one.lead, one.t
            team = reads.teams[lead.id]
            members = [m for m in team if m.id != lead.id]
            report = self._report(reads, team, one.name, until)
            quiet = self._quiet(members, reads.last, until)
            lines = [self._title(report, one.kind, len(members), t), *behaviour_lines(report, t), ""]
            lines += self._dormant_lines(quiet, reads.last, t)
            overdue = {m.id: reads.overdue[m.id] for m in members if m.id in reads.overdue}
            names = {m.id: display_name(m) for m in members}
            if overdue:
                lines.append(t("digests.overdue_title"))
                ranked = sorted(overdue.items(), key=lambda item: (-item[1], item[0]))
                lines += [t("digests.overdue_item", name=names.get(p, "?"), count=n) for p, n in ranked[:LIST_LIMIT]]
            lines += self._top_lines(report.sums, names, t)
            newcomers = self._newcomers(members)
            lines += self._newcomer_lines(newcomers, reads.checklists.get(t.language, {}), t)
            keyboard = None
            if quiet:
                button = {
                    "text": t("digests.nudge_button", count=len(quiet)),
                    "callback_data": DigestCallback(action="nudge").pack(),
                }
                keyboard = {"inline_keyboard": [[button]]}
            text = "\n".join(lines).rstrip("\n")
            drawings.append(_Drawing(text, keyboard, chart, t("digests.chart_caption")))
        return drawings

    async def _read(self, wanted: Sequence[_Wanted], until: date, charts: _Charts) -> _Reads:
        """What the wanted digests show, read for all their teams at once. The trends are read first, so that the
        charts are being drawn while the rest is read."""
        leads = {one.lead.id: one.lead for one in wanted}
        paths = {lead.tree_path for lead in leads.values()}
        everyone = await self._uow.digests.teams(paths)
        leads_at: dict[str, list[int]] = {}
        for lead in leads.values():
            leads_at.setdefault(lead.tree_path, []).append(lead.id)
        teams: dict[int, list[TeamMember]] = {lead_id: [] for lead_id in leads}
        for partner in everyone:  # a team is its lead's subtree: the partners whose path starts with the lead's
            path = partner.tree_path
            at = path.find("/")
            while at >= 0:
                for lead_id in leads_at.get(path[: at + 1], ()):
                    teams[lead_id].append(partner)
                at = path.find("/", at + 1)
        windows: dict[tuple[date, date], int] = {}
        for period in self._periods({one.name for one in wanted}, until):
            windows.setdefault((period.first, period.last), len(windows))
        rollups = self._uow.rollups
        first = until - timedelta(days=TREND_DAYS - 1)
        members = {lead_id: [p.id for p in team] for lead_id, team in teams.items()}
        daily = await rollups.team_days(first, until, members)
        drawn = []
        for one in wanted:
            t = one.t
            trend = self._trend(daily.get(one.lead.id, {}), until)
            labels = (t("behaviour.chart.shares"), t("behaviour.chart.followups"), t("behaviour.chart.orders"))
            drawn.append(charts.draw(trend_chart(trend, t("digests.chart_title"), labels)))
        summed = await rollups.window_sums(list(windows), [p.id for p in everyone])
        # the windows end on `until`: who acted in them acted last there; the others' last action is older
        last = dict(summed.last_action)
        last.update(await rollups.last_action_days_of(until, [p.id for p in everyone if p.id not in last]))
        overdue = await LeadService(self._uow, self._ctx).overdue_of([p.id for p in everyone])
        newcomers: dict[str, set[int]] = {}
        for one in wanted:
            team = teams[one.lead.id]
            found = self._newcomers([m for m in team if m.id != one.lead.id])
            newcomers.setdefault(one.t.language, set()).update(m.id for m in found)
        # a checklist needs the whole partner (their timezone, their progress): only newcomers are read as such
        partners = await self._uow.partners.by_ids(set().union(*newcomers.values()))
        playbooks = PlaybookService(self._uow, self._ctx)
        checklists = {
            language: await playbooks.checklists([partners[p] for p in sorted(ids)], language, ONBOARDING)
            for language, ids in newcomers.items()
        }
        return _Reads(teams, windows, summed.sums, last, overdue, checklists, drawn)

    @staticmethod
    def _periods(names: set[PeriodName], until: date) -> list[Period]:
        """The periods a digest compares: each name's period and the one before, then the last 7 and 30 days."""
        found = []
        for name in sorted(names):
            period = period_for(name, until)
            found += [period, period.previous()]
        return [*found, period_for(PeriodName.DAYS_7, until), period_for(PeriodName.DAYS_30, until)]

    def _report(self, reads: _Reads, team: list[TeamMember], name: PeriodName, until: date) -> _TeamReport:
        """The team's behaviour report, as `BehaviourService.report` computes what a digest shows of it."""
        behaviour_service = BehaviourService(self._uow, self._ctx)
        ids = [p.id for p in team]

        def sums(period: Period) -> dict[int, DayCounts]:
            at = reads.windows[(period.first, period.last)]
            return {p: reads.sums[p][at] for p in ids if p in reads.sums}

        def metrics(period: Period) -> Behaviour:
            _, end = behaviour_service.day_range(period.last)
            return behaviour(sums(period), sum(1 for p in team if p.joined_at < end))

        period = period_for(name, until)
        return _TeamReport(
            period=period,
            now=metrics(period),
            before=metrics(period.previous()),
            last_7d=metrics(period_for(PeriodName.DAYS_7, until)),
            last_30d=metrics(period_for(PeriodName.DAYS_30, until)),
            sums=sums(period),
        )

    @staticmethod
    def _trend(days: dict[date, DayCounts], until: date) -> dict[date, DayCounts]:
        """A team's counts per day over the trend's 14 days, every day present (zeros for a day without a row)."""
        first = until - timedelta(days=TREND_DAYS - 1)
        return {day: days.get(day, DayCounts()) for day in (first + timedelta(days=i) for i in range(TREND_DAYS))}

    @staticmethod
    def _title(report: _TeamReport, kind: str, members: int, t: Texts) -> str:
        period = report.period
        if kind == WEEKLY:
            return t(
                "digests.weekly_title", first=period.first.isoformat(), last=period.last.isoformat(), members=members
            )
        if kind == DAILY:
            return t("digests.daily_title", day=period.last.isoformat(), members=members)
        return t("digests.live_title", members=members)

    @staticmethod
    def _dormant_lines(quiet: Sequence[_Member], last: dict[int, date], t: Texts) -> list[str]:
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

    @staticmethod
    def _top_lines(sums: dict[int, DayCounts], names: dict[int, str], t: Texts) -> list[str]:
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

    def _newcomers(self, members: list[TeamMember]) -> list[TeamMember]:
        """The members who joined in the last 7 days, the latest 10 of them."""
        since = self._ctx.clock.now() - timedelta(days=NEW_MEMBER_DAYS)
        return [m for m in members if m.joined_at >= since][-LIST_LIMIT:]

    @staticmethod
    def _newcomer_lines(newcomers: list[TeamMember], checklists: dict[int, Checklist], t: Texts) -> list[str]:
        if not newcomers:
            return []
        lines = [t("digests.new_title")]
        for member in newcomers:
            checklist = checklists.get(member.id)
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
