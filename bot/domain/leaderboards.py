"""Leaderboards, pure: boards and their periods, what an event adds to which board, ranks, and /rank's arguments.

A board is one metric over one period, named by a key such as ``points:w:2026-11-23`` (metric, period letter,
the period's first day). Periods are days, weeks (Monday to Sunday) and months of ONE calendar, the
deployment's TIMEZONE: a network-wide board must start and end at the same instant for everybody, so partners'
own time zones do not move it (they only decide when pushes arrive).

Ranks are standard competition ranks: a partner's rank is 1 + the number of partners with a strictly higher
score, so equal scores share a rank and the next rank is skipped ("1, 2, 2, 4"). Lists are ordered by score,
highest first, then by partner id. A partner who is not on a board has 0 and ranks after every positive score.
Scores only grow within a board (every contribution is ≥ 0), which the Redis backend relies on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.errors import UsageError
from bot.domain.events import EventType
from bot.domain.points import PointsRules, capped

TOP = 10


class Metric(StrEnum):
    POINTS = "points"
    SHARES = "shares"
    ORDERS = "orders"
    GMV = "gmv"


class Period(StrEnum):
    TODAY = "today"
    WEEK = "week"
    MONTH = "month"
    SPRINT = "sprint"


class Scope(StrEnum):
    NETWORK = "network"
    TEAM = "team"


_LETTER = {Period.TODAY: "d", Period.WEEK: "w", Period.MONTH: "m"}
CALENDAR_PERIODS = (Period.TODAY, Period.WEEK, Period.MONTH)
FOLDED_TYPES = frozenset({EventType.SHARED.value, EventType.ORDER_ATTRIBUTED.value})
"""Event types that count for a metric besides points."""


@dataclass(frozen=True, slots=True)
class RankArgs:
    period: Period = Period.WEEK
    scope: Scope = Scope.NETWORK
    metric: Metric = Metric.POINTS


def parse_rank_args(args: str | None, *, sprints: bool = True) -> RankArgs:
    """`/rank [today|week|month|sprint] [network|team] [points|shares|orders|gmv]`, any order, each at most once."""
    found: dict[str, Any] = {}
    for word in (args or "").lower().split():
        for name, kind in (("period", Period), ("scope", Scope), ("metric", Metric)):
            if word in {member.value for member in kind}:
                if name in found or (word == Period.SPRINT and not sprints):
                    raise UsageError("leaderboards.usage")
                found[name] = kind(word)
                break
        else:
            raise UsageError("leaderboards.usage")
    return RankArgs(**found)


def period_start(period: Period, day: date) -> date:
    """The first day of the calendar period holding `day`."""
    if period is Period.TODAY:
        return day
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())
    if period is Period.MONTH:
        return day.replace(day=1)
    raise ValueError(f"{period} is not a calendar period")


def period_end(period: Period, start: date) -> date:
    """The first day after the period that starts on `start`."""
    if period is Period.TODAY:
        return start + timedelta(days=1)
    if period is Period.WEEK:
        return start + timedelta(days=7)
    if period is Period.MONTH:
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    raise ValueError(f"{period} is not a calendar period")


def previous_start(period: Period, start: date) -> date:
    """The first day of the period before the one that starts on `start`."""
    return period_start(period, start - timedelta(days=1))


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def midnight(day: date, zone: ZoneInfo) -> datetime:
    """The instant `day` begins in `zone` (a DST change at midnight moves it, not the day)."""
    return datetime.combine(day, time(0), tzinfo=zone)


def board_key(metric: Metric, period: Period, start: date) -> str:
    return f"{metric.value}:{_LETTER[period]}:{start.isoformat()}"


def cap_key(event_type: str, day: date) -> str:
    """The (internal) board of points earned from one event type on one day: what the daily caps read."""
    return f"cap:{event_type}:d:{day.isoformat()}"


def board_period_end(key: str) -> date:
    """The first day after the period of a board key (for expiry)."""
    _, letter, start = key.rsplit(":", 2)
    period = {v: k for k, v in _LETTER.items()}[letter]
    return period_end(period, date.fromisoformat(start))


@dataclass(frozen=True, slots=True)
class FoldEvent:
    id: int
    partner_id: int
    type: str
    payload: Mapping[str, Any]
    occurred_at: datetime


def metric_values(event: FoldEvent, rules: PointsRules) -> dict[Metric, int]:
    """What one event adds to each metric other than points (points need the day's caps: see `fold`)."""
    values: dict[Metric, int] = {}
    if event.type == EventType.SHARED:
        values[Metric.SHARES] = 1
    elif event.type == EventType.ORDER_ATTRIBUTED:
        values[Metric.ORDERS] = 1
        amount = event.payload.get("amount_minor")
        if event.payload.get("currency") == rules.gmv_currency and isinstance(amount, int) and amount > 0:
            values[Metric.GMV] = amount
    return values


def fold(
    events: Iterable[FoldEvent], rules: PointsRules, zone: ZoneInfo, earned_today: Mapping[tuple[str, int], int]
) -> dict[tuple[str, int], int]:
    """Increments per (board key, partner) for `events`, in id order. `earned_today` holds the points already
    earned per (cap key, partner); the increments include the cap boards' own, so the caps hold across runs."""
    increments: dict[tuple[str, int], int] = {}

    def add(key: str, partner: int, value: int) -> None:
        if value > 0:
            increments[(key, partner)] = increments.get((key, partner), 0) + value

    for event in sorted(events, key=lambda e: e.id):
        day = local_day(event.occurred_at, zone)
        values = metric_values(event, rules)
        points = rules.earned(event.type, event.payload)
        cap = rules.cap(event.type)
        if points and cap is not None:
            key = cap_key(event.type, day)
            so_far = earned_today.get((key, event.partner_id), 0) + increments.get((key, event.partner_id), 0)
            points = capped(points, cap, so_far)
            add(key, event.partner_id, points)
        if points:
            values[Metric.POINTS] = points
        for metric, value in values.items():
            for period in CALENDAR_PERIODS:
                add(board_key(metric, period, period_start(period, day)), event.partner_id, value)
    return increments


@dataclass(frozen=True, slots=True)
class Entry:
    rank: int
    partner_id: int
    score: int


@dataclass(frozen=True, slots=True)
class Standing:
    """A partner's place: `rank` 1 + the number of higher scores; `next_rank`/`next_score` the nearest better
    place (None at the top)."""

    rank: int
    score: int
    next_rank: int | None = None
    next_score: int | None = None

    @property
    def gap(self) -> int | None:
        return None if self.next_score is None else self.next_score - self.score


def standing_from(score: int | None, above: int, next_score: int | None, next_above: int) -> Standing:
    """A standing from the raw counts a backend reads: the partner's score (None: not on the board), how many
    scores are higher, the lowest higher score and how many are higher than that."""
    if next_score is None:
        return Standing(rank=above + 1, score=score or 0)
    return Standing(rank=above + 1, score=score or 0, next_rank=next_above + 1, next_score=next_score)


def ranked(rows: Iterable[tuple[int, int]], limit: int = TOP) -> list[Entry]:
    """The top `limit` of (partner, score) rows with positive scores, by score then partner id, with ranks."""
    ordered = sorted(((p, s) for p, s in rows if s > 0), key=lambda row: (-row[1], row[0]))
    entries: list[Entry] = []
    for index, (partner, score) in enumerate(ordered[:limit]):
        rank = entries[-1].rank if entries and entries[-1].score == score else index + 1
        entries.append(Entry(rank, partner, score))
    return entries


def standing_among(scores: Mapping[int, int], partner_id: int) -> Standing:
    """A partner's standing among `scores` (members without a score have 0)."""
    mine = scores.get(partner_id, 0)
    higher = [s for s in scores.values() if s > mine]
    if not higher:
        return Standing(rank=1, score=mine)
    nearest = min(higher)
    return standing_from(mine, len(higher), nearest, sum(1 for s in higher if s > nearest))


def with_ranks(rows: Sequence[tuple[int, int]]) -> list[Entry]:
    """Ranks for rows already ordered by score desc, partner id (a top list read from a backend)."""
    entries: list[Entry] = []
    for index, (partner, score) in enumerate(rows):
        rank = entries[-1].rank if entries and entries[-1].score == score else index + 1
        entries.append(Entry(rank, partner, score))
    return entries


def ranks_by_score(counts: Iterable[tuple[int, int]]) -> dict[int, int]:
    """The rank of each score of a board, from (score, how many partners have it)."""
    ranks: dict[int, int] = {}
    higher = 0
    for score, n in sorted(counts, reverse=True):
        ranks[score] = higher + 1
        higher += n
    return ranks


@dataclass(frozen=True, slots=True)
class RankChange:
    kind: str
    """overtaken | top10."""


def rank_change(previous: int | None, current: int) -> RankChange | None:
    """What to tell a partner whose rank moved from `previous` (None: not ranked before on this board)."""
    if current <= TOP and (previous is None or previous > TOP):
        return RankChange("top10")
    if previous is not None and current > previous:
        return RankChange("overtaken")
    return None
