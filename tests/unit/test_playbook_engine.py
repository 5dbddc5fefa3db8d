"""Tier 1: the pure playbook engine (playbooks/engine.py) and the tiered-operations rhythm (playbooks/rhythm.py).

A simulated week with a moved clock for three partners (does everything, does nothing, does half), against the
shipped 7-day playbook; idempotency; local mornings in a DST-free and a DST zone; a hypothesis property."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.i18n import Translator
from playbooks.engine import (
    Complete,
    Decision,
    Event,
    Finish,
    Nudge,
    PlaybookState,
    ScheduleWake,
    Send,
    Skip,
    StepStatus,
    apply,
    decide,
    progress,
    should_start,
)
from playbooks.loader import load_all, locale_text_keys
from playbooks.rhythm import (
    RhythmState,
    SegmentChanged,
    SendTouch,
    TouchStopped,
    WakeAt,
    apply_rhythm,
    decide_rhythm,
    segment_for,
)
from playbooks.schema import Playbook, Rhythm, Vocabulary, parse_playbook_file

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
START = datetime(2026, 11, 26, 10, 0, tzinfo=SHANGHAI)  # joins on day 0 at 10:00 local


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary(locale_text_keys())


@pytest.fixture(scope="module")
def onboarding(vocabulary: Vocabulary) -> Playbook:
    return load_all(vocabulary=vocabulary).playbooks["onboarding_7day"]


@pytest.fixture(scope="module")
def tiered(vocabulary: Vocabulary) -> Rhythm:
    return load_all(vocabulary=vocabulary).rhythms["tiered_ops"]


def at(day: int, hhmm: str, tz: tzinfo = SHANGHAI, start: date | None = None) -> datetime:
    hours, minutes = hhmm.split(":")
    return datetime.combine((start or START.date()) + timedelta(days=day), time(int(hours), int(minutes)), tzinfo=tz)


def label(moment: datetime, start: datetime = START) -> str:
    local = moment.astimezone(start.tzinfo)
    return f"d{(local.date() - start.date()).days} {local:%H:%M}"


def describe(decision: Decision) -> tuple[str, ...]:
    if isinstance(decision, Send):
        return ("send", decision.step, f"day {decision.values['day']}/{decision.values['total']}")
    if isinstance(decision, Nudge):
        return ("nudge", decision.step, str(decision.n))
    if isinstance(decision, Complete):
        reward = decision.reward
        parts = [] if reward is None else [f"{reward.points or 0}p", reward.badge or ""]
        parts.append("early" if decision.early else "")
        return ("complete", decision.step, " ".join(p for p in parts if p))
    if isinstance(decision, Skip):
        return ("skip", decision.step, decision.reason)
    if isinstance(decision, Finish):
        return ("finish",)
    return ("wake", label(decision.at))


def simulate(
    playbook: Playbook,
    events: Sequence[Event],
    *,
    start: datetime = START,
    until: datetime | None = None,
    every: timedelta = timedelta(minutes=30),
) -> tuple[list[tuple[str, ...]], PlaybookState, list[tuple[datetime, Decision]]]:
    """Run the engine every `every` from the start, applying its decisions; the transcript leaves wakes out."""
    state = PlaybookState(partner_id=7, started_at=start.astimezone(UTC), tz=start.tzinfo or UTC)
    now, end = start, until or at(8, "12:00", start.tzinfo or UTC, start.date())
    transcript: list[tuple[str, ...]] = []
    everything: list[tuple[datetime, Decision]] = []
    while now <= end:
        decisions = decide(playbook, state, events, now)
        everything += [(now, d) for d in decisions]
        transcript += [(label(now, start), *describe(d)) for d in decisions if not isinstance(d, ScheduleWake)]
        state = apply(state, playbook, decisions, now)
        now += every
    return transcript, state, everything


def on(day: int, hhmm: str, kind: str, **payload: object) -> Event:
    return Event(kind, at(day, hhmm).astimezone(UTC), payload)


DILIGENT = [
    on(0, "10:30", "profile_completed", phone=True),
    on(0, "10:30", "terms_accepted"),
    on(1, "11:00", "shared", content_id=1, channel="inline"),
    on(2, "11:00", "lead_added", lead_id=1),
    on(3, "11:00", "followed_up", lead_id=1),
    on(4, "11:00", "event_invited", lead_id=1),
    on(5, "11:00", "course_completed", course="basics"),
]

HALF = [
    on(0, "10:30", "profile_completed", phone=False),
    on(0, "10:30", "terms_accepted"),
    on(0, "12:00", "shared", content_id=1, channel="manual"),  # day 1's action, done on day 0
    on(2, "21:00", "lead_added", lead_id=1),  # after both nudges: still completes the open step
    on(3, "12:00", "poster_made", content_id=1),  # day 4's action, done on day 3
    on(5, "11:00", "course_completed", course="advanced"),  # not the basics course
]


def test_diligent_partner_gets_each_day_and_completes_everything(onboarding: Playbook) -> None:
    transcript, state, _ = simulate(onboarding, DILIGENT)
    assert transcript == [
        ("d0 10:00", "send", "welcome", "day 0/7"),
        ("d0 10:30", "complete", "welcome", "10p"),
        ("d1 09:00", "send", "first_share", "day 1/7"),
        ("d1 11:00", "complete", "first_share", "10p"),
        ("d2 09:00", "send", "first_lead", "day 2/7"),
        ("d2 11:00", "complete", "first_lead", "10p"),
        ("d3 09:00", "send", "first_followup", "day 3/7"),
        ("d3 11:00", "complete", "first_followup", "10p"),
        ("d4 09:00", "send", "poster_or_invite", "day 4/7"),
        ("d4 11:00", "complete", "poster_or_invite", "10p"),
        ("d5 09:00", "send", "basics_course", "day 5/7"),
        ("d5 11:00", "complete", "basics_course", "20p"),
        ("d6 09:00", "send", "review", "day 6/7"),
        ("d6 09:00", "complete", "review", ""),
        ("d7 09:00", "send", "celebration", "day 7/7"),
        ("d7 09:00", "complete", "celebration", "30p starter_7day"),
        ("d7 09:00", "finish"),
    ]
    assert state.finished_at == at(7, "09:00")
    assert all(s.status is StepStatus.DONE for s in state.steps.values())
    assert state.current_step == len(onboarding.steps)


def test_idle_partner_gets_every_day_and_at_most_two_nudges_but_no_celebration(onboarding: Playbook) -> None:
    transcript, state, _ = simulate(onboarding, [])
    expected: list[tuple[str, ...]] = [
        ("d0 10:00", "send", "welcome", "day 0/7"),
        ("d0 13:00", "nudge", "welcome", "1"),  # deadline 3 h, one nudge
        ("d1 09:00", "skip", "welcome", "next_due"),
        ("d1 09:00", "send", "first_share", "day 1/7"),
    ]
    for day, step in enumerate(["first_share", "first_lead", "first_followup", "poster_or_invite"], start=1):
        following = onboarding.steps[day + 1].key
        expected += [
            (f"d{day} 15:00", "nudge", step, "1"),  # deadline 09:00 + 6 h, then + 0 h
            (f"d{day} 20:00", "nudge", step, "2"),  # + 5 h
            (f"d{day + 1} 09:00", "skip", step, "next_due"),
            (f"d{day + 1} 09:00", "send", following, f"day {day + 1}/7"),
        ]
    expected += [
        ("d5 15:00", "nudge", "basics_course", "1"),
        ("d5 20:00", "nudge", "basics_course", "2"),
        ("d6 09:00", "skip", "basics_course", "next_due"),
        ("d6 09:00", "send", "review", "day 6/7"),
        ("d6 09:00", "complete", "review", ""),
        ("d7 09:00", "skip", "celebration", "none_done"),
        ("d7 09:00", "finish"),
    ]
    assert transcript == expected
    assert state.finished_at == at(7, "09:00")


def test_half_partner_completes_early_late_and_misses_some(onboarding: Playbook) -> None:
    transcript, state, _ = simulate(onboarding, HALF)
    assert transcript == [
        ("d0 10:00", "send", "welcome", "day 0/7"),
        ("d0 10:30", "complete", "welcome", "10p"),
        ("d0 12:00", "complete", "first_share", "10p early"),  # never sent: day 1 brings nothing
        ("d2 09:00", "send", "first_lead", "day 2/7"),
        ("d2 15:00", "nudge", "first_lead", "1"),
        ("d2 20:00", "nudge", "first_lead", "2"),
        ("d2 21:00", "complete", "first_lead", "10p"),
        ("d3 09:00", "send", "first_followup", "day 3/7"),
        ("d3 12:00", "complete", "poster_or_invite", "10p early"),
        ("d3 15:00", "nudge", "first_followup", "1"),
        ("d3 20:00", "nudge", "first_followup", "2"),
        # day 4's step is done already: the follow-up stays open until the next open step (day 5) is due
        ("d5 09:00", "skip", "first_followup", "next_due"),
        ("d5 09:00", "send", "basics_course", "day 5/7"),
        ("d5 15:00", "nudge", "basics_course", "1"),  # the advanced course does not count
        ("d5 20:00", "nudge", "basics_course", "2"),
        ("d6 09:00", "skip", "basics_course", "next_due"),
        ("d6 09:00", "send", "review", "day 6/7"),
        ("d6 09:00", "complete", "review", ""),
        ("d7 09:00", "send", "celebration", "day 7/7"),
        ("d7 09:00", "complete", "celebration", "30p starter_7day"),
        ("d7 09:00", "finish"),
    ]
    checklist = progress(onboarding, state, at(8, "12:00")).checklist
    assert checklist == (
        ("welcome", True),
        ("first_share", True),
        ("first_lead", True),
        ("first_followup", False),
        ("poster_or_invite", True),
        ("basics_course", False),
        ("review", True),
        ("celebration", True),
    )


@pytest.mark.parametrize("events", [DILIGENT, HALF, []], ids=["diligent", "half", "idle"])
def test_waking_only_when_asked_gives_the_same_week(onboarding: Playbook, events: list[Event]) -> None:
    """The service calls the engine at its ScheduleWake times and when an event arrives, not every 30 minutes."""
    polled, _, _ = simulate(onboarding, events)
    state = PlaybookState(partner_id=7, started_at=START.astimezone(UTC), tz=SHANGHAI)
    moments = {START, *(e.occurred_at for e in events)}
    transcript: list[tuple[str, ...]] = []
    while moments:
        now = min(moments)
        moments.discard(now)
        decisions = decide(onboarding, state, events, now)
        transcript += [(label(now), *describe(d)) for d in decisions if not isinstance(d, ScheduleWake)]
        moments |= {d.at for d in decisions if isinstance(d, ScheduleWake) and d.at > now}
        state = apply(state, onboarding, decisions, now)
    assert transcript == polled


def test_same_inputs_same_decisions_and_applied_decisions_are_not_repeated(onboarding: Playbook) -> None:
    state = PlaybookState(partner_id=42, started_at=START.astimezone(UTC), tz=SHANGHAI)
    now = at(2, "16:00")  # nobody ran the engine for two days: it catches up in one call
    first = decide(onboarding, state, HALF, now)
    assert first == decide(onboarding, state, HALF, now)
    assert [describe(d) for d in first] == [
        ("complete", "welcome", "10p early"),  # the engine first runs after the action: no welcome is sent
        ("complete", "first_share", "10p early"),
        ("send", "first_lead", "day 2/7"),  # day 2's morning has passed: sent at once
        ("wake", "d2 22:00"),  # sent at 16:00, 6 h deadline, first nudge 0 h after it
    ]
    assert [d.job_id if isinstance(d, ScheduleWake) else d.dedupe_key for d in first] == [
        "playbook:onboarding_7day:42:welcome:complete",
        "playbook:onboarding_7day:42:first_share:complete",
        "playbook:onboarding_7day:42:first_lead:send",
        "playbook:onboarding_7day:42:wake",
    ]
    after = apply(state, onboarding, first, now)
    again = decide(onboarding, after, HALF, now)
    assert [d for d in again if not isinstance(d, ScheduleWake)] == []
    assert apply(after, onboarding, again, now) == after


@pytest.mark.parametrize(
    ("start", "utc_hours"),
    [
        # no DST: 09:00 in Shanghai is always 01:00 UTC
        (datetime(2026, 11, 26, 10, 0, tzinfo=SHANGHAI), [1, 1, 1, 1, 1, 1, 1]),
        # New York springs forward on Sunday 8 March 2026: 09:00 EST is 14:00 UTC, 09:00 EDT 13:00 UTC
        (datetime(2026, 3, 6, 20, 0, tzinfo=NEW_YORK), [14, 13, 13, 13, 13, 13, 13]),
        # and falls back on Sunday 1 November 2026
        (datetime(2026, 10, 30, 20, 0, tzinfo=NEW_YORK), [13, 14, 14, 14, 14, 14, 14]),
    ],
    ids=["shanghai", "new-york-spring", "new-york-fall"],
)
def test_day_n_goes_out_at_local_morning_across_dst(
    onboarding: Playbook, start: datetime, utc_hours: list[int]
) -> None:
    _, _, decisions = simulate(onboarding, [], start=start)
    sends = [(now, d) for now, d in decisions if isinstance(d, Send)]
    assert sends[0][0] == start  # the welcome goes out on joining, in the evening
    # days 1-6 send; on day 7 the idle partner's celebration is skipped and the playbook finishes
    day_sends = [*sends[1:], *((now, d) for now, d in decisions if isinstance(d, Finish))]
    assert [d.values["day"] for _, d in day_sends if isinstance(d, Send)] == [1, 2, 3, 4, 5, 6]
    assert [now.astimezone(start.tzinfo).time() for now, _ in day_sends] == [time(9, 0)] * 7
    assert [(now.astimezone(start.tzinfo).date() - start.date()).days for now, _ in day_sends] == list(range(1, 8))
    assert [now.astimezone(UTC).hour for now, _ in day_sends] == utc_hours
    wakes = [d.at for _, d in decisions if isinstance(d, ScheduleWake)]
    welcome_nudge = (start + timedelta(hours=3)).time()
    assert {w.astimezone(start.tzinfo).time() for w in wakes} == {time(9, 0), time(15, 0), time(20, 0), welcome_nudge}


def test_a_step_becoming_current_after_its_morning_is_sent_at_once(onboarding: Playbook) -> None:
    state = PlaybookState(partner_id=1, started_at=START.astimezone(UTC), tz=SHANGHAI)
    events = [on(1, "17:00", "profile_completed"), on(1, "17:00", "terms_accepted")]
    assert [describe(d) for d in decide(onboarding, state, events, at(1, "17:00"))] == [
        ("complete", "welcome", "10p early"),
        ("send", "first_share", "day 1/7"),  # day 1's morning has passed: at once, not tomorrow
        ("wake", "d1 23:00"),  # 17:00 + 6 h deadline
    ]


CUSTOM = """
kind: playbook
key: custom
name: {zh: 测试, en: Test}
start: {at: join, audience: "days_since_join <= 7"}
days: 3
morning: "08:30"
steps:
  - key: blocking
    trigger: {on_join: true}
    message: {text: playbooks.onboarding.welcome}
    expect: {any_of: [{event: terms_accepted}], deadline_end_of_day: 0}
    nudges: [{text: playbooks.onboarding.welcome_nudge, after_hours: 9}]
  - key: on_share
    trigger: {event: shared}
    message: {text: playbooks.onboarding.first_share}
    expect: {any_of: [{event: lead_added, payload: {source: form}}], deadline_hours: 2}
    skip: {if_done_before: true}
  - key: when_active
    trigger: {condition: "shares_7d >= 2"}
    message: {text: playbooks.onboarding.first_lead}
    skip: {when: "level == 'gold'"}
"""


@pytest.fixture(scope="module")
def custom(vocabulary: Vocabulary) -> Playbook:
    playbook = parse_playbook_file(CUSTOM, "custom.yaml", vocabulary)
    assert isinstance(playbook, Playbook)
    return playbook


def test_an_open_step_without_skip_rule_blocks_until_done(custom: Playbook) -> None:
    state = PlaybookState(partner_id=5, started_at=START.astimezone(UTC), tz=SHANGHAI)
    share = on(0, "11:00", "shared")
    values: dict[str, int | str] = {"shares_7d": 0, "level": "member"}
    transcript: list[tuple[str, ...]] = []
    for day, hhmm in [(0, "10:00"), (1, "08:59"), (1, "09:00"), (3, "12:00")]:
        now = at(day, hhmm)
        decisions = decide(custom, state, [share], now, values)
        transcript += [(label(now), *describe(d)) for d in decisions]
        state = apply(state, custom, decisions, now)
    assert transcript == [
        ("d0 10:00", "send", "blocking", "day 0/3"),
        ("d0 10:00", "wake", "d1 09:00"),  # end of local day 0 (midnight) + 9 h
        ("d1 08:59", "wake", "d1 09:00"),
        ("d1 09:00", "nudge", "blocking", "1"),  # then it stays open: no wake, the next event asks again
    ]
    assert custom.metrics_needed == {"days_since_join", "shares_7d", "level"}


def test_audience_decides_who_starts(onboarding: Playbook, custom: Playbook) -> None:
    assert should_start(onboarding)
    assert should_start(custom, {"days_since_join": 0})
    assert not should_start(custom, {"days_since_join": 8})
    with pytest.raises(ValueError, match="metrics are needed"):
        should_start(custom)


def test_event_and_condition_triggers_and_skip_rules(custom: Playbook) -> None:
    state = PlaybookState(partner_id=5, started_at=START.astimezone(UTC), tz=SHANGHAI)
    done = [on(0, "10:30", "terms_accepted"), on(0, "11:00", "lead_added", source="form")]
    now = at(0, "12:00")
    quiet: dict[str, int | str] = {"shares_7d": 1, "level": "member"}
    # no share yet: the event-triggered step waits, with no wake-up (the share itself will ask again)
    assert [describe(d) for d in decide(custom, state, done, now, quiet)] == [
        ("complete", "blocking", "early"),
        ("skip", "on_share", "done_before"),  # its action happened before its message: skipped, not completed
        ("wake", "d1 08:30"),  # a condition is looked at again next local morning
    ]
    active: dict[str, int | str] = {"shares_7d": 2, "level": "member"}
    assert [describe(d) for d in decide(custom, state, done, now, active)][2:] == [
        ("send", "when_active", "day 0/3"),
        ("complete", "when_active", ""),
        ("finish",),
    ]
    gold: dict[str, int | str] = {"shares_7d": 2, "level": "gold"}
    assert [describe(d) for d in decide(custom, state, done, now, gold)][2:] == [
        ("skip", "when_active", "condition"),
        ("finish",),
    ]
    shared = [on(0, "10:30", "terms_accepted"), on(0, "11:30", "shared"), on(0, "11:45", "lead_added")]
    assert [describe(d) for d in decide(custom, state, shared, now, quiet)] == [
        ("complete", "blocking", "early"),
        ("send", "on_share", "day 0/3"),  # a lead_added without source=form does not match the filter
    ]  # no nudges and no skip rule: nothing to wake up for; the next event asks again
    with pytest.raises(ValueError, match="metrics are needed"):
        decide(custom, state, done, now)


def test_progress_label_renders_day_n_of_7_in_both_languages(onboarding: Playbook) -> None:
    state = PlaybookState(partner_id=1, started_at=START.astimezone(UTC), tz=SHANGHAI)
    translator = Translator.load("zh")
    day1 = progress(onboarding, state, at(1, "09:00"))
    assert (day1.day, day1.total, day1.done, day1.finished) == (1, 7, 0, False)
    assert translator.texts("en")(day1.text_key, **day1.values) == "Day 1/7"
    assert translator.texts("zh")(day1.text_key, **day1.values) == "第1/7天"
    assert progress(onboarding, state, at(30, "09:00")).day == 7
    assert progress(onboarding, state, START - timedelta(hours=1)).day == 0
    send = next(d for d in decide(onboarding, state, [], at(0, "10:00")) if isinstance(d, Send))
    assert translator.texts("en")(send.text_key, **send.values).startswith("<b>Day 0/7</b>")
    assert translator.texts("zh")(send.text_key, **send.values).startswith("<b>第0/7天</b>")


def test_review_step_names_the_params_the_service_fills(onboarding: Playbook) -> None:
    state = PlaybookState(partner_id=1, started_at=START.astimezone(UTC), tz=SHANGHAI)
    _, _, decisions = simulate(onboarding, [])
    review = next(d for _, d in decisions if isinstance(d, Send) and d.step == "review")
    assert review.params == ("shares", "clicks", "leads")
    text = Translator.load("zh").texts("en")(review.text_key, **review.values, shares=5, clicks=12, leads=2)
    assert "you shared 5 times, got 12 clicks and 2 leads" in text
    assert state.finished_at is None


def test_naive_datetimes_are_refused(onboarding: Playbook) -> None:
    state = PlaybookState(partner_id=1, started_at=START.astimezone(UTC), tz=SHANGHAI)
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(onboarding, state, [], datetime(2026, 11, 27, 9, 0))


# --- property ----------------------------------------------------------------------------------------------------

EVENT_KINDS = [
    "profile_completed",
    "terms_accepted",
    "shared",
    "lead_added",
    "followed_up",
    "poster_made",
    "event_invited",
    "course_completed",
    "link_clicked",
]

events_strategy = st.lists(
    st.builds(
        lambda kind, minutes, course: Event(
            kind,
            START.astimezone(UTC) + timedelta(minutes=minutes),
            {"course": course} if kind == "course_completed" else {},
        ),
        st.sampled_from(EVENT_KINDS),
        st.integers(min_value=-600, max_value=10 * 24 * 60),
        st.sampled_from(["basics", "advanced"]),
    ),
    max_size=12,
)
times_strategy = st.lists(st.integers(min_value=0, max_value=10 * 24 * 60), min_size=1, max_size=25)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_strategy, minutes=times_strategy)
def test_never_sends_twice_and_never_more_than_two_nudges(
    onboarding: Playbook, events: list[Event], minutes: list[int]
) -> None:
    state = PlaybookState(partner_id=3, started_at=START.astimezone(UTC), tz=SHANGHAI)
    keys: Counter[str] = Counter()
    nudges: Counter[str] = Counter()
    sends: Counter[str] = Counter()
    for offset in sorted(minutes):
        now = START + timedelta(minutes=offset)
        decisions = decide(onboarding, state, events, now)
        assert decisions == decide(onboarding, state, events, now)  # deterministic
        for d in decisions:
            if isinstance(d, Send):
                sends[d.step] += 1
            elif isinstance(d, Nudge):
                nudges[d.step] += 1
                assert d.n == nudges[d.step]
            if not isinstance(d, ScheduleWake):
                keys[d.dedupe_key] += 1
            else:
                assert d.at >= now
        state = apply(state, onboarding, decisions, now)
        replay = decide(onboarding, state, events, now)  # what was applied is not asked for again
        assert [d for d in replay if not isinstance(d, ScheduleWake)] == []
    assert all(count == 1 for count in keys.values()), keys
    assert all(count == 1 for count in sends.values()), sends
    limits = {step.key: len(step.nudges) for step in onboarding.steps}
    assert all(count <= min(2, limits[step]) for step, count in nudges.items()), nudges


# --- tiered operations ---------------------------------------------------------------------------------------------


def metrics(**values: int | str) -> dict[str, int | str]:
    base: dict[str, int | str] = {"shares_7d": 0, "followups_7d": 0, "shares_30d": 0, "sales_30d": 0}
    return base | values


@pytest.mark.parametrize(
    ("values", "segment"),
    [
        ({}, "low"),
        ({"shares_30d": 2}, "low"),
        ({"shares_30d": 3}, "mid"),
        ({"shares_7d": 1}, "mid"),
        ({"followups_7d": 2}, "mid"),
        ({"sales_30d": 1}, "mid"),
        ({"shares_7d": 5}, "high"),
        ({"followups_7d": 3}, "high"),
        ({"sales_30d": 2}, "high"),
    ],
)
def test_segments_from_metrics(tiered: Rhythm, values: dict[str, int], segment: str) -> None:
    assert segment_for(tiered, metrics(**values)).key == segment


def run_rhythm(
    rhythm: Rhythm, days: int, events: list[Event], values: dict[int, dict[str, int | str]] | None = None
) -> list[tuple[str, ...]]:
    state = RhythmState(partner_id=9, tz=SHANGHAI)
    out: list[tuple[str, ...]] = []
    seen: set[str] = set()
    current = metrics()
    for day in range(days):
        current = (values or {}).get(day, current)
        for hhmm in ("08:00", "10:00", "10:30"):  # the daily run, and repeats that must not resend
            now = at(day, hhmm)
            decisions = decide_rhythm(rhythm, state, current, events, now)
            for d in decisions:
                if isinstance(d, SegmentChanged):
                    out.append((f"d{day} {hhmm}", "segment", f"{d.previous}->{d.segment}"))
                elif isinstance(d, SendTouch):
                    out.append((f"d{day} {hhmm}", "send", f"{d.segment}.{d.touch}"))
                elif isinstance(d, TouchStopped):
                    if d.dedupe_key in seen:
                        continue
                    seen.add(d.dedupe_key)
                    out.append((f"d{day} {hhmm}", "stopped", f"{d.touch} after {d.unanswered}"))
                else:
                    assert isinstance(d, WakeAt)
                    assert d.at > now
            state = apply_rhythm(state, decisions, now)
    return out


def test_low_segment_reactivation_every_three_days_stops_after_three_unanswered(tiered: Rhythm) -> None:
    stopped = [(f"d{day} 10:00", "stopped", "reactivate after 3") for day in (9, 10, 11, 12)]
    assert run_rhythm(tiered, 13, []) == [
        ("d0 08:00", "segment", "None->low"),
        ("d0 10:00", "send", "low.reactivate"),
        ("d3 10:00", "send", "low.reactivate"),
        ("d6 10:00", "send", "low.reactivate"),
        *stopped,
    ]
    # acting answers the tries: the touch resumes on its next due day, 3 days after the last send at the earliest
    answered = [on(1, "12:00", "shared"), on(8, "12:00", "lead_added")]
    assert [row for row in run_rhythm(tiered, 13, answered) if row[1] == "send"] == [
        ("d0 10:00", "send", "low.reactivate"),
        ("d3 10:00", "send", "low.reactivate"),
        ("d6 10:00", "send", "low.reactivate"),
        ("d9 10:00", "send", "low.reactivate"),
        ("d12 10:00", "send", "low.reactivate"),
    ]
    assert run_rhythm(tiered, 13, [on(3, "12:00", "link_clicked")])[4:6] == [
        ("d9 10:00", "stopped", "reactivate after 3"),
        ("d10 10:00", "stopped", "reactivate after 3"),
    ]  # a click is not an answer


def test_segment_transitions_are_decisions_and_restart_the_rhythm(tiered: Rhythm) -> None:
    changes = {0: metrics(shares_7d=6), 2: metrics(shares_7d=1), 4: metrics()}
    assert run_rhythm(tiered, 6, [], changes) == [
        ("d0 08:00", "segment", "None->high"),
        ("d0 10:00", "send", "high.weekly_challenge"),
        ("d0 10:00", "send", "high.advanced_content"),
        ("d2 08:00", "segment", "high->mid"),
        ("d2 10:00", "send", "mid.tip"),
        ("d2 10:00", "send", "mid.goal"),
        ("d4 08:00", "segment", "mid->low"),
        ("d4 10:00", "send", "low.reactivate"),
    ]


def test_rhythm_dedupe_keys_are_per_local_day(tiered: Rhythm) -> None:
    state = RhythmState(partner_id=9, tz=SHANGHAI, segment="low")
    decisions = decide_rhythm(tiered, state, metrics(), [], at(0, "10:00"))
    assert decisions[0] == SendTouch(
        "low",
        "reactivate",
        "playbooks.tiered.low.reactivate",
        (),
        tiered.segments[-1].touches[0].message.buttons,
        None,
        "rhythm:tiered_ops:9:low:reactivate:2026-11-26",
    )
    assert decisions == decide_rhythm(tiered, state, metrics(), [], at(0, "10:00"))
