"""Prospects' pure rules: lead references, contacts and the /lead line, masked phones, the stage file, and
reminder times in English and Chinese read in the partner's zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.crm import load_stages
from bot.domain.lead_reminders import WhenError, parse_when, split_trailing_when
from bot.domain.lead_stages import StageCatalog
from bot.domain.leads import (
    Contact,
    LeadArgsError,
    LeadDraft,
    LeadRef,
    mask_phone,
    normalise_handle,
    normalise_phone,
    parse_contact,
    parse_lead_line,
    parse_lead_ref,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)  # Wednesday 09:00 in Shanghai


@pytest.mark.parametrize(
    ("token", "ref"),
    [
        ("3", LeadRef(number=3)),
        ("#12", LeadRef(number=12)),
        (" 7 ", LeadRef(number=7)),
        ("Wang", LeadRef(name_prefix="wang")),
        ("王", LeadRef(name_prefix="王")),
        ("#x", LeadRef(name_prefix="#x")),
        ("", None),
        ("   ", None),
    ],
)
def test_lead_refs(token: str, ref: LeadRef | None) -> None:
    assert parse_lead_ref(token) == ref


@pytest.mark.parametrize(
    ("text", "phone"),
    [
        ("13800138000", "13800138000"),
        ("+86 138-0013-8000", "+8613800138000"),
        ("(212) 555-0100", "2125550100"),
        ("138 0013 8000", "13800138000"),
        ("12345", None),
        ("call me", None),
        ("+", None),
        ("1" * 25, None),
    ],
)
def test_phone_normalisation(text: str, phone: str | None) -> None:
    assert normalise_phone(text) == phone


@pytest.mark.parametrize(
    ("text", "handle"),
    [("@Alice_W", "alice_w"), ("@ab", None), ("alice", None), ("@1abc", None), ("@bob_b", "bob_b")],
)
def test_handle_normalisation(text: str, handle: str | None) -> None:
    assert normalise_handle(text) == handle


@pytest.mark.parametrize(
    ("token", "contact"),
    [
        ("13800138000", Contact(phone="13800138000")),
        ("@Zhao_Q", Contact(telegram="zhao_q")),
        ("wx:qian_888", Contact(wechat="qian_888")),
        ("微信:qian888", Contact(wechat="qian888")),
        ("hello", None),
        ("", None),
    ],
)
def test_contacts(token: str, contact: Contact | None) -> None:
    assert parse_contact(token) == contact


@pytest.mark.parametrize(
    ("line", "draft"),
    [
        ("Wang", LeadDraft(name="Wang")),
        ("Wang 3 cups of tea", LeadDraft(name="Wang", note="3 cups of tea")),
        ("Wang Li 13800138000", LeadDraft(name="Wang Li", phone="13800138000")),
        (
            "Wang Li +86 138 0013 8000 met at the fair",
            LeadDraft(name="Wang Li", phone="+8613800138000", note="met at the fair"),
        ),
        ("Zhao @Zhao_Q wants a demo", LeadDraft(name="Zhao", telegram="zhao_q", note="wants a demo")),
        ("Qian wx:qian_888", LeadDraft(name="Qian", wechat="qian_888")),
        (
            "Zhou 13800138000 wx:zhou_1 @zhou_tg likes green tea",
            LeadDraft(name="Zhou", phone="13800138000", wechat="zhou_1", telegram="zhou_tg", note="likes green tea"),
        ),
        ("Li wxid_abc123 hi", LeadDraft(name="Li", wechat="wxid_abc123", note="hi")),
        ("王丽 13800138000 展会认识", LeadDraft(name="王丽", phone="13800138000", note="展会认识")),
        ("<b>Evil</b> <script>", LeadDraft(name="<b>Evil</b>", note="<script>")),
    ],
)
def test_lead_lines(line: str, draft: LeadDraft) -> None:
    assert parse_lead_line(line) == draft


@pytest.mark.parametrize(("line", "part"), [("", "name"), ("   ", "name"), ("/x", "name"), ("x" * 129, "name")])
def test_bad_lead_lines_name_the_part(line: str, part: str) -> None:
    with pytest.raises(LeadArgsError) as caught:
        parse_lead_line(line)
    assert caught.value.part == part


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("13800135678", "138****5678"), ("+8613800135678", "+861****5678"), ("123456", "****56"), (None, "")],
)
def test_masked_phones(phone: str | None, masked: str) -> None:
    assert mask_phone(phone) == masked


def test_shipped_stage_file_is_valid_and_ordered() -> None:
    stages = load_stages()
    assert stages.keys == ("new", "contacted", "interested", "quoted", "won", "lost")
    assert stages.final_keys == ("won", "lost")
    assert stages.label("quoted", "zh") == "已报价"
    assert stages.label("quoted", "en") == "Quoted"
    assert stages.find("Won") == stages.get("won")
    assert stages.find("已流失") == stages.get("lost")
    assert stages.find("nope") is None


@pytest.mark.parametrize(
    "data",
    [
        {"stages": [{"key": "new", "zh": "新", "en": "New"}]},  # required stages missing
        {"stages": [{"key": k, "zh": k, "en": k} for k in ("new", "contacted", "quoted", "won", "lost", "new")]},
        {"stages": [{"key": "New!", "zh": "x", "en": "x"}]},
        {"stages": [{"key": "new", "zh": "", "en": "x"}]},
        {"stages": [], "extra": 1},
    ],
)
def test_bad_stage_files_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        StageCatalog.model_validate(data)


def _local(text: str, zone: ZoneInfo = SHANGHAI, now: datetime = NOW) -> str:
    return parse_when(text, now, zone).astimezone(zone).strftime("%Y-%m-%d %H:%M")


@pytest.mark.parametrize(
    ("text", "local"),
    [
        ("in 3d", "2026-11-28 09:00"),
        ("in 2h", "2026-11-25 11:00"),
        ("in 30m", "2026-11-25 09:30"),
        ("in 1w", "2026-12-02 09:00"),
        ("in 2 days", "2026-11-27 09:00"),
        ("3d", "2026-11-28 09:00"),
        ("tomorrow 10:00", "2026-11-26 10:00"),
        ("Tomorrow 3pm", "2026-11-26 15:00"),
        ("tomorrow", "2026-11-26 09:00"),
        ("today 18:30", "2026-11-25 18:30"),
        ("2026-12-01 15:00", "2026-12-01 15:00"),
        ("2026-12-01", "2026-12-01 09:00"),
        ("12-01 15:00", "2026-12-01 15:00"),
        ("11-01 10:00", "2027-11-01 10:00"),
        ("next mon 10:00", "2026-11-30 10:00"),
        ("friday", "2026-11-27 09:00"),
        ("3天后", "2026-11-28 09:00"),
        ("2小时后", "2026-11-25 11:00"),
        ("1周后", "2026-12-02 09:00"),
        ("明天10点", "2026-11-26 10:00"),
        ("明天 10:00", "2026-11-26 10:00"),
        ("明天下午3点", "2026-11-26 15:00"),
        ("明天10点半", "2026-11-26 10:30"),
        ("后天", "2026-11-27 09:00"),
        ("大后天 8点", "2026-11-28 08:00"),
        ("下周一", "2026-11-30 09:00"),
        ("下周五 14:00", "2026-12-04 14:00"),
    ],
)
def test_reminder_times_in_shanghai(text: str, local: str) -> None:
    assert _local(text) == local


@pytest.mark.parametrize(
    ("text", "part", "past"),
    [
        ("", "", False),
        ("soon", "soon", False),
        ("tomorrow 25:00", "25:00", False),
        ("明天25点", "25点", False),
        ("2026-02-30 10:00", "2026-02-30 10:00", False),
        ("in 0d", "in 0d", False),
        ("in 99999d", "in 99999d", False),
        ("today 08:00", "today 08:00", True),
        ("2026-11-24 10:00", "2026-11-24 10:00", True),
        ("today 09:00", "today 09:00", True),
    ],
)
def test_bad_or_past_times_name_the_part(text: str, part: str, past: bool) -> None:
    with pytest.raises(WhenError) as caught:
        parse_when(text, NOW, SHANGHAI)
    assert (caught.value.part, caught.value.past) == (part, past)


def test_new_york_dst_change_keeps_the_wall_clock_for_days_not_hours() -> None:
    saturday = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)  # 08:00 EDT; DST ends Sunday 02:00
    assert parse_when("tomorrow 10:00", saturday, NEW_YORK) == datetime(2026, 11, 1, 15, 0, tzinfo=UTC)
    assert parse_when("in 1d", saturday, NEW_YORK) == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)
    assert parse_when("in 24h", saturday, NEW_YORK) == datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    # spring forward: 02:30 does not exist on 2027-03-14; it lands an hour later on the wall clock
    before = datetime(2027, 3, 13, 17, 0, tzinfo=UTC)
    assert parse_when("tomorrow 02:30", before, NEW_YORK) == datetime(2027, 3, 14, 7, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("note", "rest", "local"),
    [
        ("called, sending brochure in 1d", "called, sending brochure", "2026-11-26 09:00"),
        ("meet tomorrow 15:00", "meet", "2026-11-26 15:00"),
        ("visit on 2026-12-01 15:00", "visit on", "2026-12-01 15:00"),
        ("已联系，明天10点", "已联系", "2026-11-26 10:00"),
        ("已报价 3天后", "已报价", "2026-11-28 09:00"),
        ("met in the office", "met in the office", None),
        ("bought 3 boxes", "bought 3 boxes", None),
        ("in 1d", "in 1d", None),
    ],
)
def test_trailing_reminder_phrases(note: str, rest: str, local: str | None) -> None:
    text, when = split_trailing_when(note, NOW, SHANGHAI)
    assert text == rest
    assert (when.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if when else None) == local


@pytest.mark.parametrize(("note", "part"), [("call back tomorrow 25:00", "25:00"), ("回访 明天25点", "25点")])
def test_trailing_phrase_that_is_clearly_a_time_but_wrong_is_an_error(note: str, part: str) -> None:
    with pytest.raises(WhenError) as caught:
        split_trailing_when(note, NOW, SHANGHAI)
    assert caught.value.part == part


def test_trailing_past_time_is_an_error() -> None:
    with pytest.raises(WhenError) as caught:
        split_trailing_when("called 2026-11-01 10:00", NOW, SHANGHAI)
    assert caught.value.past


_WORDS = st.sampled_from(
    ["in", "tomorrow", "today", "明天", "后天", "下周一", "3天后", "2小时后", "10:00", "10点", "3pm", "2026-12-01",
     "12-01", "1d", "2h", "1w", "next", "mon", "下午", "半", "0", "99999d", "23:59", "00:00", "x", ""]
)  # fmt: skip
_ZONES = st.sampled_from([SHANGHAI, NEW_YORK, ZoneInfo("UTC"), ZoneInfo("Europe/London"), ZoneInfo("Asia/Kolkata")])
_NOWS = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC))


@given(text=st.one_of(st.text(max_size=30), st.lists(_WORDS, max_size=4).map(" ".join)), now=_NOWS, zone=_ZONES)
def test_reminder_parsing_never_crashes_and_is_always_in_the_future(text: str, now: datetime, zone: ZoneInfo) -> None:
    try:
        when = parse_when(text, now, zone)
    except WhenError:
        return
    assert when.tzinfo is not None
    assert when.utcoffset() == timedelta(0)
    assert now < when <= now + timedelta(days=3 * 366)


@given(text=st.lists(st.one_of(_WORDS, st.text(max_size=8)), max_size=6).map(" ".join), now=_NOWS, zone=_ZONES)
def test_trailing_phrases_never_crash_and_point_to_the_future(text: str, now: datetime, zone: ZoneInfo) -> None:
    try:
        rest, when = split_trailing_when(text, now, zone)
    except WhenError:
        return
    assert when is None or when > now
    assert len(rest) <= len(text)
