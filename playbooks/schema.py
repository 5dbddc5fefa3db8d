"""The playbook file format: pydantic models for `playbooks/*.yaml`, validated at start-up and in a test.

A file is either a *playbook* (`kind: playbook`: ordered steps, e.g. the new-partner 7-day start) or a *rhythm*
(`kind: rhythm`: activity segments with recurring touches, e.g. tiered operations). Parsing takes the YAML text
and the names it may refer to (`Vocabulary`: known text keys and event types) as arguments; reading files is
`playbooks.loader`'s job. Every model is strict and forbids unknown keys.

Errors are `PlaybookError`, one line per problem naming the file, the step and the field, e.g.
``onboarding_7day.yaml: steps[2] (first_lead): expect.any_of[0].event: unknown event type 'lead_add'``.

Conditions (a `condition` trigger, a `skip.when`, an audience, a segment's `when`) are rule-engine expressions
over the metric catalogue of `bot.domain.rules` (`Condition`): an unknown metric or a syntax error is an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import time
from typing import Annotated, Literal, Self

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from bot.domain.events import EventType
from bot.domain.model_files import FieldError, as_tuples, describe_errors, load_yaml
from bot.domain.rules import Condition


class PlaybookError(ValueError):
    """A playbook file that does not validate; each line names the file, the step and the field."""

    def __init__(self, issues: Iterable[str]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(self.issues))


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """What a playbook may refer to: text keys present in the locale files, and event types.

    Event types are `EventType` plus `extra_event_types` (types a later change adds to the catalogue)."""

    text_keys: frozenset[str]
    extra_event_types: frozenset[str] = field(default_factory=frozenset)

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(e.value for e in EventType) | self.extra_event_types


def _vocabulary(info: ValidationInfo) -> Vocabulary:
    context = info.context
    if not isinstance(context, Vocabulary):
        raise ValueError("internal: playbooks are validated with a Vocabulary as context")
    return context


def _known_text_key(value: str, info: ValidationInfo) -> str:
    if value not in _vocabulary(info).text_keys:
        raise ValueError(f"unknown text key {value!r} (not in the locale files)")
    return value


def _known_event_type(value: str, info: ValidationInfo) -> str:
    known = _vocabulary(info).event_types
    if value not in known:
        raise ValueError(f"unknown event type {value!r} (see bot.domain.events.EventType)")
    return value


_NAME = r"^[a-z][a-z0-9_]*$"
Name = Annotated[str, StringConstraints(pattern=_NAME, max_length=40)]
TextKey = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.]+$"), AfterValidator(_known_text_key)]
EventName = Annotated[str, AfterValidator(_known_event_type)]
ParamName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
Hours = Annotated[int, Field(ge=0, le=24 * 30, strict=True)]


def _local_time(value: str) -> str:
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        raise ValueError("a local time is written 'HH:MM' in quotes, e.g. '09:00'")
    return value


def _as_time(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


LocalTime = Annotated[str, AfterValidator(_local_time)]


def _relative_path(value: str) -> str:
    if ".." in value.split("/"):
        raise ValueError("a media path is relative to the media folder and may not contain '..'")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Names(_Model):
    zh: Annotated[str, StringConstraints(min_length=1)]
    en: Annotated[str, StringConstraints(min_length=1)]


class Action(_Model):
    """What a button does: run a bot command, open a URL, ask for the phone through Telegram's contact button,
    or a named callback the playbook service handles (e.g. `terms_accept`). Exactly one is set."""

    command: Annotated[str, StringConstraints(pattern=r"^/[a-z][a-z0-9_]*( [^\s].*)?$")] | None = None
    url: Annotated[str, StringConstraints(pattern=r"^https://\S+$")] | None = None
    contact: Literal[True] | None = None
    callback: Name | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if sum(v is not None for v in (self.command, self.url, self.contact, self.callback)) != 1:
            raise ValueError("an action is exactly one of command, url, contact or callback")
        return self


class Button(_Model):
    text: TextKey
    action: Action


class Message(_Model):
    """A step's message. `params` are values the service must fill (e.g. `shares`); `day` and `total` (the
    "Day N/7" progress) are always given by the engine."""

    text: TextKey
    media: Annotated[str, StringConstraints(pattern=r"^\w[\w./-]*$"), AfterValidator(_relative_path)] | None = None
    buttons: tuple[Button, ...] = Field(default=(), max_length=6)
    params: tuple[ParamName, ...] = ()


class Trigger(_Model):
    """When a step's message is due. Exactly one of: on join, local day N after the start (at the playbook's
    local morning, or at once if the step becomes current later), an event type, a metric condition."""

    on_join: Literal[True] | None = None
    day: Annotated[int, Field(ge=0, le=366, strict=True)] | None = None
    event: EventName | None = None
    condition: Condition | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if sum(v is not None for v in (self.on_join, self.day, self.event, self.condition)) != 1:
            raise ValueError("a trigger is exactly one of on_join, day, event or condition")
        return self


class ExpectedEvent(_Model):
    """An event type, and optionally payload values it must carry (each key must equal the given value)."""

    event: EventName
    payload: dict[str, str | int | bool] = Field(default_factory=dict)


class Expect(_Model):
    """The action a step asks for: any one of `any_of`, or every one of `all_of` (exactly one list is set), by
    a deadline: `deadline_hours` after the message was sent, or the end of local day `deadline_end_of_day`
    after the start (exactly one deadline is set)."""

    any_of: tuple[ExpectedEvent, ...] | None = Field(default=None, min_length=1)
    all_of: tuple[ExpectedEvent, ...] | None = Field(default=None, min_length=1)
    deadline_hours: Annotated[int, Field(ge=1, le=24 * 30, strict=True)] | None = None
    deadline_end_of_day: Annotated[int, Field(ge=0, le=366, strict=True)] | None = None

    @model_validator(mode="after")
    def _one_each(self) -> Self:
        if (self.any_of is None) == (self.all_of is None):
            raise ValueError("set exactly one of any_of or all_of")
        if (self.deadline_hours is None) == (self.deadline_end_of_day is None):
            raise ValueError("set exactly one of deadline_hours or deadline_end_of_day")
        return self

    @property
    def events(self) -> tuple[ExpectedEvent, ...]:
        return self.any_of or self.all_of or ()


class Nudge(_Model):
    """A reminder: the first comes `after_hours` after the deadline, the second `after_hours` after the first."""

    text: TextKey
    after_hours: Hours


class Reward(_Model):
    """What completing the step earns: a badge (by name), points, or both."""

    badge: Name | None = None
    points: Annotated[int, Field(ge=1, le=100_000, strict=True)] | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.badge is None and self.points is None:
            raise ValueError("a reward is a badge, points or both")
        return self


class SkipRule(_Model):
    """When a step is skipped (no reward) instead of sent or left open.

    - `when`: a metric condition checked when the step becomes current; if true, it is skipped unsent;
    - `if_done_before`: the action happened (since the start) before the message was sent: skip it instead of
      completing it early (which is the default);
    - `when_next_due`: an open step (sent, maybe nudged, action not done) is skipped once the next open step's
      trigger holds, so the programme keeps moving. Without it the step stays open and blocks the later steps
      until the action happens;
    - `if_none_done`: step keys; when the step becomes current and none of them is done, it is skipped unsent
      (the 7-day celebration is for partners who did something)."""

    when: Condition | None = None
    if_done_before: bool = False
    when_next_due: bool = False
    if_none_done: tuple[Name, ...] = ()


class Step(_Model):
    key: Name
    trigger: Trigger
    message: Message
    expect: Expect | None = None
    """No expected action: the step is complete as soon as its message is sent."""
    nudges: tuple[Nudge, ...] = Field(default=(), max_length=2)
    reward: Reward | None = None
    skip: SkipRule = SkipRule()

    @model_validator(mode="after")
    def _nudges_need_expect(self) -> Self:
        if self.nudges and self.expect is None:
            raise ValueError("nudges need an expected action (expect) to wait for")
        return self


class Start(_Model):
    """Who starts the playbook, and when: on joining, for partners matching `audience` (everyone if unset)."""

    at: Literal["join"]
    audience: Condition | None = None


class Playbook(_Model):
    kind: Literal["playbook"]
    key: Name
    name: Names
    start: Start
    days: Annotated[int, Field(ge=1, le=366, strict=True)]
    """The programme's length for the progress line ("Day N/7")."""
    morning: LocalTime = "09:00"
    """The local time at which `day: N` steps are sent."""
    steps: tuple[Step, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        seen: set[str] = set()
        for index, step in enumerate(self.steps):
            if step.key in seen:
                raise FieldError(("steps", index, "key"), f"step key {step.key!r} is used twice")
            unknown = [key for key in step.skip.if_none_done if key not in seen]
            if unknown:
                message = f"not an earlier step: {', '.join(unknown)}"
                raise FieldError(("steps", index, "skip", "if_none_done"), message)
            seen.add(step.key)
        return self

    @property
    def morning_time(self) -> time:
        return _as_time(self.morning)

    @property
    def metrics_needed(self) -> frozenset[str]:
        """Metrics the caller must pass to the engine (for condition triggers and skip conditions)."""
        needed: set[str] = set(self.start.audience.metrics) if self.start.audience else set()
        for step in self.steps:
            for condition in (step.trigger.condition, step.skip.when):
                if condition is not None:
                    needed |= condition.metrics
        return frozenset(needed)


# --- rhythms (tiered operations) ---------------------------------------------------------------------------------


class Touch(_Model):
    """A recurring message of a segment: at most once every `every_days` local days, at the rhythm's send time.

    With `expect`, a try is answered when one of its events happens after it; after `stop_after_unanswered`
    tries in a row without an answer the touch stops, until the partner acts or changes segment."""

    key: Name
    message: Message
    every_days: Annotated[int, Field(ge=1, le=366, strict=True)]
    expect: tuple[ExpectedEvent, ...] = ()
    stop_after_unanswered: Annotated[int, Field(ge=1, le=100, strict=True)] | None = None

    @model_validator(mode="after")
    def _stop_needs_expect(self) -> Self:
        if self.stop_after_unanswered is not None and not self.expect:
            raise ValueError("stop_after_unanswered needs the events that answer a try (expect)")
        return self


class Segment(_Model):
    key: Name
    name: Names
    when: Condition | None = None
    """Checked in order, first match wins; the last segment has no `when` and takes everyone else."""
    touches: tuple[Touch, ...] = ()


class Rhythm(_Model):
    kind: Literal["rhythm"]
    key: Name
    name: Names
    send_at: LocalTime = "10:00"
    segments: tuple[Segment, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        last = len(self.segments) - 1
        for index, segment in enumerate(self.segments):
            if index == last and segment.when is not None:
                message = f"the last segment ({segment.key}) takes everyone else: it has no `when`"
                raise FieldError(("segments", index, "when"), message)
            if index < last and segment.when is None:
                raise FieldError(("segments", index, "when"), "required (only the last segment has no `when`)")
        keys = [s.key for s in self.segments]
        if len(set(keys)) != len(keys):
            raise ValueError("segment keys must be unique")
        return self

    @property
    def send_time(self) -> time:
        return _as_time(self.send_at)

    @property
    def metrics_needed(self) -> frozenset[str]:
        return frozenset().union(*(s.when.metrics for s in self.segments if s.when is not None))


# --- parsing -----------------------------------------------------------------------------------------------------


def parse_playbook_file(text: str, source: str, vocabulary: Vocabulary) -> Playbook | Rhythm:
    """Validate one YAML file's text (`source` is its name, for messages)."""
    try:
        data = load_yaml(text)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:  # a date like 2026-02-30; too deep nesting
        raise PlaybookError([f"{source}: not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise PlaybookError([f"{source}: a playbook file is a mapping (kind, key, name, ...)"])
    kind = data.get("kind")
    model: type[Playbook] | type[Rhythm]
    if kind == "playbook":
        model = Playbook
    elif kind == "rhythm":
        model = Rhythm
    else:
        raise PlaybookError([f"{source}: kind: must be 'playbook' or 'rhythm', got {kind!r}"])
    try:
        return model.model_validate(as_tuples(data), context=vocabulary)
    except ValidationError as exc:
        raise PlaybookError(describe_errors(exc, source, data, ("steps", "segments"))) from None
