"""Admin exports: what `/export <kind> [period] [csv|xlsx]` asks for, as pure functions.

The arguments become an `ExportRequest`: one of `KINDS`, a period turned into a half-open UTC range
`[since, until)` of whole local days in the deployment's time zone, and a file format. Anything else is a
`UsageError` naming what was wrong, so the admin gets a friendly answer and nothing is exported.

Periods: `today`; `7d` and `30d` (the 7 or 30 local days ending today); `month` (this calendar month);
`YYYY-MM` (that month); `YYYY-MM-DD..YYYY-MM-DD` (both days included); `all` (no bounds). Without one,
partners export `all` and every other kind the last `30d`. The format is `csv` unless `xlsx` is given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.domain.errors import UsageError

KINDS = ("partners", "events", "leads", "orders", "ledger", "payouts")
FORMATS = ("csv", "xlsx")
DEFAULT_FORMAT = "csv"
DEFAULT_PERIOD = {"partners": "all"}
"""A kind's period when none is given; kinds not listed use `FALLBACK_PERIOD`."""
FALLBACK_PERIOD = "30d"
ROLLING_DAYS = {"today": 1, "7d": 7, "30d": 30}
MIN_YEAR = 2000
MAX_YEAR = 2999
"""Dates outside these years are refused: they are typing mistakes, and far dates overflow time zone maths."""

_MONTH = re.compile(r"^(\d{4})-(\d{2})$", re.ASCII)
_RANGE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})\.\.(\d{4})-(\d{2})-(\d{2})$", re.ASCII)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Period:
    """Whole local days, or everything (`first` and `last` None)."""

    label: str
    """How the admin wrote it, normalised: `30d`, `2026-11`, `2026-11-01..2026-11-15`, `all`."""
    first: date | None
    """The first local day included."""
    last: date | None
    """The last local day included."""
    since: datetime | None
    """UTC start of `first` (inclusive)."""
    until: datetime | None
    """UTC start of the day after `last` (exclusive)."""

    @property
    def slug(self) -> str:
        """The label as a piece of a file name."""
        return self.label.replace("..", "_")


@dataclass(frozen=True, slots=True)
class ExportRequest:
    kind: str
    period: Period
    format: str


def safe_cell(value: str) -> str:
    """Text that a spreadsheet would run as a formula (= + - @, or a leading tab or carriage return) is prefixed
    with an apostrophe, so a name like `=HYPERLINK(…)` stays text."""
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def _day(year: str, month: str, day: str, written: str) -> date:
    try:
        value = date(int(year), int(month), int(day))
    except ValueError:
        raise UsageError("exports.bad_period", value=written) from None
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise UsageError("exports.bad_period", value=written)
    return value


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _days(label: str, first: date, last: date, zone: ZoneInfo) -> Period:
    return Period(label, first, last, _midnight(first, zone), _midnight(last + timedelta(days=1), zone))


def is_period(text: str) -> bool:
    """Whether `text` is written like a period (it may still name an impossible date)."""
    return text in ROLLING_DAYS or text in ("month", "all") or bool(_MONTH.match(text) or _RANGE.match(text))


def parse_period(text: str, now: datetime, zone: ZoneInfo) -> Period:
    """One period (lower-case) as whole local days of `zone`, seen at `now`."""
    today = now.astimezone(zone).date()
    if text == "all":
        return Period("all", None, None, None, None)
    if text in ROLLING_DAYS:
        return _days(text, today - timedelta(days=ROLLING_DAYS[text] - 1), today, zone)
    if text == "month":
        first = today.replace(day=1)
        return _days(text, first, _month_end(first), zone)
    month = _MONTH.match(text)
    if month:
        first = _day(month.group(1), month.group(2), "1", text)
        return _days(text, first, _month_end(first), zone)
    days = _RANGE.match(text)
    if days:
        first = _day(days.group(1), days.group(2), days.group(3), text)
        last = _day(days.group(4), days.group(5), days.group(6), text)
        if last < first:
            raise UsageError("exports.bad_range", value=text)
        return _days(text, first, last, zone)
    raise UsageError("exports.bad_argument", value=text)


def _month_end(first: date) -> date:
    following = date(first.year + 1, 1, 1) if first.month == 12 else date(first.year, first.month + 1, 1)
    return following - timedelta(days=1)


def parse_export_args(args: str | None, now: datetime, zone: ZoneInfo) -> ExportRequest:
    """`<kind> [period] [csv|xlsx]` (period and format in either order, any letter case)."""
    tokens = (args or "").lower().split()
    if not tokens:
        raise UsageError("exports.usage")
    kind, rest = tokens[0], tokens[1:]
    if kind not in KINDS:
        raise UsageError("exports.unknown_kind", value=kind)
    period: Period | None = None
    fmt: str | None = None
    for token in rest:
        if token in FORMATS:
            if fmt is not None:
                raise UsageError("exports.twice", value=token)
            fmt = token
        elif is_period(token):
            if period is not None:
                raise UsageError("exports.twice", value=token)
            period = parse_period(token, now, zone)
        else:
            raise UsageError("exports.bad_argument", value=token)
    if period is None:
        period = parse_period(DEFAULT_PERIOD.get(kind, FALLBACK_PERIOD), now, zone)
    return ExportRequest(kind, period, fmt or DEFAULT_FORMAT)


def percent(written: int, total: int) -> int:
    """Progress in whole percent, never above 100 (rows may arrive after they were counted)."""
    if total <= 0:
        return 100
    return min(100, written * 100 // total)
