"""Dividend pools, the pure part: period boundaries and the exact split with caps and remainders."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.money import Money
from bot.domain.pools import PoolError, parse_period, previous_period, split_pool, weights_for
from bot.domain.rules import PlanError, PoolPeriod, PoolSplit, load_plan

W, M, Q = PoolPeriod.WEEKLY, PoolPeriod.MONTHLY, PoolPeriod.QUARTERLY


@pytest.mark.parametrize(
    ("day", "kind", "start", "end", "label"),
    [
        (date(2026, 12, 2), M, date(2026, 11, 1), date(2026, 12, 1), "2026-11"),
        (date(2026, 12, 1), M, date(2026, 11, 1), date(2026, 12, 1), "2026-11"),
        (date(2026, 1, 15), M, date(2025, 12, 1), date(2026, 1, 1), "2025-12"),
        (date(2026, 3, 1), M, date(2026, 2, 1), date(2026, 3, 1), "2026-02"),
        (date(2026, 11, 30), W, date(2026, 11, 23), date(2026, 11, 30), "2026-W48"),  # Monday
        (date(2026, 11, 29), W, date(2026, 11, 16), date(2026, 11, 23), "2026-W47"),  # Sunday
        (date(2027, 1, 6), W, date(2026, 12, 28), date(2027, 1, 4), "2026-W53"),
        (date(2026, 1, 1), Q, date(2025, 10, 1), date(2026, 1, 1), "2025-Q4"),
        (date(2026, 5, 20), Q, date(2026, 1, 1), date(2026, 4, 1), "2026-Q1"),
        (date(2026, 10, 1), Q, date(2026, 7, 1), date(2026, 10, 1), "2026-Q3"),
    ],
)
def test_previous_period(day: date, kind: PoolPeriod, start: date, end: date, label: str) -> None:
    period = previous_period(day, kind)
    assert (period.start, period.end, period.label) == (start, end, label)
    assert parse_period(label, kind) == period


@pytest.mark.parametrize(("label", "kind"), [("2026-13", M), ("2026-W60", W), ("2026-Q5", Q), ("nope", M)])
def test_bad_period_labels(label: str, kind: PoolPeriod) -> None:
    with pytest.raises(PoolError):
        parse_period(label, kind)


def cny(minor: int) -> Money:
    return Money(minor, "CNY")


def test_equal_split_with_a_rounding_remainder_going_to_the_earlier() -> None:
    share = split_pool(cny(1001), [(1, 1), (2, 1)])
    assert [line.amount for line in share.lines] == [cny(501), cny(500)]
    assert share.remainder == cny(0)


def test_cap_cuts_and_the_cut_is_the_remainder() -> None:
    share = split_pool(cny(1001), [(1, 1), (2, 1)], cap=cny(500))
    assert [(line.amount, line.capped) for line in share.lines] == [(cny(500), True), (cny(500), False)]
    assert share.remainder == cny(1)


def test_by_gmv_weights_and_nobody_with_weight() -> None:
    assert weights_for(PoolSplit.BY_GMV, [30000, 10000]) == [30000, 10000]
    assert weights_for(PoolSplit.EQUAL, [0, 5]) == [1, 1]
    share = split_pool(cny(800), [(1, 30000), (2, 10000)])
    assert [line.amount for line in share.lines] == [cny(600), cny(200)]
    nobody = split_pool(cny(800), [(1, 0), (2, 0)])
    assert [line.amount for line in nobody.lines] == [cny(0), cny(0)] and nobody.remainder == cny(800)
    assert split_pool(cny(800), []).remainder == cny(800)


def test_by_points_weights_are_the_points_and_need_one_per_recipient() -> None:
    assert weights_for(PoolSplit.BY_POINTS, [30000, 10000, 0], [3, 0, 1]) == [3, 0, 1]
    with pytest.raises(PoolError, match="one points figure per recipient"):
        weights_for(PoolSplit.BY_POINTS, [1])
    share = split_pool(cny(1000), [(1, 3), (2, 0), (3, 1)])
    assert [line.amount for line in share.lines] == [cny(750), cny(0), cny(250)]


@given(
    total=st.integers(min_value=0, max_value=10**10),
    weights=st.lists(st.integers(min_value=0, max_value=10**8), max_size=20),
    cap=st.none() | st.integers(min_value=0, max_value=10**9),
)
def test_lines_and_remainder_always_sum_to_the_total(total: int, weights: list[int], cap: int | None) -> None:
    share = split_pool(cny(total), list(enumerate(weights)), None if cap is None else cny(cap))
    assert sum(line.amount.minor for line in share.lines) + share.remainder.minor == total
    assert share.remainder.minor >= 0
    if cap is not None:
        assert all(line.amount.minor <= cap for line in share.lines)


def test_a_team_pool_names_its_root_by_invite_code() -> None:
    base = (
        'version: 1\nlevels:\n  member: {title: {zh: 会员, en: Member}, l1: "10%", l2: "3%"}\nmin_withdrawal: "50.00"\n'
    )
    plan = load_plan(base + 'pools:\n  t:\n    share: "2%"\n    period: monthly\n    team: "Ab3dEf7h"\n')
    assert plan.pools["t"].team == "Ab3dEf7h"
    assert load_plan(base + 'pools:\n  n:\n    share: "2%"\n    period: monthly\n').pools["n"].team is None
    with pytest.raises(PlanError, match=r"line 9: pools\.t\.team"):
        load_plan(base + 'pools:\n  t:\n    share: "2%"\n    period: monthly\n    team: "not a code"\n')
