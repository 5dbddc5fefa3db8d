"""Points for partners' actions (bot/plans/points.yaml), pure: the rule file's format and the scoring.

A rule gives an event type a number of points, or `payload` (the event's own `points`, as playbook rewards record
them), and optionally a daily cap: the most points one partner earns from that type in one day of the
deployment's time zone, so repeating an action all day long (anti-farming) earns no more. Events of other types
earn nothing. Points are never negative: a payload that asks for fewer than 0 earns 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.domain.events import EventType
from bot.domain.model_files import describe_errors
from bot.domain.money import CURRENCY_EXPONENTS


class PointsError(ValueError):
    """A points file that does not validate; one line per problem, naming the file and the field."""

    def __init__(self, issues: list[str]) -> None:
        self.issues = issues
        super().__init__("\n".join(issues))


class PointsRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    points: Annotated[int, Field(ge=0, le=10_000)] | Literal["payload"]
    daily_cap: Annotated[int, Field(ge=1, le=1_000_000)] | None = None


class PointsRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    gmv_currency: str
    rules: dict[str, PointsRule]

    @field_validator("gmv_currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in CURRENCY_EXPONENTS:
            raise ValueError(f"unknown currency {value!r} (known: {', '.join(CURRENCY_EXPONENTS)})")
        return value

    @field_validator("rules")
    @classmethod
    def _known_types(cls, value: dict[str, PointsRule]) -> dict[str, PointsRule]:
        known = {t.value for t in EventType}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown event types: {', '.join(unknown)}")
        return value

    def earned(self, event_type: str, payload: Mapping[str, Any]) -> int:
        """Points one event is worth before any daily cap."""
        rule = self.rules.get(event_type)
        if rule is None:
            return 0
        if rule.points == "payload":
            value = payload.get("points")
            return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
        return rule.points

    def cap(self, event_type: str) -> int | None:
        rule = self.rules.get(event_type)
        return None if rule is None else rule.daily_cap


def capped(points: int, cap: int | None, earned_today: int) -> int:
    """What an event worth `points` adds when the partner already earned `earned_today` from its type today."""
    if cap is None:
        return points
    return max(0, min(points, cap - earned_today))


def parse_points(text: str, source: str = "points.yaml") -> PointsRules:
    """The rules of a points file; `PointsError` lists every problem."""
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:  # a date like 2026-02-30; too deep nesting
        raise PointsError([f"{source}: not YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise PointsError([f"{source}: (top level): expected a mapping with gmv_currency and rules"])
    try:
        return PointsRules.model_validate(data)
    except ValidationError as exc:
        raise PointsError(describe_errors(exc, source, data, ())) from None
