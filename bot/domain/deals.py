"""Deal progression, the pure part: partner prices per level, the arguments of /quote, /order and /product,
and the entries of a product import file.

Prices are integer minor units of the product's currency. A level's partner price is either a fixed price
(`{"price_minor": 9900}`) or a discount off the list price (`{"discount_pct": "15"}`), rounded to the minor
unit with ties away from zero (the project's one rounding rule, `bot.domain.money.percent_of`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from bot.domain.content import validate_url
from bot.domain.content_import import (
    CATEGORY_LIMIT,
    KEY_LIMIT,
    PRODUCT_NAME_LIMIT,
    Checked,
    Fields,
    Problem,
    bounded_text,
    check_all,
    parse_active,
    plain_text,
)
from bot.domain.errors import UsageError
from bot.domain.money import CURRENCY_EXPONENTS, Money, MoneyError, format_money, parse_money

DEFAULT_QUOTE_VALID_DAYS = 7
"""A quote is valid this many days unless the partner says otherwise (`/quote 3 TEA-1 2 14d`)."""
MAX_QUOTE_VALID_DAYS = 90
MAX_QUANTITY = 100_000
LIST_LEVEL = "list"
"""`/product price <sku> list <price>` sets the list price itself."""
NONE_WORDS = frozenset({"-", "none", "无"})
PRODUCT_FILE_FIELDS = ("sku", "name", "url", "category", "price", "currency", "level_prices", "active")
_SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$")
_DAYS = re.compile(r"^(\d{1,3})(?:d|天)$", re.IGNORECASE)
_PERCENT = re.compile(r"^(\d{1,2}(?:\.\d{1,2})?)%$")


# ------------------------------------------------------------------------------------------------ prices


@dataclass(frozen=True, slots=True)
class LevelPrice:
    """One level's partner price: a fixed price, or a percentage off the list price."""

    price_minor: int | None = None
    discount_pct: Decimal | None = None

    def stored(self) -> dict[str, Any]:
        """As kept in `products.level_prices[level]` (JSON: the percentage as text, never a float)."""
        if self.price_minor is not None:
            return {"price_minor": self.price_minor}
        return {"discount_pct": str(self.discount_pct)}

    @classmethod
    def from_stored(cls, raw: object) -> LevelPrice | None:
        if not isinstance(raw, Mapping):
            return None
        price = raw.get("price_minor")
        if isinstance(price, int) and not isinstance(price, bool) and price >= 0:
            return cls(price_minor=price)
        pct = raw.get("discount_pct")
        if isinstance(pct, str | int) and not isinstance(pct, bool):
            try:
                value = Decimal(str(pct))
            except InvalidOperation:
                return None
            if value.is_finite() and 0 <= value < 100:
                return cls(discount_pct=value)
        return None

    def describe(self, currency: str, language: str) -> str:
        """`¥99.00` or `-15%`, for a reader of `language`."""
        if self.price_minor is not None:
            return format_money(Money(self.price_minor, currency), language)
        return f"-{self.discount_pct}%"


def unit_price(list_price_minor: int | None, level_prices: Mapping[str, object], level: str) -> int | None:
    """The price a partner at `level` quotes: their level's price, else the list price; None when the product
    has neither (it cannot be quoted). A discount needs a list price to apply to."""
    special = LevelPrice.from_stored(level_prices.get(level))
    if special is not None and special.price_minor is not None:
        return special.price_minor
    if list_price_minor is None:
        return None
    if special is not None and special.discount_pct is not None:
        off = (Decimal(list_price_minor) * special.discount_pct / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return list_price_minor - int(off)
    return list_price_minor


def parse_price(text: str, currency: str) -> int:
    """An amount above zero such as `128` or `128.00` in `currency`, as minor units."""
    try:
        minor = parse_money(text.strip(), currency).minor
    except MoneyError:
        raise UsageError("deals.error.bad_price", value=text) from None
    if minor <= 0:
        raise UsageError("deals.error.bad_price", value=text)
    return minor


def parse_level_price(text: str, currency: str) -> LevelPrice:
    """`99.00` (a fixed partner price) or `15%` (off the list price, 0–99.99%)."""
    value = text.strip()
    match = _PERCENT.match(value)
    if match is not None:
        return LevelPrice(discount_pct=Decimal(match.group(1)))
    if value.endswith("%"):
        raise UsageError("deals.error.bad_discount", value=text)
    return LevelPrice(price_minor=parse_price(value, currency))


def parse_currency(text: str) -> str:
    code = text.strip().upper()
    if code not in CURRENCY_EXPONENTS:
        raise UsageError("deals.error.bad_currency", value=text, known=", ".join(CURRENCY_EXPONENTS))
    return code


def parse_sku(text: str) -> str:
    """A SKU as typed: letters, digits and `_ . : / -`, up to 64 characters, compared exactly."""
    value = text.strip()
    if not _SKU.match(value):
        raise UsageError("deals.error.bad_sku", value=text)
    return value


def parse_quantity(text: str) -> int:
    """A whole number of pieces, 1…100000; the error names the quantity."""
    value = text.strip()
    if not value.isascii() or not value.isdigit() or int(value) < 1 or int(value) > MAX_QUANTITY:
        raise UsageError("deals.error.bad_quantity", value=text, limit=MAX_QUANTITY)
    return int(value)


def parse_valid_days(text: str) -> int | None:
    """`14d` or `14天`: the quote's validity in days; None when `text` is not written that way."""
    match = _DAYS.match(text.strip())
    if match is None:
        return None
    days = int(match.group(1))
    if not 1 <= days <= MAX_QUOTE_VALID_DAYS:
        raise UsageError("deals.error.bad_days", value=text, limit=MAX_QUOTE_VALID_DAYS)
    return days


def valid_until(now: datetime, days: int) -> datetime:
    return now + timedelta(days=days)


def order_items(amount_minor: int, quantity: int) -> list[tuple[int, int]]:
    """The order's lines as (quantity, unit price) that add up to `amount_minor` exactly: one line when the
    amount divides evenly, else the last piece carries the remainder."""
    unit, rest = divmod(amount_minor, quantity)
    if rest == 0:
        return [(quantity, unit)]
    if quantity == 1:
        return [(1, amount_minor)]
    return [(quantity - 1, unit), (1, unit + rest)]


# --------------------------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class QuoteArgs:
    lead: str
    sku: str
    quantity: int = 1
    valid_days: int | None = None


@dataclass(frozen=True, slots=True)
class OrderArgs:
    lead: str
    sku: str
    quantity: int = 1
    amount: str | None = None
    """As typed; parsed in the product's currency once the product is known."""


def parse_quote_args(args: str | None) -> QuoteArgs:
    """`<lead> <sku> [qty] [Nd]`."""
    words = (args or "").split()
    if len(words) < 2 or len(words) > 4:
        raise UsageError("deals.quote.usage")
    lead, sku, *rest = words
    quantity, days = 1, None
    for position, word in enumerate(rest):
        found = parse_valid_days(word)
        if found is not None and days is None:
            days = found
        elif position == 0 and found is None:
            quantity = parse_quantity(word)
        else:
            raise UsageError("deals.quote.usage")
    return QuoteArgs(lead=lead, sku=parse_sku(sku), quantity=quantity, valid_days=days)


def parse_order_args(args: str | None) -> OrderArgs:
    """`<lead> <sku> [qty] [amount]`: the quantity is a whole number, the amount money like `450.00`."""
    words = (args or "").split()
    if len(words) < 2 or len(words) > 4:
        raise UsageError("deals.order.usage")
    lead, sku, *rest = words
    quantity = parse_quantity(rest[0]) if rest else 1
    amount = rest[1] if len(rest) > 1 else None
    return OrderArgs(lead=lead, sku=parse_sku(sku), quantity=quantity, amount=amount)


@dataclass(frozen=True, slots=True)
class ProductCommand:
    """One `/product …` command, parsed: `action` and its arguments."""

    action: str
    """list | show | add | price | category | url | archive | restore."""
    sku: str = ""
    page: int = 0
    price: str = ""
    url: str = ""
    name: str = ""
    level: str = ""
    value: str = ""


def _page(rest: list[str]) -> ProductCommand:
    if len(rest) != 1 or not rest[0].isascii() or not rest[0].isdigit() or int(rest[0]) < 1:
        raise UsageError("deals.product.usage")
    return ProductCommand("list", page=int(rest[0]) - 1)


def _add(rest: list[str]) -> ProductCommand:
    if len(rest) < 4:
        raise UsageError("deals.product.usage_add")
    return ProductCommand("add", sku=parse_sku(rest[0]), price=rest[1], url=rest[2], name=" ".join(rest[3:]))


def _price(rest: list[str]) -> ProductCommand:
    if len(rest) != 3:
        raise UsageError("deals.product.usage_price")
    return ProductCommand("price", sku=parse_sku(rest[0]), level=rest[1].lower(), value=rest[2])


def _category(rest: list[str]) -> ProductCommand:
    if len(rest) < 2:
        raise UsageError("deals.product.usage_category")
    return ProductCommand("category", sku=parse_sku(rest[0]), value=" ".join(rest[1:]))


def _url(rest: list[str]) -> ProductCommand:
    if len(rest) != 2:
        raise UsageError("deals.product.usage_url")
    return ProductCommand("url", sku=parse_sku(rest[0]), url=rest[1])


def _status(action: str) -> Callable[[list[str]], ProductCommand]:
    def parse(rest: list[str]) -> ProductCommand:
        if len(rest) != 1:
            raise UsageError("deals.product.usage")
        return ProductCommand(action, sku=parse_sku(rest[0]))

    return parse


_PRODUCT_ACTIONS: Mapping[str, Callable[[list[str]], ProductCommand]] = {
    "page": _page,
    "add": _add,
    "price": _price,
    "category": _category,
    "url": _url,
    "archive": _status("archive"),
    "restore": _status("restore"),
}


def parse_product_command(args: str | None) -> ProductCommand:
    """/product [page N] · <sku> · add <sku> <price> <url> <name…> · price <sku> <level|list> <price|15%|-> ·
    category <sku> <category|-> · url <sku> <url> · archive <sku> · restore <sku>."""
    words = (args or "").split()
    if not words:
        return ProductCommand("list")
    parse = _PRODUCT_ACTIONS.get(words[0].lower())
    if parse is not None:
        return parse(words[1:])
    if len(words) == 1:
        return ProductCommand("show", sku=parse_sku(words[0]))
    raise UsageError("deals.product.usage")


def validate_name(text: str) -> str:
    name = " ".join(text.split())
    if not name or len(name) > PRODUCT_NAME_LIMIT:
        raise UsageError("deals.error.bad_name", limit=PRODUCT_NAME_LIMIT)
    return name


def validate_category(text: str) -> str | None:
    value = " ".join(text.split())
    if value.lower() in NONE_WORDS:
        return None
    if not value or len(value) > CATEGORY_LIMIT:
        raise UsageError("deals.error.bad_category", limit=CATEGORY_LIMIT)
    return value


def validate_product_url(text: str) -> str:
    try:
        return validate_url(text)
    except UsageError:
        raise UsageError("deals.error.bad_url", value=text) from None


def check_level(level: str, levels: Sequence[str]) -> str:
    if level not in levels:
        raise UsageError("deals.error.bad_level", value=level, levels=", ".join(levels))
    return level


# -------------------------------------------------------------------------------------------- import file


@dataclass(frozen=True, slots=True)
class ProductEntry:
    """A product as the import file describes it, every field valid. The file states the whole product:
    re-importing a SKU replaces its name, link, category, prices and status with the file's."""

    sku: str
    name: str
    url: str
    currency: str
    category: str | None = None
    price_minor: int | None = None
    level_prices: Mapping[str, LevelPrice] = field(default_factory=dict)
    active: bool = True

    def stored_level_prices(self) -> dict[str, Any]:
        return {level: price.stored() for level, price in self.level_prices.items()}


def _parse_level_prices(value: object, currency: str, levels: Sequence[str]) -> dict[str, LevelPrice]:
    """A mapping `{silver: "99.00", gold: "15%"}`, or text `silver=99.00; gold=15%` (CSV cells)."""
    pairs: list[tuple[str, str]] = []
    if isinstance(value, Mapping):
        pairs = [(str(k).strip().lower(), plain_text(v)) for k, v in value.items()]
    else:
        for part in re.split(r"[;,]", plain_text(value)):
            if not part.strip():
                continue
            level, sep, price = part.partition("=")
            if not sep:
                raise UsageError("deals.import.bad_level_prices", value=part.strip())
            pairs.append((level.strip().lower(), price))
    result: dict[str, LevelPrice] = {}
    for level, price in pairs:
        result[check_level(level, levels)] = parse_level_price(price, currency)
    return result


def check_product_entry(
    raw: object, *, levels: Sequence[str], default_currency: str
) -> tuple[ProductEntry | None, list[Problem]]:
    """One entry of a products file: sku, name and url required; everything else optional."""
    if not isinstance(raw, Mapping):
        return None, [Problem("", "content.import.not_product")]
    raw = {k: v for k, v in raw.items() if not (isinstance(v, str) and not v.strip())}  # empty CSV cells
    fields = Fields(raw, PRODUCT_FILE_FIELDS)
    sku = fields.read("sku", lambda v: parse_sku(bounded_text(v, KEY_LIMIT)), required=True)
    name = fields.read("name", lambda v: bounded_text(v, PRODUCT_NAME_LIMIT), required=True)
    url = fields.read("url", lambda v: validate_product_url(plain_text(v)), required=True)
    category = fields.read("category", lambda v: bounded_text(v, CATEGORY_LIMIT))
    currency = fields.read("currency", lambda v: parse_currency(plain_text(v))) or default_currency
    price = fields.read("price", lambda v: parse_price(plain_text(v), currency))
    level_prices = fields.read("level_prices", lambda v: _parse_level_prices(v, currency, levels))
    active = fields.read("active", _csv_bool)
    if fields.problems or sku is None or name is None or url is None:
        return None, fields.problems
    entry = ProductEntry(
        sku=sku,
        name=name,
        url=url,
        currency=currency,
        category=category,
        price_minor=price,
        level_prices=level_prices or {},
        active=active is not False,
    )
    return entry, []


def _csv_bool(value: object) -> bool:
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "false", "no", "0"):
        return value.strip().lower() in ("true", "yes", "1")
    return parse_active(value)


def check_product_entries(
    raws: Sequence[object], *, levels: Sequence[str], default_currency: str
) -> list[Checked[ProductEntry]]:
    """Every entry of the file; a SKU listed twice is a problem of the later entry."""

    def check(raw: object) -> tuple[ProductEntry | None, list[Problem]]:
        return check_product_entry(raw, levels=levels, default_currency=default_currency)

    return check_all(raws, check, "sku", "content.import.duplicate_sku", ("name", "sku"))
