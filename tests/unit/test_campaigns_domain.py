"""Coupon codes, the /campaign add and /event add syntax, RSVP forms and event reminder windows (pure)."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.campaigns import (
    CODE_ALPHABET,
    CampaignInputError,
    Discount,
    code_prefix,
    due_reminder,
    eligible,
    generate_code,
    generate_slug,
    is_open,
    normalize_code,
    parse_campaign,
    parse_capacity,
    parse_discount,
    parse_event,
    parse_event_ref,
    parse_levels,
    parse_local_time,
    parse_max_uses,
    parse_place,
    parse_rsvp_form,
    parse_validity,
    remind_key,
    split_invite,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
LEVELS = ("member", "silver", "gold")


def _key(call: object) -> str:
    with pytest.raises(CampaignInputError) as caught:
        call()  # type: ignore[operator]
    return caught.value.key


# -- codes -----------------------------------------------------------------------------------------------------


def test_the_code_alphabet_has_no_lookalikes() -> None:
    assert not set("0O1IL") & set(CODE_ALPHABET)


@pytest.mark.parametrize(
    ("name", "campaign_id", "prefix"),
    [
        ("Spring sale", 3, "SPRNGS"),  # I and L are dropped: they read like 1
        ("tea", 3, "TEA"),
        ("春季特惠", 12, "CP"),  # the id in the code alphabet: A=0 … P=12
        ("Double 11", 5, "DUBE"),  # O, L and 1 are dropped
        ("", 7, "CH"),
        ("", 31, "CBA"),
    ],
)
def test_code_prefix(name: str, campaign_id: int, prefix: str) -> None:
    assert code_prefix(name, campaign_id) == prefix


def test_generated_codes_are_readable_and_vary() -> None:
    rng = random.Random(1)
    codes = {generate_code("TEA", rng.choice) for _ in range(500)}
    assert len(codes) == 500
    for code in codes:
        assert re.fullmatch(rf"TEA-[{CODE_ALPHABET}]{{6}}", code)
        assert len(code) <= 32


@given(st.text(max_size=40), st.integers(min_value=1, max_value=10**9))
def test_every_code_is_unambiguous_and_fits_the_column(name: str, campaign_id: int) -> None:
    code = generate_code(code_prefix(name, campaign_id), random.Random(campaign_id).choice)
    assert len(code) <= 32
    assert set(code) <= set(CODE_ALPHABET) | {"-"}
    assert normalize_code(code.lower()) == code


def test_slugs() -> None:
    rng = random.Random(2)
    slug = generate_slug(rng.choice)
    assert re.fullmatch(r"[a-z2-9]{10}", slug)
    assert len({generate_slug(rng.choice) for _ in range(200)}) == 200


def test_normalize_code() -> None:
    assert normalize_code("  tea-ab 3k ") == "TEA-AB3K"


# -- campaigns -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10%", Discount("percent", 10)),
        ("100 %", Discount("percent", 100)),
        ("5％", Discount("percent", 5)),
        ("20", Discount("amount", 2000, "CNY")),
        ("20.5", Discount("amount", 2050, "CNY")),
        ("¥8.88", Discount("amount", 888, "CNY")),
    ],
)
def test_discounts(text: str, expected: Discount) -> None:
    assert parse_discount(text, "CNY") == expected


@pytest.mark.parametrize("text", ["0%", "101%", "-5", "0", "abc", "", "10.001", "1e3", "-10%", "10%%"])
def test_bad_discounts(text: str) -> None:
    assert _key(lambda: parse_discount(text, "CNY")) == "campaigns.error.discount"


def test_discount_labels() -> None:
    assert Discount("percent", 15).label("en") == "15%"
    assert Discount("amount", 2000, "CNY").label("zh") == "¥20.00"


def test_validity_in_days_and_as_a_last_local_day() -> None:
    assert parse_validity("30d", NOW, SHANGHAI) == NOW + timedelta(days=30)
    assert parse_validity("7 天", NOW, SHANGHAI) == NOW + timedelta(days=7)
    # Valid through 31 December in Shanghai: until midnight local, 16:00 UTC.
    assert parse_validity("2026-12-31", NOW, SHANGHAI) == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)
    assert parse_validity("2026/12/31", NOW, NEW_YORK) == datetime(2027, 1, 1, 5, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("0d", "campaigns.error.validity"),
        ("99999d", "campaigns.error.validity"),
        ("soon", "campaigns.error.validity"),
        ("2026-02-30", "campaigns.error.validity"),
        ("2026-11-24", "campaigns.error.past"),
        ("2040-01-01", "campaigns.error.validity"),
    ],
)
def test_bad_validity(text: str, key: str) -> None:
    assert _key(lambda: parse_validity(text, NOW, SHANGHAI)) == key


def test_max_uses_and_levels() -> None:
    assert parse_max_uses("5") == 5
    assert parse_max_uses("-") is None
    assert parse_max_uses("") is None
    assert _key(lambda: parse_max_uses("0")) == "campaigns.error.max_uses"
    assert _key(lambda: parse_max_uses("2.5")) == "campaigns.error.max_uses"
    assert parse_levels("Silver, gold，silver", LEVELS) == ("silver", "gold")
    assert parse_levels("all", LEVELS) == ()
    assert _key(lambda: parse_levels("platinum", LEVELS)) == "campaigns.error.level"


def test_a_whole_campaign_line() -> None:
    spec = parse_campaign(
        "  Spring <b>sale</b> | 10% | 30d | 5 | silver,gold ", now=NOW, zone=SHANGHAI, currency="CNY", levels=LEVELS
    )
    assert spec.name == "Spring <b>sale</b>"  # stored as given; escaped whenever shown
    assert spec.discount == Discount("percent", 10)
    assert spec.valid_until == NOW + timedelta(days=30)
    assert (spec.max_uses, spec.levels) == (5, ("silver", "gold"))
    short = parse_campaign("Tea | 20 | 2026-12-31", now=NOW, zone=SHANGHAI, currency="CNY", levels=LEVELS)
    assert (short.max_uses, short.levels, short.discount.kind) == (None, (), "amount")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (None, "campaigns.campaign.usage"),
        ("Tea | 10%", "campaigns.campaign.usage"),
        ("a|b|c|d|e|f", "campaigns.campaign.usage"),
        (" | 10% | 30d", "campaigns.error.name"),
        ("x" * 101 + " | 10% | 30d", "campaigns.error.name"),
        ("Tea | ten | 30d", "campaigns.error.discount"),
        ("Tea | 10% | yesterday", "campaigns.error.validity"),
        ("Tea | 10% | 30d | many", "campaigns.error.max_uses"),
        ("Tea | 10% | 30d | 5 | diamond", "campaigns.error.level"),
    ],
)
def test_bad_campaign_lines_name_the_part(text: str | None, key: str) -> None:
    assert _key(lambda: parse_campaign(text, now=NOW, zone=SHANGHAI, currency="CNY", levels=LEVELS)) == key


def test_open_window_and_eligibility() -> None:
    start, end = NOW, NOW + timedelta(days=1)
    assert is_open(start, end, True, start)
    assert not is_open(start, end, True, end)  # the end is exclusive
    assert not is_open(start, end, True, start - timedelta(seconds=1))
    assert not is_open(start, end, False, start)
    assert eligible((), "member")
    assert eligible(("gold",), "gold")
    assert not eligible(("gold",), "member")


# -- events ----------------------------------------------------------------------------------------------------


def test_local_event_times_become_utc() -> None:
    assert parse_local_time("2026-12-05 19:30", SHANGHAI, NOW) == datetime(2026, 12, 5, 11, 30, tzinfo=UTC)
    assert parse_local_time("2026/12/05T9:05", NEW_YORK, NOW) == datetime(2026, 12, 5, 14, 5, tzinfo=UTC)
    # Summer time in New York: UTC-4.
    assert parse_local_time("2027-07-01 09:00", NEW_YORK, NOW) == datetime(2027, 7, 1, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("tomorrow", "campaigns.error.time"),
        ("2026-12-05", "campaigns.error.time"),
        ("2026-13-05 10:00", "campaigns.error.time"),
        ("2026-12-05 25:00", "campaigns.error.time"),
        ("2027-03-14 02:30", "campaigns.error.time"),  # skipped by New York's spring-forward
        ("2026-11-24 10:00", "campaigns.error.past"),
    ],
)
def test_bad_event_times(text: str, key: str) -> None:
    assert _key(lambda: parse_local_time(text, NEW_YORK, NOW)) == key


def test_places_and_links() -> None:
    assert parse_place("  88 Nanjing Road ") == ("88 Nanjing Road", None)
    assert parse_place("https://meet.example/abc?x=1") == (None, "https://meet.example/abc?x=1")
    assert _key(lambda: parse_place("javascript://alert(1)")) == "campaigns.error.link"
    assert _key(lambda: parse_place("ftp://files.example")) == "campaigns.error.link"
    assert _key(lambda: parse_place("https://")) == "campaigns.error.link"
    assert _key(lambda: parse_place("   ")) == "campaigns.error.place"
    assert parse_capacity("30") == 30
    assert parse_capacity("-") is None
    assert _key(lambda: parse_capacity("0")) == "campaigns.error.capacity"


def test_a_whole_event_line() -> None:
    spec = parse_event("Tea tasting | 2026-12-05 19:30 | https://meet.example/t | 30", now=NOW, zone=SHANGHAI)
    assert spec.title == "Tea tasting"
    assert spec.starts_at == datetime(2026, 12, 5, 11, 30, tzinfo=UTC)
    assert (spec.place, spec.online_url, spec.capacity) == (None, "https://meet.example/t", 30)
    assert _key(lambda: parse_event("Tea | 2026-12-05 19:30", now=NOW, zone=SHANGHAI)) == "campaigns.event.usage"
    assert _key(lambda: parse_event("Tea | soon | Home", now=NOW, zone=SHANGHAI)) == "campaigns.error.time"
    assert _key(lambda: parse_event(" | 2026-12-05 19:30 | Home", now=NOW, zone=SHANGHAI)) == "campaigns.error.title"


def test_invite_arguments() -> None:
    assert split_invite("Alice Wang 12") == ("Alice Wang", "12")
    assert split_invite("3") is None
    assert split_invite(None) is None
    ref = parse_event_ref("#12")
    assert ref is not None
    assert ref.number == 12
    ref = parse_event_ref("AbC23xyz")
    assert ref is not None
    assert ref.slug == "abc23xyz"
    assert parse_event_ref("<b>") is None


def test_rsvp_forms() -> None:
    ok = parse_rsvp_form("  Alice \n <b>W</b> ", "YES")
    assert (ok.name, ok.attending, ok.errors) == ("Alice <b>W</b>", True, ())
    bad = parse_rsvp_form("   ", "maybe")
    assert bad.errors == ("campaigns.rsvp.error_name", "campaigns.rsvp.error_answer")
    assert parse_rsvp_form("x" * 129, "no").errors == ("campaigns.rsvp.error_name",)


# -- reminders -------------------------------------------------------------------------------------------------

START = datetime(2026, 12, 5, 11, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("before", "kind"),
    [
        (timedelta(days=2), None),
        (timedelta(days=1, seconds=1), None),
        (timedelta(days=1), "1d"),
        (timedelta(hours=5), "1d"),
        (timedelta(hours=1, seconds=1), "1d"),
        (timedelta(hours=1), "1h"),
        (timedelta(minutes=59), "1h"),  # first seen under an hour ahead: only the 1h reminder
        (timedelta(seconds=1), "1h"),
        (timedelta(0), None),
        (-timedelta(minutes=5), None),
    ],
)
def test_reminder_windows(before: timedelta, kind: str | None) -> None:
    assert due_reminder(START, START - before) == kind


def test_reminder_keys() -> None:
    assert remind_key(4, 7, "1d") == "event-remind:4:7:1d"
