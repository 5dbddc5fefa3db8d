"""The pure playbook engine: given a partner's playbook state, their recent events and `now`, what to do next.

Nothing here reads the clock, a file or the database: the service passes everything in and applies the returned
decisions (outbox rows with their dedupe keys, rewards, a wake-up job, the new state via `apply`).

Rules, for the record:
- Steps run in order. A step is *final* once done or skipped; the *current* step is the first that is not final.
- Early completion: a step whose expected action happened since the playbook started is completed at once
  (with its reward), wherever it is in the list and whether or not its message was sent; its message is then
  never sent. With `skip.if_done_before` such a step is skipped (no reward) instead of completed early.
- The current step's message is sent when its trigger holds: on join at once; `day: N` at the playbook's local
  morning of local day N after the start (or at once if the step becomes current later than that); `event: X`
  once X has happened since the start; `condition` when it holds on the given metrics (re-checked every local
  morning). A step with `skip.when` holding at that moment, or none of whose `skip.if_none_done` steps is
  done, is skipped unsent.
- A step with no expected action is complete as soon as its message is sent, and the engine moves on.
- Deadline passed without the action: nudge 1 comes `after_hours` after the deadline, nudge 2 `after_hours`
  after nudge 1; never more than the step's nudges (at most 2), one per call.
- After its last nudge a step *stays open*: a late action still completes it. With `skip.when_next_due` it is
  skipped (no reward) as soon as the next open step's trigger holds, so a day-based programme keeps moving;
  no nudge is sent once that has happened. Skipped is final: a later action does not complete it.
- All steps final: `Finish`, once (the state records `finished_at`).
- Dedupe keys are `playbook:<key>:<partner>:<step>:send|nudge:<n>|complete|skip` and `...:finish`, so
  running the engine twice on the same inputs asks for nothing twice; feed the decisions back with `apply`.
- When to call it: on joining, whenever the partner records an event, and at the `ScheduleWake` time (job id
  `playbook:<key>:<partner>:wake`, so rescheduling replaces it). An open step with no nudge left and no skip
  rule schedules no wake-up: only the partner's next event moves it. Quiet hours are the sender's business.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum

from bot.domain.rules import Condition, MetricValue
from playbooks.schema import Button, Expect, ExpectedEvent, Playbook, Reward, Step, Trigger

# --- inputs ------------------------------------------------------------------------------------------------------


class StepStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    NUDGED = "nudged"
    DONE = "done"
    SKIPPED = "skipped"


FINAL = frozenset({StepStatus.DONE, StepStatus.SKIPPED})


@dataclass(frozen=True, slots=True)
class StepState:
    status: StepStatus = StepStatus.PENDING
    sent_at: datetime | None = None
    nudges_sent: int = 0
    last_nudged_at: datetime | None = None
    completed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PlaybookState:
    """One partner's progress through one playbook, as stored. Missing steps are pending.

    `tz` is the partner's time zone (e.g. `ZoneInfo("Asia/Shanghai")`, built by the caller)."""

    partner_id: int
    started_at: datetime
    tz: tzinfo
    steps: Mapping[str, StepState] = field(default_factory=dict)
    current_step: int = 0
    finished_at: datetime | None = None

    def step(self, key: str) -> StepState:
        return self.steps.get(key, StepState())


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    occurred_at: datetime
    payload: Mapping[str, object] = field(default_factory=dict)


# --- decisions ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    step: str
    text_key: str
    params: tuple[str, ...]
    """Names the service must fill (e.g. `shares`); `values` holds those the engine knows (`day`, `total`)."""
    values: Mapping[str, int]
    buttons: tuple[Button, ...]
    media: str | None
    dedupe_key: str


@dataclass(frozen=True, slots=True)
class Nudge:
    step: str
    n: int
    text_key: str
    values: Mapping[str, int]
    dedupe_key: str


@dataclass(frozen=True, slots=True)
class Complete:
    step: str
    reward: Reward | None
    early: bool
    """The action happened before the step's message was sent (which is then never sent)."""
    at: datetime
    dedupe_key: str


@dataclass(frozen=True, slots=True)
class Skip:
    step: str
    reason: str
    """`condition`, `done_before`, `next_due` or `none_done`."""
    dedupe_key: str


@dataclass(frozen=True, slots=True)
class ScheduleWake:
    at: datetime
    job_id: str
    """Deterministic: rescheduling replaces the previous wake-up."""


@dataclass(frozen=True, slots=True)
class Finish:
    dedupe_key: str


Decision = Send | Nudge | Complete | Skip | ScheduleWake | Finish


# --- time helpers ------------------------------------------------------------------------------------------------


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware: {value!r}")
    return value


def start_date(state: PlaybookState) -> date:
    return state.started_at.astimezone(state.tz).date()


def local_at(state: PlaybookState, day: int, at: time) -> datetime:
    """The moment `at` (local wall time) on local day `day` after the start; DST is the zone's business."""
    return datetime.combine(start_date(state) + timedelta(days=day), at, tzinfo=state.tz)


def day_index(state: PlaybookState, now: datetime) -> int:
    """Local days since the start (0 on the day of joining)."""
    return (now.astimezone(state.tz).date() - start_date(state)).days


# --- the engine --------------------------------------------------------------------------------------------------


def _matches(wanted: ExpectedEvent, event: Event) -> bool:
    return event.type == wanted.event and all(event.payload.get(k) == v for k, v in wanted.payload.items())


def _first_action(expect: Expect | None, events: Sequence[Event], since: datetime, now: datetime) -> Event | None:
    """The event that fulfilled `expect` (for `all_of`, the last of the needed ones), if it is fulfilled."""
    if expect is None:
        return None
    window = sorted((e for e in events if since <= e.occurred_at <= now), key=lambda e: e.occurred_at)
    firsts = [next((e for e in window if _matches(wanted, e)), None) for wanted in expect.events]
    found = [e for e in firsts if e is not None]
    if expect.all_of is not None:
        return max(found, key=lambda e: e.occurred_at) if len(found) == len(firsts) else None
    return min(found, key=lambda e: e.occurred_at) if found else None


def _deadline(state: PlaybookState, expect: Expect, sent_at: datetime) -> datetime:
    if expect.deadline_hours is not None:
        return sent_at + timedelta(hours=expect.deadline_hours)
    assert expect.deadline_end_of_day is not None
    return local_at(state, expect.deadline_end_of_day + 1, time(0))


def next_nudge_at(state: PlaybookState, step: Step) -> datetime | None:
    """When the step's next nudge is due (None: no nudge left, or the message was not sent)."""
    current = state.step(step.key)
    if step.expect is None or current.sent_at is None or current.nudges_sent >= len(step.nudges):
        return None
    nudge = step.nudges[current.nudges_sent]
    if current.nudges_sent == 0:
        base = _deadline(state, step.expect, current.sent_at)
    else:
        base = current.last_nudged_at or current.sent_at
    return base + timedelta(hours=nudge.after_hours)


class _Run:
    """One call of `decide`: the inputs, the step states as they evolve, and the decisions so far."""

    def __init__(
        self,
        playbook: Playbook,
        state: PlaybookState,
        events: Sequence[Event],
        now: datetime,
        metrics: Mapping[str, MetricValue] | None,
    ) -> None:
        self.playbook, self.state, self.events, self.now, self.metrics = playbook, state, events, now, metrics
        self.steps = {s.key: state.step(s.key) for s in playbook.steps}
        self.decisions: list[Decision] = []

    def key(self, *parts: object) -> str:
        return ":".join(["playbook", self.playbook.key, str(self.state.partner_id), *(str(p) for p in parts)])

    def holds(self, condition: Condition) -> bool:
        if self.metrics is None:
            raise ValueError(f"metrics are needed to evaluate {condition.text!r}")
        return condition.evaluate(self.metrics)

    def values(self, step: Step) -> dict[str, int]:
        day = step.trigger.day if step.trigger.day is not None else day_index(self.state, self.now)
        return {"day": max(0, min(day, self.playbook.days)), "total": self.playbook.days}

    def complete(self, step: Step, at: datetime, *, early: bool) -> None:
        self.decisions.append(Complete(step.key, step.reward, early, at, self.key(step.key, "complete")))
        self.steps[step.key] = replace(self.steps[step.key], status=StepStatus.DONE, completed_at=at)

    def skip(self, step: Step, reason: str) -> None:
        self.decisions.append(Skip(step.key, reason, self.key(step.key, "skip")))
        self.steps[step.key] = replace(self.steps[step.key], status=StepStatus.SKIPPED, completed_at=self.now)

    def due_at(self, trigger: Trigger) -> tuple[datetime | None, datetime | None]:
        """(when the trigger held, if it holds by now; else when to look again, if known)."""
        state, now = self.state, self.now
        if trigger.on_join:
            return state.started_at, None
        if trigger.day is not None:
            at = local_at(state, trigger.day, self.playbook.morning_time)
            return (at, None) if at <= now else (None, at)
        if trigger.event is not None:
            hits = [e.occurred_at for e in self.events if e.type == trigger.event and state.started_at <= e.occurred_at]
            return (min(hits), None) if hits else (None, None)
        assert trigger.condition is not None
        if self.holds(trigger.condition):
            return now, None
        return None, local_at(state, day_index(state, now) + 1, self.playbook.morning_time)

    def complete_early(self) -> None:
        """Complete (or skip, per `if_done_before`) every open step whose action already happened."""
        for step in self.playbook.steps:
            current = self.steps[step.key]
            if current.status in FINAL:
                continue
            action = _first_action(step.expect, self.events, self.state.started_at, self.now)
            if action is None:
                continue
            if current.status is StepStatus.PENDING and step.skip.if_done_before:
                self.skip(step, "done_before")
            else:
                self.complete(step, action.occurred_at, early=current.status is StepStatus.PENDING)

    def send(self, step: Step) -> None:
        message = step.message
        send_key = self.key(step.key, "send")
        values = self.values(step)
        self.decisions.append(
            Send(step.key, message.text, message.params, values, message.buttons, message.media, send_key)
        )
        self.steps[step.key] = replace(self.steps[step.key], status=StepStatus.SENT, sent_at=self.now)

    def next_open_due(self, index: int) -> tuple[datetime | None, datetime | None]:
        for later in self.playbook.steps[index + 1 :]:
            if self.steps[later.key].status not in FINAL:
                return self.due_at(later.trigger)
        return None, None

    def open_step(self, index: int, step: Step) -> tuple[bool, datetime | None]:
        """An open step (sent, action not done): skip it, or nudge it. Returns (moved on, wake-up time)."""
        next_due, next_retry = self.next_open_due(index)
        if step.skip.when_next_due and next_due is not None:
            self.skip(step, "next_due")
            return True, None
        nudge_at = next_nudge_at(replace(self.state, steps=self.steps), step)
        if nudge_at is not None and nudge_at <= self.now:
            current = self.steps[step.key]
            n = current.nudges_sent + 1
            nudge_key = self.key(step.key, "nudge", n)
            self.decisions.append(Nudge(step.key, n, step.nudges[n - 1].text, self.values(step), nudge_key))
            self.steps[step.key] = replace(current, status=StepStatus.NUDGED, nudges_sent=n, last_nudged_at=self.now)
            nudge_at = next_nudge_at(replace(self.state, steps=self.steps), step)
        candidates = [t for t in (nudge_at, next_retry if step.skip.when_next_due else None) if t is not None]
        return False, min(candidates) if candidates else None

    def walk(self) -> None:
        """Move through the steps in order from the first open one; finish, or schedule the next look."""
        wake: datetime | None = None
        for index, step in enumerate(self.playbook.steps):
            if self.steps[step.key].status in FINAL:
                continue
            if self.steps[step.key].status is StepStatus.PENDING:
                due, retry = self.due_at(step.trigger)
                if due is None:
                    wake = retry
                    break
                if step.skip.when is not None and self.holds(step.skip.when):
                    self.skip(step, "condition")
                    continue
                needed = step.skip.if_none_done
                if needed and all(self.steps[key].status is not StepStatus.DONE for key in needed):
                    self.skip(step, "none_done")
                    continue
                self.send(step)
                if step.expect is None:
                    self.complete(step, self.now, early=False)
                    continue
            moved_on, wake = self.open_step(index, step)
            if not moved_on:
                break
        else:
            self.decisions.append(Finish(self.key("finish")))
            return
        if wake is not None:
            self.decisions.append(ScheduleWake(max(wake, self.now), self.key("wake")))


def should_start(playbook: Playbook, metrics: Mapping[str, MetricValue] | None = None) -> bool:
    """Whether a partner who just joined enters the playbook (its audience condition, if any, on their metrics)."""
    audience = playbook.start.audience
    if audience is None:
        return True
    if metrics is None:
        raise ValueError(f"metrics are needed to evaluate {audience.text!r}")
    return audience.evaluate(metrics)


def decide(
    playbook: Playbook,
    state: PlaybookState,
    events: Iterable[Event],
    now: datetime,
    metrics: Mapping[str, MetricValue] | None = None,
) -> list[Decision]:
    """What to do for this partner at `now` (see the module docstring for the rules).

    `events` are the partner's events (at least those since `state.started_at`); events after `now` are
    ignored. `metrics` are needed only by playbooks with conditions (`playbook.metrics_needed`)."""
    _aware(now, "now")
    _aware(state.started_at, "started_at")
    if state.finished_at is not None:
        return []
    history = [e for e in events if _aware(e.occurred_at, "event.occurred_at") <= now]
    run = _Run(playbook, state, history, now, metrics)
    run.complete_early()
    run.walk()
    return run.decisions


def apply(state: PlaybookState, playbook: Playbook, decisions: Iterable[Decision], now: datetime) -> PlaybookState:
    """The state after the service has carried out `decisions` at `now` (what it stores)."""
    steps = {s.key: state.step(s.key) for s in playbook.steps}
    finished_at = state.finished_at
    for decision in decisions:
        if isinstance(decision, Send):
            steps[decision.step] = replace(steps[decision.step], status=StepStatus.SENT, sent_at=now)
        elif isinstance(decision, Nudge):
            old = steps[decision.step]
            steps[decision.step] = replace(old, status=StepStatus.NUDGED, nudges_sent=decision.n, last_nudged_at=now)
        elif isinstance(decision, Complete):
            steps[decision.step] = replace(steps[decision.step], status=StepStatus.DONE, completed_at=decision.at)
        elif isinstance(decision, Skip):
            steps[decision.step] = replace(steps[decision.step], status=StepStatus.SKIPPED, completed_at=now)
        elif isinstance(decision, Finish):
            finished_at = now
    current = next((i for i, s in enumerate(playbook.steps) if steps[s.key].status not in FINAL), len(playbook.steps))
    return replace(state, steps=steps, current_step=current, finished_at=finished_at)


# --- progress ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Progress:
    """For /start7 and /me: the day label (`text_key` with `values`) and the checklist in step order."""

    day: int
    total: int
    checklist: tuple[tuple[str, bool], ...]
    finished: bool
    text_key: str = "playbooks.progress.day"

    @property
    def values(self) -> dict[str, int]:
        return {"day": self.day, "total": self.total}

    @property
    def done(self) -> int:
        return sum(done for _, done in self.checklist)


def progress(playbook: Playbook, state: PlaybookState, now: datetime) -> Progress:
    """ "Day N/7" (`playbooks.progress.day`: en "Day {day}/{total}", zh "第{day}/{total}天") and the checklist."""
    day = max(0, min(day_index(state, _aware(now, "now")), playbook.days))
    checklist = tuple((s.key, state.step(s.key).status is StepStatus.DONE) for s in playbook.steps)
    return Progress(day, playbook.days, checklist, state.finished_at is not None)
