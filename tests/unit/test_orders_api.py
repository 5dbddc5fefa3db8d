"""Tier 1: the orders API's signatures, body validation, replay fingerprints and the documented examples."""

from __future__ import annotations

import copy
import json
import os
import random
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.orders_api import (
    CURRENCY_EXPONENTS,
    MAX_BODY_BYTES,
    BodyError,
    FieldError,
    OrderIn,
    OrderItemIn,
    RefundIn,
    SignatureCheck,
    SignatureFailure,
    Submission,
    classify_submission,
    conflict_response_body,
    error_response_body,
    format_minor,
    parse_order,
    parse_refund,
    payload_fingerprint,
    sign,
    signature_error_body,
    verify_signature,
)

SECRET = b"orders-test-secret"
T0 = 1_714_537_800
NOW = datetime.fromtimestamp(T0, UTC)
BODY = b'{"order_id":"A-1"}'
DOCS = Path(__file__).resolve().parents[2] / "docs" / "orders-api.md"

ORDER: dict[str, Any] = {
    "order_id": "A-1001",
    "partner_code": "k7Hq2mZp",
    "coupon": "SPRING10",
    "customer_id": "cust-42",
    "currency": "CNY",
    "amount": "25.00",
    "items": [
        {"sku": "TEA-01", "category": "tea", "quantity": 2, "unit_price": "10.00"},
        {"sku": "CUP-07", "category": "cups", "quantity": 1, "unit_price": "5.00"},
    ],
    "paid_at": "2024-05-01T12:30:00+08:00",
}
REFUND: dict[str, Any] = {"refund_id": "R-2001", "order_id": "A-1001", "amount": "10.00", "currency": "CNY"}


def encode(document: object) -> bytes:
    return json.dumps(document).encode()


def order_with(**changes: Any) -> dict[str, Any]:
    """ORDER with top-level fields replaced; a value of ... removes the field."""
    document = copy.deepcopy(ORDER)
    for key, value in changes.items():
        if value is ...:
            document.pop(key, None)
        else:
            document[key] = value
    return document


def item_with(index: int = 0, **changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(ORDER)
    for key, value in changes.items():
        if value is ...:
            document["items"][index].pop(key, None)
        else:
            document["items"][index][key] = value
    return document


def errors_of(parse: Any, document: object) -> list[FieldError]:
    raw = document if isinstance(document, bytes) else encode(document)
    with pytest.raises(BodyError) as caught:
        parse(raw)
    return caught.value.errors


def paths_of(parse: Any, document: object) -> list[str]:
    return [error.path for error in errors_of(parse, document)]


# --- Signatures -------------------------------------------------------------------------------------------


def test_sign_is_the_documented_hmac() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET, f"{T0}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, T0, BODY) == f"sha256={expected}"


@pytest.mark.parametrize(
    ("secret", "timestamp", "signature", "body", "reason"),
    [
        (SECRET, str(T0), sign(SECRET, T0, BODY), BODY, None),
        (SECRET, str(T0), sign(SECRET, T0, BODY).upper().replace("SHA256=", "sha256="), BODY, None),
        (SECRET, str(T0), sign(b"another-secret", T0, BODY), BODY, SignatureFailure.MISMATCH),
        (SECRET, str(T0), sign(SECRET, T0, BODY), BODY + b" ", SignatureFailure.MISMATCH),
        (SECRET, str(T0), sign(SECRET, T0, BODY), BODY.replace(b"A-1", b"A-2"), SignatureFailure.MISMATCH),
        (SECRET, str(T0 + 1), sign(SECRET, T0, BODY), BODY, SignatureFailure.MISMATCH),
        (SECRET, str(T0 - 300), sign(SECRET, T0 - 300, BODY), BODY, None),
        (SECRET, str(T0 + 300), sign(SECRET, T0 + 300, BODY), BODY, None),
        (SECRET, str(T0 - 301), sign(SECRET, T0 - 301, BODY), BODY, SignatureFailure.STALE),
        (SECRET, str(T0 + 301), sign(SECRET, T0 + 301, BODY), BODY, SignatureFailure.FUTURE),
        (SECRET, "0", sign(SECRET, 0, BODY), BODY, SignatureFailure.STALE),
        (SECRET, None, sign(SECRET, T0, BODY), BODY, SignatureFailure.MISSING),
        (SECRET, str(T0), None, BODY, SignatureFailure.MISSING),
        (SECRET, "", sign(SECRET, T0, BODY), BODY, SignatureFailure.MISSING),
        (SECRET, str(T0), "", BODY, SignatureFailure.MISSING),
        (SECRET, str(T0), sign(SECRET, T0, BODY).removeprefix("sha256="), BODY, SignatureFailure.MALFORMED),
        (SECRET, str(T0), "sha1=" + sign(SECRET, T0, BODY)[7:], BODY, SignatureFailure.MALFORMED),
        (SECRET, str(T0), "sha256=" + "g" * 64, BODY, SignatureFailure.MALFORMED),
        (SECRET, str(T0), sign(SECRET, T0, BODY)[:-1], BODY, SignatureFailure.MALFORMED),
        (SECRET, str(T0), sign(SECRET, T0, BODY) + "0", BODY, SignatureFailure.MALFORMED),
        (SECRET, str(T0), " " + sign(SECRET, T0, BODY), BODY, SignatureFailure.MALFORMED),
        (SECRET, f"{T0}.0", sign(SECRET, T0, BODY), BODY, SignatureFailure.MALFORMED),
        (SECRET, "-1", sign(SECRET, -1, BODY), BODY, SignatureFailure.MALFORMED),
        (SECRET, "+" + str(T0), sign(SECRET, T0, BODY), BODY, SignatureFailure.MALFORMED),
        (SECRET, "1e9", sign(SECRET, T0, BODY), BODY, SignatureFailure.MALFORMED),
        (SECRET, "١٧١٤٥٣٧٨٠٠", sign(SECRET, T0, BODY), BODY, SignatureFailure.MALFORMED),  # Arabic-Indic digits
        (SECRET, "9" * 13, sign(SECRET, T0, BODY), BODY, SignatureFailure.MALFORMED),
    ],
)
def test_signature_table(
    secret: bytes, timestamp: str | None, signature: str | None, body: bytes, reason: SignatureFailure | None
) -> None:
    check = verify_signature(secret, timestamp, signature, body, NOW)
    assert check == SignatureCheck(reason)
    assert check.ok is (reason is None)


def test_tolerance_is_configurable_and_now_may_be_in_any_zone() -> None:
    signature = sign(SECRET, T0 - 60, BODY)
    assert verify_signature(SECRET, str(T0 - 60), signature, BODY, NOW, tolerance=timedelta(seconds=59)) == (
        SignatureCheck(SignatureFailure.STALE)
    )
    shanghai = NOW.astimezone(timezone(timedelta(hours=8)))
    assert verify_signature(SECRET, str(T0 - 60), signature, BODY, shanghai).ok


def test_fractional_seconds_past_the_boundary_are_stale() -> None:
    signature = sign(SECRET, T0, BODY)
    assert verify_signature(SECRET, str(T0), signature, BODY, NOW + timedelta(seconds=300)).ok
    late = NOW + timedelta(seconds=300, microseconds=1)
    assert verify_signature(SECRET, str(T0), signature, BODY, late).reason is SignatureFailure.STALE


def test_a_bad_signature_is_reported_as_mismatch_even_when_stale() -> None:
    """Only a holder of the secret learns about clock drift."""
    forged = sign(b"guess", T0 - 3600, BODY)
    assert verify_signature(SECRET, str(T0 - 3600), forged, BODY, NOW).reason is SignatureFailure.MISMATCH


def test_misconfiguration_raises() -> None:
    with pytest.raises(ValueError, match="empty"):
        verify_signature(b"", str(T0), sign(SECRET, T0, BODY), BODY, NOW)
    with pytest.raises(ValueError, match="empty"):
        sign(b"", T0, BODY)
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_signature(SECRET, str(T0), sign(SECRET, T0, BODY), BODY, NOW.replace(tzinfo=None))


@given(
    secret=st.binary(min_size=1, max_size=64),
    body=st.binary(max_size=512),
    skew=st.integers(min_value=-300, max_value=300),
)
def test_any_signed_body_within_the_window_verifies(secret: bytes, body: bytes, skew: int) -> None:
    signature = sign(secret, T0 + skew, body)
    assert verify_signature(secret, str(T0 + skew), signature, body, NOW).ok


@given(body=st.binary(min_size=1, max_size=256), data=st.data())
def test_any_changed_byte_is_a_mismatch(body: bytes, data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    flip = data.draw(st.integers(min_value=1, max_value=255))
    tampered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
    check = verify_signature(SECRET, str(T0), sign(SECRET, T0, body), tampered, NOW)
    assert check.reason is SignatureFailure.MISMATCH


# --- Orders: the happy path -------------------------------------------------------------------------------


def test_a_valid_order_is_parsed_into_minor_units_and_utc() -> None:
    order = parse_order(encode(ORDER))
    assert order == OrderIn(
        order_id="A-1001",
        partner_code="k7Hq2mZp",
        coupon="SPRING10",
        customer_id="cust-42",
        currency="CNY",
        amount_minor=2500,
        items=(OrderItemIn("TEA-01", "tea", 2, 1000), OrderItemIn("CUP-07", "cups", 1, 500)),
        paid_at=datetime(2024, 5, 1, 4, 30, tzinfo=UTC),
    )
    with pytest.raises(AttributeError):
        order.amount_minor = 1  # type: ignore[misc]


def test_optional_fields_may_be_absent_or_null() -> None:
    absent = parse_order(encode(order_with(partner_code=..., coupon=...)))
    null = parse_order(encode(order_with(partner_code=None, coupon=None)))
    assert absent == null
    assert absent.partner_code is None
    assert absent.coupon is None


@pytest.mark.parametrize(
    ("currency", "amount", "unit_price", "minor"),
    [
        ("CNY", "25.00", "12.50", 2500),
        ("CNY", "25", "12.5", 2500),
        ("USD", "0.02", "0.01", 2),
        ("EUR", "0", "0.00", 0),
        ("JPY", "1980", "990", 1980),
        ("CNY", "999999999998.00", "499999999999", 99999999999800),
    ],
)
def test_amounts_in_each_currency(currency: str, amount: str, unit_price: str, minor: int) -> None:
    document = order_with(currency=currency, amount=amount, items=[{**ORDER["items"][0], "unit_price": unit_price}])
    order = parse_order(encode(document))
    assert order.amount_minor == minor
    assert order.items[0].unit_price_minor * 2 == minor


@pytest.mark.parametrize(
    ("paid_at", "utc"),
    [
        ("2024-05-01T12:30:00+08:00", datetime(2024, 5, 1, 4, 30, tzinfo=UTC)),
        ("2024-05-01T04:30:00Z", datetime(2024, 5, 1, 4, 30, tzinfo=UTC)),
        ("2024-05-01T04:30:00+00:00", datetime(2024, 5, 1, 4, 30, tzinfo=UTC)),
        ("2024-04-30T23:30:00-05:00", datetime(2024, 5, 1, 4, 30, tzinfo=UTC)),
        ("2024-05-01T04:30:00.250Z", datetime(2024, 5, 1, 4, 30, 0, 250000, tzinfo=UTC)),
        ("2024-05-01T10:00:00+05:30", datetime(2024, 5, 1, 4, 30, tzinfo=UTC)),
    ],
)
def test_paid_at_is_normalised_to_utc(paid_at: str, utc: datetime) -> None:
    order = parse_order(encode(order_with(paid_at=paid_at)))
    assert order.paid_at == utc
    assert order.paid_at.utcoffset() == timedelta(0)
    assert order.paid_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("paid_at", "message"),
    [
        ("2024-05-01T12:30:00", "must include a timezone"),
        ("2024-05-01", "must include a timezone"),
        ("01/05/2024 12:30", "must be an ISO 8601"),
        ("yesterday", "must be an ISO 8601"),
        ("", "must be an ISO 8601"),
        (1714537800, "must be a string"),
        ("0001-01-01T00:00:00+01:00", "out of range"),
    ],
)
def test_paid_at_errors(paid_at: object, message: str) -> None:
    [error] = errors_of(parse_order, order_with(paid_at=paid_at))
    assert error.path == "paid_at"
    assert message in error.message


# --- Orders: one error at a time --------------------------------------------------------------------------

LONG_ID = "x" * 65


@pytest.mark.parametrize(
    ("document", "path", "message"),
    [
        (order_with(order_id=...), "order_id", "is required"),
        (order_with(order_id=""), "order_id", "1 to 64 characters"),
        (order_with(order_id=LONG_ID), "order_id", "1 to 64 characters"),
        (order_with(order_id="A 1"), "order_id", "1 to 64 characters"),
        (order_with(order_id="订单1"), "order_id", "1 to 64 characters"),
        (order_with(order_id=1001), "order_id", "must be a string"),
        (order_with(customer_id="a/b"), "customer_id", "1 to 64 characters"),
        (order_with(customer_id=None), "customer_id", "must be a string"),
        (order_with(partner_code="not a code"), "partner_code", "invite code"),
        (order_with(partner_code=""), "partner_code", "invite code"),
        (order_with(partner_code="x" * 65), "partner_code", "invite code"),
        (order_with(coupon="C" * 33), "coupon", "1 to 32"),
        (order_with(coupon=""), "coupon", "1 to 32"),
        (order_with(coupon=" SPRING"), "coupon", "1 to 32"),
        (order_with(coupon=10), "coupon", "must be a string"),
        (order_with(currency="cny"), "currency", "upper-case ISO 4217"),
        (order_with(currency="RMB1"), "currency", "upper-case ISO 4217"),
        (order_with(currency="GBP"), "currency", "not supported"),
        (order_with(amount=25), "amount", "not a JSON number"),
        (order_with(amount=25.0), "amount", "not a JSON number"),
        (order_with(amount=True), "amount", "decimal string"),
        (order_with(amount="-25.00"), "amount", "must not be negative"),
        (order_with(amount="25.001"), "amount", "at most 2 decimal places for CNY"),
        (order_with(amount="2.5e1"), "amount", "decimal string"),
        (order_with(amount=" 25.00"), "amount", "decimal string"),
        (order_with(amount="25."), "amount", "decimal string"),
        (order_with(amount=".5"), "amount", "decimal string"),
        (order_with(amount="+25"), "amount", "decimal string"),
        (order_with(amount="25,00"), "amount", "decimal string"),
        (order_with(amount="NaN"), "amount", "decimal string"),
        (order_with(amount="٢٥"), "amount", "decimal string"),
        (order_with(amount="1" * 13), "amount", "too large"),
        (order_with(amount="24.00"), "amount", "sum of quantity × unit_price over the items, 25.00 CNY, not 24.00"),
        (order_with(items=[]), "items", "at least one item"),
        (order_with(items={"sku": "x"}), "items", "must be a list"),
        (order_with(items=[ORDER["items"][0]] * 501), "items", "at most 500 items"),
        (order_with(items=[ORDER["items"][0], "TEA-01"]), "items[1]", "must be an object"),
        (item_with(0, quantity=0), "items[0].quantity", "greater than 0"),
        (item_with(0, quantity=-1), "items[0].quantity", "greater than 0"),
        (item_with(0, quantity=2.0), "items[0].quantity", "whole number"),
        (item_with(0, quantity="2"), "items[0].quantity", "whole number"),
        (item_with(0, quantity=True), "items[0].quantity", "whole number"),
        (item_with(0, quantity=10**7), "items[0].quantity", "too large"),
        (item_with(1, unit_price=5), "items[1].unit_price", "not a JSON number"),
        (item_with(1, unit_price="5.001"), "items[1].unit_price", "at most 2 decimal places"),
        (item_with(1, unit_price="-5.00"), "items[1].unit_price", "must not be negative"),
        (item_with(1, sku=...), "items[1].sku", "is required"),
        (item_with(0, category=""), "items[0].category", "1 to 64 printable"),
        (item_with(0, category="tea\n"), "items[0].category", "1 to 64 printable"),
        (item_with(0, colour="red"), "items[0].colour", "not a known field"),
        (order_with(discount="1.00"), "discount", "not a known field"),
    ],
)
def test_order_field_errors(document: dict[str, Any], path: str, message: str) -> None:
    [error] = errors_of(parse_order, document)
    assert error.path == path
    assert message in error.message


def test_jpy_takes_no_decimals() -> None:
    document = order_with(currency="JPY", amount="25.00")
    errors = errors_of(parse_order, document)
    assert [error.path for error in errors] == ["amount", "items[0].unit_price", "items[1].unit_price"]
    assert all(error.message == "must be a whole number of JPY, without decimals" for error in errors)


def test_three_errors_are_listed_at_once() -> None:
    document = order_with(amount=25.0, paid_at="2024-05-01T12:30:00")
    document["items"][0]["quantity"] = 0
    errors = errors_of(parse_order, document)
    assert [error.path for error in errors] == ["amount", "items[0].quantity", "paid_at"]


def test_every_error_is_listed_at_once() -> None:
    document = {
        "order_id": "",
        "currency": "CNY",
        "amount": "1.234",
        "items": [{"sku": "s", "category": "c", "quantity": 0, "unit_price": "1.001", "colour": "red"}, 7],
        "paid_at": "soon",
        "referrer": "bob",
    }
    assert sorted(paths_of(parse_order, document)) == sorted(
        [
            "order_id",
            "customer_id",
            "items[0].quantity",
            "items[0].colour",
            "items[1]",
            "paid_at",
            "referrer",
            "amount",
            "items[0].unit_price",
        ]
    )


def test_the_sum_rule_waits_for_valid_parts() -> None:
    """A broken item or currency is reported once, not again as a misleading sum mismatch."""
    assert paths_of(parse_order, item_with(0, quantity=0, unit_price="99.00")) == ["items[0].quantity"]
    assert paths_of(parse_order, order_with(currency="XYZ", amount="1.00")) == ["currency"]
    assert paths_of(parse_order, item_with(1, unit_price="5.001")) == ["items[1].unit_price"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "not valid JSON"),
        (b"{", "not valid JSON: Expecting property name"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b'{"amount": NaN}', "not valid JSON"),
        (b'{"amount": Infinity}', "not valid JSON"),
        (b"[" * 20_000 + b"]" * 20_000, "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b'"order"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b'{"order_id": "A-1", "order_id": "A-2"}', "repeats the key 'order_id'"),
        (b" " * (MAX_BODY_BYTES + 1), f"larger than {MAX_BODY_BYTES} bytes"),
    ],
)
def test_body_level_errors(raw: bytes, message: str) -> None:
    for parse in (parse_order, parse_refund):
        [error] = errors_of(parse, raw)
        assert error.path == ""
        assert message in error.message


def test_a_body_at_the_size_limit_is_read() -> None:
    raw = encode(ORDER)
    raw += b" " * (MAX_BODY_BYTES - len(raw))
    assert parse_order(raw).order_id == "A-1001"


def test_body_error_names_every_problem() -> None:
    error = BodyError([FieldError("", "body must be a JSON object"), FieldError("amount", "is required")])
    assert str(error) == "(body): body must be a JSON object; amount: is required"
    assert isinstance(error, ValueError)


# --- Refunds ----------------------------------------------------------------------------------------------


def test_a_valid_refund() -> None:
    assert parse_refund(encode(REFUND)) == RefundIn(
        refund_id="R-2001", order_id="A-1001", amount_minor=1000, currency="CNY"
    )
    jpy = parse_refund(encode({**REFUND, "amount": "500", "currency": "JPY"}))
    assert jpy.amount_minor == 500


@pytest.mark.parametrize(
    ("changes", "path", "message"),
    [
        ({"refund_id": ...}, "refund_id", "is required"),
        ({"refund_id": "R 1"}, "refund_id", "1 to 64 characters"),
        ({"order_id": LONG_ID}, "order_id", "1 to 64 characters"),
        ({"amount": "0.00"}, "amount", "greater than 0"),
        ({"amount": "-1.00"}, "amount", "must not be negative"),
        ({"amount": 10}, "amount", "not a JSON number"),
        ({"amount": "10.001"}, "amount", "at most 2 decimal places for CNY"),
        ({"amount": "10.5", "currency": "JPY"}, "amount", "whole number of JPY"),
        ({"currency": "usd"}, "currency", "upper-case"),
        ({"currency": "GBP"}, "currency", "not supported"),
        ({"reason": "broken"}, "reason", "not a known field"),
    ],
)
def test_refund_field_errors(changes: dict[str, Any], path: str, message: str) -> None:
    document = {key: value for key, value in {**REFUND, **changes}.items() if value is not ...}
    [error] = errors_of(parse_refund, document)
    assert error.path == path
    assert message in error.message


def test_refund_lists_every_error() -> None:
    assert paths_of(parse_refund, {"amount": 10.0, "currency": "cny", "extra": 1}) == [
        "refund_id",
        "order_id",
        "amount",
        "currency",
        "extra",
    ]


# --- Fingerprints and replays -----------------------------------------------------------------------------

_IDS = st.from_regex(r"[A-Za-z0-9_.:-]{1,64}", fullmatch=True)
_OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))


@st.composite
def order_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Any valid order body, as a JSON-ready dict."""
    currency = draw(st.sampled_from(sorted(CURRENCY_EXPONENTS)))
    items = []
    total = 0
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        quantity = draw(st.integers(min_value=1, max_value=50))
        price = draw(st.integers(min_value=0, max_value=10**8))
        total += quantity * price
        items.append(
            {
                "sku": draw(_IDS),
                "category": draw(st.sampled_from(["tea", "cups", "礼盒", "gift set"])),
                "quantity": quantity,
                "unit_price": format_minor(price, currency),
            }
        )
    paid_at = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=_OFFSETS))
    document: dict[str, Any] = {
        "order_id": draw(_IDS),
        "customer_id": draw(_IDS),
        "currency": currency,
        "amount": format_minor(total, currency),
        "items": items,
        "paid_at": paid_at.isoformat(),
    }
    if draw(st.booleans()):
        document["partner_code"] = draw(st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True))
    if draw(st.booleans()):
        document["coupon"] = draw(st.text(st.characters(codec="utf-8", categories=["L", "N"]), min_size=1, max_size=32))
    return document


def reserialise(value: Any, rnd: random.Random) -> str:
    """The same JSON value with keys shuffled and arbitrary whitespace between tokens."""

    def gap() -> str:
        return rnd.choice(["", " ", "\n", "\t", "  \r\n "])

    if isinstance(value, dict):
        keys = list(value)
        rnd.shuffle(keys)
        members = [f"{gap()}{json.dumps(key)}{gap()}:{gap()}{reserialise(value[key], rnd)}{gap()}" for key in keys]
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(gap() + reserialise(element, rnd) + gap() for element in value) + "]"
    return json.dumps(value, ensure_ascii=rnd.random() < 0.5)


@settings(max_examples=150)
@given(document=order_documents(), rnd=st.randoms(use_true_random=False))
def test_a_reserialised_order_has_the_same_fingerprint(document: dict[str, Any], rnd: random.Random) -> None:
    original = parse_order(encode(document))
    again = parse_order(reserialise(document, rnd).encode())
    assert again == original
    assert payload_fingerprint(again) == payload_fingerprint(original)


@given(document=order_documents(), data=st.data())
def test_a_changed_amount_has_another_fingerprint(document: dict[str, Any], data: st.DataObject) -> None:
    original = parse_order(encode(document))
    currency = document["currency"]
    index = data.draw(st.integers(min_value=0, max_value=len(document["items"]) - 1))
    item = original.items[index]
    changed = copy.deepcopy(document)
    changed["items"][index]["unit_price"] = format_minor(item.unit_price_minor + 1, currency)
    changed["amount"] = format_minor(original.amount_minor + item.quantity, currency)
    assert payload_fingerprint(parse_order(encode(changed))) != payload_fingerprint(original)


@given(document=order_documents())
def test_an_inconsistent_amount_is_refused_at_amount(document: dict[str, Any]) -> None:
    original = parse_order(encode(document))
    document["amount"] = format_minor(original.amount_minor + 1, document["currency"])
    assert paths_of(parse_order, document) == ["amount"]


@pytest.mark.parametrize(
    "variant",
    [
        order_with(amount="25", items=[{**ORDER["items"][0], "unit_price": "10"}, ORDER["items"][1]]),
        order_with(paid_at="2024-05-01T04:30:00Z"),
        order_with(paid_at="2024-05-01T04:30:00.000+00:00"),
        {key: ORDER[key] for key in reversed(ORDER)},
    ],
)
def test_same_meaning_same_fingerprint(variant: dict[str, Any]) -> None:
    assert payload_fingerprint(parse_order(encode(variant))) == payload_fingerprint(parse_order(encode(ORDER)))


def test_absent_and_null_optionals_have_one_fingerprint() -> None:
    absent = order_with(coupon=..., partner_code=...)
    null = order_with(coupon=None, partner_code=None)
    assert payload_fingerprint(parse_order(encode(absent))) == payload_fingerprint(parse_order(encode(null)))


@pytest.mark.parametrize(
    "variant",
    [
        order_with(partner_code="someoneElse"),
        order_with(coupon=...),
        order_with(customer_id="cust-43"),
        order_with(paid_at="2024-05-01T12:30:01+08:00"),
        order_with(paid_at="2024-05-01T12:30:00+09:00"),
        item_with(0, category="gifts"),
        item_with(0, sku="TEA-02"),
        order_with(items=list(reversed(ORDER["items"]))),
        order_with(currency="USD"),
    ],
)
def test_different_meaning_different_fingerprint(variant: dict[str, Any]) -> None:
    assert payload_fingerprint(parse_order(encode(variant))) != payload_fingerprint(parse_order(encode(ORDER)))


def test_refund_fingerprints() -> None:
    refund = parse_refund(encode(REFUND))
    spaced = parse_refund(b'{ "currency" : "CNY", "amount": "10.0", "order_id": "A-1001", "refund_id": "R-2001" }')
    assert payload_fingerprint(spaced) == payload_fingerprint(refund)
    assert payload_fingerprint(parse_refund(encode({**REFUND, "amount": "10.01"}))) != payload_fingerprint(refund)
    assert re.fullmatch(r"[0-9a-f]{64}", payload_fingerprint(refund))


@pytest.mark.parametrize(
    ("stored", "incoming", "expected", "status"),
    [
        (None, "a" * 64, Submission.CREATED, 201),
        ("a" * 64, "a" * 64, Submission.REPLAY, 200),
        ("a" * 64, "b" * 64, Submission.CONFLICT, 409),
    ],
)
def test_classify_submission(stored: str | None, incoming: str, expected: Submission, status: int) -> None:
    assert classify_submission(stored, incoming) is expected
    assert expected.http_status == status


# --- Response bodies --------------------------------------------------------------------------------------


def test_error_bodies() -> None:
    errors = [FieldError("amount", "is required"), FieldError("items[0].sku", "must be a string")]
    assert error_response_body(errors) == {
        "error": "invalid_body",
        "fields": [
            {"path": "amount", "message": "is required"},
            {"path": "items[0].sku", "message": "must be a string"},
        ],
    }
    assert signature_error_body(SignatureCheck(SignatureFailure.STALE)) == {"error": "bad_signature", "reason": "stale"}
    with pytest.raises(ValueError, match="valid"):
        signature_error_body(SignatureCheck())
    assert conflict_response_body(parse_order(encode(ORDER))) == {"error": "conflict", "order_id": "A-1001"}
    assert conflict_response_body(parse_refund(encode(REFUND))) == {"error": "conflict", "refund_id": "R-2001"}
    json.dumps(error_response_body(errors_of(parse_order, order_with(amount=1.5))))


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [(2500, "CNY", "25.00"), (5, "USD", "0.05"), (0, "EUR", "0.00"), (-150, "CNY", "-1.50"), (1980, "JPY", "1980")],
)
def test_format_minor(minor: int, currency: str, text: str) -> None:
    assert format_minor(minor, currency) == text


# --- Robustness -------------------------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
_ORDERISH = st.fixed_dictionaries(
    {},
    optional={key: _JSON | st.just(value) for key, value in ORDER.items()},
)


@given(document=_JSON | _ORDERISH)
def test_any_json_is_parsed_or_refused_with_field_errors(document: Any) -> None:
    for parse in (parse_order, parse_refund):
        try:
            parse(encode(document))
        except BodyError as exc:
            errors = exc.errors
        else:
            continue
        assert errors
        assert all(isinstance(error, FieldError) and error.message for error in errors)


@given(raw=st.binary(max_size=256))
def test_any_bytes_are_parsed_or_refused_with_field_errors(raw: bytes) -> None:
    with pytest.raises(BodyError):
        parse_order(raw)


# --- The documented examples ------------------------------------------------------------------------------


def doc_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_documented_bodies_are_valid() -> None:
    order_block, refund_block, error_block = doc_blocks("json")
    assert parse_order(order_block.encode()) == parse_order(encode(ORDER))
    assert parse_refund(refund_block.encode()) == parse_refund(encode(REFUND))
    three_errors = order_with(amount=25.0, paid_at="2024-05-01T12:30:00")
    three_errors["items"][0]["quantity"] = 0
    assert json.loads(error_block) == error_response_body(errors_of(parse_order, three_errors))


def test_the_python_example_signs_what_the_bot_verifies() -> None:
    [code] = doc_blocks("python")
    namespace: dict[str, Any] = {"__name__": "orders_api_docs_example"}  # not __main__: nothing is sent
    exec(compile(code, str(DOCS), "exec"), namespace)
    request = namespace["signed_request"]("http://127.0.0.1:8080/api/orders", "s3cret", namespace["ORDER"])
    headers = {name.lower(): value for name, value in request.header_items()}
    assert request.get_method() == "POST"
    assert headers["content-type"] == "application/json"
    check = verify_signature(b"s3cret", headers["x-timestamp"], headers["x-signature"], request.data, datetime.now(UTC))
    assert check.ok
    order = parse_order(request.data)
    assert order == parse_order(encode(order_with(coupon=...)))


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("openssl") is None, reason="needs bash and openssl")
def test_the_curl_example_signs_what_the_bot_verifies() -> None:
    [script] = doc_blocks("sh")
    # A stand-in curl that prints its arguments, one per line, instead of sending them.
    stand_in = "curl() { printf '%s\\n' \"$@\"; }\n"
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", stand_in + script],
        env={**os.environ, "ORDERS_API_SECRET": "s3cret"},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    args = result.stdout.splitlines()
    headers = dict(args[index + 1].split(": ", 1) for index, arg in enumerate(args) if arg == "-H")
    body = args[args.index("--data-binary") + 1].encode()
    check = verify_signature(b"s3cret", headers["X-Timestamp"], headers["X-Signature"], body, datetime.now(UTC))
    assert check.ok
    assert parse_order(body) == parse_order(encode(order_with(coupon=...)))
