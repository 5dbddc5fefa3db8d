"""Tier 1: deal progression's pure rules — partner prices per level, command arguments, import entries."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.deals import (
    LevelPrice,
    OrderArgs,
    ProductCommand,
    QuoteArgs,
    check_product_entries,
    order_items,
    parse_level_price,
    parse_order_args,
    parse_product_command,
    parse_quantity,
    parse_quote_args,
    unit_price,
)
from bot.domain.errors import UsageError

LEVELS = ("member", "silver", "gold")


@pytest.mark.parametrize(
    ("list_price", "level_prices", "level", "expected"),
    [
        (12800, {}, "member", 12800),
        (12800, {"silver": {"price_minor": 11800}}, "silver", 11800),
        (12800, {"silver": {"price_minor": 11800}}, "gold", 12800),
        (12800, {"gold": {"discount_pct": "15"}}, "gold", 10880),
        (999, {"gold": {"discount_pct": "12.5"}}, "gold", 874),  # 124.875 off → 125 (half up), 874 left
        (1000, {"gold": {"discount_pct": "0.05"}}, "gold", 999),  # 0.5 off rounds to 1
        (None, {"gold": {"price_minor": 5000}}, "gold", 5000),  # a fixed price needs no list price
        (None, {"gold": {"discount_pct": "10"}}, "gold", None),  # a discount of nothing: no price
        (None, {}, "member", None),
        (12800, {"gold": {"discount_pct": "abc"}}, "gold", 12800),  # a broken stored entry is ignored
        (12800, {"gold": {"price_minor": -5}}, "gold", 12800),
    ],
)
def test_unit_price_per_level(
    list_price: int | None, level_prices: dict[str, object], level: str, expected: int | None
) -> None:
    assert unit_price(list_price, level_prices, level) == expected


@given(st.integers(min_value=1, max_value=10**9), st.decimals(min_value=0, max_value=Decimal("99.99"), places=2))
def test_a_discount_never_raises_the_price_or_goes_below_zero(list_price: int, pct: Decimal) -> None:
    price = unit_price(list_price, {"gold": LevelPrice(discount_pct=pct).stored()}, "gold")
    assert price is not None
    assert 0 <= price <= list_price


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("99", LevelPrice(price_minor=9900)),
        ("99.50", LevelPrice(price_minor=9950)),
        ("15%", LevelPrice(discount_pct=Decimal("15"))),
        ("10%", LevelPrice(discount_pct=Decimal("10"))),
        ("12.5%", LevelPrice(discount_pct=Decimal("12.5"))),
    ],
)
def test_level_price_parsing(text: str, expected: LevelPrice) -> None:
    parsed = parse_level_price(text, "CNY")
    assert parsed == expected
    assert LevelPrice.from_stored(parsed.stored()) == expected
    assert "E" not in str(parsed.stored())


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("0", "deals.error.bad_price"),
        ("-5", "deals.error.bad_price"),
        ("9.999", "deals.error.bad_price"),
        ("abc", "deals.error.bad_price"),
        ("100%", "deals.error.bad_discount"),
        ("-5%", "deals.error.bad_discount"),
        ("x%", "deals.error.bad_discount"),
    ],
)
def test_bad_level_prices_name_the_value(text: str, key: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_level_price(text, "CNY")
    assert caught.value.key == key
    assert caught.value.params["value"] == text


@pytest.mark.parametrize("text", ["0", "-1", "1.5", "abc", "١", "100001", ""])
def test_bad_quantities(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_quantity(text)
    assert caught.value.key == "deals.error.bad_quantity"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("3 TEA-001", QuoteArgs("3", "TEA-001", 1, None)),
        ("#3 TEA-001 2", QuoteArgs("#3", "TEA-001", 2, None)),
        ("Alice TEA-001 2 14d", QuoteArgs("Alice", "TEA-001", 2, 14)),
        ("Alice TEA-001 30天", QuoteArgs("Alice", "TEA-001", 1, 30)),
    ],
)
def test_quote_arguments(args: str, expected: QuoteArgs) -> None:
    assert parse_quote_args(args) == expected


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (None, "deals.quote.usage"),
        ("3", "deals.quote.usage"),
        ("3 TEA-001 2 3 4", "deals.quote.usage"),
        ("3 TEA-001 -2", "deals.error.bad_quantity"),
        ("3 TEA-001 0", "deals.error.bad_quantity"),
        ("3 TEA-001 2 0d", "deals.error.bad_days"),
        ("3 <b>x</b>", "deals.error.bad_sku"),
    ],
)
def test_bad_quote_arguments(args: str | None, key: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_quote_args(args)
    assert caught.value.key == key


def test_order_arguments() -> None:
    assert parse_order_args("3 TEA-001") == OrderArgs("3", "TEA-001", 1, None)
    assert parse_order_args("3 TEA-001 2 236.00") == OrderArgs("3", "TEA-001", 2, "236.00")
    with pytest.raises(UsageError) as caught:
        parse_order_args("3 TEA-001 2.5")
    assert caught.value.key == "deals.error.bad_quantity"
    with pytest.raises(UsageError) as caught:
        parse_order_args("3")
    assert caught.value.key == "deals.order.usage"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (None, ProductCommand("list")),
        ("page 3", ProductCommand("list", page=2)),
        ("TEA-001", ProductCommand("show", sku="TEA-001")),
        (
            "add TEA-001 128 https://x.example/p Spring tea",
            ProductCommand("add", sku="TEA-001", price="128", url="https://x.example/p", name="Spring tea"),
        ),
        ("price TEA-001 Gold 15%", ProductCommand("price", sku="TEA-001", level="gold", value="15%")),
        ("category TEA-001 green tea", ProductCommand("category", sku="TEA-001", value="green tea")),
        ("archive TEA-001", ProductCommand("archive", sku="TEA-001")),
        ("restore TEA-001", ProductCommand("restore", sku="TEA-001")),
    ],
)
def test_product_commands(args: str | None, expected: ProductCommand) -> None:
    assert parse_product_command(args) == expected


@pytest.mark.parametrize(
    ("args", "key"),
    [
        ("add TEA-001 128", "deals.product.usage_add"),
        ("price TEA-001 gold", "deals.product.usage_price"),
        ("page 0", "deals.product.usage"),
        ("frobnicate a b", "deals.product.usage"),
    ],
)
def test_bad_product_commands(args: str, key: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_product_command(args)
    assert caught.value.key == key


@given(st.integers(min_value=1, max_value=10**10), st.integers(min_value=1, max_value=100_000))
def test_order_items_add_up_to_the_amount(amount: int, quantity: int) -> None:
    lines = order_items(amount, quantity)
    assert sum(q * u for q, u in lines) == amount
    assert sum(q for q, _ in lines) == quantity
    assert all(q > 0 and u >= 0 for q, u in lines)


def test_import_entries_collect_every_problem() -> None:
    checked = check_product_entries(
        [
            {"sku": "A-1", "name": "Tea", "url": "https://x.example/a", "price": "10", "level_prices": "gold=15%"},
            {"sku": "A-2", "name": "Cup", "url": "ftp://nope", "price": "-1", "level_prices": {"platinum": "5"}},
            {"sku": "A-1", "name": "Again", "url": "https://x.example/b"},
            {"sku": "B-1", "nmae": "Typo", "url": "https://x.example/c"},
            "not a mapping",
        ],
        levels=LEVELS,
        default_currency="CNY",
    )
    first = checked[0].spec
    assert first is not None
    assert (first.price_minor, first.currency, first.stored_level_prices()) == (
        1000,
        "CNY",
        {"gold": {"discount_pct": "15"}},
    )
    assert {p.field for p in checked[1].problems} == {"url", "price", "level_prices"}
    assert [p.key for p in checked[2].problems] == ["content.import.duplicate_sku"]
    assert {p.field for p in checked[3].problems} == {"nmae", "name"}
    assert [p.key for p in checked[4].problems] == ["content.import.not_product"]
    assert [c.spec is None for c in checked] == [False, True, True, True, True]
