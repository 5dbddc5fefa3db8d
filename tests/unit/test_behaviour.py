"""Tier 1: the behaviour metric catalogue (bot/domain/behaviour.py) on hand-built counts with known answers."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.behaviour import (
    DayCounts,
    Period,
    PeriodName,
    Ratio,
    Trend,
    activation,
    behaviour,
    dormant,
    parse_period,
    period_for,
    precedes_orders,
    total,
    trend,
)
from bot.domain.errors import UsageError

TODAY = date(2026, 11, 25)


@pytest.mark.parametrize(
    ("name", "first", "last", "previous"),
    [
        (PeriodName.TODAY, date(2026, 11, 25), date(2026, 11, 25), (date(2026, 11, 24), date(2026, 11, 24))),
        (PeriodName.DAYS_7, date(2026, 11, 19), date(2026, 11, 25), (date(2026, 11, 12), date(2026, 11, 18))),
        (PeriodName.DAYS_30, date(2026, 10, 27), date(2026, 11, 25), (date(2026, 9, 27), date(2026, 10, 26))),
        (PeriodName.MONTH, date(2026, 11, 1), date(2026, 11, 25), (date(2026, 10, 1), date(2026, 10, 31))),
    ],
)
def test_periods_and_the_one_before(name: PeriodName, first: date, last: date, previous: tuple[date, date]) -> None:
    period = period_for(name, TODAY)
    assert (period.first, period.last) == (first, last)
    before = period.previous()
    assert (before.first, before.last) == previous
    assert before.name is name


def test_the_month_before_march_is_february() -> None:
    before = period_for(PeriodName.MONTH, date(2028, 3, 5)).previous()
    assert (before.first, before.last) == (date(2028, 2, 1), date(2028, 2, 29))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, PeriodName.TODAY),
        ("", PeriodName.TODAY),
        ("TODAY", PeriodName.TODAY),
        (" 7d ", PeriodName.DAYS_7),
        ("week", PeriodName.DAYS_7),
        ("30d", PeriodName.DAYS_30),
        ("month", PeriodName.MONTH),
        ("本月", PeriodName.MONTH),
        ("近7天", None),
        ("yesterday", None),
    ],
)
def test_parse_period(text: str | None, expected: PeriodName | None) -> None:
    if expected is None:
        with pytest.raises(UsageError):
            parse_period(text)
    else:
        assert parse_period(text) is expected


@given(st.text(max_size=40))
def test_any_argument_is_a_period_or_a_usage_error(text: str) -> None:
    keys = []
    try:
        parse_period(text)
    except UsageError as exc:
        keys.append(exc.key)
    assert keys in ([], ["stats.usage"])


@pytest.mark.parametrize(
    ("num", "den", "tenths", "percent"),
    [(3, 4, "0.8", "75%"), (7, 3, "2.3", "233%"), (0, 5, "0.0", "0%"), (1, 0, "–", "–"), (2, 3, "0.7", "67%")],
)
def test_ratio_rounds_half_up(num: int, den: int, tenths: str, percent: str) -> None:
    ratio = Ratio(num, den)
    assert (ratio.tenths(), ratio.percent()) == (tenths, percent)
    assert ratio.value == (Fraction(num, den) if den else None)


def test_four_metrics_and_funnel_from_a_hand_built_day() -> None:
    """Four partners: Bob shared 3 times and followed up twice (one revisit of one due prospect), Carol followed
    up, Alice's link was clicked (not an action), Dan did nothing."""
    counts = {
        1: DayCounts(clicks=1),
        2: DayCounts(content_sent=2, shares=3, leads=1, followups=2, revisits=1, leads_due=1, actions=6),
        3: DayCounts(followups=1, actions=1),
    }
    result = behaviour(counts, partners=4)
    assert (result.partners, result.active, result.shared, result.followed_up) == (4, 2, 1, 2)
    assert (result.avg_all.tenths(), result.avg_active.tenths()) == ("0.8", "1.5")
    assert result.revisit_rate.percent() == "100%"
    assert result.counts == DayCounts(
        content_sent=2, shares=3, clicks=1, leads=1, followups=3, revisits=1, leads_due=1, actions=7
    )


def test_nobody_in_scope_gives_dashes_not_errors() -> None:
    result = behaviour({}, partners=0)
    assert (result.avg_all.tenths(), result.avg_active.tenths(), result.revisit_rate.percent()) == ("–", "–", "–")


@given(st.lists(st.builds(DayCounts, *(st.integers(0, 50) for _ in range(12))), max_size=6))
def test_total_is_the_sum_of_each_field(rows: list[DayCounts]) -> None:
    summed = total(rows)
    assert summed.shares == sum(r.shares for r in rows)
    assert summed.gmv_minor == sum(r.gmv_minor for r in rows)
    assert total([summed, DayCounts()]) == summed


@pytest.mark.parametrize(
    ("now", "before", "arrow"),
    [(3, 1, Trend.UP), (1, 3, Trend.DOWN), (2, 2, Trend.FLAT), (None, 2, Trend.FLAT), (Fraction(1, 3), 0, Trend.UP)],
)
def test_trend_arrows(now: int | Fraction | None, before: int | None, arrow: Trend) -> None:
    assert trend(now, before) is arrow


def test_dormant_members_longest_quiet_first() -> None:
    joined = {1: date(2026, 11, 1), 2: date(2026, 11, 1), 3: date(2026, 11, 24), 4: date(2026, 11, 1)}
    last = {1: date(2026, 11, 25), 2: date(2026, 11, 22), 4: date(2026, 11, 10)}
    # 1 acted today; 2 three days ago (dormant); 3 joined yesterday and never acted (not yet); 4 two weeks ago
    assert dormant(last, joined, TODAY) == [4, 2]
    assert dormant(last, joined, TODAY, days=4) == [4]


def test_activation_counts_new_partners_who_completed() -> None:
    assert activation([1, 2, 3, 4], [2, 4, 9]).percent() == "50%"
    assert activation([], [1]).percent() == "–"


def test_period_days() -> None:
    assert Period(PeriodName.DAYS_30, date(2026, 10, 27), TODAY).days == 30


def test_behaviours_that_precede_orders_are_ranked() -> None:
    d = date(2026, 11, 1)
    days = {
        # follows up on day 1, orders on day 3; shares on day 1 and day 20 (no order after)
        1: {
            d: DayCounts(shares=1, followups=1),
            d.replace(day=3): DayCounts(orders=1),
            d.replace(day=20): DayCounts(shares=2),
        },
        # shares and quotes on day 10 and orders the same day
        2: {d.replace(day=10): DayCounts(shares=1, quotes=1, orders=1)},
        # clicks only, never an order
        3: {d.replace(day=5): DayCounts(clicks=4)},
    }
    ranked = precedes_orders(days)
    assert [(name, r.num, r.den) for name, r in ranked] == [
        ("followups", 1, 1),
        ("quotes", 1, 1),
        ("shares", 2, 3),
        ("clicks", 0, 1),
    ]
    assert precedes_orders(days, window=1)[0] == ("quotes", Ratio(1, 1))
    assert precedes_orders({}) == []
