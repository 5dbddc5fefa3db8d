"""Prometheus metrics of one app and its GET /metrics endpoint (README: Monitoring).

Every metric lives in the app's own `CollectorRegistry`, built by the app factory and passed down: nothing is
registered in prometheus_client's global default registry, so several apps in one process (tests) never clash.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import ErrorEvent, TelegramObject, Update
from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.domain.errors import UserFacingError
from bot.logs import CURRENT_UPDATE_ID
from storage.monitoring import ledger_entries, outbox_depth

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

PREFIX = "partner_assistant"
OUTBOX_STATUSES = ("pending", "sending", "sent", "dead")
SEND_OUTCOMES = {"sent": "sent", "pending": "retried", "dead": "dead"}
"""The sender's row status after a call -> the outcome label of partner_assistant_outbox_sends_total."""
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0)


class _DatabaseCollector(Collector):
    """Outbox depth and ledger lines, as read from the database just before the registry is rendered."""

    def __init__(self) -> None:
        self.outbox: dict[str, int] = {}
        self.ledger: dict[str, int] = {}
        self.up = 0

    def collect(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily(f"{PREFIX}_outbox_messages", "Outbox rows by status", labels=["status"])
        for status in sorted(set(OUTBOX_STATUSES) | set(self.outbox)):
            depth.add_metric([status], self.outbox.get(status, 0))
        yield depth
        entries = CounterMetricFamily(f"{PREFIX}_ledger_entries", "Ledger lines written, by kind", labels=["kind"])
        for kind, count in sorted(self.ledger.items()):
            entries.add_metric([kind], count)
        yield entries
        yield GaugeMetricFamily(
            f"{PREFIX}_database_up", "1 when this scrape could read the database counts", value=self.up
        )


class LedgerTally:
    """Ledger lines by kind, counted without reading the whole ledger at every scrape.

    The ledger is append-only and every line carries the time it was written, so lines written more than SETTLE
    ago are counted once, as the horizon passes them, and kept; each scrape counts only the lines the horizon
    passed since the last one and the lines of the last SETTLE (both ranges of the created_at index). The first
    scrape of a process counts the whole ledger once. A line is counted as long as its transaction commits
    within SETTLE of the time it carries, which every write path does (one short transaction per update, order or
    job batch). When the clock steps back (NTP), lines written since carry times behind the horizon: the next
    scrape counts the whole ledger again.
    """

    SETTLE = timedelta(minutes=10)

    def __init__(self) -> None:
        self._settled: Counter[str] = Counter()
        self._horizon: datetime | None = None
        self._last_read: datetime | None = None

    async def read(self, session: AsyncSession, now: datetime) -> dict[str, int]:
        settled, horizon = self._settled, self._horizon
        if self._last_read is not None and now < self._last_read:
            settled, horizon = Counter(), None  # stepped back: count everything again
        until = now - self.SETTLE if horizon is None else max(now - self.SETTLE, horizon)
        newly_settled = await ledger_entries(session, since=horizon, until=until)
        recent = await ledger_entries(session, since=until)
        settled = settled + Counter(newly_settled)  # kept only once both reads succeeded
        self._settled, self._horizon, self._last_read = settled, until, now
        return dict(settled + Counter(recent))


class Metrics:
    """The metrics of one app, in a registry of its own."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._ledger = LedgerTally()
        self.registry = CollectorRegistry(auto_describe=True)
        self.updates = PromCounter(
            f"{PREFIX}_updates",
            "Telegram updates handled, by update type and outcome (ok, refused, error)",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.update_seconds = Histogram(
            f"{PREFIX}_update_seconds",
            "Time to handle one update (middlewares and handler), by update type",
            ["type"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.outbox_sends = PromCounter(
            f"{PREFIX}_outbox_sends",
            "Outbox send attempts recorded, by outcome (sent, retried, dead)",
            ["outcome"],
            registry=self.registry,
        )
        self.job_runs = PromCounter(
            f"{PREFIX}_job_runs",
            "Scheduled job runs, by job function and outcome (ok, error, missed)",
            ["job", "outcome"],
            registry=self.registry,
        )
        self.job_seconds = Histogram(
            f"{PREFIX}_job_seconds",
            "Duration of one scheduled job run, by job function",
            ["job"],
            buckets=JOB_BUCKETS,
            registry=self.registry,
        )
        self._database = _DatabaseCollector()
        self.registry.register(self._database)

    def outbox_outcome(self, status: str, count: int = 1) -> None:
        """`count` outbox calls ended with row status `status` (sent | pending | dead) and were recorded."""
        self.outbox_sends.labels(SEND_OUTCOMES.get(status, status)).inc(count)

    def job_run(self, job: str, outcome: str, seconds: float | None) -> None:
        self.job_runs.labels(job, outcome).inc()
        if seconds is not None:
            self.job_seconds.labels(job).observe(seconds)

    async def refresh(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        """Read the database counts for the next render; on failure they read as before and database_up is 0."""
        try:
            async with sessionmaker() as session:
                outbox = await outbox_depth(session)
                ledger = await self._ledger.read(session, self._clock.now())
        except Exception as exc:
            log.warning("metrics: could not read the database counts (%s)", type(exc).__name__)
            self._database.up = 0
            return
        self._database.outbox, self._database.ledger, self._database.up = outbox, ledger, 1

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _update_type(event: TelegramObject) -> str:
    if not isinstance(event, Update):
        return type(event).__name__.lower()
    try:
        return event.event_type
    except Exception:  # an update type this aiogram does not know
        return "unknown"


class UpdateMetricsMiddleware(BaseMiddleware):
    """First of ours (inside aiogram's own errors middleware): every log line while an update is handled carries
    its update_id; counts the update by type and outcome and times it."""

    def __init__(self, metrics: Metrics | None) -> None:
        self._metrics = metrics

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        token = CURRENT_UPDATE_ID.set(event.update_id if isinstance(event, Update) else None)
        outcome = "error"
        started = time.perf_counter()
        try:
            result = await handler(event, data)
            outcome = "ok"
            return result
        except UserFacingError:  # the errors router answers it with a friendly text
            outcome = "refused"
            raise
        finally:
            CURRENT_UPDATE_ID.reset(token)
            if self._metrics is not None:
                kind = _update_type(event)
                self._metrics.updates.labels(kind, outcome).inc()
                self._metrics.update_seconds.labels(kind).observe(time.perf_counter() - started)


class ErrorContextMiddleware(BaseMiddleware):
    """On the dispatcher's errors observer: the log lines of the errors router carry the failed update's id."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        update_id = event.update.update_id if isinstance(event, ErrorEvent) else None
        token = CURRENT_UPDATE_ID.set(update_id)
        try:
            return await handler(event, data)
        finally:
            CURRENT_UPDATE_ID.reset(token)


class MetricsEndpoint:
    """GET /metrics in Prometheus' text format; with METRICS_TOKEN only for `Authorization: Bearer <token>`."""

    def __init__(
        self, metrics: Metrics, sessionmaker: async_sessionmaker[AsyncSession], token: str | None = None
    ) -> None:
        self._metrics = metrics
        self._sessionmaker = sessionmaker
        self._expected = f"Bearer {token}".encode() if token else None

    def install(self, app: web.Application) -> None:
        app.router.add_get("/metrics", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        if self._expected is not None:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, self._expected):
                return web.Response(status=401, text="unauthorized\n", headers={"WWW-Authenticate": "Bearer"})
        await self._metrics.refresh(self._sessionmaker)
        return web.Response(
            body=self._metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"}
        )
