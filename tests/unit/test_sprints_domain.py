"""Tier 1: monthly sprints' rules — the admin's line, windows in local time, ranking with ties (standard competition
ranking), the gap to the next rank, winners, the progress bar and when each stage is due."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.sprints import (
    EVERYONE,
    Audience,
    Board,
    Gap,
    Metric,
    SprintInputError,
    SprintSpec,
    Stage,
    Standing,
    due_stage,
    gap_to_next,
    parse_sprint,
    parse_sprint_id,
    progress_bar,
    rank,
    stage_times,
    time_left,
    window,
    winners,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
TODAY = date(2026, 11, 25)
LEVELS = ["member", "silver", "gold"]


def parse(text: str, *, today: date = TODAY, zone: ZoneInfo = SHANGHAI) -> SprintSpec:
    return parse_sprint(text, today=today, zone=zone, currency="CNY", levels=LEVELS)


def test_a_full_line_is_parsed_with_the_window_in_the_admins_zone() -> None:
    spec = parse_sprint(
        "December push | shares | 30 | 2026-12-01 | 2026-12-31 | Top 3: a tea set | level:silver",
        today=TODAY,
        zone=SHANGHAI,
        currency="CNY",
        levels=LEVELS,
    )
    assert (spec.title, spec.metric, spec.target, spec.prizes) == (
        "December push",
        Metric.SHARES,
        30,
        "Top 3: a tea set",
    )
    assert spec.starts_at == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)  # 2026-12-01 00:00 in Shanghai
    assert spec.ends_at == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)  # 2027-01-01 00:00: the 31st runs to 23:59:59
    assert spec.audience == Audience("level", "silver")


@pytest.mark.parametrize(
    ("metric", "target", "expected_metric", "expected_target"),
    [
        ("shares", "30", Metric.SHARES, 30),
        ("分享", "30", Metric.SHARES, 30),
        ("Leads", "5", Metric.LEADS, 5),
        ("followups", "1,000", Metric.FOLLOWUPS, 1000),
        ("orders", "3", Metric.ORDERS, 3),
        ("gmv", "5000", Metric.GMV, 500000),
        ("业绩", "5000.50", Metric.GMV, 500050),
        ("recruits", "2", Metric.RECRUITS, 2),
    ],
)
def test_metrics_and_targets(metric: str, target: str, expected_metric: Metric, expected_target: int) -> None:
    spec = parse(f"T | {metric} | {target} | 2026-12-01 | 2026-12-31 | prizes")
    assert (spec.metric, spec.target) == (expected_metric, expected_target)


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("", "sprints.usage"),
        ("T | shares | 30 | 2026-12-01 | 2026-12-31", "sprints.usage"),
        ("T | shares | 30 | 2026-12-01 | 2026-12-31 | p | everyone | extra", "sprints.usage"),
        (" | shares | 30 | 2026-12-01 | 2026-12-31 | p", "sprints.error.title"),
        ("T | likes | 30 | 2026-12-01 | 2026-12-31 | p", "sprints.error.metric"),
        ("T | shares | 0 | 2026-12-01 | 2026-12-31 | p", "sprints.error.target"),
        ("T | shares | -3 | 2026-12-01 | 2026-12-31 | p", "sprints.error.target"),
        ("T | shares | 2.5 | 2026-12-01 | 2026-12-31 | p", "sprints.error.target"),
        ("T | shares | ３０ | 2026-12-01 | 2026-12-31 | p", "sprints.error.target"),
        ("T | gmv | 0.001 | 2026-12-01 | 2026-12-31 | p", "sprints.error.target_money"),
        ("T | gmv | lots | 2026-12-01 | 2026-12-31 | p", "sprints.error.target_money"),
        ("T | shares | 30 | 2026-13-01 | 2026-12-31 | p", "sprints.error.date"),
        ("T | shares | 30 | 2026-02-30 | 2026-12-31 | p", "sprints.error.date"),
        ("T | shares | 30 | tomorrow | 2026-12-31 | p", "sprints.error.date"),
        ("T | shares | 30 | 2026-11-24 | 2026-12-31 | p", "sprints.error.past"),
        ("T | shares | 30 | 2026-12-31 | 2026-12-01 | p", "sprints.error.order"),
        ("T | shares | 30 | 2026-12-01 | 2027-03-31 | p", "sprints.error.too_long"),
        ("T | shares | 30 | 2026-12-01 | 2026-12-31 |  ", "sprints.error.prizes"),
        ("T | shares | 30 | 2026-12-01 | 2026-12-31 | p | level:diamond", "sprints.error.audience"),
        ("T | shares | 30 | 2026-12-01 | 2026-12-31 | p | segment:top", "sprints.error.audience"),
        ("T | shares | 30 | 2026-12-01 | 2026-12-31 | p | friends", "sprints.error.audience"),
        ("T | shares | 30 | 2026-12-01 | 2026-12-31 | p | team:", "sprints.error.audience"),
    ],
)
def test_bad_lines_are_refused_with_the_reason(line: str, key: str) -> None:
    with pytest.raises(SprintInputError) as caught:
        parse(line)
    assert caught.value.key == key


@pytest.mark.parametrize(
    ("audience", "expected"),
    [
        ("", EVERYONE),
        ("everyone", EVERYONE),
        ("所有人", EVERYONE),
        ("level:Gold", Audience("level", "gold")),
        ("segment:high", Audience("segment", "high")),
        ("team:AbC23456", Audience("team", "AbC23456")),
    ],
)
def test_audiences(audience: str, expected: Audience) -> None:
    spec = parse(f"T | shares | 30 | 2026-12-01 | 2026-12-31 | p | {audience}")
    assert spec.audience == expected
    assert Audience.stored(expected.label) == expected


def test_the_first_day_may_be_today_and_a_sprint_may_last_one_day() -> None:
    spec = parse("T | shares | 1 | 2026-11-25 | 2026-11-25 | p")
    assert spec.ends_at - spec.starts_at == timedelta(days=1)


def test_a_window_across_a_clock_change_is_local_midnight_to_local_midnight() -> None:
    starts, ends = window(date(2026, 11, 1), date(2026, 11, 1), NEW_YORK)  # DST ends on 2026-11-01
    assert starts == datetime(2026, 11, 1, 4, 0, tzinfo=UTC)
    assert ends == datetime(2026, 11, 2, 5, 0, tzinfo=UTC)  # a 25-hour day


@pytest.mark.parametrize(("text", "expected"), [("7", 7), ("#12", 12), (" 3 ", 3)])
def test_sprint_ids(text: str, expected: int) -> None:
    assert parse_sprint_id(text) == expected


@pytest.mark.parametrize("text", ["", "x", "-1", "1.5", None])
def test_bad_sprint_ids(text: str | None) -> None:
    with pytest.raises(SprintInputError):
        parse_sprint_id(text)


# -- ranking ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "ranks"),
    [
        ({}, []),
        ({1: 5}, [(1, 5, 1)]),
        ({1: 9, 2: 9, 3: 5}, [(1, 9, 1), (2, 9, 1), (3, 5, 3)]),  # 1, 1, 3
        ({1: 9, 2: 7, 3: 7, 4: 7, 5: 1}, [(1, 9, 1), (2, 7, 2), (3, 7, 2), (4, 7, 2), (5, 1, 5)]),  # 1, 2, 2, 2, 5
        ({3: 0, 1: 0, 2: 4}, [(2, 4, 1), (1, 0, 2), (3, 0, 2)]),  # ties listed by id
    ],
)
def test_standard_competition_ranking(values: dict[int, int], ranks: list[tuple[int, int, int]]) -> None:
    assert [(s.partner_id, s.value, s.rank) for s in rank(values)] == ranks


@pytest.mark.parametrize(
    ("values", "partner", "gap"),
    [
        ({1: 9, 2: 9, 3: 5}, 1, None),  # rank 1 (tied): nobody ahead
        ({1: 9, 2: 9, 3: 5}, 3, Gap(4, 1)),
        ({1: 9, 2: 7, 3: 7, 4: 4}, 4, Gap(3, 2)),  # "3 behind #2"
        ({1: 9, 2: 7, 3: 0}, 3, Gap(7, 2)),
        ({1: 9}, 42, None),  # not a participant
    ],
)
def test_gap_to_the_next_rank(values: dict[int, int], partner: int, gap: Gap | None) -> None:
    assert gap_to_next(rank(values), partner) == gap


@pytest.mark.parametrize(
    ("values", "target", "expected"),
    [
        ({1: 9, 2: 9, 3: 5, 4: 4, 5: 1}, 100, [1, 2, 3]),  # ranks 1, 1, 3
        ({1: 9, 2: 8, 3: 7, 4: 7, 5: 6}, 100, [1, 2, 3, 4]),  # a tie at rank 3 wins twice
        ({1: 9, 2: 8, 3: 7, 4: 6, 5: 6}, 6, [1, 2, 3, 4, 5]),  # ranks 4 and 5 reached the target
        ({1: 0, 2: 0}, 1, []),  # nobody scored: nobody wins
        ({1: 3, 2: 0, 3: 0, 4: 0}, 10, [1]),
    ],
)
def test_winners_are_the_top_three_ranks_and_everyone_on_target(
    values: dict[int, int], target: int, expected: list[int]
) -> None:
    assert [s.partner_id for s in winners(rank(values), target)] == expected


values_strategy = st.dictionaries(st.integers(1, 10_000), st.integers(0, 50), max_size=40)


@given(values_strategy, st.randoms(use_true_random=False))
def test_ranking_ignores_input_order_and_ties_share_a_rank(values: dict[int, int], rnd: random.Random) -> None:
    items = list(values.items())
    rnd.shuffle(items)
    standings = rank(dict(items))
    assert standings == rank(values)
    for s in standings:
        assert s.rank == 1 + sum(1 for v in values.values() if v > s.value)  # competition ranking, by definition
    assert [s.value for s in standings] == sorted(values.values(), reverse=True)


@given(values_strategy, st.integers(0, 20))
def test_the_board_agrees_with_the_full_ranking(values: dict[int, int], zeros: int) -> None:
    everyone = {**values, **{-n: 0 for n in range(1, zeros + 1)}}  # participants without any value
    board = Board(values, len(everyone))
    standings = rank(everyone)
    assert board.participants == len(everyone)
    for s in standings:
        assert board.standing(s.partner_id) == Standing(s.partner_id, s.value, s.rank)
        assert board.gap(s.partner_id) == gap_to_next(standings, s.partner_id)


@pytest.mark.parametrize(
    ("value", "target", "bar"),
    [
        (0, 30, "░░░░░░░░░░ 0%"),
        (12, 30, "▓▓▓▓░░░░░░ 40%"),
        (29, 30, "▓▓▓▓▓▓▓▓▓░ 96%"),
        (30, 30, "▓▓▓▓▓▓▓▓▓▓ 100%"),
        (45, 30, "▓▓▓▓▓▓▓▓▓▓ 150%"),
    ],
)
def test_progress_bar(value: int, target: int, bar: str) -> None:
    assert progress_bar(value, target) == bar


# -- stages ----------------------------------------------------------------------------------------------------

START = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
END = datetime(2026, 12, 31, 16, 0, tzinfo=UTC)


def test_stage_times_of_a_month() -> None:
    assert stage_times(START, END) == {
        Stage.KICKOFF: START,
        Stage.MID: datetime(2026, 12, 16, 4, 0, tzinfo=UTC),
        Stage.FINAL: datetime(2026, 12, 29, 16, 0, tzinfo=UTC),
        Stage.RESULTS: END,
    }


def test_a_short_sprint_has_no_final_push() -> None:
    times = stage_times(START, START + timedelta(days=3))
    assert list(times) == [Stage.KICKOFF, Stage.MID, Stage.RESULTS]


@pytest.mark.parametrize(
    ("now", "done", "announce", "skip"),
    [
        (START - timedelta(seconds=1), [], None, ()),
        (START, [], Stage.KICKOFF, ()),
        (START + timedelta(days=3), [Stage.KICKOFF], None, ()),
        (datetime(2026, 12, 16, 4, 0, tzinfo=UTC), [Stage.KICKOFF], Stage.MID, ()),
        (datetime(2026, 12, 29, 16, 0, tzinfo=UTC), [Stage.KICKOFF, Stage.MID], Stage.FINAL, ()),
        (END, [Stage.KICKOFF, Stage.MID, Stage.FINAL], Stage.RESULTS, ()),
        (END + timedelta(days=1), [Stage.KICKOFF, Stage.MID, Stage.FINAL, Stage.RESULTS], None, ()),
        # the bot was down: the earlier stages are skipped, not sent late
        (datetime(2026, 12, 30, 0, 0, tzinfo=UTC), [Stage.KICKOFF], Stage.FINAL, (Stage.MID,)),
        (END, [], Stage.RESULTS, (Stage.KICKOFF, Stage.MID, Stage.FINAL)),
        # a late kickoff still goes, and stands in for the nudges due with it
        (datetime(2026, 12, 17, 0, 0, tzinfo=UTC), [], Stage.KICKOFF, (Stage.MID,)),
        (datetime(2026, 12, 30, 0, 0, tzinfo=UTC), [], Stage.KICKOFF, (Stage.MID, Stage.FINAL)),
    ],
)
def test_the_due_stage(now: datetime, done: list[Stage], announce: Stage | None, skip: tuple[Stage, ...]) -> None:
    decision = due_stage(START, END, done, now)
    if announce is None:
        assert decision is None
    else:
        assert decision is not None
        assert (decision.announce, decision.skip) == (announce, skip)


def test_time_left() -> None:
    left = time_left(datetime(2026, 12, 29, 13, 30, tzinfo=UTC), END)
    assert (left.days, left.hours, left.minutes) == (2, 2, 30)
    assert time_left(END + timedelta(hours=1), END).days == 0
