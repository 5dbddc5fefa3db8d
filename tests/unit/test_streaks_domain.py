"""Tier 1: streaks over local days with freezes, which missed days a freeze covers, the at-risk decision and the
evening reminder window, as tables and hypothesis properties."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.streaks import (
    ReminderWindow,
    at_risk,
    days_to_freeze,
    freezes_left,
    streak_days,
)

TODAY = date(2026, 11, 25)


def days(*offsets: int) -> set[date]:
    """Days counted back from TODAY: 0 is today, 1 yesterday…"""
    return {TODAY - timedelta(days=n) for n in offsets}


@pytest.mark.parametrize(
    ("active", "frozen", "expected"),
    [
        (set(), set(), 0),
        (days(0), set(), 1),
        (days(0, 1, 2), set(), 3),
        (days(1, 2), set(), 2),  # today is not over: yesterday's streak is alive
        (days(2, 3), set(), 0),  # yesterday missed, not frozen: broken
        (days(0, 2, 3), set(), 1),
        (days(0, 2, 3), days(1), 3),  # a frozen day keeps the run without adding to it
        (days(2, 3), days(1), 2),
        (days(3), days(1, 2), 1),
        (set(), days(1, 2), 0),  # freezes alone are no streak
        (days(0, 1, 3, 4), days(2), 4),
        (days(0, 1, 3, 4), set(), 2),
    ],
)
def test_streak_days(active: set[date], frozen: set[date], expected: int) -> None:
    assert streak_days(active, frozen, TODAY) == expected


@pytest.mark.parametrize(
    ("active", "frozen", "expected"),
    [
        (set(), set(), False),  # no streak to lose
        (days(1), set(), True),
        (days(1, 2, 3), set(), True),
        (days(0, 1), set(), False),  # already active today
        (days(2), set(), False),  # broken yesterday
        (days(2), days(1), True),  # kept by a freeze yesterday
        (set(), days(1), False),
    ],
)
def test_at_risk(active: set[date], frozen: set[date], expected: bool) -> None:
    assert at_risk(active, frozen, TODAY) is expected


@pytest.mark.parametrize(
    ("active", "frozen", "per_month", "expected"),
    [
        (days(1), set(), 2, []),  # yesterday kept
        (days(2), set(), 2, sorted(days(1))),  # one missed day, covered
        (days(3), set(), 2, sorted(days(1, 2))),  # two missed days, both covered
        (days(4), set(), 2, []),  # three missed days, two freezes: the streak is over, nothing spent
        (days(2), set(), 0, []),  # freezes off
        (set(), set(), 2, []),  # no streak
        (days(3), days(2), 2, sorted(days(1))),  # second freeze in a row
        (days(2), days(3), 1, []),  # the month's only freeze is spent (Nov 22)
        (days(0), set(), 2, []),  # nothing missed
        (days(5), days(4, 3, 2), 5, sorted(days(1))),
    ],
)
def test_days_to_freeze(active: set[date], frozen: set[date], per_month: int, expected: list[date]) -> None:
    assert days_to_freeze(active, frozen, TODAY, per_month) == expected


def test_freezes_are_counted_per_month_of_the_missed_day() -> None:
    first = date(2026, 12, 1)
    active = {date(2026, 11, 28)}
    frozen = {date(2026, 11, 29)}  # November's only freeze
    # Nov 30 has none left in November: the streak ends, although December has one
    assert days_to_freeze(active, frozen, first, per_month=1) == []
    assert days_to_freeze(active, frozen, date(2026, 12, 2), per_month=1) == []
    # a missed Dec 1 after an active Nov 30 uses December's freeze
    assert days_to_freeze(active | {date(2026, 11, 30)}, frozen, date(2026, 12, 2), per_month=1) == [first]
    assert freezes_left(frozen, date(2026, 11, 30), 2) == 1
    assert freezes_left(frozen, first, 2) == 2
    assert freezes_left(frozen | {date(2026, 11, 30)}, date(2026, 11, 30), 1) == 0


@pytest.mark.parametrize(
    ("local", "hour", "quiet", "expected"),
    [
        (datetime(2026, 11, 25, 19, 59), 20, (22 * 60, 8 * 60), False),
        (datetime(2026, 11, 25, 20, 0), 20, (22 * 60, 8 * 60), True),
        (datetime(2026, 11, 25, 21, 59), 20, (22 * 60, 8 * 60), True),
        (datetime(2026, 11, 25, 22, 0), 20, (22 * 60, 8 * 60), False),  # quiet hours began
        (datetime(2026, 11, 25, 20, 30), 20, (20 * 60, 7 * 60), False),  # the partner's own quiet hours
        (datetime(2026, 11, 25, 23, 50), 20, (0, 0), True),  # quiet hours off
        (datetime(2026, 11, 25, 7, 0), 20, (0, 0), False),
    ],
)
def test_reminder_window(local: datetime, hour: int, quiet: tuple[int, int], expected: bool) -> None:
    assert ReminderWindow(hour, quiet).open_at(local) is expected


day_sets = st.sets(st.integers(min_value=0, max_value=40), max_size=30)


@given(active=day_sets, frozen=day_sets, per_month=st.integers(min_value=0, max_value=4))
def test_freezing_keeps_a_streak_or_spends_nothing(active: set[int], frozen: set[int], per_month: int) -> None:
    """Whatever the history: freezes cover only missed past days, oldest first and consecutive, within the month's
    budget; when they cover the gap the streak goes on with the same count, otherwise nothing is spent and the
    streak is 0; asking again gives nothing more."""
    acts = {TODAY - timedelta(days=n) for n in active}
    held = {TODAY - timedelta(days=n) for n in frozen if n > 0} - acts
    covered = days_to_freeze(acts, held, TODAY, per_month)
    assert covered == sorted(covered)
    assert all(d < TODAY and d not in acts and d not in held for d in covered)
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(covered))
    after = held | set(covered)
    if covered:
        assert covered[-1] == TODAY - timedelta(days=1)
        months = {(d.year, d.month) for d in covered}
        for year, month in months:
            assert sum(1 for d in after if (d.year, d.month) == (year, month)) <= max(
                per_month, sum(1 for d in held if (d.year, d.month) == (year, month))
            )
        kept = max(d for d in acts | held if d < covered[0])
        assert streak_days(acts, after, TODAY) == streak_days(acts, held, kept + timedelta(days=1)) + (
            1 if TODAY in acts else 0
        )
        assert at_risk(acts, after, TODAY) is (TODAY not in acts)
    assert days_to_freeze(acts, after, TODAY, per_month) == []


@given(active=day_sets)
def test_without_freezes_the_streak_is_the_plain_run(active: set[int]) -> None:
    acts = {TODAY - timedelta(days=n) for n in active}
    start = TODAY if TODAY in acts else TODAY - timedelta(days=1)
    count = 0
    while start - timedelta(days=count) in acts:
        count += 1
    assert streak_days(acts, set(), TODAY) == count
    assert days_to_freeze(acts, set(), TODAY, 0) == []
