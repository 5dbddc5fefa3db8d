"""Tier 1: the pure content rules — parsing admin input, choosing the daily pack, tracked links, click rules."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.content import (
    SLUG_ALPHABET,
    SLUG_LENGTH,
    Audience,
    Candidate,
    Schedule,
    is_bot_agent,
    is_valid_slug,
    new_slug,
    parse_audience,
    parse_schedule,
    parse_tags,
    redirect_target,
    select_pack,
    share_text,
    validate_share_text,
    validate_title,
    validate_url,
    visitor_hash,
)
from bot.domain.errors import UsageError

WED = date(2026, 11, 25)  # ISO weekday 3
T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "dates", "weekdays"),
    [
        ("-", (), ()),
        ("evergreen", (), ()),
        ("常青", (), ()),
        ("2026-12-01, 2026-12-05", (date(2026, 12, 1), date(2026, 12, 5)), ()),
        ("mon wed", (), (1, 3)),
        ("周一、周三", (), (1, 3)),
        ("星期日", (), (7,)),
        ("weekdays", (), (1, 2, 3, 4, 5)),
        ("每天", (), (1, 2, 3, 4, 5, 6, 7)),
        ("2026-12-01 fri 5", (date(2026, 12, 1),), (5,)),
    ],
)
def test_parse_schedule(text: str, dates: tuple[date, ...], weekdays: tuple[int, ...]) -> None:
    assert parse_schedule(text) == Schedule(dates, weekdays)


@pytest.mark.parametrize(("text", "key"), [("2026-02-30", "content.error.date"), ("someday", "content.error.schedule")])
def test_parse_schedule_refuses(text: str, key: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_schedule(text)
    assert raised.value.key == key


@pytest.mark.parametrize(
    ("text", "audience"),
    [
        ("all", Audience()),
        ("全部", Audience()),
        ("gold, silver", Audience(("gold", "silver"))),
        ("gold high", Audience(("gold",), ("high",))),
        ("黄金 低活跃", Audience(("gold",), ("low",))),
        ("GOLD gold", Audience(("gold",))),
    ],
)
def test_parse_audience(text: str, audience: Audience) -> None:
    assert parse_audience(text) == audience


def test_parse_audience_names_the_unknown_word() -> None:
    with pytest.raises(UsageError) as raised:
        parse_audience("gold platinum")
    assert raised.value.params["word"] == "platinum"


def test_audience_levels_and_segments_narrow_independently() -> None:
    gold_high = Audience(("gold",), ("high",))
    assert gold_high.includes("gold", "high")
    assert not gold_high.includes("gold", None)
    assert not gold_high.includes("member", "high")
    assert Audience().includes("member", None)


@pytest.mark.parametrize(
    ("text", "tags"),
    [("spring, sale #new", ["spring", "sale", "new"]), ("-", []), ("a,a，b", ["a", "b"]), ("", [])],
)
def test_parse_tags(text: str, tags: list[str]) -> None:
    assert parse_tags(text) == tags


@pytest.mark.parametrize("url", ["ftp://x.com/a", "javascript:alert(1)", "shop.example.com", "http://", "http://a b"])
def test_validate_url_refuses_non_http(url: str) -> None:
    with pytest.raises(UsageError):
        validate_url(url)


def test_validate_url_accepts_http_and_https() -> None:
    assert validate_url(" https://shop.example.com/p?x=1 ") == "https://shop.example.com/p?x=1"
    assert validate_url("HTTP://EXAMPLE.COM") == "HTTP://EXAMPLE.COM"


def test_share_text_limits_depend_on_media() -> None:
    validate_share_text("x" * 4000, has_media=False)
    with pytest.raises(UsageError) as raised:
        validate_share_text("x" * 1000, has_media=True)
    assert raised.value.key == "content.error.text_long"
    with pytest.raises(UsageError):
        validate_title("   ")


def item(id: int, age_days: int = 0, **fields: object) -> Candidate:
    return Candidate(id=id, created_at=T0 - timedelta(days=age_days), **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("candidates", "level", "segment", "expected"),
    [
        # nothing at all: an empty pack (the caller says so, never an empty message)
        ([], "member", None, []),
        # nothing scheduled today: the newest evergreen items, at most three
        ([item(1, 4), item(2, 3), item(3, 2), item(4, 1)], "member", None, [4, 3, 2]),
        # dated items first, then this weekday's, newest first; evergreen left out on a scheduled day
        (
            [
                item(1, 0),
                item(2, 5, schedule=Schedule(weekdays=(3,))),
                item(3, 9, schedule=Schedule(dates=(WED,))),
                item(4, 1, schedule=Schedule(dates=(WED,))),
            ],
            "member",
            None,
            [4, 3, 2],
        ),
        # other days' items are not today's
        ([item(1, 0, schedule=Schedule(dates=(WED + timedelta(days=1),))), item(2, 5)], "member", None, [2]),
        # no evergreen items: items whose dates have passed rather than nothing
        ([item(1, 0, schedule=Schedule(dates=(WED - timedelta(days=3),)))], "member", None, [1]),
        # audience filters before anything else
        (
            [item(1, 0, audience=Audience(("gold",))), item(2, 1, audience=Audience((), ("high",))), item(3, 2)],
            "member",
            "high",
            [2, 3],
        ),
    ],
)
def test_select_pack(candidates: list[Candidate], level: str, segment: str | None, expected: list[int]) -> None:
    assert select_pack(candidates, WED, level, segment) == expected


@given(st.lists(st.integers(min_value=0, max_value=30), max_size=12), st.integers(min_value=1, max_value=3))
def test_select_pack_is_small_unique_and_never_empty_when_evergreen_exists(ages: list[int], size: int) -> None:
    candidates = [item(i, age) for i, age in enumerate(ages)]
    pack = select_pack(candidates, WED, "member", None, size)
    assert len(pack) == min(size, len(candidates))
    assert len(set(pack)) == len(pack)


def test_share_text_puts_the_link_where_asked_or_at_the_end() -> None:
    assert share_text("Buy here: {link} now", "L") == "Buy here: L now"
    assert share_text("Buy now", "L") == "Buy now\n\nL"


def test_slugs_are_random_from_the_alphabet() -> None:
    rng = random.Random(7)
    slugs = {new_slug(rng.choice) for _ in range(1000)}
    assert len(slugs) == 1000
    assert all(len(s) == SLUG_LENGTH and set(s) <= set(SLUG_ALPHABET) and is_valid_slug(s) for s in slugs)
    assert not is_valid_slug("<script>")
    assert not is_valid_slug("a" * 40)


@given(
    st.dictionaries(
        st.text(alphabet="abcdefgh_", min_size=1, max_size=6), st.text(alphabet="xyz019 ", max_size=5), max_size=4
    )
)
def test_redirect_target_keeps_the_query_and_appends_ref_and_utm(query: dict[str, str]) -> None:
    base = "https://shop.example.com/p"
    url = base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    target = urlsplit(redirect_target(url, invite_code="CODE1234", campaign="42"))
    pairs = parse_qsl(target.query, keep_blank_values=True)
    ours = {"ref": "CODE1234", "utm_source": "partner", "utm_medium": "telegram", "utm_campaign": "42"}
    assert pairs[-4:] == list(ours.items())
    kept = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    assert dict(pairs[:-4]) == {k: v for k, v in kept.items() if k not in ours}
    assert (target.scheme, target.netloc, target.path) == ("https", "shop.example.com", "/p")


def test_redirect_target_keeps_the_fragment() -> None:
    assert redirect_target("https://a.com/x?y=1#top", invite_code="C", campaign="7").endswith("#top")


@pytest.mark.parametrize(
    ("agent", "bot"),
    [
        (None, True),
        ("", True),
        ("   ", True),
        ("TelegramBot (like TwitterBot)", True),
        ("facebookexternalhit/1.1", True),
        ("Mozilla/5.0 (compatible; Googlebot/2.1)", True),
        ("curl/8.4.0", True),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148", False),
        ("Mozilla/5.0 (Linux; Android 14) Chrome/120.0 Mobile Safari/537.36 MicroMessenger/8.0", False),
    ],
)
def test_obvious_bots(agent: str | None, bot: bool) -> None:
    assert is_bot_agent(agent) is bot


def test_visitor_hash_is_keyed_and_hides_the_ip() -> None:
    one = visitor_hash(b"k1", "203.0.113.9", "UA")
    assert one == visitor_hash(b"k1", "203.0.113.9", "UA")
    assert one != visitor_hash(b"k2", "203.0.113.9", "UA")
    assert "203.0.113.9" not in one and len(one) == 32
