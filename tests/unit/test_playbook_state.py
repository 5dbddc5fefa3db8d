"""Tier 1: the engine's state survives the trip through playbook_progress.state (JSON) unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.services.playbooks import dump_state, load_playbooks, load_state
from playbooks.engine import PlaybookState, StepState, StepStatus, apply, decide
from storage.models import PlaybookProgress

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


def row_of(state: PlaybookState) -> PlaybookProgress:
    return PlaybookProgress(
        partner_id=state.partner_id, playbook="onboarding_7day", started_at=state.started_at, state=dump_state(state)
    )


def test_round_trip_keeps_every_field() -> None:
    state = PlaybookState(
        partner_id=7,
        started_at=START,
        tz=SHANGHAI,
        steps={
            "welcome": StepState(StepStatus.DONE, START, 1, START + timedelta(hours=3), START + timedelta(hours=4)),
            "first_share": StepState(
                StepStatus.NUDGED, START + timedelta(days=1), 2, START + timedelta(days=1, hours=11)
            ),
            "first_lead": StepState(StepStatus.SKIPPED, completed_at=START + timedelta(days=3)),
        },
        current_step=2,
        finished_at=START + timedelta(days=7),
    )
    assert load_state(row_of(state), SHANGHAI) == state


def test_a_stored_run_decides_nothing_twice() -> None:
    """Saving and loading between two engine runs at the same moment asks for nothing again."""
    playbook = load_playbooks()["onboarding_7day"]
    state = PlaybookState(partner_id=7, started_at=START, tz=SHANGHAI)
    first = decide(playbook, state, [], START)
    assert [type(d).__name__ for d in first] == ["Send", "ScheduleWake"]
    stored = load_state(row_of(apply(state, playbook, first, START)), SHANGHAI)
    assert [type(d).__name__ for d in decide(playbook, stored, [], START)] == ["ScheduleWake"]
