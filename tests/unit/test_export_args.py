"""Tier 1: `/export` arguments — kinds, periods as local days turned into UTC ranges, formats, every mistake a
UsageError with its own text key (never another exception), formula neutralisation and the progress percentage."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.errors import UsageError
from bot.domain.exports import KINDS, parse_export_args, percent, safe_cell

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
"""09:00 on 25 November in Shanghai."""


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("args", "kind", "label", "first", "last", "fmt"),
    [
        ("orders", "orders", "30d", date(2026, 10, 27), date(2026, 11, 25), "csv"),
        ("partners", "partners", "all", None, None, "csv"),
        ("events today xlsx", "events", "today", date(2026, 11, 25), date(2026, 11, 25), "xlsx"),
        ("LEDGER XLSX 7d", "ledger", "7d", date(2026, 11, 19), date(2026, 11, 25), "xlsx"),
        ("  payouts   month  ", "payouts", "month", date(2026, 11, 1), date(2026, 11, 30), "csv"),
        ("leads 2026-02", "leads", "2026-02", date(2026, 2, 1), date(2026, 2, 28), "csv"),
        ("leads 2024-02 csv", "leads", "2024-02", date(2024, 2, 1), date(2024, 2, 29), "csv"),
        ("orders 2026-12", "orders", "2026-12", date(2026, 12, 1), date(2026, 12, 31), "csv"),
        (
            "orders 2026-11-01..2026-11-15",
            "orders",
            "2026-11-01..2026-11-15",
            date(2026, 11, 1),
            date(2026, 11, 15),
            "csv",
        ),
        (
            "orders xlsx 2026-11-05..2026-11-05",
            "orders",
            "2026-11-05..2026-11-05",
            date(2026, 11, 5),
            date(2026, 11, 5),
            "xlsx",
        ),
        ("events all", "events", "all", None, None, "csv"),
        ("partners 30d", "partners", "30d", date(2026, 10, 27), date(2026, 11, 25), "csv"),
    ],
)
def test_parsed_requests(args: str, kind: str, label: str, first: date | None, last: date | None, fmt: str) -> None:
    request = parse_export_args(args, NOW, SHANGHAI)
    assert (request.kind, request.period.label, request.format) == (kind, label, fmt)
    assert (request.period.first, request.period.last) == (first, last)
    if first is None or last is None:
        assert request.period.since is None and request.period.until is None
    else:
        # Shanghai is UTC+8 all year: a local day starts at 16:00 UTC the day before.
        assert request.period.since == datetime.combine(first, time(0), tzinfo=UTC) - timedelta(hours=8)
        assert request.period.until == datetime.combine(last, time(0), tzinfo=UTC) + timedelta(hours=16)


def test_month_range_in_utc() -> None:
    period = parse_export_args("orders month", NOW, SHANGHAI).period
    assert (period.since, period.until) == (utc(2026, 10, 31, 16), utc(2026, 11, 30, 16))
    assert period.slug == "month"
    assert parse_export_args("orders 2026-11-01..2026-11-15", NOW, SHANGHAI).period.slug == "2026-11-01_2026-11-15"


def test_today_follows_the_deployment_zone_not_utc() -> None:
    """At 20:00 UTC on the 25th it is already the 26th in Shanghai and still the 25th in New York."""
    late = utc(2026, 11, 25, 20)
    assert parse_export_args("orders today", late, SHANGHAI).period.first == date(2026, 11, 26)
    new_york = parse_export_args("orders today", late, ZoneInfo("America/New_York")).period
    assert new_york.first == date(2026, 11, 25)
    assert (new_york.since, new_york.until) == (utc(2026, 11, 25, 5), utc(2026, 11, 26, 5))


def test_a_daylight_saving_change_inside_the_range() -> None:
    """Berlin leaves summer time on 25 October 2026: the range still runs from local midnight to local midnight."""
    period = parse_export_args("orders 2026-10", NOW, ZoneInfo("Europe/Berlin")).period
    assert (period.since, period.until) == (utc(2026, 9, 30, 22), utc(2026, 10, 31, 23))


@pytest.mark.parametrize(
    ("args", "key", "value"),
    [
        (None, "exports.usage", None),
        ("", "exports.usage", None),
        ("   ", "exports.usage", None),
        ("customers", "exports.unknown_kind", "customers"),
        ("30d orders", "exports.unknown_kind", "30d"),
        ("orders yesterday", "exports.bad_argument", "yesterday"),
        ("orders pdf", "exports.bad_argument", "pdf"),
        ("orders 2026-11-01", "exports.bad_argument", "2026-11-01"),
        ("orders 2026-11-01..", "exports.bad_argument", "2026-11-01.."),
        ("orders 2026-13", "exports.bad_period", "2026-13"),
        ("orders 2026-00", "exports.bad_period", "2026-00"),
        ("orders 1999-12", "exports.bad_period", "1999-12"),
        ("orders 2026-02-30..2026-03-01", "exports.bad_period", "2026-02-30..2026-03-01"),
        ("orders 2026-11-01..3000-01-01", "exports.bad_period", "2026-11-01..3000-01-01"),
        ("orders 2026-11-15..2026-11-01", "exports.bad_range", "2026-11-15..2026-11-01"),
        ("orders 7d 30d", "exports.twice", "30d"),
        ("orders csv xlsx", "exports.twice", "xlsx"),
        ("orders xlsx 7d xlsx", "exports.twice", "xlsx"),
        ("orders ٢٠٢٦-١١", "exports.bad_argument", "٢٠٢٦-١١"),  # only ASCII digits are dates
    ],
)
def test_mistakes_are_usage_errors(args: str | None, key: str, value: str | None) -> None:
    with pytest.raises(UsageError) as refused:
        parse_export_args(args, NOW, SHANGHAI)
    assert refused.value.key == key
    assert refused.value.params.get("value") == value


TOKENS = st.sampled_from(
    [*KINDS, "csv", "xlsx", "today", "7d", "30d", "month", "all", "2026-11", "2026-13", "2026-02-29..2026-03-01"]
)
DATES = st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31))
WORDS = st.one_of(
    TOKENS,
    st.text(max_size=12),
    DATES.map(lambda d: d.strftime("%Y-%m")),
    st.tuples(DATES, DATES).map(lambda pair: f"{pair[0].isoformat()}..{pair[1].isoformat()}"),
)
ZONES = st.sampled_from(["Asia/Shanghai", "UTC", "America/New_York", "Europe/Berlin", "Pacific/Kiritimati"])


@settings(max_examples=400, deadline=None)
@given(
    words=st.lists(WORDS, max_size=4),
    now=st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2998, 1, 1), timezones=st.just(UTC)),
    zone=ZONES,
)
def test_any_arguments_give_a_request_or_a_usage_error(words: list[str], now: datetime, zone: str) -> None:
    tz = ZoneInfo(zone)
    try:
        request = parse_export_args(" ".join(words), now, tz)
    except UsageError as refused:
        key = refused.key
        assert key.startswith("exports.")
        return
    assert request.kind in KINDS and request.format in ("csv", "xlsx")
    period = request.period
    if period.since is None:
        assert period.until is None and period.first is None and period.last is None
    else:
        assert period.until is not None and period.first is not None and period.last is not None
        assert period.first <= period.last and period.since < period.until
        assert period.since.astimezone(tz).time() == time(0) and period.since.astimezone(tz).date() == period.first
        assert period.until.astimezone(tz).date() == period.last + timedelta(days=1)


@given(st.text())
def test_any_raw_text_gives_a_request_or_a_usage_error(text: str) -> None:
    with contextlib.suppress(UsageError):
        parse_export_args(text, NOW, SHANGHAI)


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=HYPERLINK(bad)", "'=HYPERLINK(bad)"),
        ("+86138****5678", "'+86138****5678"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Bob", "Bob"),
        ("王小明", "王小明"),
        ("", ""),
        ("a=b", "a=b"),
    ],
)
def test_safe_cell(value: str, cell: str) -> None:
    assert safe_cell(value) == cell


@pytest.mark.parametrize(
    ("written", "total", "expected"),
    [(0, 10, 0), (1, 3, 33), (10, 10, 100), (12, 10, 100), (0, 0, 100), (999, 1000, 99)],
)
def test_percent(written: int, total: int, expected: int) -> None:
    assert percent(written, total) == expected
