"""Tier 2: GET /metrics after real updates, outbox sends and a failure; METRICS_TOKEN; the update_id in logs."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot import monitoring
from bot.app import create_app
from bot.clock import ManualClock
from bot.config import load_settings
from bot.logs import JsonFormatter
from bot.monitoring import LedgerTally, Metrics, MetricsEndpoint
from bot.sandbox.emulator import BotAPIEmulator
from bot.services.notify import enqueue_text
from storage.models import LedgerEntry
from storage.monitoring import ledger_entries
from storage.uow import UnitOfWork
from tests.e2e.conftest import free_port
from tests.flows.test_wallet import sell, team
from tests.support.harness import START, BotHarness, tg_user

ALICE = tg_user(101, "Alice", lang="en")


@pytest.fixture
async def metered(engine: AsyncEngine) -> AsyncIterator[tuple[BotHarness, Metrics]]:
    clock = ManualClock(START)
    metrics = Metrics(clock)
    h = BotHarness(engine, metrics=metrics, clock=clock)
    yield h, metrics
    await h.close()


async def scrape(h: BotHarness, metrics: Metrics, token: str | None = None, **headers: str) -> tuple[int, str]:
    app = web.Application()
    MetricsEndpoint(metrics, h.sessionmaker, token).install(app)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/metrics", headers=headers)
        return response.status, await response.text()


def sample(text: str, line_start: str) -> float:
    [line] = [line for line in text.splitlines() if line.startswith(line_start + " ")]
    return float(line.rsplit(" ", 1)[1])


async def test_metrics_show_updates_outbox_and_ledger(metered: tuple[BotHarness, Metrics]) -> None:
    h, metrics = metered
    await sell(h, await team(h))  # Alice's /start, Bob's /start in her team, then an order of Bob's
    async with UnitOfWork(h.sessionmaker) as uow:
        queued = (await uow.outbox.status_counts()).get("pending", 0)  # the order's notices
        alice = await uow.partners.by_tg_id(ALICE.id)
        assert alice is not None
        for n in range(3):
            await enqueue_text(uow, h.ctx, recipient=alice, dedupe_key=f"test:metrics:{n}", text="hi")
    status, text = await scrape(h, metrics)
    assert status == 200
    assert sample(text, 'partner_assistant_updates_total{outcome="ok",type="message"}') == 2
    assert sample(text, 'partner_assistant_update_seconds_count{type="message"}') == 2
    assert sample(text, 'partner_assistant_outbox_messages{status="pending"}') == queued + 3
    assert sample(text, 'partner_assistant_outbox_messages{status="dead"}') == 0
    assert sample(text, "partner_assistant_database_up") == 1
    async with h.sessionmaker() as session:
        commission_lines = await session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "commission")
        )
    assert commission_lines
    assert sample(text, 'partner_assistant_ledger_entries_total{kind="commission"}') == commission_lines

    sent = await h.drain_outbox()  # a round sends the first message of each chat
    assert sent >= 2
    status, text = await scrape(h, metrics)
    assert sample(text, 'partner_assistant_outbox_sends_total{outcome="sent"}') == sent
    assert sample(text, 'partner_assistant_outbox_messages{status="sent"}') == sent
    assert sample(text, 'partner_assistant_outbox_messages{status="pending"}') == queued + 3 - sent


async def test_ledger_lines_are_counted_once_as_they_settle_and_never_twice(
    metered: tuple[BotHarness, Metrics], monkeypatch: pytest.MonkeyPatch
) -> None:
    h, metrics = metered
    ranges: list[tuple[datetime | None, datetime | None]] = []

    async def recording(
        session: AsyncSession, *, since: datetime | None = None, until: datetime | None = None
    ) -> dict[str, int]:
        ranges.append((since, until))
        return await ledger_entries(session, since=since, until=until)

    monkeypatch.setattr(monitoring, "ledger_entries", recording)

    async def lines() -> int:
        async with h.sessionmaker() as session:
            return int(await session.scalar(select(func.count()).select_from(LedgerEntry)) or 0)

    async def counted() -> float:
        _, text = await scrape(h, metrics)
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("partner_assistant_ledger_entries_total{")
        )

    code = await team(h)
    await sell(h, code, "A1")
    first = await lines()
    assert first and await counted() == first  # the first scrape counts the whole ledger
    h.clock.advance(timedelta(minutes=11))  # those lines are settled now
    await sell(h, code, "A2")
    assert await counted() == await lines() > first
    assert await counted() == await lines()  # settled lines are kept, not counted again
    assert ranges[0] == (None, START - LedgerTally.SETTLE)  # the first scrape reads the whole ledger once
    assert all(since is not None for since, _ in ranges[1:])  # later ones only the ranges they have not seen
    h.clock.advance(timedelta(minutes=30))
    await sell(h, code, "A3")
    assert await counted() == await lines()
    h.clock.advance(timedelta(minutes=-25))  # the clock steps back (NTP): nothing is counted twice
    assert await counted() == await lines()
    await sell(h, code, "A4")
    h.clock.advance(timedelta(hours=1))
    assert await counted() == await lines()


async def test_a_failed_update_counts_as_an_error(metered: tuple[BotHarness, Metrics]) -> None:
    h, metrics = metered
    await h.send(ALICE, "/start")
    h.session.fail_next("sendMessage", 500, "Internal Server Error")
    await h.send(ALICE, "/me")  # the errors router says sorry: the update does not raise
    _, text = await scrape(h, metrics)
    assert sample(text, 'partner_assistant_updates_total{outcome="ok",type="message"}') == 1
    assert sample(text, 'partner_assistant_updates_total{outcome="error",type="message"}') == 1


async def test_metrics_token_is_required_when_set(metered: tuple[BotHarness, Metrics]) -> None:
    h, metrics = metered
    assert (await scrape(h, metrics, "s3cret"))[0] == 401
    assert (await scrape(h, metrics, "s3cret", Authorization="Bearer wrong"))[0] == 401
    assert (await scrape(h, metrics, "s3cret", Authorization="s3cret"))[0] == 401
    status, text = await scrape(h, metrics, "s3cret", Authorization="Bearer s3cret")
    assert status == 200 and "partner_assistant_outbox_messages" in text


async def test_log_lines_during_an_update_carry_its_update_id(
    metered: tuple[BotHarness, Metrics], caplog: pytest.LogCaptureFixture
) -> None:
    h, _ = metered
    await h.send(ALICE, "/start")
    h.session.fail_next("sendMessage", 500, "Internal Server Error")
    formatter = JsonFormatter()
    lines: list[dict[str, object]] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(json.loads(formatter.format(record)))

    handler = Capture(level=logging.ERROR)
    logging.getLogger().addHandler(handler)
    try:
        with caplog.at_level(logging.ERROR):
            update = await h.send(ALICE, "/me")
    finally:
        logging.getLogger().removeHandler(handler)
    [failed] = [line for line in lines if line["message"] == f"update {update.update_id} failed"]
    assert failed["update_id"] == update.update_id
    assert "Internal Server Error" in str(failed["exception"])


async def test_the_app_serves_metrics_next_to_healthz(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    async with BotAPIEmulator(files_dir=tmp_path / "files") as emulator:
        settings = load_settings(
            bot_token="123456:TEST-token",
            telegram_api_base=emulator.base_url,
            database_url=database_url,
            web_port=port,
            metrics_token="s3cret",
        )
        app = create_app(settings)
        await app.start()
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                    assert response.status == 401
                headers = {"Authorization": "Bearer s3cret"}
                async with http.get(f"http://127.0.0.1:{port}/metrics", headers=headers) as response:
                    assert response.status == 200
                    assert response.headers["Content-Type"].startswith("text/plain")
                    text = await response.text()
            assert sample(text, "partner_assistant_database_up") == 1
            assert "# TYPE partner_assistant_updates_total counter" in text
        finally:
            await app.stop()
