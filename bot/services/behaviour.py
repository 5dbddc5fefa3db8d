"""The behaviour dashboard's numbers: keeping the daily rollups current, and reports over them.

Rollups (`daily_rollups`, bot/domain/behaviour.py for the definitions) are recomputed a day at a time: the
`rollups:refresh` job redoes today and yesterday every few minutes (yesterday, so that late events and orders
settled after midnight still land), and `python run_bot.py rollups rebuild` redoes any range from the sources.
Reports read rollups only, never raw events, so /stats costs the same with ten million events as with ten.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Protocol

from bot.domain.behaviour import (
    Behaviour,
    DayCounts,
    Period,
    PeriodName,
    Ratio,
    activation,
    period_for,
    trend,
)
from bot.domain.money import Money, format_money
from bot.i18n import Texts
from bot.media.charts import Series, render_trend
from bot.services.acting import require_admin
from bot.services.context import ServiceContext
from bot.services.ledger import SettlementService
from bot.services.metrics import ACTION_EVENTS
from bot.services.views import PartnerView
from storage.uow import UnitOfWork

STARTER_BADGE = "starter_7day"
"""Awarded on the last day of the 7-day start (playbooks/onboarding_7day.yaml): completing it."""


@dataclass(frozen=True, slots=True)
class BehaviourReport:
    """A period's metrics next to the previous period's, with the fixed 7- and 30-day windows the catalogue names."""

    period: Period
    currency: str
    """The plan's currency: what GMV and commission (minor units) are counted in."""
    now: Behaviour
    before: Behaviour
    last_7d: Behaviour
    last_30d: Behaviour
    new_partners: int
    activation: Ratio
    segments: dict[str | None, int]
    slipped: int
    """Moves to a lower activity segment in the period."""
    rose: int
    trend: dict[date, DayCounts]
    """The last 14 days, every day present (zeros where nothing happened)."""


SEGMENT_ORDER = {"low": 0, "mid": 1, "high": 2}


class BehaviourService:
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    def today(self, now: datetime) -> date:
        return now.astimezone(self._ctx.timezone).date()

    def day_range(self, day: date) -> tuple[datetime, datetime]:
        """The UTC instants where `day` of the deployment's calendar starts and the next one starts."""
        zone = self._ctx.timezone
        start = datetime.combine(day, time(0), zone)
        end = datetime.combine(day + timedelta(days=1), time(0), zone)
        return start, end

    # --- rollups ---------------------------------------------------------------------------------------------

    async def recompute(self, day: date) -> int:
        """Recompute one day's rollups; returns how many partners have a row that day."""
        start, end = self.day_range(day)
        return await self._uow.rollups.recompute_day(day, start, end, tuple(ACTION_EVENTS))

    async def first_day(self) -> date | None:
        """The day of the first event, order or commission: where a full rebuild starts (None: nothing yet)."""
        first = await self._uow.rollups.first_activity()
        return None if first is None else first.astimezone(self._ctx.timezone).date()

    # --- reports ---------------------------------------------------------------------------------------------

    async def network(self, actor: PartnerView, period: PeriodName) -> BehaviourReport:
        """/stats: the whole network (admins)."""
        require_admin(actor)
        return await self.report(period, None)

    async def report(self, name: PeriodName, team: str | None, today: date | None = None) -> BehaviourReport:
        """The report over everybody, or over a `team`: a team lead's tree path (their referral subtree); for the
        period ending `today` (default: the deployment's today; a digest reports on the days before)."""
        now = self._ctx.clock.now()
        if today is None:
            today = self.today(now)
        period = period_for(name, today)
        rollups = self._uow.rollups
        start, _ = self.day_range(period.first)
        _, end = self.day_range(period.last)
        joined = await rollups.joined_between(start, end, team)
        new_ids = [p for p, _ in joined]
        completed = await rollups.badge_holders(STARTER_BADGE, new_ids)
        moves = await rollups.segment_moves(start, end, team)
        slipped = sum(n for (a, b), n in moves.items() if SEGMENT_ORDER.get(b or "", 0) < SEGMENT_ORDER.get(a or "", 0))
        rose = sum(n for (a, b), n in moves.items() if SEGMENT_ORDER.get(b or "", 0) > SEGMENT_ORDER.get(a or "", 0))
        first_trend = today - timedelta(days=13)
        daily = await rollups.per_day(first_trend, today, team)
        _, plan = await SettlementService(self._uow, self._ctx).plan_for(now)
        return BehaviourReport(
            period=period,
            currency=plan.currency,
            now=await self._behaviour(period, team),
            before=await self._behaviour(period.previous(), team),
            last_7d=await self._behaviour(period_for(PeriodName.DAYS_7, today), team),
            last_30d=await self._behaviour(period_for(PeriodName.DAYS_30, today), team),
            new_partners=len(new_ids),
            activation=activation(new_ids, completed),
            segments=await rollups.segment_mix(team),
            slipped=slipped,
            rose=rose,
            trend={
                first_trend + timedelta(days=i): daily.get(first_trend + timedelta(days=i), DayCounts())
                for i in range(14)
            },
        )

    async def _behaviour(self, period: Period, team: str | None) -> Behaviour:
        _, end = self.day_range(period.last)
        sums = await self._uow.rollups.totals(period.first, period.last, team)
        partners = await self._uow.rollups.partner_count(end, team)
        return Behaviour(partners, sums.active, sums.shared, sums.followed_up, sums.counts)


async def trend_chart(trend: dict[date, DayCounts], title: str, labels: tuple[str, str, str]) -> bytes:
    """The 14-day trend of shares, follow-ups and orders as a PNG, drawn in a worker process."""
    days = sorted(trend)
    shares, followups, orders = labels
    series = [
        Series(shares, tuple(trend[d].shares for d in days)),
        Series(followups, tuple(trend[d].followups for d in days)),
        Series(orders, tuple(trend[d].orders for d in days)),
    ]
    return await render_trend(title, days, series)


def render_report(report: BehaviourReport, t: Texts) -> str:
    """The report as chat text in `t`'s language."""
    c = report.now.counts
    segments = report.segments
    lines = [
        t(
            "behaviour.title",
            period=t(f"behaviour.period.{report.period.name.value}"),
            first=report.period.first.isoformat(),
            last=report.period.last.isoformat(),
        ),
        *behaviour_lines(report, t),
        "",
        t("behaviour.funnel_title"),
        t(
            "behaviour.funnel",
            content_sent=c.content_sent,
            shares=c.shares,
            clicks=c.clicks,
            leads=c.leads,
            quotes=c.quotes,
            orders=c.orders,
            gmv=format_money(Money(c.gmv_minor, report.currency), t.language),
        ),
        t("behaviour.commission", commission=format_money(Money(c.commission_minor, report.currency), t.language)),
        t("behaviour.growth", new=report.new_partners, activation=report.activation.percent()),
        t(
            "behaviour.segments",
            high=segments.get("high", 0),
            mid=segments.get("mid", 0),
            low=segments.get("low", 0),
            unrated=segments.get(None, 0),
            slipped=report.slipped,
            rose=report.rose,
        ),
    ]
    return "\n".join(lines)


class BehaviourWindows(Protocol):
    """What `behaviour_lines` reads: a report, or a team digest's windows computed without one."""

    @property
    def now(self) -> Behaviour: ...
    @property
    def before(self) -> Behaviour: ...
    @property
    def last_7d(self) -> Behaviour: ...
    @property
    def last_30d(self) -> Behaviour: ...


def behaviour_lines(report: BehaviourWindows, t: Texts) -> list[str]:
    """The seed's four behaviour metrics, each against the previous period with an arrow."""
    now, before = report.now, report.before
    return [
        t(
            "behaviour.shared",
            now=now.shared,
            partners=now.partners,
            arrow=trend(now.shared, before.shared).value,
            before=before.shared,
        ),
        t(
            "behaviour.average",
            all=now.avg_all.tenths(),
            active=now.avg_active.tenths(),
            arrow=trend(now.avg_all.value, before.avg_all.value).value,
            before=before.avg_all.tenths(),
        ),
        t(
            "behaviour.followed_up",
            now=now.followed_up,
            arrow=trend(now.followed_up, before.followed_up).value,
            before=before.followed_up,
            week=report.last_7d.followed_up,
        ),
        t(
            "behaviour.revisits",
            rate7=report.last_7d.revisit_rate.percent(),
            revisits7=report.last_7d.counts.revisits,
            due7=report.last_7d.counts.leads_due,
            rate30=report.last_30d.revisit_rate.percent(),
            revisits30=report.last_30d.counts.revisits,
            due30=report.last_30d.counts.leads_due,
        ),
    ]
