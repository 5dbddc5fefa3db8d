"""Monthly sprints (月度冲刺): the rules, as pure functions of plain data.

- **Input.** An admin types one line, `<title> | <metric> | <target> | <first day> | <last day> | <prizes>
  [| <audience>]`, with dates in their own time zone: the sprint runs from the first day 00:00 to the last day
  23:59:59 local, stored as the UTC instants [starts_at, ends_at) (ends_at is the next day's local midnight).
- **Ranking** is standard competition ranking ("1224"): equal values share a rank and the next rank skips as
  many places as were shared, so values 9, 9, 5 rank 1, 1, 3. Within a rank, partners are listed by id (join
  order), which decides nothing.
- **Winners.** The prizes go to the top three *ranks* (ties share them, so 1, 1, 3 are all winners and so are
  1, 2, 2, 2) and, besides, to everyone who reached the individual target. A value of 0 never wins: an empty
  sprint has no winners.
- **Stages.** The kickoff at the start, a nudge at the midpoint, a final push 48 hours before the end, and the
  results at the end. A final push that would not come after the midpoint (a sprint shorter than four days) is
  left out. Each stage is announced once; when a later stage is already due (the bot was down, an admin ended the
  sprint early), the earlier ones are skipped, never sent late. The kickoff is the exception while the sprint
  runs: a late kickoff (a sprint created after its first day's midpoint) goes out and stands in for the nudges
  due with it; only the results make it pointless.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import InvalidOperation
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.domain.errors import UsageError
from bot.domain.money import MoneyError, parse_money

TITLE_MAX = 80
PRIZES_MAX = 500
MAX_DAYS = 92
"""The longest sprint, first to last day (a quarter); a monthly sprint is 28–31."""
TOP_RANKS = 3
FINAL_PUSH = timedelta(hours=48)
BAR_WIDTH = 10
SEGMENTS = ("high", "mid", "low")


class SprintInputError(UsageError):
    """A part of a `/sprint new` line that could not be understood."""


class Metric(StrEnum):
    """What a sprint counts, per participant, inside its window."""

    SHARES = "shares"
    LEADS = "leads"
    FOLLOWUPS = "followups"
    ORDERS = "orders"
    GMV = "gmv"
    RECRUITS = "recruits"

    @property
    def is_money(self) -> bool:
        return self is Metric.GMV


_METRIC_NAMES: dict[str, Metric] = {
    "shares": Metric.SHARES,
    "share": Metric.SHARES,
    "分享": Metric.SHARES,
    "leads": Metric.LEADS,
    "lead": Metric.LEADS,
    "new_leads": Metric.LEADS,
    "新客户": Metric.LEADS,
    "潜客": Metric.LEADS,
    "followups": Metric.FOLLOWUPS,
    "followup": Metric.FOLLOWUPS,
    "follow-ups": Metric.FOLLOWUPS,
    "跟进": Metric.FOLLOWUPS,
    "orders": Metric.ORDERS,
    "order": Metric.ORDERS,
    "订单": Metric.ORDERS,
    "gmv": Metric.GMV,
    "sales": Metric.GMV,
    "业绩": Metric.GMV,
    "销售额": Metric.GMV,
    "recruits": Metric.RECRUITS,
    "recruit": Metric.RECRUITS,
    "招募": Metric.RECRUITS,
}


class Stage(StrEnum):
    KICKOFF = "kickoff"
    MID = "mid"
    FINAL = "final"
    RESULTS = "results"


STAGES: tuple[Stage, ...] = (Stage.KICKOFF, Stage.MID, Stage.FINAL, Stage.RESULTS)


@dataclass(frozen=True, slots=True)
class Audience:
    """Who takes part: `everyone`, `level:<level>`, `team:<invite code of the lead>` (the lead and their whole
    downline) or `segment:<high|mid|low>`."""

    kind: str
    value: str = ""

    @property
    def label(self) -> str:
        return self.kind if self.kind == "everyone" else f"{self.kind}:{self.value}"

    @classmethod
    def stored(cls, text: str) -> Audience:
        kind, _, value = text.partition(":")
        return cls(kind, value)


EVERYONE = Audience("everyone")


@dataclass(frozen=True, slots=True)
class SprintSpec:
    title: str
    metric: Metric
    target: int
    """A count, or minor units of `currency` for GMV."""
    first_day: date
    last_day: date
    starts_at: datetime
    ends_at: datetime
    """Exclusive: the local midnight after `last_day`, in UTC."""
    prizes: str
    audience: Audience


def split_fields(text: str | None) -> list[str]:
    return [part.strip() for part in re.split(r"[|｜]", text or "")]


def clean_text(text: str) -> str:
    """Free text with control characters turned into spaces and runs of spaces collapsed."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def parse_metric(text: str) -> Metric:
    found = _METRIC_NAMES.get(text.strip().lower())
    if found is None:
        raise SprintInputError("sprints.error.metric", value=text)
    return found


def parse_target(text: str, metric: Metric, currency: str) -> int:
    """A positive whole count, or for GMV a positive amount in the plan's currency, as minor units."""
    value = text.strip().replace(",", "")
    if metric.is_money:
        try:
            minor = parse_money(value, currency).minor
        except (MoneyError, InvalidOperation):
            raise SprintInputError("sprints.error.target_money", value=text) from None
    else:
        if not value.isascii() or not value.isdigit():
            raise SprintInputError("sprints.error.target", value=text)
        minor = int(value)
    if minor <= 0 or minor > 10**12:
        raise SprintInputError("sprints.error.target_money" if metric.is_money else "sprints.error.target", value=text)
    return minor


_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")


def parse_day(text: str) -> date:
    found = _DATE.match(text.strip())
    if not found:
        raise SprintInputError("sprints.error.date", value=text)
    try:
        return date(*(int(g) for g in found.groups()))
    except ValueError:
        raise SprintInputError("sprints.error.date", value=text) from None


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of `day` in `zone`, in UTC (a midnight skipped by a clock change moves forward)."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def window(first_day: date, last_day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[first day 00:00, the day after the last day 00:00) local, in UTC."""
    return local_midnight(first_day, zone), local_midnight(last_day + timedelta(days=1), zone)


def parse_audience(text: str, levels: Sequence[str]) -> Audience:
    raw = text.strip()
    if raw.lower() in ("", "everyone", "all", "所有人", "全部"):
        return EVERYONE
    kind, sep, value = raw.partition(":")
    kind, value = kind.strip().lower(), value.strip()
    if sep and kind == "level" and value.lower() in levels:
        return Audience("level", value.lower())
    if sep and kind == "segment" and value.lower() in SEGMENTS:
        return Audience("segment", value.lower())
    if sep and kind == "team" and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value):
        return Audience("team", value)
    raise SprintInputError("sprints.error.audience", value=text, levels=", ".join(levels))


def parse_sprint(text: str | None, *, today: date, zone: ZoneInfo, currency: str, levels: Sequence[str]) -> SprintSpec:
    """`<title> | <metric> | <target> | <first day> | <last day> | <prizes> [| <audience>]`, dates in `zone`.

    The first day may be today (the sprint is then already running) but not earlier; the last day is on or after
    the first and at most MAX_DAYS days later."""
    fields = split_fields(text)
    if len(fields) not in (6, 7):
        raise SprintInputError("sprints.usage")
    fields += [""] * (7 - len(fields))
    title = clean_text(fields[0])
    if not title or len(title) > TITLE_MAX:
        raise SprintInputError("sprints.error.title", limit=TITLE_MAX)
    metric = parse_metric(fields[1])
    target = parse_target(fields[2], metric, currency)
    first_day, last_day = parse_day(fields[3]), parse_day(fields[4])
    if first_day < today:
        raise SprintInputError("sprints.error.past", value=fields[3])
    if last_day < first_day:
        raise SprintInputError("sprints.error.order", first=fields[3], last=fields[4])
    if (last_day - first_day).days + 1 > MAX_DAYS:
        raise SprintInputError("sprints.error.too_long", days=MAX_DAYS)
    prizes = clean_text(fields[5])
    if not prizes or len(prizes) > PRIZES_MAX:
        raise SprintInputError("sprints.error.prizes", limit=PRIZES_MAX)
    starts_at, ends_at = window(first_day, last_day, zone)
    return SprintSpec(
        title=title,
        metric=metric,
        target=target,
        first_day=first_day,
        last_day=last_day,
        starts_at=starts_at,
        ends_at=ends_at,
        prizes=prizes,
        audience=parse_audience(fields[6], levels),
    )


def parse_sprint_id(text: str | None) -> int:
    value = (text or "").strip().lstrip("#")
    if not value.isascii() or not value.isdigit() or len(value) > 12:
        raise SprintInputError("sprints.usage")
    return int(value)


# -- ranking ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Standing:
    partner_id: int
    value: int
    rank: int
    """Standard competition rank: 1, 1, 3…"""


def rank(values: Mapping[int, int]) -> list[Standing]:
    """Every participant (partner id → value) with their rank, best first; ties by id."""
    ordered = sorted(values.items(), key=lambda item: (-item[1], item[0]))
    standings: list[Standing] = []
    for position, (partner_id, value) in enumerate(ordered, start=1):
        if standings and standings[-1].value == value:
            standings.append(Standing(partner_id, value, standings[-1].rank))
        else:
            standings.append(Standing(partner_id, value, position))
    return standings


@dataclass(frozen=True, slots=True)
class Gap:
    amount: int
    """How much more the partner needs to draw level with the rank above."""
    rank: int
    """That rank."""


def gap_to_next(standings: Sequence[Standing], partner_id: int) -> Gap | None:
    """The distance to the next better rank ("3 shares behind #36"); None at rank 1 or when not listed."""
    own = next((s for s in standings if s.partner_id == partner_id), None)
    if own is None or own.rank == 1:
        return None
    above = max((s for s in standings if s.value > own.value), key=lambda s: s.rank)
    return Gap(above.value - own.value, above.rank)


class Board:
    """Every participant's rank and gap without sorting them all: built from the non-zero values (partner id →
    value) and the number of participants (the others have 0). Agrees with `rank` and `gap_to_next`."""

    def __init__(self, values: Mapping[int, int], participants: int) -> None:
        self._values = {p: v for p, v in values.items() if v}
        self._sorted = sorted(self._values.values())
        self.participants = max(participants, len(self._values))

    def value(self, partner_id: int) -> int:
        return self._values.get(partner_id, 0)

    def rank_of(self, value: int) -> int:
        """1 + how many participants have more."""
        return 1 + len(self._sorted) - bisect_right(self._sorted, value)

    def standing(self, partner_id: int) -> Standing:
        value = self.value(partner_id)
        return Standing(partner_id, value, self.rank_of(value))

    def gap(self, partner_id: int) -> Gap | None:
        value = self.value(partner_id)
        above = bisect_right(self._sorted, value)
        if above == len(self._sorted):
            return None
        return Gap(self._sorted[above] - value, self.rank_of(self._sorted[above]))


def winners(standings: Sequence[Standing], target: int, top: int = TOP_RANKS) -> list[Standing]:
    """Who gets a prize: the top `top` ranks, and everyone who reached `target`; never a value of 0."""
    return [s for s in standings if s.value > 0 and (s.rank <= top or s.value >= target)]


def progress_bar(value: int, target: int, width: int = BAR_WIDTH) -> str:
    """`▓▓▓▓░░░░░░ 40%`: full blocks floor the share, the percentage is floored too, so 100% means done."""
    share = min(value, target) * width // target if target > 0 else width
    percent = value * 100 // target if target > 0 else 100
    return "▓" * share + "░" * (width - share) + f" {percent}%"


# -- stages ----------------------------------------------------------------------------------------------------


def stage_times(starts_at: datetime, ends_at: datetime) -> dict[Stage, datetime]:
    """When each stage is due; the final push is left out unless it comes after the midpoint."""
    middle = starts_at + (ends_at - starts_at) / 2
    times = {Stage.KICKOFF: starts_at, Stage.MID: middle}
    if ends_at - FINAL_PUSH > middle:
        times[Stage.FINAL] = ends_at - FINAL_PUSH
    times[Stage.RESULTS] = ends_at
    return times


@dataclass(frozen=True, slots=True)
class StageDecision:
    announce: Stage
    skip: tuple[Stage, ...]
    """Earlier stages never announced, to mark done without a message."""


def due_stage(starts_at: datetime, ends_at: datetime, done: Sequence[Stage], now: datetime) -> StageDecision | None:
    """The stage to announce now: the latest one due and not done (the earlier undone ones are skipped), or the
    kickoff when it is due and the results are not. None when nothing is due."""
    times = stage_times(starts_at, ends_at)
    due = [stage for stage in STAGES if stage in times and times[stage] <= now and stage not in done]
    if not due:
        return None
    latest = due[-1]
    if Stage.KICKOFF in due and latest is not Stage.RESULTS:
        return StageDecision(Stage.KICKOFF, tuple(due[1:]))  # a late kickoff stands in for the nudges due with it
    skip = tuple(s for s in STAGES if s in times and s not in done and STAGES.index(s) < STAGES.index(latest))
    return StageDecision(latest, skip)


@dataclass(frozen=True, slots=True)
class TimeLeft:
    days: int
    hours: int
    minutes: int


def time_left(now: datetime, ends_at: datetime) -> TimeLeft:
    seconds = max(0, int((ends_at - now).total_seconds()))
    return TimeLeft(seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60)
