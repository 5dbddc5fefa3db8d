"""Tier 1: the pure helpers of the tiered-operations service (bot/services/rhythm.py): the daily run's segment change
is the engine's own decision, touch send times survive storage, touch buttons render as the 7-day start's, and the
shipped rhythm loads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.i18n import Translator
from bot.services.rhythm import TIERED, dump_touches, load_rhythms, load_touches, segment_change, touch_markup
from playbooks.rhythm import RhythmState, SegmentChanged, TouchState, decide_rhythm
from playbooks.schema import Rhythm
from storage.models import RhythmProgress

ZONES = [ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York"), ZoneInfo("UTC"), ZoneInfo("Pacific/Kiritimati")]
METRICS_FOR = {
    "high": {"shares_7d": 5, "followups_7d": 0, "shares_30d": 5, "sales_30d": 0},
    "mid": {"shares_7d": 1, "followups_7d": 0, "shares_30d": 1, "sales_30d": 0},
    "low": {"shares_7d": 0, "followups_7d": 0, "shares_30d": 0, "sales_30d": 0},
}


@pytest.fixture(scope="module")
def tiered() -> Rhythm:
    return load_rhythms()[TIERED]


@given(
    partner_id=st.integers(min_value=1, max_value=10**12),
    zone=st.sampled_from(ZONES),
    minutes=st.integers(min_value=0, max_value=400 * 24 * 60),
    previous=st.sampled_from([None, "high", "mid", "low"]),
    segment=st.sampled_from(["high", "mid", "low"]),
)
def test_the_daily_runs_change_is_the_engines_decision(
    tiered: Rhythm, partner_id: int, zone: ZoneInfo, minutes: int, previous: str | None, segment: str
) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    state = RhythmState(partner_id, zone, previous)
    decided = [d for d in decide_rhythm(tiered, state, METRICS_FOR[segment], (), now) if isinstance(d, SegmentChanged)]
    if previous == segment:
        assert decided == []
    else:
        assert decided == [segment_change(tiered, state, segment, now)]


@pytest.mark.parametrize(
    "touches",
    [
        {},
        {"reactivate": TouchState((datetime(2026, 11, 25, 2, tzinfo=UTC),))},
        {
            "tip": TouchState((datetime(2026, 11, 25, 2, tzinfo=UTC), datetime(2026, 11, 28, 2, 0, 1, tzinfo=UTC))),
            "goal": TouchState((datetime(2026, 11, 25, 2, tzinfo=UTC),)),
        },
    ],
)
def test_touch_send_times_survive_storage(touches: dict[str, TouchState]) -> None:
    state = RhythmState(1, ZONES[0], "mid", datetime(2026, 11, 25, tzinfo=UTC), touches)
    row = RhythmProgress(partner_id=1, rhythm=TIERED, touches=dump_touches(state))
    assert load_touches(row) == touches
    assert all(at.tzinfo is not None for touch in load_touches(row).values() for at in touch.sent)


def test_touch_buttons_are_command_buttons(tiered: Rhythm) -> None:
    t = Translator.load("zh").texts("en")
    high = tiered.segments[0]
    assert touch_markup(high.touches[0].message.buttons, t) == {
        "inline_keyboard": [[{"text": t("playbooks.buttons.today"), "callback_data": "pbk:cmd:today"}]]
    }
    assert touch_markup((), t) is None


def test_the_shipped_rhythm_has_the_documented_segments(tiered: Rhythm) -> None:
    assert [s.key for s in tiered.segments] == ["high", "mid", "low"]
    assert tiered.metrics_needed == {"shares_7d", "followups_7d", "shares_30d", "sales_30d"}
    low = tiered.segments[-1].touches[0]
    assert (low.every_days, low.stop_after_unanswered) == (3, 3)
