"""The orders and refunds API, the pure part: request signatures, body validation that lists every field
error at once, and the fingerprint that tells an identical replay (200) from a conflicting one (409).

The web layer reads the raw body and the two headers, calls `verify_signature`, then `parse_order` or
`parse_refund`, compares `payload_fingerprint` with the one stored under the same id (`classify_submission`)
and answers with the bodies built here. Amounts are integer minor units plus an ISO 4217 code. JSON numbers
are refused for money: a float cannot hold 0.10 exactly, and a shop's JSON encoder may round it on the way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError
from pydantic_core import PydanticCustomError

from bot.domain.referral import is_valid_payload

SIGNATURE_TOLERANCE = timedelta(minutes=5)
"""A request signed more than this long ago (or ahead) is refused, so a captured request cannot be replayed
later. Retries within the window are answered from the idempotency record instead."""
SIGNATURE_PREFIX = "sha256="
MAX_BODY_BYTES = 64 * 1024
MAX_ITEMS = 500
MAX_QUANTITY = 1_000_000
MAX_INTEGER_DIGITS = 12
"""Up to 999 999 999 999 in the major unit: far above any order, and the minor units still fit a BIGINT."""
ID_LIMIT = 64
TEXT_LIMIT = 64
COUPON_LIMIT = 32

CURRENCY_EXPONENTS: Mapping[str, int] = MappingProxyType({"CNY": 2, "EUR": 2, "JPY": 0, "USD": 2})
"""Supported currencies and their number of decimal places (ISO 4217 minor units)."""

FINGERPRINT_VERSION = 1
"""Part of every fingerprint. Bump it only with a migration: stored fingerprints would stop matching replays."""

# [0-9], never \d: \d also matches other scripts' digits, which int() would then accept.
_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
_SIGNATURE_RE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_DECIMAL_RE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_CURRENCY_RE = re.compile(r"[A-Z]{3}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_T = TypeVar("_T")


# --- Signatures -------------------------------------------------------------------------------------------


class SignatureFailure(StrEnum):
    MISSING = "missing"
    """X-Timestamp or X-Signature is absent or empty."""
    MALFORMED = "malformed"
    """X-Timestamp is not an integer string, or X-Signature is not sha256=<64 hex digits>."""
    MISMATCH = "mismatch"
    """The signature does not match the timestamp and body under our secret."""
    STALE = "stale"
    """Correctly signed, but more than the tolerance in the past."""
    FUTURE = "future"
    """Correctly signed, but more than the tolerance in the future (the sender's clock is ahead)."""


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    reason: SignatureFailure | None = None
    """None when the request is authentic and fresh."""

    @property
    def ok(self) -> bool:
        return self.reason is None


def _signed_message(timestamp: str, raw_body: bytes) -> bytes:
    return timestamp.encode("ascii") + b"." + raw_body


def _require_secret(secret: bytes) -> None:
    if not secret:
        # An empty key would make every signature forgeable; this is a configuration error, not a 401.
        raise ValueError("the orders API secret must not be empty")


def sign(secret: bytes, timestamp: int, raw_body: bytes) -> str:
    """The X-Signature value for a body sent at `timestamp` (unix seconds): sha256=<hex HMAC>."""
    _require_secret(secret)
    digest = hmac.new(secret, _signed_message(str(timestamp), raw_body), hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify_signature(
    secret: bytes,
    timestamp_header: str | None,
    signature_header: str | None,
    raw_body: bytes,
    now: datetime,
    *,
    tolerance: timedelta = SIGNATURE_TOLERANCE,
) -> SignatureCheck:
    """Whether a request was signed with our secret within `tolerance` of `now` (boundaries accepted).

    The signature is checked before the clock: only a caller who holds the secret learns that their
    timestamp is stale or ahead, which is what they need to fix a drifting clock. The timestamp is signed
    exactly as sent in the header.
    """
    _require_secret(secret)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not timestamp_header or not signature_header:
        return SignatureCheck(SignatureFailure.MISSING)
    signature = _SIGNATURE_RE.fullmatch(signature_header)
    if _TIMESTAMP_RE.fullmatch(timestamp_header) is None or signature is None:
        return SignatureCheck(SignatureFailure.MALFORMED)
    expected = hmac.new(secret, _signed_message(timestamp_header, raw_body), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.group(1).lower()):
        return SignatureCheck(SignatureFailure.MISMATCH)
    ahead = timedelta(seconds=int(timestamp_header)) - (now - _EPOCH)
    if ahead < -tolerance:
        return SignatureCheck(SignatureFailure.STALE)
    if ahead > tolerance:
        return SignatureCheck(SignatureFailure.FUTURE)
    return SignatureCheck()


# --- Parsed payloads --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldError:
    path: str
    """Where the problem is, like `items[0].unit_price`; the empty string means the body as a whole."""
    message: str


class BodyError(ValueError):
    """The body is not a valid order or refund; `errors` lists every problem found, not just the first."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(f"{error.path or '(body)'}: {error.message}" for error in self.errors))


@dataclass(frozen=True, slots=True)
class OrderItemIn:
    sku: str
    category: str
    quantity: int
    unit_price_minor: int
    """In the order's currency."""


@dataclass(frozen=True, slots=True)
class OrderIn:
    """A paid order as the shop reported it; amounts are minor units of `currency` (fen, cents, yen)."""

    order_id: str
    partner_code: str | None
    coupon: str | None
    customer_id: str
    currency: str
    amount_minor: int
    items: tuple[OrderItemIn, ...]
    paid_at: datetime
    """Always in UTC."""


@dataclass(frozen=True, slots=True)
class RefundIn:
    refund_id: str
    order_id: str
    amount_minor: int
    currency: str


# --- Field rules ------------------------------------------------------------------------------------------
# Each rule is a plain validator, so pydantic reports exactly one clear message per field and collects
# them all. The same rules are reused by the cross-field checks, which read the raw JSON so that they can
# run even when another field has failed.


def _fail(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise _fail("string_type", "must be a string")
    return value


def _identifier(value: object) -> str:
    text = _string(value)
    if _ID_RE.fullmatch(text) is None:
        raise _fail("id_format", "must be 1 to 64 characters of A-Z, a-z, 0-9, underscore, dot, colon or hyphen")
    return text


def _label(value: object) -> str:
    text = _string(value)
    if not text or len(text) > TEXT_LIMIT or text != text.strip() or not text.isprintable():
        raise _fail("text_format", "must be 1 to 64 printable characters without surrounding spaces")
    return text


def _partner_code(value: object) -> str | None:
    if value is None:
        return None
    code = _string(value)
    if not is_valid_payload(code):
        raise _fail("partner_code", "is not an invite code (1 to 64 characters of A-Z, a-z, 0-9, _ and -)")
    return code


def _coupon(value: object) -> str | None:
    if value is None:
        return None
    text = _string(value)
    if not text or len(text) > COUPON_LIMIT or text != text.strip() or not text.isprintable():
        raise _fail("coupon_format", "must be 1 to 32 printable characters without surrounding spaces")
    return text


def _quantity(value: object) -> int:
    # bool is an int in Python, but `true` is not a quantity.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail("quantity_type", "must be a whole number")
    if value <= 0:
        raise _fail("quantity_range", "must be greater than 0")
    if value > MAX_QUANTITY:
        raise _fail("quantity_range", "is too large")
    return value


def _decimal_text(value: object) -> Decimal:
    """A non-negative decimal string like "12.50"; the currency's decimal places are checked separately."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise _fail("money_type", 'must be a decimal string such as "12.50", not a JSON number')
    if not isinstance(value, str) or _DECIMAL_RE.fullmatch(value) is None:
        raise _fail("money_format", 'must be a decimal string such as "12.50"')
    if value.startswith("-"):
        raise _fail("money_range", "must not be negative")
    if len(value.partition(".")[0].lstrip("0")) > MAX_INTEGER_DIGITS:
        raise _fail("money_range", "is too large")
    return Decimal(value)


def _positive_decimal_text(value: object) -> Decimal:
    amount = _decimal_text(value)
    if amount == 0:
        raise _fail("money_range", "must be greater than 0")
    return amount


def _currency(value: object) -> str:
    code = _string(value)
    if _CURRENCY_RE.fullmatch(code) is None:
        raise _fail("currency_format", "must be an upper-case ISO 4217 code such as CNY")
    if code not in CURRENCY_EXPONENTS:
        raise _fail("currency_unsupported", f"is not supported; use one of {', '.join(sorted(CURRENCY_EXPONENTS))}")
    return code


def _paid_at(value: object) -> datetime:
    example = "such as 2024-05-01T12:30:00+08:00 or 2024-05-01T04:30:00Z"
    text = _string(value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _fail("datetime_format", f"must be an ISO 8601 date and time, {example}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise _fail("datetime_timezone", f"must include a timezone offset or Z, {example}")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise _fail("datetime_range", "is out of range") from None


_Identifier = Annotated[str, PlainValidator(_identifier)]
_Label = Annotated[str, PlainValidator(_label)]
_PartnerCode = Annotated[str | None, PlainValidator(_partner_code)]
_Coupon = Annotated[str | None, PlainValidator(_coupon)]
_Quantity = Annotated[int, PlainValidator(_quantity)]
_Money = Annotated[Decimal, PlainValidator(_decimal_text)]
_PositiveMoney = Annotated[Decimal, PlainValidator(_positive_decimal_text)]
_Currency = Annotated[str, PlainValidator(_currency)]
_PaidAt = Annotated[datetime, PlainValidator(_paid_at)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


_W = TypeVar("_W", bound=_Wire)


class _ItemWire(_Wire):
    sku: _Identifier
    category: _Label
    quantity: _Quantity
    unit_price: _Money


class _OrderWire(_Wire):
    order_id: _Identifier
    partner_code: _PartnerCode = None
    coupon: _Coupon = None
    customer_id: _Identifier
    currency: _Currency
    amount: _Money
    items: Annotated[list[_ItemWire], Field(min_length=1, max_length=MAX_ITEMS)]
    paid_at: _PaidAt


class _RefundWire(_Wire):
    refund_id: _Identifier
    order_id: _Identifier
    amount: _PositiveMoney
    currency: _Currency


# --- Cross-field rules ------------------------------------------------------------------------------------


def _or_none(rule: Callable[[object], _T], value: object) -> _T | None:
    """The rule's value, or None when it fails (pydantic has already reported that failure)."""
    try:
        return rule(value)
    except PydanticCustomError:
        return None


def _minor_units(amount: Decimal, currency: str) -> int | None:
    """`amount` in minor units, or None when it has more decimal places than the currency allows."""
    exponent = CURRENCY_EXPONENTS[currency]
    places = amount.as_tuple().exponent  # negative for decimals; a str only for NaN/Infinity, refused before
    if not isinstance(places, int) or -places > exponent:
        return None
    return int(amount.scaleb(exponent))


def format_minor(minor: int, currency: str) -> str:
    """Minor units as the API's decimal string: 2500 CNY → "25.00", 2500 JPY → "2500"."""
    exponent = CURRENCY_EXPONENTS[currency]
    if exponent == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**exponent)
    return f"{sign}{whole}.{fraction:0{exponent}d}"


def _places_message(currency: str) -> str:
    exponent = CURRENCY_EXPONENTS[currency]
    if exponent == 0:
        return f"must be a whole number of {currency}, without decimals"
    return f"must have at most {exponent} decimal places for {currency}"


def _checked_minor(data: Mapping[str, Any], key: str, currency: str, path: str, errors: list[FieldError]) -> int | None:
    amount = _or_none(_decimal_text, data.get(key))
    if amount is None:
        return None
    minor = _minor_units(amount, currency)
    if minor is None:
        errors.append(FieldError(path, _places_message(currency)))
    return minor


def _order_money_errors(data: Mapping[str, Any]) -> list[FieldError]:
    """Decimal places per currency, and the rule that `amount` is the sum of quantity × unit_price.

    The sum rule holds for any consistent shop payload: discounts belong in the unit prices or the
    coupon's effect on them, never as a silent difference. A mismatch is reported at `amount`, once every
    part of the sum is itself valid.
    """
    currency = _or_none(_currency, data.get("currency"))
    if currency is None:
        return []
    errors: list[FieldError] = []
    amount = _checked_minor(data, "amount", currency, "amount", errors)
    items = data.get("items")
    if not isinstance(items, list) or not items or len(items) > MAX_ITEMS:
        return errors
    total: int | None = 0
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            total = None
            continue
        price = _checked_minor(item, "unit_price", currency, f"items[{index}].unit_price", errors)
        quantity = _or_none(_quantity, item.get("quantity"))
        if total is not None and price is not None and quantity is not None:
            total += quantity * price
        else:
            total = None
    if amount is not None and total is not None and amount != total:
        errors.append(
            FieldError(
                "amount",
                f"must equal the sum of quantity × unit_price over the items, "
                f"{format_minor(total, currency)} {currency}, not {format_minor(amount, currency)}",
            )
        )
    return errors


def _refund_money_errors(data: Mapping[str, Any]) -> list[FieldError]:
    currency = _or_none(_currency, data.get("currency"))
    if currency is None:
        return []
    errors: list[FieldError] = []
    _checked_minor(data, "amount", currency, "amount", errors)
    return errors


# --- Parsing ----------------------------------------------------------------------------------------------

_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "list_type": "must be a list",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "too_short": "must list at least one item",
    "too_long": f"must list at most {MAX_ITEMS} items",
}


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys; a body that says two amounts is refused instead.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def _load_object(raw_body: bytes) -> dict[str, Any]:
    if len(raw_body) > MAX_BODY_BYTES:
        raise BodyError([FieldError("", f"body is larger than {MAX_BODY_BYTES} bytes")])
    try:
        data = json.loads(raw_body, object_pairs_hook=_object_without_duplicates, parse_constant=_refuse_constant)
    except _DuplicateKeyError as exc:
        raise BodyError([FieldError("", f"body repeats the key {exc.key!r}")]) from None
    except json.JSONDecodeError as exc:
        message = f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        raise BodyError([FieldError("", message)]) from None
    except (ValueError, RecursionError):  # not UTF-8, NaN/Infinity, absurd nesting
        raise BodyError([FieldError("", "body is not valid JSON")]) from None
    if not isinstance(data, dict):
        raise BodyError([FieldError("", "body must be a JSON object")])
    return data


def _path(location: Sequence[int | str]) -> str:
    """pydantic's ('items', 0, 'unit_price') → 'items[0].unit_price'."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _field_errors(exc: ValidationError) -> list[FieldError]:
    return [FieldError(_path(error["loc"]), _MESSAGES.get(error["type"], error["msg"])) for error in exc.errors()]


def _validate(model: type[_W], data: dict[str, Any], errors: list[FieldError]) -> _W | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors.extend(_field_errors(exc))
        return None


def parse_order(raw_body: bytes) -> OrderIn:
    """The order in a request body, or BodyError listing every problem: field rules first, then the
    decimal places allowed by the currency and the sum rule (see `_order_money_errors`)."""
    data = _load_object(raw_body)
    errors: list[FieldError] = []
    wire = _validate(_OrderWire, data, errors)
    errors.extend(_order_money_errors(data))
    if errors or wire is None:
        raise BodyError(errors)
    currency = wire.currency
    items = tuple(
        OrderItemIn(
            sku=item.sku,
            category=item.category,
            quantity=item.quantity,
            unit_price_minor=_exact_minor(item.unit_price, currency),
        )
        for item in wire.items
    )
    return OrderIn(
        order_id=wire.order_id,
        partner_code=wire.partner_code,
        coupon=wire.coupon,
        customer_id=wire.customer_id,
        currency=currency,
        amount_minor=_exact_minor(wire.amount, currency),
        items=items,
        paid_at=wire.paid_at,
    )


def parse_refund(raw_body: bytes) -> RefundIn:
    """The refund in a request body, or BodyError listing every problem. Whether the order exists, is in
    the same currency and has that much left to refund is the ledger's question, not the body's."""
    data = _load_object(raw_body)
    errors: list[FieldError] = []
    wire = _validate(_RefundWire, data, errors)
    errors.extend(_refund_money_errors(data))
    if errors or wire is None:
        raise BodyError(errors)
    return RefundIn(
        refund_id=wire.refund_id,
        order_id=wire.order_id,
        amount_minor=_exact_minor(wire.amount, wire.currency),
        currency=wire.currency,
    )


def _exact_minor(amount: Decimal, currency: str) -> int:
    minor = _minor_units(amount, currency)
    if minor is None:  # pragma: no cover - the money checks have refused this body already
        raise AssertionError("decimal places were not checked")
    return minor


# --- Idempotency ------------------------------------------------------------------------------------------


def _canonical(payload: OrderIn | RefundIn) -> dict[str, object]:
    # Written out field by field rather than with dataclasses.asdict: renaming a field must not change the
    # fingerprints already stored, or every retry after a deploy would become a 409.
    if isinstance(payload, RefundIn):
        return {
            "kind": "refund",
            "refund_id": payload.refund_id,
            "order_id": payload.order_id,
            "amount_minor": payload.amount_minor,
            "currency": payload.currency,
        }
    return {
        "kind": "order",
        "order_id": payload.order_id,
        "partner_code": payload.partner_code,
        "coupon": payload.coupon,
        "customer_id": payload.customer_id,
        "currency": payload.currency,
        "amount_minor": payload.amount_minor,
        "items": [
            {
                "sku": item.sku,
                "category": item.category,
                "quantity": item.quantity,
                "unit_price_minor": item.unit_price_minor,
            }
            for item in payload.items
        ],
        "paid_at": payload.paid_at.astimezone(UTC).isoformat(),
    }


def payload_fingerprint(payload: OrderIn | RefundIn) -> str:
    """A SHA-256 hex digest of the parsed payload in canonical form.

    It is computed from the parsed model, not the raw bytes: a shop that retries may serialise the same
    order again with other key order, whitespace or escapes, "12.5" instead of "12.50", +08:00 instead of
    Z, or an omitted coupon instead of null. That is the same order and gets the original answer (200);
    only a change in meaning (an amount, an item, the partner) is a conflict (409). Item order is kept:
    the list is compared as sent.
    """
    document = {"v": FINGERPRINT_VERSION, **_canonical(payload)}
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Submission(StrEnum):
    """What a request with an already-seen or new id amounts to."""

    CREATED = "created"
    REPLAY = "replay"
    CONFLICT = "conflict"

    @property
    def http_status(self) -> int:
        return {"created": 201, "replay": 200, "conflict": 409}[self.value]


def classify_submission(stored_fingerprint: str | None, fingerprint: str) -> Submission:
    """New id → CREATED (201); same id and same meaning → REPLAY (200, answer with the stored result);
    same id, different meaning → CONFLICT (409, nothing is written)."""
    if stored_fingerprint is None:
        return Submission.CREATED
    return Submission.REPLAY if stored_fingerprint == fingerprint else Submission.CONFLICT


# --- Error bodies -----------------------------------------------------------------------------------------


def error_response_body(errors: Sequence[FieldError]) -> dict[str, object]:
    """The 422 body: every field error, in the order found."""
    return {"error": "invalid_body", "fields": [{"path": error.path, "message": error.message} for error in errors]}


def signature_error_body(check: SignatureCheck) -> dict[str, object]:
    """The 401 body."""
    if check.reason is None:
        raise ValueError("the signature is valid; there is no error to report")
    return {"error": "bad_signature", "reason": check.reason.value}


def conflict_response_body(payload: OrderIn | RefundIn) -> dict[str, object]:
    """The 409 body: the id was used before for a different payload."""
    if isinstance(payload, RefundIn):
        return {"error": "conflict", "refund_id": payload.refund_id}
    return {"error": "conflict", "order_id": payload.order_id}
