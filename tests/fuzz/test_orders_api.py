"""Fuzz: the signed `POST /api/orders` and `/api/refunds` bodies over HTTP, correctly signed, on SQLite and
PostgreSQL: random JSON values, valid bodies with fields replaced by random values, and malformed bytes
(broken UTF-8, NaN literals, duplicate keys, deep nesting, oversized).

Invariant: every request gets a 2xx (only when the body happens to be valid) or a 4xx with a JSON error body
(`invalid_body` lists field errors) within a few seconds, never a 5xx; on a 4xx no table changed (ledger,
orders, refunds, outbox…).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import example, given
from hypothesis import strategies as st

from bot.domain.orders_api import sign
from bot.orders_http import OrdersEndpoint
from tests.fuzz.dbstate import changed, row_counts
from tests.fuzz.strategies import JSON_VALUE, NASTY_TOKENS, fuzz_settings
from tests.support.harness import BotHarness, tg_user

SECRET = b"fuzz-secret"
ALICE = tg_user(301, "Alice", lang="en")
Client = TestClient[web.Request, web.Application]

FUZZ = fuzz_settings(40)


def valid_order(code: str = "NOCODE") -> dict[str, Any]:
    return {
        "order_id": "F1",
        "customer_id": "cust-1",
        "currency": "CNY",
        "amount": "150.00",
        "items": [{"sku": "TEA-1", "category": "tea", "quantity": 1, "unit_price": "150.00"}],
        "paid_at": "2026-11-25T00:30:00Z",
        "partner_code": code,
    }


VALID_REFUND: dict[str, Any] = {"refund_id": "R1", "order_id": "F1", "amount": "50.00", "currency": "CNY"}

FIELD_VALUE = st.one_of(
    JSON_VALUE,
    st.sampled_from(NASTY_TOKENS),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(min_size=200, max_size=2000),
)


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """A valid body with some fields removed or replaced (an item field too) by hostile values."""
    body: dict[str, Any] = json.loads(json.dumps(base))
    for name in draw(st.lists(st.sampled_from([*base, "items.0", "extra"]), max_size=3, unique=True)):
        if name == "items.0":
            items = body.get("items")
            if isinstance(items, list) and items and isinstance(items[0], dict):
                items[0][draw(st.sampled_from([*items[0], "extra"]))] = draw(FIELD_VALUE)
        elif draw(st.booleans()):
            body.pop(name, None)
        else:
            body[name] = draw(FIELD_VALUE)
    return body


MALFORMED = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"",
            b"\xff\xfe{}",
            b'\xef\xbb\xbf{"order_id": "F1"}',
            b'{"amount": NaN}',
            b'{"amount": Infinity, "currency": "CNY"}',
            b'{"order_id": "F1", "order_id": "F2"}',
            b'{"order_id": "\\ud800"}',
            b"[" * 10_000 + b"]" * 10_000,
            b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
            b"1" * 70_000,
            b'"' + b"x" * 900_000 + b'"',
            b"null",
            b"1e999999",
        ]
    ),
)


@pytest.fixture
async def api(harness: BotHarness) -> AsyncIterator[Client]:
    app = web.Application()
    OrdersEndpoint(SECRET, harness.sessionmaker, harness.ctx, on_outbox=harness.sender.wake).install(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    await harness.send(ALICE, "/start")
    yield client
    await client.close()


async def post_raw(client: Client, h: BotHarness, path: str, raw: bytes) -> tuple[int, Any]:
    timestamp = int(h.clock.now().timestamp())
    headers = {"X-Timestamp": str(timestamp), "X-Signature": sign(SECRET, timestamp, raw)}
    response = await client.post(path, data=raw, headers=headers)
    return response.status, await response.json(content_type=None)


async def check(client: Client, h: BotHarness, path: str, raw: bytes) -> None:
    before = await row_counts(h.sessionmaker)
    started = time.monotonic()
    status, body = await post_raw(client, h, path, raw)
    assert time.monotonic() - started < 10, "answered too slowly"
    assert status < 500, (status, body, raw[:300])
    if status >= 400:
        assert status in (409, 413, 422), (status, body)
        assert isinstance(body, dict) and body.get("error"), body
        if status == 422:
            assert body["fields"] and all(isinstance(f["path"], str) and f["message"] for f in body["fields"]), body
        assert not changed(before, await row_counts(h.sessionmaker)), (status, body)


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@FUZZ
@given(body=st.one_of(JSON_VALUE, mutated(valid_order())))
@example(body={**valid_order(), "items": [{**valid_order()["items"][0], "quantity": 2**64}]})
@example(body={**valid_order(), "order_id": "x" * 5000})
@example(body={**valid_order(), "amount": "1" + "0" * 40})
async def test_random_order_bodies(harness: BotHarness, api: Client, body: Any) -> None:
    await check(api, harness, "/api/orders", _json(body))


@FUZZ
@given(body=st.one_of(JSON_VALUE, mutated(VALID_REFUND)))
@example(body={**VALID_REFUND, "amount": "9" * 40})
async def test_random_refund_bodies(harness: BotHarness, api: Client, body: Any) -> None:
    await check(api, harness, "/api/refunds", _json(body))


@FUZZ
@given(raw=MALFORMED, path=st.sampled_from(["/api/orders", "/api/refunds"]))
async def test_malformed_bytes(harness: BotHarness, api: Client, raw: bytes, path: str) -> None:
    await check(api, harness, path, raw)
