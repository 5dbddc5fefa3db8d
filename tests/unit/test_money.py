"""Money: parsing, formatting, arithmetic, the rounding rule and exact splits."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.money import (
    CURRENCY_EXPONENTS,
    CurrencyMismatchError,
    Money,
    MoneyError,
    format_money,
    parse_money,
    percent_of,
    split,
)


@pytest.mark.parametrize(
    ("value", "currency", "minor"),
    [
        ("150.00", "CNY", 15000),
        ("15", "CNY", 1500),
        ("0.5", "CNY", 50),
        (" 15.5 ", "CNY", 1550),
        ("1.500", "CNY", 150),  # trailing zeros are not extra precision
        ("0", "USD", 0),
        ("1234.56", "EUR", 123456),
        ("1500", "JPY", 1500),
        (Decimal("15.50"), "CNY", 1550),
        (15, "CNY", 1500),
        (7, "JPY", 7),
    ],
)
def test_parse_money(value: str | int | Decimal, currency: str, minor: int) -> None:
    assert parse_money(value, currency) == Money(minor, currency)


def test_parse_negative_only_when_allowed() -> None:
    assert parse_money("-4.50", "CNY", allow_negative=True) == Money(-450, "CNY")
    with pytest.raises(MoneyError, match="negative"):
        parse_money("-4.50", "CNY")


@pytest.mark.parametrize(
    ("value", "currency"),
    [
        (15.0, "CNY"),
        (0.1, "CNY"),
        (True, "CNY"),
        (None, "CNY"),
        ("1.005", "CNY"),
        ("1.5", "JPY"),
        (Decimal("0.001"), "CNY"),
        (Decimal("NaN"), "CNY"),
        (Decimal("Infinity"), "CNY"),
        ("1,234.50", "CNY"),
        ("¥15", "CNY"),
        ("abc", "CNY"),
        ("", "CNY"),
        ("1e3", "CNY"),
        (".5", "CNY"),
        ("5.", "CNY"),
        ("NaN", "CNY"),
        ("15", "XYZ"),
    ],
)
def test_parse_money_refuses(value: object, currency: str) -> None:
    with pytest.raises(MoneyError):
        parse_money(value, currency)  # type: ignore[arg-type]


def test_money_refuses_non_int_minor_and_unknown_currency() -> None:
    with pytest.raises(MoneyError):
        Money(1.5, "CNY")  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        Money(True, "CNY")
    with pytest.raises(MoneyError, match="unknown currency"):
        Money(1, "XYZ")


@pytest.mark.parametrize(
    ("money", "language", "text"),
    [
        (Money(1500, "CNY"), "zh", "¥15.00"),
        (Money(1500, "CNY"), "en", "¥15.00"),
        (Money(450, "CNY"), "zh", "¥4.50"),
        (Money(-450, "CNY"), "en", "-¥4.50"),
        (Money(100_000_000, "CNY"), "zh", "¥1,000,000.00"),
        (Money(123450, "USD"), "en", "$1,234.50"),
        (Money(123450, "USD"), "zh", "US$1,234.50"),
        (Money(0, "EUR"), "en", "€0.00"),
        (Money(1500, "JPY"), "en", "JP¥1,500"),
        (Money(5, "CNY"), "xx", "¥0.05"),
    ],
)
def test_format_money(money: Money, language: str, text: str) -> None:
    assert format_money(money, language) == text


def test_arithmetic_and_comparisons() -> None:
    a, b = Money(1500, "CNY"), Money(450, "CNY")
    assert a + b == Money(1950, "CNY")
    assert a - b == Money(1050, "CNY")
    assert -b == Money(-450, "CNY")
    assert b < a
    assert a > b
    assert a <= Money(1500, "CNY")
    assert a >= Money(1500, "CNY")
    assert sum([a, b], Money.zero("CNY")) == Money(1950, "CNY")
    assert a.amount == Decimal("15.00")


def test_currencies_do_not_mix() -> None:
    cny, usd = Money(100, "CNY"), Money(100, "USD")
    assert cny != usd
    with pytest.raises(CurrencyMismatchError):
        _ = cny + usd
    with pytest.raises(CurrencyMismatchError):
        _ = cny - usd
    with pytest.raises(CurrencyMismatchError):
        _ = cny < usd
    with pytest.raises(CurrencyMismatchError):
        _ = cny >= usd


@pytest.mark.parametrize(
    ("minor", "rate", "expected"),
    [
        (15000, "0.10", 1500),
        (15000, "0.03", 450),
        (15000, "0.15", 2250),
        (4, "0.10", 0),  # 0.4 fen
        (5, "0.10", 1),  # 0.5 fen: ties go up
        (15, "0.10", 2),  # 1.5 → 2
        (25, "0.10", 3),  # 2.5 → 3, not banker's 2
        (-25, "0.10", -3),  # ties away from zero: refunds mirror sales
        (6, "0.10", 1),
        (100, "0.125", 13),
        (1, "0.005", 0),
        (999, "1", 999),
        (999, "0", 0),
    ],
)
def test_percent_of_rounds_half_up(minor: int, rate: str, expected: int) -> None:
    assert percent_of(Money(minor, "CNY"), Decimal(rate)) == Money(expected, "CNY")


def test_percent_of_refuses_float_rate() -> None:
    with pytest.raises(MoneyError):
        percent_of(Money(100, "CNY"), 0.1)  # type: ignore[arg-type]


rates = st.decimals(min_value=0, max_value=1, places=4)
minors = st.integers(min_value=-(10**12), max_value=10**12)


@given(minors, rates)
def test_percent_of_is_nearest_and_symmetric(minor: int, rate: Decimal) -> None:
    result = percent_of(Money(minor, "CNY"), rate).minor
    exact = Fraction(minor) * Fraction(rate)
    assert abs(result - exact) <= Fraction(1, 2)
    assert percent_of(Money(-minor, "CNY"), rate).minor == -result


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from(sorted(CURRENCY_EXPONENTS)))
def test_parse_reads_back_the_amount(minor: int, currency: str) -> None:
    money = Money(minor, currency)
    assert parse_money(str(money.amount), currency) == money


@pytest.mark.parametrize(
    ("total", "weights", "parts"),
    [
        (100, [1, 1, 1], [34, 33, 33]),
        (-100, [1, 1, 1], [-34, -33, -33]),
        (1000, [1, 0, 3], [250, 0, 750]),
        (1, [1, 1], [1, 0]),  # ties go to the earlier part
        (10, [Decimal("0.5"), Decimal("0.25"), Decimal("0.25")], [5, 3, 2]),
        (0, [2, 3], [0, 0]),
        (1500, [1500], [1500]),
    ],
)
def test_split_table(total: int, weights: list[int | Decimal], parts: list[int]) -> None:
    assert split(Money(total, "CNY"), weights) == [Money(p, "CNY") for p in parts]


@pytest.mark.parametrize("weights", [[], [0, 0], [1, -1], [0.5, 0.5], [True, 1]])
def test_split_refuses(weights: list[object]) -> None:
    with pytest.raises(MoneyError):
        split(Money(100, "CNY"), weights)  # type: ignore[arg-type]


weights_lists = st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=20).filter(any)


@given(minors, weights_lists)
def test_split_is_exact_and_within_one_unit(total: int, weights: list[int]) -> None:
    parts = split(Money(total, "CNY"), weights)
    assert sum(p.minor for p in parts) == total
    weight_sum = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part.minor - Fraction(total * weight, weight_sum)) < 1
        assert part.currency == "CNY"


@given(minors, st.lists(st.decimals(min_value=0, max_value=1000, places=3), min_size=1, max_size=10).filter(any))
def test_split_with_decimal_weights_sums_exactly(total: int, weights: list[Decimal]) -> None:
    assert sum(p.minor for p in split(Money(total, "USD"), weights)) == total
