"""Money as integer minor units with a currency: no floats anywhere, exact splits, one rounding rule.

Rounding rule (the only one in the project): a percentage of an amount is rounded to the nearest minor unit,
ties away from zero (`ROUND_HALF_UP` in `decimal`). ¥0.05 × 10% = ¥0.005 → ¥0.01; the same refund gives -¥0.01,
so a sale and its full refund always cancel exactly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

CURRENCY_EXPONENTS: dict[str, int] = {"CNY": 2, "USD": 2, "EUR": 2, "JPY": 0}
"""Digits after the decimal point in each supported currency (ISO 4217)."""

_SYMBOLS: dict[str, str] = {"CNY": "¥", "USD": "$", "EUR": "€", "JPY": "JP¥"}
# To a Chinese reader a bare "$" is fine, but "US$" is what 支付宝 and bank statements print.
_SYMBOLS_BY_LANGUAGE: dict[str, dict[str, str]] = {"zh": {"USD": "US$"}}
_AMOUNT = re.compile(r"^(?P<sign>-)?(?P<whole>\d+)(?:\.(?P<frac>\d+))?$")


class MoneyError(ValueError):
    """An amount that cannot be money: bad text, a float, too many decimals, a sign where none is allowed."""


class CurrencyMismatchError(MoneyError):
    """Arithmetic or comparison between two currencies."""


def exponent(currency: str) -> int:
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        known = ", ".join(CURRENCY_EXPONENTS)
        raise MoneyError(f"unknown currency {currency!r} (known: {known})") from None


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in the currency's minor unit (fen for CNY): `Money(1500, "CNY")` is ¥15.00."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        if type(self.minor) is not int:
            raise MoneyError(f"minor units must be an int, not {type(self.minor).__name__}")
        exponent(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatchError(f"cannot combine {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.minor <= other.minor

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor > other.minor

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.minor >= other.minor

    @property
    def amount(self) -> Decimal:
        """The amount in major units, exactly: `Decimal("15.00")`."""
        return Decimal(self.minor).scaleb(-exponent(self.currency))


def parse_money(value: str | int | Decimal, currency: str, *, allow_negative: bool = False) -> Money:
    """Money from text like "150.00" or "15", a Decimal, or an int of major units.

    Floats are refused (0.1 has no exact binary value), so are more decimals than the currency has
    ("1.005" CNY, "1.5" JPY), thousands separators, and a minus sign unless `allow_negative`.
    """
    digits = exponent(currency)
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise MoneyError(f"money must be written as text like '150.00', not a {type(value).__name__}")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise MoneyError(f"not an amount: {value}")
        amount = value
    else:
        match = _AMOUNT.match(value.strip())
        if match is None:
            raise MoneyError(f"not an amount: {value!r} (write it like '150.00')")
        amount = Decimal(value.strip())
    exp = amount.as_tuple().exponent
    assert isinstance(exp, int)  # finite, checked above
    if -exp > digits and amount != amount.quantize(Decimal(1).scaleb(-digits)):
        raise MoneyError(f"{currency} has {digits} decimal places at most: {value}")
    if amount < 0 and not allow_negative:
        raise MoneyError(f"amount must not be negative: {value}")
    return Money(int(amount.scaleb(digits)), currency)


def format_money(money: Money, language: str = "en") -> str:
    """¥15.00, -¥4.50, $1,234.50 (US$1,234.50 in Chinese), JP¥1,500."""
    symbol = _SYMBOLS_BY_LANGUAGE.get(language, {}).get(money.currency, _SYMBOLS[money.currency])
    digits = exponent(money.currency)
    sign = "-" if money.minor < 0 else ""
    return f"{sign}{symbol}{abs(money.amount):,.{digits}f}"


def percent_of(base: Money, rate: Decimal) -> Money:
    """`rate` × `base`, rounded to the minor unit with ties away from zero (ROUND_HALF_UP).

    `rate` is a fraction (Decimal("0.10") is 10%); floats are refused.
    """
    if not isinstance(rate, Decimal):
        raise MoneyError(f"a rate must be a Decimal, not a {type(rate).__name__}")
    minor = (Decimal(base.minor) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return Money(int(minor), base.currency)


def split(total: Money, weights: Sequence[int | Decimal]) -> list[Money]:
    """Share `total` in proportion to `weights`, exactly (largest remainder method).

    Each part is the proportional share rounded down, then the minor units left over go one each to the
    parts with the largest fractional remainders (ties: the earlier part). The parts always sum to `total`
    and each is within one minor unit of its exact share. A negative total is split as its absolute value
    and negated, so refunds mirror sales. Weights must be non-negative and not all zero; floats are refused.
    """
    if not weights:
        raise MoneyError("nothing to split between")
    if any(isinstance(w, bool) or not isinstance(w, int | Decimal) for w in weights):
        raise MoneyError("weights must be ints or Decimals")
    exact_weights = [Fraction(w) for w in weights]
    if any(w < 0 for w in exact_weights):
        raise MoneyError("weights must not be negative")
    weight_sum = sum(exact_weights, Fraction(0))
    if weight_sum == 0:
        raise MoneyError("weights must not all be zero")
    amount = abs(total.minor)
    shares = [amount * w / weight_sum for w in exact_weights]
    parts = [int(share) for share in shares]  # floor: shares are non-negative
    left = amount - sum(parts)
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(shares[i] - parts[i]), i))
    for i in by_remainder[:left]:
        parts[i] += 1
    sign = -1 if total.minor < 0 else 1
    return [Money(sign * part, total.currency) for part in parts]
