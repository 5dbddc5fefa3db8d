"""Tier 1: invite codes and first-touch binding, as tables of cases and properties."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.referral import (
    CODE_ALPHABET,
    CODE_LENGTH,
    Binding,
    BindingInput,
    decide_binding,
    is_valid_payload,
    new_invite_code,
    recruit_deep_link,
)


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (BindingInput(None, None, None, None), Binding.NO_CODE),
        (BindingInput(None, None, "", None), Binding.NO_CODE),
        (BindingInput(None, None, "abc", 7), Binding.BOUND),
        (BindingInput(None, None, "abc", None), Binding.UNKNOWN_CODE),
        (BindingInput(None, None, "a b", None), Binding.INVALID_CODE),
        (BindingInput(None, None, "x" * 65, None), Binding.INVALID_CODE),
        (BindingInput(5, None, "abc", 5), Binding.OWN_CODE),
        (BindingInput(5, 3, "abc", 7), Binding.ALREADY_BOUND),
        (BindingInput(5, 3, "abc", None), Binding.ALREADY_BOUND),
        (BindingInput(5, 3, None, None), Binding.NO_CODE),
        (BindingInput(5, None, "abc", 9, (8, 5, 1)), Binding.CYCLE),
        (BindingInput(5, None, "abc", 9, (8, 4, 1)), Binding.BOUND),
    ],
)
def test_binding_table(facts: BindingInput, expected: Binding) -> None:
    assert decide_binding(facts) is expected


@pytest.mark.parametrize(
    ("payload", "valid"),
    [("abc", True), ("A-b_9", True), ("x" * 64, True), ("x" * 65, False), ("", False), ("a/b", False), ("中文", False)],
)
def test_payload_shape(payload: str, valid: bool) -> None:
    assert is_valid_payload(payload) is valid


@given(st.integers(min_value=1), st.lists(st.integers(min_value=1), max_size=6), st.text(max_size=70))
def test_bound_partner_never_moves(partner_id: int, ancestors: list[int], payload: str) -> None:
    facts = BindingInput(partner_id, 99, payload, 42, ancestors)
    assert decide_binding(facts) in (Binding.ALREADY_BOUND, Binding.NO_CODE)


@given(st.integers(min_value=1, max_value=50), st.lists(st.integers(min_value=1, max_value=50), max_size=6))
def test_binding_never_creates_a_cycle(partner_id: int, owner_ancestors: list[int]) -> None:
    owner_id = 77
    result = decide_binding(BindingInput(partner_id, None, "code", owner_id, owner_ancestors))
    if result is Binding.BOUND:
        assert partner_id not in owner_ancestors and partner_id != owner_id


def test_invite_codes_are_short_random_and_unambiguous() -> None:
    rng = random.Random(7)
    codes = {new_invite_code(rng.choice) for _ in range(2000)}
    assert len(codes) == 2000
    for code in codes:
        assert len(code) == CODE_LENGTH and set(code) <= set(CODE_ALPHABET) and is_valid_payload(code)
    assert not set("0O1lI") & set(CODE_ALPHABET)


def test_deep_link() -> None:
    assert recruit_deep_link("my_bot", "abc") == "https://t.me/my_bot?start=abc"
