"""Fuzz: the webhook endpoint as `run_bot.py --webhook` mounts it (the web app of `bot.web` with aiogram's
SimpleRequestHandler, secret token, handled before answering), driven in-process over HTTP with the right
secret: random JSON, update-shaped objects with hostile fields, malformed bytes, 10,000-level nesting and a
body of several MB.

Invariant: each request gets a 2xx or 4xx within a few seconds, never a 5xx; the server stays up (`/healthz`
answers 200 afterwards); a payload that is not a valid Telegram update writes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram.types import Update
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import text

from bot.runner import WebhookHandler
from bot.web import build_web_app
from tests.fuzz.dbstate import changed, row_counts
from tests.fuzz.strategies import JSON_VALUE, NASTY_TOKENS, fuzz_settings
from tests.support.harness import BotHarness

SECRET = "fuzz-webhook-secret"
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
Client = TestClient[web.Request, web.Application]

FUZZ = fuzz_settings(40)

FIELD = st.one_of(JSON_VALUE, st.sampled_from(NASTY_TOKENS), st.integers(min_value=-(2**70), max_value=2**70))


@st.composite
def update_shaped(draw: st.DrawFn) -> dict[str, Any]:
    """A message update (from a user who never started the bot) with some fields replaced by hostile values."""
    user = {"id": 555, "is_bot": False, "first_name": "Fuzz", "language_code": "en"}
    message: dict[str, Any] = {
        "message_id": 1,
        "date": 1_764_032_400,
        "chat": {"id": 555, "type": "private"},
        "from": user,
        "text": draw(st.sampled_from(["/start", "/me", "hello", "/lead x"])),
    }
    body: dict[str, Any] = {"update_id": draw(FIELD), "message": message}
    for target, name in draw(
        st.lists(
            st.sampled_from(
                [
                    (body, "message"),
                    (body, "callback_query"),
                    (message, "chat"),
                    (message, "from"),
                    (message, "text"),
                    (message, "entities"),
                    (message, "date"),
                    (user, "id"),
                    (user, "is_bot"),
                ]
            ),
            min_size=1,
            max_size=3,
        )
    ):
        target[name] = draw(FIELD)
    return body


def _nested(depth: int) -> bytes:
    return b'{"update_id": 1, "message": ' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"


@pytest.fixture
async def webhook(harness: BotHarness) -> AsyncIterator[Client]:
    async def health() -> dict[str, Any]:
        async with harness.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
        return {"status": "ok", "db": "ok"}

    app = build_web_app(health)
    WebhookHandler(harness.dp, harness.bot, handle_in_background=False, secret_token=SECRET).register(
        app, path="/webhook"
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


async def check(client: Client, h: BotHarness, raw: bytes) -> None:
    before = await row_counts(h.sessionmaker)
    started = time.monotonic()
    response = await client.post("/webhook", data=raw, headers=HEADERS)
    await response.read()
    assert time.monotonic() - started < 10, "answered too slowly"
    assert response.status < 500, (response.status, raw[:200])
    try:
        Update.model_validate_json(raw)
    except ValidationError:
        assert not changed(before, await row_counts(h.sessionmaker)), raw[:200]
    health = await client.get("/healthz")
    assert health.status == 200


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@FUZZ
@given(payload=st.one_of(JSON_VALUE, update_shaped()))
@example(payload={"update_id": 2**70, "message": None})
@example(payload={"update_id": 1, "message": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}}})
async def test_random_json_payloads(harness: BotHarness, webhook: Client, payload: Any) -> None:
    await check(webhook, harness, _json(payload))


@fuzz_settings(15)
@given(raw=st.binary(max_size=300))
@example(raw=b"")
@example(raw=b"\xff\xfe\x00{")
@example(raw=b'{"update_id": NaN}')
@example(raw=_nested(10_000))
@example(raw=b"[" * 10_000 + b"]" * 10_000)
@example(raw=b'{"update_id": 1, "x": "' + b"x" * 3_000_000 + b'"}')
async def test_malformed_deep_and_oversized_bodies(harness: BotHarness, webhook: Client, raw: bytes) -> None:
    await check(webhook, harness, raw)


async def test_a_wrong_secret_is_refused_and_the_real_update_still_works(harness: BotHarness, webhook: Client) -> None:
    update = {
        "update_id": 7,
        "message": {
            "message_id": 1,
            "date": 1_764_032_400,
            "chat": {"id": 556, "type": "private"},
            "from": {"id": 556, "is_bot": False, "first_name": "Real", "language_code": "en"},
            "text": "/help",
            "entities": [{"type": "bot_command", "offset": 0, "length": 5}],
        },
    }
    wrong = await webhook.post("/webhook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "nope"})
    assert wrong.status == 401
    assert not harness.session.calls
    right = await webhook.post("/webhook", json=update, headers=HEADERS)
    assert right.status == 200
    assert harness.session.texts(556)
