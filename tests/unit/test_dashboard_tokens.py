"""The dashboard's signed one-time links and session cookies (bot/domain/dashboard.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.dashboard import (
    LINK_TTL,
    LoginToken,
    TokenProblem,
    hash_id,
    page_window,
    session_cookie,
    session_id_of,
    sign_login,
    verify_login,
)

SECRET = b"k" * 32
OTHER = b"o" * 32
AT = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


def flip(text: str, index: int) -> str:
    char = text[index]
    return text[:index] + ("0" if char != "0" else "1") + text[index + 1 :]


def test_a_fresh_token_carries_its_claims() -> None:
    token = sign_login(SECRET, 42, "abc_DEF-123", AT)
    check = verify_login(SECRET, token, AT + timedelta(minutes=9, seconds=59))
    assert check == verify_login(SECRET, token, AT)
    assert check.token == LoginToken(42, "abc_DEF-123", AT + LINK_TTL)
    assert check.problem is None


@pytest.mark.parametrize(
    ("moment", "problem"),
    [
        (AT + LINK_TTL, TokenProblem.EXPIRED),
        (AT + timedelta(hours=13), TokenProblem.EXPIRED),
        (AT + LINK_TTL - timedelta(seconds=1), None),
    ],
)
def test_a_token_expires_after_ten_minutes(moment: datetime, problem: TokenProblem | None) -> None:
    assert verify_login(SECRET, sign_login(SECRET, 7, "tok", AT), moment).problem is problem


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        (None, TokenProblem.MALFORMED),
        ("", TokenProblem.MALFORMED),
        ("1.abc.123", TokenProblem.MALFORMED),
        ("x.abc.123.ff", TokenProblem.MALFORMED),
        ("1.a b.123.ff", TokenProblem.MALFORMED),
        ("1.abc.-5.ff", TokenProblem.MALFORMED),
        ("1." + "a" * 300 + ".1.ff", TokenProblem.MALFORMED),
        ("1.abc.99999999999.ff", TokenProblem.BAD_SIGNATURE),
    ],
)
def test_malformed_tokens_are_refused(token: str | None, problem: TokenProblem) -> None:
    assert verify_login(SECRET, token, AT) == verify_login(SECRET, token, AT)
    assert verify_login(SECRET, token, AT).problem is problem


def test_tampered_tokens_are_refused() -> None:
    token = sign_login(SECRET, 42, "abc", AT)
    partner, token_id, expires, signature = token.split(".")
    forged = [
        f"43.{token_id}.{expires}.{signature}",  # another partner
        f"{partner}.abd.{expires}.{signature}",  # another token id
        f"{partner}.{token_id}.{int(expires) + 3600}.{signature}",  # a later expiry
        flip(token, len(token) - 1),  # the signature itself
    ]
    for bad in forged:
        assert verify_login(SECRET, bad, AT).problem is TokenProblem.BAD_SIGNATURE, bad


def test_a_token_signed_with_another_secret_is_refused() -> None:
    assert verify_login(OTHER, sign_login(SECRET, 42, "abc", AT), AT).problem is TokenProblem.BAD_SIGNATURE


def test_a_login_token_is_not_a_session_cookie_and_back() -> None:
    """The purposes differ: a cookie's signature does not sign a token and a token does not pass as a cookie."""
    cookie = session_cookie(SECRET, "abc")
    assert session_id_of(SECRET, cookie) == "abc"
    token = sign_login(SECRET, 1, "abc", AT)
    assert session_id_of(SECRET, token) is None
    assert session_id_of(SECRET, "abc." + token.rsplit(".", 1)[1]) is None


@pytest.mark.parametrize("cookie", [None, "", "abc", "abc.", ".ff", "a b.ff", "abc.00"])
def test_malformed_cookies_have_no_session(cookie: str | None) -> None:
    assert session_id_of(SECRET, cookie) is None


def test_cookies_are_bound_to_the_secret_and_the_id() -> None:
    cookie = session_cookie(SECRET, "session-1")
    assert session_id_of(OTHER, cookie) is None
    assert session_id_of(SECRET, "session-2" + cookie[len("session-1") :]) is None
    assert session_id_of(SECRET, flip(cookie, len(cookie) - 1)) is None


@given(
    partner=st.integers(min_value=1, max_value=2**62),
    token_id=st.text(alphabet="abcXYZ019-_", min_size=1, max_size=64),
    seconds=st.integers(min_value=0, max_value=int(LINK_TTL.total_seconds()) - 1),
)
def test_every_signed_token_verifies_until_it_expires(partner: int, token_id: str, seconds: int) -> None:
    token = sign_login(SECRET, partner, token_id, AT)
    assert verify_login(SECRET, token, AT + timedelta(seconds=seconds)).token == LoginToken(
        partner, token_id, AT + LINK_TTL
    )
    assert verify_login(SECRET, token, AT + LINK_TTL).problem is TokenProblem.EXPIRED


def test_ids_are_validated_and_hashed() -> None:
    with pytest.raises(ValueError, match="token ids"):
        sign_login(SECRET, 1, "a.b", AT)
    with pytest.raises(ValueError, match="session ids"):
        session_cookie(SECRET, "")
    assert hash_id("abc") != "abc" and len(hash_id("abc")) == 64


@pytest.mark.parametrize(
    ("page", "total", "expected"),
    [
        (1, 0, (1, 0, 1)),
        (1, 25, (1, 0, 1)),
        (2, 26, (2, 25, 2)),
        (9, 26, (2, 25, 2)),
        (0, 60, (1, 0, 3)),
        (-3, 5, (1, 0, 1)),
    ],
)
def test_page_window(page: int, total: int, expected: tuple[int, int, int]) -> None:
    assert page_window(page, 25, total) == expected
