"""Local-time rules for partners: quiet hours and settings values. Pure: callers pass tzinfo objects."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

from bot.domain.errors import UsageError

MINUTES_PER_DAY = 24 * 60
DEFAULT_QUIET = (22 * 60, 8 * 60)
DEFAULT_PUSH_HOUR = 9
PUSH_OFF = -1
_HHMM = re.compile(r"^([01]?\d|2[0-3])(?::([0-5]\d))?$")
_RANGE = re.compile(r"^\s*(\S+)\s*[-–~]\s*(\S+)\s*$")


def in_quiet_hours(local_minute: int, start: int, end: int) -> bool:
    """Whether a minute of the local day falls in [start, end); the range may wrap past midnight."""
    if start == end:
        return False
    if start < end:
        return start <= local_minute < end
    return local_minute >= start or local_minute < end


def quiet_hours_end(now: datetime, zone: tzinfo, start: int, end: int) -> datetime:
    """When a non-urgent message may be sent: now, or the end of the partner's current quiet hours (UTC)."""
    local = now.astimezone(zone)
    minute = local.hour * 60 + local.minute
    if not in_quiet_hours(minute, start, end):
        return now
    day = local.date() if minute < end else local.date() + timedelta(days=1)
    wall = datetime.combine(day, time(end // 60, end % 60), tzinfo=zone)
    return max(now, wall.astimezone(UTC))


def parse_clock(text: str) -> int:
    """'8', '08:30', '22:00' → minutes after midnight."""
    match = _HHMM.fullmatch(text.strip())
    if not match:
        raise UsageError("settings.bad_time", value=text)
    return int(match.group(1)) * 60 + int(match.group(2) or 0)


def format_clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, slots=True)
class SettingChange:
    """One change asked for with /settings: exactly one field is set."""

    timezone: str | None = None
    push_hour: int | None = None
    quiet: tuple[int, int] | None = None
    rank_pushes: bool | None = None
    """Leaderboard pushes and rank-change notices on or off."""
    digest_minute: int | None = None
    """Team leads: the daily digest's local time in minutes after midnight, or PUSH_OFF."""
    weekly_digest: bool | None = None
    """Team leads: Monday's weekly digest on or off."""


def parse_setting(args: str) -> SettingChange:
    """`tz Asia/Shanghai` | `push 9` | `push off` | `quiet 22:00-08:00` | `quiet off` | `ranks on|off` |
    `digest 08:30` | `digest off` | `weekly on|off` (the last two for team leads)."""
    parts = args.split(maxsplit=1)
    if len(parts) != 2:
        raise UsageError("settings.usage")
    field, value = parts[0].lower(), parts[1].strip()
    if field in ("tz", "timezone"):
        return SettingChange(timezone=value)
    if field == "push":
        if value.lower() == "off":
            return SettingChange(push_hour=PUSH_OFF)
        minutes = parse_clock(value)
        if minutes % 60:
            raise UsageError("settings.push_whole_hour", value=value)
        return SettingChange(push_hour=minutes // 60)
    if field == "quiet":
        if value.lower() == "off":
            return SettingChange(quiet=(0, 0))
        match = _RANGE.fullmatch(value)
        if not match:
            raise UsageError("settings.usage")
        return SettingChange(quiet=(parse_clock(match.group(1)), parse_clock(match.group(2))))
    if field == "ranks" and value.lower() in ("on", "off"):
        return SettingChange(rank_pushes=value.lower() == "on")
    if field == "digest":
        return SettingChange(digest_minute=PUSH_OFF if value.lower() == "off" else parse_clock(value))
    if field == "weekly" and value.lower() in ("on", "off"):
        return SettingChange(weekly_digest=value.lower() == "on")
    raise UsageError("settings.usage")
