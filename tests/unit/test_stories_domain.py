"""Tier 1: case stories and the spotlight — text checks, the featured-day queue, weeks, /spotlight arguments and the
top riser ranking."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.errors import UsageError
from bot.domain.stories import (
    BLURB_MAX,
    PHOTO_MAX_BYTES,
    PHOTO_TEXT_MAX,
    TEXT_MAX,
    TEXT_MIN,
    SpotlightArgs,
    WeeklyActions,
    check_photo_size,
    clean_reason,
    clean_text,
    excerpt,
    feature_day,
    parse_spotlight,
    rank_risers,
    top_riser,
    week_start,
)

W = WeeklyActions


@pytest.mark.parametrize(
    ("rows", "winner"),
    [
        ([], None),
        ([W(1, 0, 0)], None),  # nobody with zero actions
        ([W(1, 5, 0), W(2, 3, 0)], None),  # fell to zero: not a riser
        ([W(1, 0, 1)], 1),
        ([W(1, 2, 10), W(2, 0, 5)], 1),  # +8 beats +5
        ([W(1, 0, 5), W(2, 3, 8)], 2),  # equal growth: more actions last week
        ([W(7, 1, 6), W(3, 1, 6)], 3),  # equal growth and actions: the lower id
        ([W(1, 10, 4), W(2, 9, 6)], 2),  # nobody grew: the smallest fall
        ([W(1, 0, 0), W(2, 8, 1)], 2),  # the only one who acted last week, though they fell
        ([W(1, 1, 3), W(2, 0, 0), W(3, 5, 7), W(4, 0, 2)], 3),  # +2 +0 +2 +2 → most actions (7)
    ],
)
def test_top_riser_table(rows: list[WeeklyActions], winner: int | None) -> None:
    assert top_riser(rows) == winner


@given(st.lists(st.tuples(st.integers(1, 50), st.integers(0, 20), st.integers(0, 20)), unique_by=lambda r: r[0]))
def test_ranking_is_ordered_and_skips_the_idle(raw: list[tuple[int, int, int]]) -> None:
    rows = [W(pid, prev, cur) for pid, prev, cur in raw]
    ranked = rank_risers(rows)
    assert all(r.current > 0 for r in ranked)
    assert len(ranked) == sum(1 for r in rows if r.current > 0)
    keys = [(-r.growth, -r.current, r.partner_id) for r in ranked]
    assert keys == sorted(keys)
    assert top_riser(rows) == (ranked[0].partner_id if ranked else None)


@pytest.mark.parametrize(
    ("raw", "photo", "expected"),
    [
        ("  A long enough story about a sale.  ", False, "A long enough story about a sale."),
        ("First line of it\n\n\n\nsecond line here", False, "First line of it\n\nsecond line here"),
        ("x" * TEXT_MIN, False, "x" * TEXT_MIN),
        ("x" * TEXT_MAX, False, "x" * TEXT_MAX),
        ("x" * PHOTO_TEXT_MAX, True, "x" * PHOTO_TEXT_MAX),
    ],
)
def test_clean_text_accepts(raw: str, photo: bool, expected: str) -> None:
    assert clean_text(raw, with_photo=photo) == expected


@pytest.mark.parametrize(
    ("raw", "photo", "key"),
    [
        (None, False, "stories.too_short"),
        ("   ", False, "stories.too_short"),
        ("x" * (TEXT_MIN - 1), False, "stories.too_short"),
        ("x" * (TEXT_MAX + 1), False, "stories.too_long"),
        ("x" * (PHOTO_TEXT_MAX + 1), True, "stories.too_long"),
    ],
)
def test_clean_text_refuses(raw: str | None, photo: bool, key: str) -> None:
    with pytest.raises(UsageError) as caught:
        clean_text(raw, with_photo=photo)
    assert caught.value.key == key


def test_reason_and_photo_limits() -> None:
    assert clean_reason("  not   a real  sale ") == "not a real sale"
    for bad in ("", "   ", "x" * 501):
        with pytest.raises(UsageError):
            clean_reason(bad)
    check_photo_size(None)
    check_photo_size(PHOTO_MAX_BYTES)
    with pytest.raises(UsageError) as caught:
        check_photo_size(PHOTO_MAX_BYTES + 1)
    assert caught.value.key == "stories.photo_too_big"


def test_excerpt_cuts_at_a_word_with_an_ellipsis() -> None:
    assert excerpt("short story", 300) == "short story"
    text = "word " * 100
    cut = excerpt(text, 50)
    assert len(cut) <= 50 and cut.endswith("…") and cut[:-1] == cut[:-1].rstrip()
    assert cut[:-1].endswith("word")
    assert excerpt("x" * 100, 10) == "x" * 9 + "…"


D = date(2026, 11, 26)


@pytest.mark.parametrize(
    ("earliest", "last", "expected"),
    [
        (D, None, D),
        (D, D - timedelta(days=30), D),  # the queue ran dry: tomorrow
        (D, D - timedelta(days=1), D),
        (D, D, D + timedelta(days=1)),  # tomorrow is taken: the day after
        (D, D + timedelta(days=4), D + timedelta(days=5)),
    ],
)
def test_feature_day_queue(earliest: date, last: date | None, expected: date) -> None:
    assert feature_day(earliest, last) == expected


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)))
def test_week_start_is_the_monday_on_or_before(day: date) -> None:
    monday = week_start(day)
    assert monday.weekday() == 0 and 0 <= (day - monday).days < 7


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (None, SpotlightArgs(False, None, None)),
        ("", SpotlightArgs(False, None, None)),
        ("next", SpotlightArgs(True, None, None)),
        ("@alice", SpotlightArgs(False, "@alice", None)),
        ("ABCD2345  closed   three deals", SpotlightArgs(False, "ABCD2345", "closed three deals")),
        ("NEXT @bob Great at follow-ups", SpotlightArgs(True, "@bob", "Great at follow-ups")),
    ],
)
def test_parse_spotlight(args: str | None, expected: SpotlightArgs) -> None:
    assert parse_spotlight(args) == expected


@pytest.mark.parametrize(
    ("args", "key"), [("@", "spotlight.usage"), ("@a " + "x" * (BLURB_MAX + 1), "spotlight.blurb_too_long")]
)
def test_parse_spotlight_refuses(args: str, key: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_spotlight(args)
    assert caught.value.key == key
