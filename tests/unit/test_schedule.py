"""Tier 1: quiet hours across midnight, time zones and DST; /settings argument parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.errors import UsageError
from bot.domain.schedule import (
    PUSH_OFF,
    SettingChange,
    format_clock,
    in_quiet_hours,
    parse_clock,
    parse_setting,
    quiet_hours_end,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
Q = (22 * 60, 8 * 60)


@pytest.mark.parametrize(
    ("minute", "start", "end", "quiet"),
    [
        (23 * 60, *Q, True),
        (0, *Q, True),
        (7 * 60 + 59, *Q, True),
        (8 * 60, *Q, False),
        (12 * 60, *Q, False),
        (21 * 60 + 59, *Q, False),
        (13 * 60, 13 * 60, 14 * 60, True),
        (14 * 60, 13 * 60, 14 * 60, False),
        (3 * 60, 0, 0, False),
    ],
)
def test_in_quiet_hours(minute: int, start: int, end: int, quiet: bool) -> None:
    assert in_quiet_hours(minute, start, end) is quiet


@pytest.mark.parametrize(
    ("now_utc", "zone", "expected_utc"),
    [
        # 23:30 in Shanghai → 08:00 next local morning = 00:00 UTC
        (datetime(2026, 11, 25, 15, 30, tzinfo=UTC), SHANGHAI, datetime(2026, 11, 26, 0, 0, tzinfo=UTC)),
        # 03:00 in Shanghai → 08:00 the same local morning
        (datetime(2026, 11, 25, 19, 0, tzinfo=UTC), SHANGHAI, datetime(2026, 11, 26, 0, 0, tzinfo=UTC)),
        # 10:00 in Shanghai: not quiet, send now
        (datetime(2026, 11, 25, 2, 0, tzinfo=UTC), SHANGHAI, datetime(2026, 11, 25, 2, 0, tzinfo=UTC)),
        # New York on the night DST ends (1 Nov 2026): 23:00 EDT → 08:00 EST = 13:00 UTC
        (datetime(2026, 11, 1, 3, 0, tzinfo=UTC), NEW_YORK, datetime(2026, 11, 1, 13, 0, tzinfo=UTC)),
    ],
)
def test_quiet_hours_end(now_utc: datetime, zone: ZoneInfo, expected_utc: datetime) -> None:
    assert quiet_hours_end(now_utc, zone, *Q) == expected_utc


@given(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
    st.sampled_from([SHANGHAI, NEW_YORK, UTC]),
)
def test_deferred_time_is_never_earlier_and_never_quiet(naive: datetime, zone: ZoneInfo) -> None:
    now = naive.replace(tzinfo=UTC)
    due = quiet_hours_end(now, zone, *Q)
    assert now <= due <= now + timedelta(hours=11)
    local = due.astimezone(zone)
    assert not in_quiet_hours(local.hour * 60 + local.minute, *Q)


@pytest.mark.parametrize(
    ("args", "change"),
    [
        ("tz Europe/London", SettingChange(timezone="Europe/London")),
        ("push 9", SettingChange(push_hour=9)),
        ("push 18:00", SettingChange(push_hour=18)),
        ("push off", SettingChange(push_hour=PUSH_OFF)),
        ("quiet 22:00-08:00", SettingChange(quiet=(1320, 480))),
        ("quiet 23 - 7", SettingChange(quiet=(1380, 420))),
        ("quiet off", SettingChange(quiet=(0, 0))),
    ],
)
def test_parse_setting(args: str, change: SettingChange) -> None:
    assert parse_setting(args) == change


@pytest.mark.parametrize(
    ("args", "key"),
    [
        ("", "settings.usage"),
        ("push", "settings.usage"),
        ("volume 11", "settings.usage"),
        ("push 25", "settings.bad_time"),
        ("push 9:30", "settings.push_whole_hour"),
        ("quiet 22", "settings.usage"),
        ("quiet 22:61-08:00", "settings.bad_time"),
    ],
)
def test_parse_setting_errors(args: str, key: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_setting(args)
    assert info.value.key == key


def test_clock_round_trip() -> None:
    assert [format_clock(parse_clock(t)) for t in ("0", "7", "08:05", "23:59")] == ["00:00", "07:00", "08:05", "23:59"]
