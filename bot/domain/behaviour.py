"""The behaviour dashboard's metric catalogue (issue 8 §1): what managers watch besides results. Pure.

Everything here is computed from *daily rollups*: one row of counts per partner per day (`DayCounts`), built from
the events, orders, ledger and prospect reminders by a scheduled job (bot/services/behaviour.py) and rebuildable
from them. Dashboards read rollups, never raw events.

Days are the deployment's calendar (TIMEZONE): a network-wide "today" needs one calendar, and a team lead's digest
compares members on the same days. A partner's own views keep showing their local time elsewhere.

The catalogue, for the record (`Period` = the days of the report, e.g. today, the last 7 days):
- **shared** – partners with at least one share (`shared` event) in the period: "how many partners shared today?";
- **avg shares** – shares in the period per partner in scope (`avg_all`), and per *active* partner (`avg_active`),
  active meaning at least one action (share, follow-up, new prospect, attributed order) in the period;
- **followed up** – partners with at least one follow-up record (`followed_up` event) in the period;
- **revisit rate** – prospects effectively revisited: revisits (follow-ups marked `revisit`, logged on a prospect
  whose reminder had come due or on a won deal) divided by prospect reminders that came due in the period;
- **funnel** – content sent → shared → clicks → leads → quotes → orders → GMV (net of refunds, in minor units of the
  plan's currency), and commission earned (commission lines less reversals, minor units);
- **new partners** – partners who joined in the period; **activation** – of the partners who joined in the period,
  those who completed the 7-day start (their `starter_7day` badge);
- **dormant** – partners whose last action is `DORMANT_DAYS` or more days ago (or who never acted and joined that long
  ago).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date, timedelta
from enum import StrEnum
from fractions import Fraction
from operator import add, attrgetter

from bot.domain.errors import UsageError

DORMANT_DAYS = 3


@dataclass(frozen=True, slots=True)
class DayCounts:
    """One partner's counts for one day (or summed over several days)."""

    content_sent: int = 0
    shares: int = 0
    clicks: int = 0
    leads: int = 0
    followups: int = 0
    revisits: int = 0
    leads_due: int = 0
    quotes: int = 0
    orders: int = 0
    gmv_minor: int = 0
    commission_minor: int = 0
    actions: int = 0
    """Shares, follow-ups, new prospects and attributed orders: what makes a partner active."""

    def __add__(self, other: DayCounts) -> DayCounts:
        return DayCounts(*map(add, _values(self), _values(other)))


COUNT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(DayCounts))
_values = attrgetter(*COUNT_FIELDS)
"""A `DayCounts` as the tuple of its counts, in field order."""


def total(counts: Iterable[DayCounts]) -> DayCounts:
    """The field-by-field sum of `counts` (a digest sums thousands of member-days: one pass per field, no
    intermediate `DayCounts`)."""
    columns = list(zip(*map(_values, counts), strict=True))
    return DayCounts(*map(sum, columns)) if columns else DayCounts()


# --- periods ---------------------------------------------------------------------------------------------------


class PeriodName(StrEnum):
    TODAY = "today"
    DAYS_7 = "7d"
    DAYS_30 = "30d"
    MONTH = "month"


@dataclass(frozen=True, slots=True)
class Period:
    """Days `first`..`last`, both included, in the deployment's calendar."""

    name: PeriodName
    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def previous(self) -> Period:
        """The period just before, of the same kind: yesterday, the 7 days before, the previous month."""
        if self.name is PeriodName.MONTH:
            last = self.first - timedelta(days=1)
            return Period(self.name, last.replace(day=1), last)
        return Period(self.name, self.first - timedelta(days=self.days), self.first - timedelta(days=1))


def parse_period(text: str | None, default: PeriodName = PeriodName.TODAY) -> PeriodName:
    """`today`, `7d`, `30d` or `month` (also their Chinese words); empty gives `default`."""
    word = (text or "").strip().lower()
    if not word:
        return default
    word = _PERIOD_WORDS.get(word, word)
    try:
        return PeriodName(word)
    except ValueError:
        raise UsageError("stats.usage") from None


_PERIOD_WORDS = {"今天": "today", "今日": "today", "7天": "7d", "30天": "30d", "本月": "month", "week": "7d"}


def period_for(name: PeriodName, today: date) -> Period:
    """The period of `name` that ends today (this month so far, for `month`)."""
    if name is PeriodName.TODAY:
        return Period(name, today, today)
    if name is PeriodName.MONTH:
        return Period(name, today.replace(day=1), today)
    days = 7 if name is PeriodName.DAYS_7 else 30
    return Period(name, today - timedelta(days=days - 1), today)


def month_days(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


# --- the metrics -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ratio:
    """A quotient kept exact; `None` when the denominator is 0 (shown as "–")."""

    num: int
    den: int

    @property
    def value(self) -> Fraction | None:
        return Fraction(self.num, self.den) if self.den else None

    def tenths(self) -> str:
        """One decimal, rounded half up: 7/3 → "2.3"."""
        if not self.den:
            return "–"
        scaled = (Fraction(self.num, self.den) * 10 + Fraction(1, 2)).__floor__()
        return f"{scaled // 10}.{scaled % 10}"

    def percent(self) -> str:
        """A whole percentage, rounded half up: 2/3 → "67%"."""
        if not self.den:
            return "–"
        return f"{(Fraction(self.num * 100, self.den) + Fraction(1, 2)).__floor__()}%"


@dataclass(frozen=True, slots=True)
class Behaviour:
    """The four behaviour metrics and the funnel of a set of partners over a period."""

    partners: int
    """Partners in scope (who had joined by the period's last day)."""
    active: int
    shared: int
    followed_up: int
    counts: DayCounts
    """The funnel: everything summed over the partners and days."""

    @property
    def avg_all(self) -> Ratio:
        return Ratio(self.counts.shares, self.partners)

    @property
    def avg_active(self) -> Ratio:
        return Ratio(self.counts.shares, self.active)

    @property
    def revisit_rate(self) -> Ratio:
        return Ratio(self.counts.revisits, self.counts.leads_due)


def behaviour(per_partner: Mapping[int, DayCounts], partners: int) -> Behaviour:
    """The metrics from each partner's counts summed over the period (partners without a row did nothing)."""
    rows = per_partner.values()
    return Behaviour(
        partners=partners,
        active=sum(1 for c in rows if c.actions > 0),
        shared=sum(1 for c in rows if c.shares > 0),
        followed_up=sum(1 for c in rows if c.followups > 0),
        counts=total(rows),
    )


class Trend(StrEnum):
    UP = "↑"
    DOWN = "↓"
    FLAT = "→"


def trend(now: Fraction | int | None, before: Fraction | int | None) -> Trend:
    """The arrow beside a metric compared with the previous period (no number before or now: flat)."""
    if now is None or before is None or now == before:
        return Trend.FLAT
    return Trend.UP if now > before else Trend.DOWN


def dormant(
    last_action: Mapping[int, date | None], joined: Mapping[int, date], today: date, days: int = DORMANT_DAYS
) -> list[int]:
    """Partners of `joined` with no action for `days` days or more: their last action (or, never having acted,
    their joining day) is at least `days` days before today. Sorted by how long, longest first, then id."""
    since: dict[int, date] = {}
    for partner_id, joined_on in joined.items():
        last = last_action.get(partner_id)
        since[partner_id] = last if last is not None else joined_on
    quiet = [p for p, day in since.items() if (today - day).days >= days]
    return sorted(quiet, key=lambda p: (since[p], p))


def activation(new_partners: Iterable[int], completed: Iterable[int]) -> Ratio:
    """The share of the period's new partners who completed the 7-day start."""
    new = set(new_partners)
    return Ratio(len(new & set(completed)), len(new))


PRECEDING = ("shares", "clicks", "leads", "followups", "quotes")
"""Behaviours whose link to later orders the member view ranks."""


def precedes_orders(
    days_by_partner: Mapping[int, Mapping[date, DayCounts]], window: int = 7
) -> list[tuple[str, Ratio]]:
    """Which behaviours precede orders: for each behaviour, of the partner-days with it, the share followed by an
    order of the same partner that day or within `window` days. Highest share first (ties: more days, then the
    order of `PRECEDING`); behaviours nobody did are left out."""
    hits = dict.fromkeys(PRECEDING, 0)
    seen = dict.fromkeys(PRECEDING, 0)
    for days in days_by_partner.values():
        order_days = sorted(d for d, c in days.items() if c.orders > 0)
        for day, counts in days.items():
            followed = any(0 <= (o - day).days <= window for o in order_days)
            for name in PRECEDING:
                if getattr(counts, name) > 0:
                    seen[name] += 1
                    hits[name] += followed
    ranked = [(name, Ratio(hits[name], seen[name])) for name in PRECEDING if seen[name]]
    return sorted(ranked, key=lambda item: (-(item[1].value or 0), -item[1].den, PRECEDING.index(item[0])))
