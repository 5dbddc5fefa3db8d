"""The read-only web dashboard (issue 8 §4): one-time login links from /dashboard, sessions, and the pages' data.

Who sees what: an admin (stored role or ADMIN_IDS) sees the whole network; a team lead sees their team, their
referral subtree with themselves included, and every query below takes that scope. The viewer's role is read again
on every request, so a lead whose role is revoked loses the dashboard at once. Delivery health (the outbox) is the
network's plumbing, not a team's: admins only.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.domain.behaviour import DayCounts, PeriodName, period_for, total
from bot.domain.dashboard import (
    LINK_TTL,
    SESSION_TTL,
    TokenProblem,
    hash_id,
    page_window,
    session_cookie,
    session_id_of,
    sign_login,
    verify_login,
)
from bot.domain.errors import UserFacingError
from bot.domain.roles import Role, has_at_least
from bot.services.acting import language_of
from bot.services.behaviour import BehaviourReport, BehaviourService, trend_chart
from bot.services.context import ServiceContext
from bot.services.ledger import SettlementService
from bot.services.metrics import ACTION_EVENTS
from bot.services.notify import partner_zone
from bot.services.partners import PartnerService, display_name
from bot.services.sprints import SprintLine, SprintService, sprint_line
from bot.services.stats import DeliveryReport, StatsService
from bot.services.streaks import StreakService
from storage.models import Partner
from storage.uow import UnitOfWork

PER_PAGE = 25
CONTENT_LIMIT = 50
STANDINGS_SHOWN = 50
DETAIL_WINDOW_DAYS = 30


@dataclass(frozen=True, slots=True)
class LoginLink:
    url: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class OpenedSession:
    cookie: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking, and what they may see: `team` is None for an admin (everybody), else the lead's tree path."""

    partner_id: int
    name: str
    role: Role
    language: str
    team: str | None
    zone: ZoneInfo
    """The viewer's own time zone: times on the pages are shown in it."""

    @property
    def is_admin(self) -> bool:
        return self.team is None


@dataclass(frozen=True, slots=True)
class Overview:
    report: BehaviourReport
    chart_png: bytes


@dataclass(frozen=True, slots=True)
class PartnerRow:
    id: int
    name: str
    username: str | None
    invite_code: str
    role: str
    segment: str | None
    level: str
    streak: int
    last_action: datetime | None


@dataclass(frozen=True, slots=True)
class PartnersPage:
    rows: tuple[PartnerRow, ...]
    query: str
    page: int
    pages: int
    total: int


@dataclass(frozen=True, slots=True)
class PartnerDetail:
    row: PartnerRow
    level_title: str
    joined_at: datetime
    badges: tuple[str, ...]
    week: DayCounts
    month: DayCounts
    currency: str


@dataclass(frozen=True, slots=True)
class ContentRow:
    id: int
    title: str
    shares: int
    clicks: int


@dataclass(frozen=True, slots=True)
class ContentPage:
    first: date
    last: date
    rows: tuple[ContentRow, ...]


@dataclass(frozen=True, slots=True)
class StandingRow:
    rank: int
    name: str
    value: int


@dataclass(frozen=True, slots=True)
class SprintStandings:
    sprint: SprintLine | None
    rows: tuple[StandingRow, ...]
    participants: int


class DashboardService:
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    # --- access ----------------------------------------------------------------------------------------------

    async def login_link(self, partner_id: int, role: Role) -> LoginLink:
        """/dashboard: a signed link that opens a session once, within 10 minutes (team leads and admins)."""
        if not has_at_least(role, Role.LEAD):
            raise UserFacingError("denied.lead")
        now = self._ctx.clock.now()
        token = sign_login(self._ctx.dashboard_secret, partner_id, secrets.token_urlsafe(16), now)
        url = f"{self._ctx.public_base_url}/dashboard/login?token={token}"
        return LoginLink(url=url, expires_at=now + LINK_TTL)

    async def open_session(self, token: str | None) -> OpenedSession | TokenProblem | None:
        """Exchange a login token for a session: the cookie to set; a TokenProblem for a bad token; None for a
        token used before or whose partner may no longer see the dashboard."""
        now = self._ctx.clock.now()
        check = verify_login(self._ctx.dashboard_secret, token, now)
        if check.token is None:
            return check.problem
        claim = check.token
        await self._uow.dashboard.purge(now)
        if await self._viewer_of(claim.partner_id) is None:
            return None
        if not await self._uow.dashboard.use_token(claim.token_id, claim.partner_id, now, claim.expires_at):
            return None
        session_id = secrets.token_urlsafe(32)
        expires_at = now + SESSION_TTL
        await self._uow.dashboard.add_session(hash_id(session_id), claim.partner_id, now, expires_at)
        return OpenedSession(session_cookie(self._ctx.dashboard_secret, session_id), expires_at)

    async def viewer(self, cookie: str | None) -> Viewer | None:
        """The viewer of a session cookie: None without a valid, unexpired session of a lead or admin."""
        session_id = session_id_of(self._ctx.dashboard_secret, cookie)
        if session_id is None:
            return None
        row = await self._uow.dashboard.session(hash_id(session_id))
        if row is None or row.expires_at <= self._ctx.clock.now():
            return None
        return await self._viewer_of(row.partner_id)

    async def _viewer_of(self, partner_id: int) -> Viewer | None:
        partner = await self._uow.partners.get(partner_id)
        if partner is None:
            return None
        view = PartnerService(self._uow, self._ctx).view(partner)
        if not has_at_least(view.role, Role.LEAD):
            return None
        team = None if has_at_least(view.role, Role.ADMIN) else partner.tree_path
        language = language_of(self._ctx, partner)
        return Viewer(partner.id, display_name(partner), view.role, language, team, partner_zone(self._ctx, partner))

    # --- pages -----------------------------------------------------------------------------------------------

    async def overview(self, viewer: Viewer, period: PeriodName, chart_labels: tuple[str, str, str, str]) -> Overview:
        """The four behaviour metrics against the previous period, the funnel, segments and the 14-day trend."""
        report = await BehaviourService(self._uow, self._ctx).report(period, viewer.team)
        title, *series = chart_labels
        chart = await trend_chart(report.trend, title, (series[0], series[1], series[2]))
        return Overview(report, chart)

    async def partners(self, viewer: Viewer, query: str, page: int) -> PartnersPage:
        """The partners table: searchable by name, username or invite code; PER_PAGE a page."""
        query = query.strip()[:64]
        total_rows = await self._uow.dashboard.partners_count(viewer.team, query)
        shown, offset, pages = page_window(page, PER_PAGE, total_rows)
        found = await self._uow.dashboard.partners_page(viewer.team, query, offset, PER_PAGE)
        return PartnersPage(tuple(await self._rows(found)), query, shown, pages, total_rows)

    async def partner(self, viewer: Viewer, partner_id: int) -> PartnerDetail | None:
        """A partner's detail; None when they do not exist or are outside the viewer's team."""
        member = await self._uow.dashboard.partner_in(partner_id, viewer.team)
        if member is None:
            return None
        [row] = await self._rows([member])
        behaviour = BehaviourService(self._uow, self._ctx)
        today = behaviour.today(self._ctx.clock.now())
        first = today - timedelta(days=DETAIL_WINDOW_DAYS - 1)
        own = (await self._uow.rollups.daily_rows(first, today, member.tree_path)).get(member.id, {})
        week = total(c for d, c in own.items() if d > today - timedelta(days=7))
        _, plan = await SettlementService(self._uow, self._ctx).plan_for(self._ctx.clock.now())
        level = plan.levels.get(member.level)
        level_title = (level.title.zh if viewer.language == "zh" else level.title.en) if level else member.level
        badges = []
        for name in await self._uow.dashboard.badges(member.id):
            spec = plan.badges.get(name)
            if spec is not None and spec.title is not None:
                title = spec.title.zh if viewer.language == "zh" else spec.title.en
                badges.append(f"{spec.icon} {title}")
            else:
                badges.append(name)
        return PartnerDetail(
            row=row,
            level_title=level_title,
            joined_at=member.joined_at,
            badges=tuple(badges),
            week=week,
            month=total(own.values()),
            currency=plan.currency,
        )

    async def content(self, viewer: Viewer, period: PeriodName) -> ContentPage:
        """Shares and clicks per content item over the period (the viewer's team's only, for a lead)."""
        behaviour = BehaviourService(self._uow, self._ctx)
        days = period_for(period, behaviour.today(self._ctx.clock.now()))
        start, _ = behaviour.day_range(days.first)
        _, end = behaviour.day_range(days.last)
        rows = await self._uow.dashboard.content_counts(start, end, viewer.team, CONTENT_LIMIT)
        return ContentPage(days.first, days.last, tuple(ContentRow(*row) for row in rows))

    async def sprint(self, viewer: Viewer) -> SprintStandings:
        """The current sprint's standings: ranks over every participant; a lead sees their team's lines."""
        now = self._ctx.clock.now()
        sprints = SprintService(self._uow, self._ctx)
        window = await sprints.current_window(now)
        if window is None:
            return SprintStandings(None, (), 0)
        row = await self._uow.sprints.get(window[0])
        if row is None:
            return SprintStandings(None, (), 0)
        board = await sprints.board(row)
        values = await self._uow.sprints.values(row.metric, row.audience, row.starts_at, row.ends_at, row.currency)
        ranked = sorted(((v, p) for p, v in values.items() if v), key=lambda vp: (-vp[0], vp[1]))
        people = await self._uow.dashboard.partners([p for _, p in ranked], viewer.team)
        lines = [
            StandingRow(board.rank_of(value), display_name(people[pid]), value)
            for value, pid in ranked
            if pid in people
        ]
        return SprintStandings(sprint_line(row, now), tuple(lines[:STANDINGS_SHOWN]), board.participants)

    async def delivery(self, viewer: Viewer) -> DeliveryReport | None:
        """The outbox's health; None for a team lead (it is the whole network's)."""
        if not viewer.is_admin:
            return None
        return await StatsService(self._uow, self._ctx).delivery()

    async def _rows(self, partners: Sequence[Partner]) -> list[PartnerRow]:
        found = list(partners)
        ids = [p.id for p in found]
        streaks = await StreakService(self._uow, self._ctx).days_of(found)
        last = await self._uow.dashboard.last_actions(ids, ACTION_EVENTS)
        view = PartnerService(self._uow, self._ctx).view
        return [
            PartnerRow(
                id=p.id,
                name=display_name(p),
                username=p.username,
                invite_code=p.invite_code,
                role=view(p).role.value,
                segment=p.segment,
                level=p.level,
                streak=streaks.get(p.id, 0),
                last_action=last.get(p.id),
            )
            for p in found
        ]
