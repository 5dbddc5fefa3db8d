"""Reminder times as partners type them, in English and Chinese, read in the partner's own time zone.

`parse_when("tomorrow 10:00", now, zone)` is the UTC instant of 10:00 tomorrow in `zone`. Days and weeks move
the local wall clock (`in 1d` at 10:00 is 10:00 the next day, also across a DST change); hours and minutes are
real elapsed time. Pure: the caller passes `now` and the zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

DEFAULT_HOUR = 9
"""A day without a time of day (`tomorrow`, `后天`, `2026-12-01`) means 09:00 local."""
MAX_AHEAD = timedelta(days=3 * 366)
_UNITS = {
    "m": "minutes", "min": "minutes", "mins": "minutes", "minute": "minutes", "minutes": "minutes",
    "h": "hours", "hr": "hours", "hrs": "hours", "hour": "hours", "hours": "hours",
    "d": "days", "day": "days", "days": "days",
    "w": "weeks", "wk": "weeks", "week": "weeks", "weeks": "weeks",
}  # fmt: skip
_ZH_UNITS = {
    "分钟": "minutes", "分": "minutes", "小时": "hours", "个小时": "hours",
    "天": "days", "周": "weeks", "星期": "weeks",
}  # fmt: skip
_WEEKDAYS_ZH = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_WEEKDAYS_EN = {
    "mon": 0, "monday": 0, "tue": 1, "tuesday": 1, "wed": 2, "wednesday": 2, "thu": 3, "thursday": 3,
    "fri": 4, "friday": 4, "sat": 5, "saturday": 5, "sun": 6, "sunday": 6,
}  # fmt: skip

_REL_EN = re.compile(r"^(?:in\s+)?(\d{1,4})\s*([a-z]+)$")
_REL_ZH = re.compile(r"^(\d{1,4})\s*(分钟|分|个小时|小时|天|周|星期)(?:后|以后|之后)$")
_ISO_DAY = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_MONTH_DAY = re.compile(r"^(\d{1,2})[-/](\d{1,2})$")
_CLOCK = re.compile(r"^([01]?\d|2[0-3])(?::([0-5]\d))?$")
_CLOCK_AMPM = re.compile(r"^(1[0-2]|0?[1-9])(?::([0-5]\d))?\s*(am|pm)$")
_CLOCK_ZH = re.compile(r"^(早上|上午|中午|下午|晚上)?\s*(\d{1,2})(?:[:：](\d{2})|点(半|(\d{1,2})分?)?)?$")
_GLUED_ZH = re.compile(r"(\d{1,4}(?:分钟|个小时|小时|天|周)后|(?:大后天|后天|明天|下周[一二三四五六日天])\S*)$")
_CONNECTORS = frozenset({"in", "at", "on", "by", "next"})
"""Words that belong to a time phrase: 'in 1d' alone is not a note followed by '1d'."""
_DAY_WORDS_EN = {"today": 0, "tomorrow": 1, "tmr": 1, "tmrw": 1}
_DAY_WORDS_ZH = {"今天": 0, "明天": 1, "后天": 2, "大后天": 3}


class WhenError(ValueError):
    """The text is not a time, or names a past one. `part` is what was not understood; `past` is set when the
    time was understood but has already gone by."""

    def __init__(self, part: str, *, past: bool = False) -> None:
        super().__init__(part)
        self.part = part
        self.past = past


@dataclass(frozen=True, slots=True)
class _Day:
    day: date
    rest: str


def parse_when(text: str, now: datetime, zone: tzinfo) -> datetime:
    """The UTC instant `text` names, strictly after `now`; raises WhenError otherwise."""
    raw = " ".join(text.split())
    if not raw:
        raise WhenError(text)
    lowered = raw.casefold()
    local_now = now.astimezone(zone)
    relative = _relative(lowered, now, zone)
    if relative is not None:
        return _future(relative, now, raw)
    found = _day_part(lowered, local_now.date())
    if found is None:
        raise WhenError(raw)
    clock = _clock(found.rest) if found.rest else time(DEFAULT_HOUR)
    if clock is None:
        raise WhenError(found.rest)
    moment = _at(found.day, clock, zone)
    return _future(moment, now, raw)


def _future(moment: datetime, now: datetime, raw: str) -> datetime:
    if moment <= now:
        raise WhenError(raw, past=True)
    if moment - now > MAX_AHEAD:
        raise WhenError(raw)
    return moment


def _at(day: date, clock: time, zone: tzinfo) -> datetime:
    """Local wall time → UTC. A time skipped by a DST change lands just after the change (zoneinfo's fold=0)."""
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC)


def _relative(text: str, now: datetime, zone: tzinfo) -> datetime | None:
    match = _REL_EN.match(text)
    unit: str | None = None
    if match and match.group(2) in _UNITS:
        amount, unit = int(match.group(1)), _UNITS[match.group(2)]
    else:
        match = _REL_ZH.match(text)
        if match:
            amount, unit = int(match.group(1)), _ZH_UNITS[match.group(2)]
    if unit is None:
        return None
    if amount <= 0 or amount > 3 * 366 * (24 * 60 if unit == "minutes" else 24 if unit == "hours" else 1):
        raise WhenError(text)
    if unit in ("minutes", "hours"):
        return now + timedelta(**{unit: amount})
    local = now.astimezone(zone).replace(tzinfo=None) + timedelta(**{unit: amount})
    return _at(local.date(), local.time().replace(second=0, microsecond=0), zone)


def _day_part(text: str, today: date) -> _Day | None:
    """The day a text names, and what is left of it (a time of day, or nothing)."""
    head, _, tail = text.partition(" ")
    if head in _DAY_WORDS_EN:
        return _Day(today + timedelta(days=_DAY_WORDS_EN[head]), tail)
    for word in sorted(_DAY_WORDS_ZH, key=len, reverse=True):
        if text.startswith(word):
            return _Day(today + timedelta(days=_DAY_WORDS_ZH[word]), text[len(word) :].strip())
    if text.startswith(("下周", "下星期")):
        rest = text[2:] if text.startswith("下周") else text[3:]
        if rest[:1] in _WEEKDAYS_ZH:
            monday = today - timedelta(days=today.weekday()) + timedelta(days=7)
            return _Day(monday + timedelta(days=_WEEKDAYS_ZH[rest[0]]), rest[1:].strip())
        return None
    if head == "next" and tail:
        word, _, rest = tail.partition(" ")
        if word in _WEEKDAYS_EN:
            ahead = (_WEEKDAYS_EN[word] - today.weekday()) % 7 or 7
            return _Day(today + timedelta(days=ahead), rest)
        return None
    if head in _WEEKDAYS_EN:
        ahead = (_WEEKDAYS_EN[head] - today.weekday()) % 7 or 7
        return _Day(today + timedelta(days=ahead), tail)
    return _calendar_day(head, tail, today)


def _calendar_day(head: str, tail: str, today: date) -> _Day | None:
    iso = _ISO_DAY.match(head)
    try:
        if iso:
            return _Day(date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3))), tail)
        short = _MONTH_DAY.match(head)
        if short:
            day = date(today.year, int(short.group(1)), int(short.group(2)))
            if day < today:  # '12-01' in late December means next year's
                day = date(today.year + 1, day.month, day.day)
            return _Day(day, tail)
    except ValueError:
        return None
    return None


def _clock(text: str) -> time | None:
    text = text.strip().removeprefix("at ").strip()
    match = _CLOCK.match(text)
    if match:
        return time(int(match.group(1)), int(match.group(2) or 0))
    match = _CLOCK_AMPM.match(text)
    if match:
        hour = int(match.group(1)) % 12 + (12 if match.group(3) == "pm" else 0)
        return time(hour, int(match.group(2) or 0))
    match = _CLOCK_ZH.match(text)
    if match:
        period, hour = match.group(1), int(match.group(2))
        minute = int(match.group(3) or 0)
        if match.group(4) == "半":
            minute = 30
        elif match.group(5):
            minute = int(match.group(5))
        if period in ("下午", "晚上") and hour < 12:
            hour += 12
        if hour > 23 or minute > 59:
            return None
        return time(hour, minute)
    return None


def split_trailing_when(text: str, now: datetime, zone: tzinfo) -> tuple[str, datetime | None]:
    """A follow-up note that ends with a reminder phrase (`called, sending brochure in 1d`, `已报价 明天10点`):
    the note without it, and the reminder's instant.

    A phrase that names a past time, or that clearly starts a time (`tomorrow`, `明天`, `in 3…`, a date) but is
    not understood, raises WhenError naming the part; anything else stays in the note."""
    words = text.split()
    failed: WhenError | None = None
    for size in range(min(3, len(words) - 1), 0, -1):
        phrase = " ".join(words[-size:])
        if not _looks_like_when(phrase) or all(w.casefold() in _CONNECTORS for w in words[:-size]):
            continue
        try:
            moment = parse_when(phrase, now, zone)
        except WhenError as exc:
            if exc.past:
                raise
            if failed is None and _clearly_a_time(phrase):
                failed = exc
            continue
        return " ".join(words[:-size]).rstrip(" ,;，；"), moment
    match = _GLUED_ZH.search(text)
    if match and match.start() > 0 and failed is None:  # '已联系，明天10点' style: the phrase glued to Chinese text
        try:
            moment = parse_when(match.group(1), now, zone)
        except WhenError as exc:
            if exc.past:
                raise
            failed = exc
        else:
            return text[: match.start()].rstrip(" ,;，；"), moment
    if failed is not None:
        raise failed
    return text.strip(), None


def _clearly_a_time(phrase: str) -> bool:
    lowered = phrase.casefold()
    first = lowered.split()[0]
    return bool(
        first in _DAY_WORDS_EN
        or re.match(r"^in \d", lowered)
        or _ISO_DAY.match(first)
        or any(first.startswith(w) for w in (*_DAY_WORDS_ZH, "下周", "下星期"))
    )


def _looks_like_when(phrase: str) -> bool:
    """Only phrases that start like a time are tried, so 'in the office' stays part of the note."""
    first = phrase.casefold().split()[0]
    return bool(
        first in ("in", "next", *_DAY_WORDS_EN, *_WEEKDAYS_EN)
        or first[:1].isdigit()
        or any(first.startswith(w) for w in (*_DAY_WORDS_ZH, "下周", "下星期"))
    )
