"""Tiered operations (分层运营): which activity segment a partner is in, and the touches their segment gets.

Pure like `playbooks.engine`: the service passes the rhythm, the partner's rhythm state, their metrics (for the
segments' conditions), their recent events and `now`, and applies the decisions.

Rules, for the record:
- The segment is the first whose `when` holds on the metrics; the last segment takes everyone else. A change
  is a `SegmentChanged` decision (the service records it as an event, so leads and admins see who slipped) and
  starts the new segment's touches afresh.
- A touch goes out at the rhythm's local `send_at` time, at most once every `every_days` local days.
- A touch with `expect` counts its *unanswered tries*: sends after the partner's latest expected event. With
  `stop_after_unanswered: 3` it stops after 3 such tries in a row; an expected event (the partner acted)
  answers them all, and the touch resumes on its next due day.
- Dedupe keys are `rhythm:<key>:<partner>:<segment>:<touch>:<local date>`, so a second run the same day
  asks for nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo

from bot.domain.rules import MetricValue
from playbooks.engine import Event
from playbooks.schema import Button, ExpectedEvent, Rhythm, Segment, Touch

KEEP_SENDS = 100
"""Sends remembered per touch (enough to count unanswered tries)."""


@dataclass(frozen=True, slots=True)
class TouchState:
    sent: tuple[datetime, ...] = ()
    """When the touch was sent in the current segment, oldest first."""


@dataclass(frozen=True, slots=True)
class RhythmState:
    partner_id: int
    tz: tzinfo
    segment: str | None = None
    segment_since: datetime | None = None
    touches: Mapping[str, TouchState] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SegmentChanged:
    previous: str | None
    segment: str
    dedupe_key: str


@dataclass(frozen=True, slots=True)
class SendTouch:
    segment: str
    touch: str
    text_key: str
    params: tuple[str, ...]
    buttons: tuple[Button, ...]
    media: str | None
    dedupe_key: str


@dataclass(frozen=True, slots=True)
class TouchStopped:
    """The touch is not sent because its last tries went unanswered (for admins' statistics; no message)."""

    segment: str
    touch: str
    unanswered: int
    dedupe_key: str
    """Per local day: every run that day repeats the same decision."""


@dataclass(frozen=True, slots=True)
class WakeAt:
    at: datetime
    job_id: str


RhythmDecision = SegmentChanged | SendTouch | TouchStopped | WakeAt


def segment_for(rhythm: Rhythm, metrics: Mapping[str, MetricValue]) -> Segment:
    """The first segment whose condition holds; the last one otherwise."""
    for segment in rhythm.segments:
        if segment.when is None or segment.when.evaluate(metrics):
            return segment
    raise AssertionError("the schema guarantees a last segment without a condition")


def _matches(wanted: tuple[ExpectedEvent, ...], event: Event) -> bool:
    return any(event.type == w.event and all(event.payload.get(k) == v for k, v in w.payload.items()) for w in wanted)


def unanswered_tries(touch: Touch, sent: Iterable[datetime], events: Iterable[Event], now: datetime) -> int:
    """Sends of `touch` after the partner's latest expected event (up to `now`)."""
    answers = [e.occurred_at for e in events if e.occurred_at <= now and _matches(touch.expect, e)]
    latest = max(answers, default=None)
    return sum(1 for at in sent if latest is None or at > latest)


def decide_rhythm(
    rhythm: Rhythm,
    state: RhythmState,
    metrics: Mapping[str, MetricValue],
    events: Iterable[Event],
    now: datetime,
) -> list[RhythmDecision]:
    """Decisions for one partner at `now` (see the module docstring)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    history = [e for e in events if e.occurred_at <= now]
    today = now.astimezone(state.tz).date()
    prefix = f"rhythm:{rhythm.key}:{state.partner_id}"
    segment = segment_for(rhythm, metrics)
    decisions: list[RhythmDecision] = []
    touches = state.touches
    if segment.key != state.segment:
        decisions.append(SegmentChanged(state.segment, segment.key, f"{prefix}:segment:{today}:{segment.key}"))
        touches = {}

    def at(day: date) -> datetime:
        return datetime.combine(day, rhythm.send_time, tzinfo=state.tz)

    wakes: list[datetime] = []
    for touch in segment.touches:
        sent = touches.get(touch.key, TouchState()).sent
        if sent:
            next_day = sent[-1].astimezone(state.tz).date() + timedelta(days=touch.every_days)
            if next_day > today:
                wakes.append(at(next_day))
                continue
        if now < at(today):
            wakes.append(at(today))
            continue
        if touch.stop_after_unanswered is not None:
            unanswered = unanswered_tries(touch, sent, history, now)
            if unanswered >= touch.stop_after_unanswered:
                stop_key = f"{prefix}:{segment.key}:{touch.key}:{today}:stopped"
                decisions.append(TouchStopped(segment.key, touch.key, unanswered, stop_key))
                continue
        message = touch.message
        decisions.append(
            SendTouch(
                segment.key,
                touch.key,
                message.text,
                message.params,
                message.buttons,
                message.media,
                f"{prefix}:{segment.key}:{touch.key}:{today}",
            )
        )
        wakes.append(at(today + timedelta(days=touch.every_days)))
    # the segment is computed again every day in any case
    wakes.append(at(today + timedelta(days=1)))
    decisions.append(WakeAt(min(wakes), f"{prefix}:wake"))
    return decisions


def apply_rhythm(state: RhythmState, decisions: Iterable[RhythmDecision], now: datetime) -> RhythmState:
    """The state after the service has carried out `decisions` at `now`."""
    segment, since, touches = state.segment, state.segment_since, dict(state.touches)
    for decision in decisions:
        if isinstance(decision, SegmentChanged):
            segment, since, touches = decision.segment, now, {}
        elif isinstance(decision, SendTouch):
            old = touches.get(decision.touch, TouchState()).sent
            touches[decision.touch] = TouchState((*old, now)[-KEEP_SENDS:])
    return replace(state, segment=segment, segment_since=since, touches=touches)
