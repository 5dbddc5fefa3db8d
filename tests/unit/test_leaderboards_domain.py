"""Tier 1: points rules and caps, board keys and period boundaries across time zones and DST, folding events,
competition ranking with ties, standings and gaps, /rank's arguments, and rank-change decisions."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.errors import UsageError
from bot.domain.leaderboards import (
    Entry,
    FoldEvent,
    Metric,
    Period,
    RankArgs,
    Scope,
    Standing,
    board_key,
    board_period_end,
    cap_key,
    fold,
    local_day,
    midnight,
    parse_rank_args,
    period_end,
    period_start,
    previous_start,
    rank_change,
    ranked,
    ranks_by_score,
    standing_among,
    with_ranks,
)
from bot.domain.points import PointsError, capped, parse_points
from bot.domain.schedule import SettingChange, parse_setting
from bot.services.leaderboards import load_points

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
RULES = parse_points(
    """
gmv_currency: CNY
rules:
  shared: {points: 1, daily_cap: 3}
  lead_added: {points: 3}
  points_earned: {points: payload, daily_cap: 10}
"""
)


def test_the_shipped_points_file_is_valid() -> None:
    rules = load_points()
    assert rules.rules["shared"].daily_cap == 10
    assert rules.earned("order_attributed", {}) == 10


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("gmv_currency: CNY\nrules: {sharde: {points: 1}}", "unknown event types: sharde"),
        ("gmv_currency: CNY\nrules: {shared: {points: -1}}", "rules.shared.points"),
        ("gmv_currency: CNY\nrules: {shared: {points: 1, cap: 3}}", "unknown field"),
        ("gmv_currency: XYZ\nrules: {}", "unknown currency 'XYZ'"),
        ("gmv_currency: CNY\nrules: {shared: {points: lots}}", "rules.shared.points"),
        ("- a list", "expected a mapping"),
    ],
)
def test_bad_points_files_are_refused(text: str, problem: str) -> None:
    with pytest.raises(PointsError) as error:
        parse_points(text, "points.yaml")
    assert problem in str(error.value)
    assert str(error.value).startswith("points.yaml: ")


@pytest.mark.parametrize(
    ("event_type", "payload", "points"),
    [
        ("shared", {}, 1),
        ("lead_added", {}, 3),
        ("points_earned", {"points": 7}, 7),
        ("points_earned", {"points": -5}, 0),
        ("points_earned", {"points": True}, 0),
        ("points_earned", {}, 0),
        ("link_clicked", {}, 0),
    ],
)
def test_points_per_event(event_type: str, payload: dict[str, object], points: int) -> None:
    assert RULES.earned(event_type, payload) == points


@pytest.mark.parametrize(
    ("points", "cap", "earned", "added"),
    [(1, None, 100, 1), (1, 3, 0, 1), (1, 3, 2, 1), (1, 3, 3, 0), (5, 3, 1, 2), (5, 10, 12, 0)],
)
def test_caps(points: int, cap: int | None, earned: int, added: int) -> None:
    assert capped(points, cap, earned) == added


@given(st.lists(st.integers(min_value=0, max_value=20), max_size=30), st.integers(min_value=1, max_value=50))
def test_capped_points_never_exceed_the_cap(events: list[int], cap: int) -> None:
    total = 0
    for points in events:
        total += capped(points, cap, total)
    assert total == min(cap, sum(events))


@pytest.mark.parametrize(
    ("period", "day", "start", "end"),
    [
        (Period.TODAY, date(2026, 11, 25), date(2026, 11, 25), date(2026, 11, 26)),
        (Period.WEEK, date(2026, 11, 25), date(2026, 11, 23), date(2026, 11, 30)),
        (Period.WEEK, date(2026, 11, 23), date(2026, 11, 23), date(2026, 11, 30)),
        (Period.WEEK, date(2026, 11, 29), date(2026, 11, 23), date(2026, 11, 30)),
        (Period.WEEK, date(2027, 1, 1), date(2026, 12, 28), date(2027, 1, 4)),
        (Period.MONTH, date(2026, 12, 31), date(2026, 12, 1), date(2027, 1, 1)),
        (Period.MONTH, date(2028, 2, 29), date(2028, 2, 1), date(2028, 3, 1)),
    ],
)
def test_period_boundaries(period: Period, day: date, start: date, end: date) -> None:
    assert period_start(period, day) == start
    assert period_end(period, start) == end
    assert board_period_end(board_key(Metric.POINTS, period, start)) == end


@pytest.mark.parametrize(
    ("period", "start", "before"),
    [
        (Period.WEEK, date(2026, 11, 30), date(2026, 11, 23)),
        (Period.MONTH, date(2026, 12, 1), date(2026, 11, 1)),
        (Period.MONTH, date(2027, 1, 1), date(2026, 12, 1)),
    ],
)
def test_previous_period(period: Period, start: date, before: date) -> None:
    assert previous_start(period, start) == before


@pytest.mark.parametrize(
    ("moment", "zone", "day"),
    [
        # 23:30 UTC on Sunday is already Monday in Shanghai: the event counts for the new week there.
        (datetime(2026, 11, 29, 16, 30, tzinfo=UTC), SHANGHAI, date(2026, 11, 30)),
        (datetime(2026, 11, 29, 15, 59, tzinfo=UTC), SHANGHAI, date(2026, 11, 29)),
        # Around New York's DST change (2026-11-01 02:00 EDT -> 01:00 EST) local days stay whole.
        (datetime(2026, 11, 1, 4, 30, tzinfo=UTC), NEW_YORK, date(2026, 11, 1)),
        (datetime(2026, 11, 2, 4, 59, tzinfo=UTC), NEW_YORK, date(2026, 11, 1)),
        (datetime(2026, 11, 2, 5, 0, tzinfo=UTC), NEW_YORK, date(2026, 11, 2)),
        (datetime(2026, 3, 8, 4, 59, tzinfo=UTC), NEW_YORK, date(2026, 3, 7)),
        (datetime(2026, 3, 8, 5, 0, tzinfo=UTC), NEW_YORK, date(2026, 3, 8)),
    ],
)
def test_events_fall_on_the_deployments_local_day(moment: datetime, zone: ZoneInfo, day: date) -> None:
    assert local_day(moment, zone) == day


def hours_between(first: date, second: date, zone: ZoneInfo) -> float:
    return (midnight(second, zone).astimezone(UTC) - midnight(first, zone).astimezone(UTC)).total_seconds() / 3600


def test_a_dst_day_is_23_or_25_hours_long() -> None:
    assert hours_between(date(2026, 11, 1), date(2026, 11, 2), NEW_YORK) == 25
    assert hours_between(date(2026, 3, 8), date(2026, 3, 9), NEW_YORK) == 23


def event(id: int, type: str, at: datetime, partner: int = 1, **payload: object) -> FoldEvent:
    return FoldEvent(id, partner, type, payload, at)


def test_fold_adds_to_every_period_and_applies_caps() -> None:
    sunday_night = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)  # Sunday 23:00 in Shanghai
    monday = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
    events = [event(n, "shared", sunday_night) for n in range(1, 6)] + [
        event(6, "shared", monday),
        event(7, "order_attributed", monday, amount_minor=500, currency="CNY"),
        event(8, "order_attributed", monday, amount_minor=900, currency="USD"),
    ]
    increments = fold(events, RULES, SHANGHAI, {})
    assert increments[(board_key(Metric.SHARES, Period.WEEK, date(2026, 11, 23)), 1)] == 5
    assert increments[(board_key(Metric.POINTS, Period.WEEK, date(2026, 11, 23)), 1)] == 3  # capped at 3 a day
    assert increments[(board_key(Metric.POINTS, Period.TODAY, date(2026, 11, 30)), 1)] == 1
    assert increments[(board_key(Metric.ORDERS, Period.MONTH, date(2026, 11, 1)), 1)] == 2
    assert increments[(board_key(Metric.GMV, Period.MONTH, date(2026, 11, 1)), 1)] == 500  # USD is not CNY GMV
    assert increments[(cap_key("shared", date(2026, 11, 29)), 1)] == 3
    # Points already earned that day (an earlier run) count against the cap.
    again = fold([event(9, "shared", monday)], RULES, SHANGHAI, {(cap_key("shared", date(2026, 11, 30)), 1): 3})
    assert (board_key(Metric.POINTS, Period.WEEK, date(2026, 11, 30)), 1) not in again
    assert again[(board_key(Metric.SHARES, Period.WEEK, date(2026, 11, 30)), 1)] == 1


@pytest.mark.parametrize(
    ("rows", "top"),
    [
        ([], []),
        ([(5, 10), (3, 10), (4, 7), (1, 0)], [Entry(1, 3, 10), Entry(1, 5, 10), Entry(3, 4, 7)]),
        ([(1, 1), (2, 2), (3, 3)], [Entry(1, 3, 3), Entry(2, 2, 2), Entry(3, 1, 1)]),
        ([(n, 1) for n in range(15, 0, -1)], [Entry(1, n, 1) for n in range(1, 11)]),
    ],
)
def test_ranking_with_ties(rows: list[tuple[int, int]], top: list[Entry]) -> None:
    assert ranked(rows) == top
    assert with_ranks([(e.partner_id, e.score) for e in top]) == top


@given(st.dictionaries(st.integers(1, 40), st.integers(0, 6), min_size=1))
def test_standing_is_one_plus_the_higher_scores(scores: dict[int, int]) -> None:
    for partner, score in scores.items():
        standing = standing_among(scores, partner)
        assert standing.rank == 1 + sum(1 for s in scores.values() if s > score)
        if standing.next_score is not None:
            assert standing.next_score == min(s for s in scores.values() if s > score)
            assert standing.next_rank is not None and standing.next_rank < standing.rank
            assert standing.gap == standing.next_score - score
        top = {e.partner_id: e.rank for e in ranked(scores.items(), limit=100)}
        if score > 0:
            assert top[partner] == standing.rank


@pytest.mark.parametrize(
    ("scores", "partner", "standing"),
    [
        ({1: 12, 2: 3, 3: 3, 4: 2}, 4, Standing(4, 2, 2, 3)),
        ({1: 12, 2: 3, 3: 3, 4: 2}, 2, Standing(2, 3, 1, 12)),
        ({1: 12}, 1, Standing(1, 12)),
        ({1: 12}, 9, Standing(2, 0, 1, 12)),
        ({}, 9, Standing(1, 0)),
    ],
)
def test_standing_and_gap(scores: dict[int, int], partner: int, standing: Standing) -> None:
    assert standing_among(scores, partner) == standing


@pytest.mark.parametrize(
    ("args", "parsed"),
    [
        (None, RankArgs()),
        ("", RankArgs()),
        ("today", RankArgs(period=Period.TODAY)),
        ("GMV team month", RankArgs(Period.MONTH, Scope.TEAM, Metric.GMV)),
        ("shares network sprint", RankArgs(Period.SPRINT, Scope.NETWORK, Metric.SHARES)),
    ],
)
def test_rank_arguments(args: str | None, parsed: RankArgs) -> None:
    assert parse_rank_args(args) == parsed


@pytest.mark.parametrize("args", ["week month", "team team", "points gmv", "top", "week 10"])
def test_bad_rank_arguments(args: str) -> None:
    with pytest.raises(UsageError):
        parse_rank_args(args)
    with pytest.raises(UsageError):
        parse_rank_args("sprint", sprints=False)


@pytest.mark.parametrize(
    ("before", "now", "kind"),
    [(None, 3, "top10"), (None, 11, None), (12, 10, "top10"), (4, 6, "overtaken"), (6, 4, None), (15, 20, "overtaken")],
)
def test_rank_changes(before: int | None, now: int, kind: str | None) -> None:
    change = rank_change(before, now)
    assert (change.kind if change else None) == kind


@pytest.mark.parametrize(("args", "on"), [("ranks off", False), ("ranks on", True), ("RANKS Off", False)])
def test_settings_ranks_switch(args: str, on: bool) -> None:
    assert parse_setting(args) == SettingChange(rank_pushes=on)


@pytest.mark.parametrize("args", ["ranks", "ranks maybe"])
def test_settings_ranks_switch_refuses_other_values(args: str) -> None:
    with pytest.raises(UsageError):
        parse_setting(args)


@given(st.dictionaries(st.integers(1, 60), st.integers(1, 9), min_size=1))
def test_ranks_from_score_counts_match_the_partners_ranks(scores: dict[int, int]) -> None:
    counts: dict[int, int] = {}
    for score in scores.values():
        counts[score] = counts.get(score, 0) + 1
    rank_of = ranks_by_score(counts.items())
    for partner in scores:
        assert rank_of[scores[partner]] == standing_among(scores, partner).rank
