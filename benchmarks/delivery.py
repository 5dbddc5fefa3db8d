"""Delivery: the outbox sender broadcasting to distinct partners against a local stand-in Bot API, and the bulk
enqueue of a broadcast's rows.

The stand-in is benchmarks/standin.py, a minimal aiohttp server in its own process that answers every send at
once: the full emulator (bot.sandbox.emulator) needs every recipient to exist and renders HTML, and at paid
speeds it would be the bottleneck. Its raw accept rate through bare aiogram calls is the baseline of the paid
scenario. Rates are measured where Telegram would measure them: at the stand-in, as the mean arrival rate
between the first and the last message. The sender's CPU is this process's CPU time (the stand-in and the
database run in other processes).

The paid broadcast runs twice: one sender process with its limits in memory, then (when Redis is up) two
sender processes (benchmarks/sender_process.py) sharing their limits and 429 pause through Redis, as a fleet
of bot processes would.

Recipient counts (quick / full): 75 / 1,500 at 25/s, 90 / 1,800 at 30/s (three seconds each in the quick run:
the limiter is deterministic, and three one-second windows still show its bursts), 2,000 / 30,000 for each paid
broadcast at 1,000/s, 1,000 / 10,000 raw sends; 100,000 rows enqueued (20,000 with --quick, whose time is
extrapolated linearly to 100,000 and labelled so; the row-by-row baseline is timed over 2,000 rows, 500 quick).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from benchmarks.report import Result, reachable
from bot.clock import SystemClock
from bot.delivery.limiter import DeliveryLimiter, DeliveryRates
from bot.delivery.sender import OutboxSender
from storage.db import create_engine, create_sessionmaker
from storage.migrate import upgrade_to_head
from storage.uow import UnitOfWork

RATE_TOLERANCE = 0.05
CPU_LIMIT = 0.15
RSS_GROWTH_LIMIT_MIB = 16.0
PAID_TARGET = 1000.0
ENQUEUE_ROWS = 100_000
QUICK_ENQUEUE_ROWS = 20_000
ENQUEUE_LIMIT_S = 10.0
ENQUEUE_CHUNK = 5000
FLEET_PROCESSES = 2
REDIS_URL = "redis://127.0.0.1:6379/15"
TOKEN = "123456:BENCH-token"


@dataclass(frozen=True, slots=True)
class Arrivals:
    count: int
    first: float
    last: float
    peak_per_second: int
    paid_flags: int

    @property
    def rate(self) -> float:
        """Mean arrival rate between the first and the last message, as Telegram would see it."""
        return (self.count - 1) / (self.last - self.first) if self.last > self.first else 0.0


@contextlib.contextmanager
def _standin() -> Iterator[str]:
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.standin"], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(timeout=10)


async def _arrivals(http: aiohttp.ClientSession, base: str) -> Arrivals:
    async with http.get(f"{base}/_stats") as response:
        data = await response.json()
    return Arrivals(
        data["count"], data["first"] or 0.0, data["last"] or 0.0, data["peak_per_second"], data["paid_flags"]
    )


def _bot(base: str) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(base))
    return Bot(TOKEN, session=session, default=DefaultBotProperties(parse_mode="HTML"))


def _rows(count: int, tag: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            "dedupe_key": f"bench:{tag}:{i}",
            "chat_id": 10_000_000 + i,
            "partner_id": None,
            "kind": "text",
            "payload": {"text": f"📣 <b>Today's content</b> #{i}", "parse_mode": "HTML"},
            "not_before": now,
            "created_at": now,
        }
        for i in range(count)
    ]


async def _empty_outbox(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM outbox"))


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(frozen=True, slots=True)
class Broadcast:
    arrivals: Arrivals
    cpu_share: float
    rss_before: float
    rss_after: float
    burst: int


async def _enqueue(sessionmaker: async_sessionmaker[AsyncSession], count: int, tag: str) -> None:
    """Queue `count` rows in chunks, so building them does not raise the peak RSS measured later."""
    for start in range(0, count, ENQUEUE_CHUNK):
        async with UnitOfWork(sessionmaker) as uow:
            await uow.outbox.enqueue_many(_rows(min(ENQUEUE_CHUNK, count - start), f"{tag}:{start}"))


async def _wait_for_arrivals(http: aiohttp.ClientSession, base: str, count: int) -> None:
    while True:  # the stand-in counts what arrived; the sender knows nothing of the benchmark
        async with http.get(f"{base}/_count") as response:
            if (await response.json())["count"] >= count:
                return
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def _running(sender: OutboxSender) -> AsyncIterator[None]:
    task = asyncio.create_task(sender.run())
    try:
        yield
    finally:
        sender.stop()
        await task


async def _broadcast(
    engine: AsyncEngine,
    base: str,
    http: aiohttp.ClientSession,
    rates: DeliveryRates,
    count: int,
    *,
    warm_up_seconds: float = 1.0,
) -> Broadcast:
    """Enqueue `count` rows, then let a running sender deliver them all.

    A warm-up broadcast (a tenth as many, at least `warm_up_seconds`' worth) goes first, so the measured one runs in
    steady state: CPU is measured over its drain, peak RSS before and after it.
    """
    await _empty_outbox(engine)
    async with http.post(f"{base}/_reset"):
        pass
    sessionmaker = create_sessionmaker(engine)
    warm_up = max(round(rates.per_second * warm_up_seconds), count // 10)
    await _enqueue(sessionmaker, warm_up, f"warm-up:{rates.per_second}")
    clock = SystemClock()
    bot = _bot(base)

    def sender() -> OutboxSender:
        limiter = DeliveryLimiter.in_memory(clock, rates)
        return OutboxSender(sessionmaker, bot, clock, limiter=limiter, poll_seconds=0.2)

    gc.collect()
    gc.freeze()  # as BotApp.start() does before it starts the sender
    async with _running(sender()):
        await _wait_for_arrivals(http, base, warm_up)  # connections open, code paths warm
    async with http.post(f"{base}/_reset"):
        pass
    rss_before = _peak_rss_mib()
    # Queued with no sender running, as a broadcast's rows are all committed before it starts: the sender would
    # otherwise start on the first chunk and share this process with the inserts of the rest.
    await _enqueue(sessionmaker, count, str(rates.per_second))
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    async with _running(sender()):
        await _wait_for_arrivals(http, base, count)
    cpu_share = (time.process_time() - cpu_started) / (time.perf_counter() - wall_started)
    await bot.session.close()
    return Broadcast(await _arrivals(http, base), cpu_share, rss_before, _peak_rss_mib(), rates.burst)


async def _multi_process_broadcast(
    database_url: str, engine: AsyncEngine, base: str, http: aiohttp.ClientSession, *, count: int, processes: int
) -> tuple[Arrivals, float]:
    """Paid broadcast by several sender processes sharing limits through Redis: (arrivals, CPU cores used)."""
    await _empty_outbox(engine)
    await _enqueue(create_sessionmaker(engine), count, "fleet")
    prefix = f"pa:bench:{uuid.uuid4().hex}"
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.sender_process",
            database_url,
            base,
            REDIS_URL,
            prefix,
            str(int(PAID_TARGET)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for _ in range(processes)
    ]
    for child in children:  # imports, connections and warm-up sends done, rows queued: start them together
        assert child.stdout is not None
        await child.stdout.readline()
    async with http.post(f"{base}/_reset"):
        pass
    started = time.perf_counter()
    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        await child.stdin.drain()
    outputs = [(await child.communicate())[0].decode() for child in children]
    reports = [json.loads(output.strip().splitlines()[-1]) for output in outputs]
    cores = sum(report["cpu"] for report in reports) / (time.perf_counter() - started)
    return await _arrivals(http, base), cores


async def _raw_send_rate(base: str, count: int, concurrency: int = 100) -> float:
    """Baseline: bare aiogram sends to the stand-in, as fast as they go, with no outbox, DB or limits."""
    bot = _bot(base)
    slots = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with slots:
            await bot.send_message(20_000_000 + i, f"📣 <b>Today's content</b> #{i}")

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    rate = count / (time.perf_counter() - started)
    await bot.session.close()
    return rate


async def _enqueue_seconds(engine: AsyncEngine, count: int, single_rows: int) -> tuple[float, float]:
    """(seconds for `count` rows through enqueue_many, seconds extrapolated from `single_rows` enqueued row by row)."""
    await _empty_outbox(engine)
    sessionmaker = create_sessionmaker(engine)
    single = _rows(single_rows, "single")
    started = time.perf_counter()
    async with UnitOfWork(sessionmaker) as uow:
        for row in single:
            await uow.outbox.enqueue(**{k: v for k, v in row.items() if k != "created_at"}, now=row["created_at"])
    row_by_row = (time.perf_counter() - started) / len(single) * count
    await _empty_outbox(engine)
    rows = _rows(count, "bulk")
    started = time.perf_counter()
    async with UnitOfWork(sessionmaker) as uow:
        added = await uow.outbox.enqueue_many(rows)
    bulk = time.perf_counter() - started
    assert added == count
    return bulk, row_by_row


@contextlib.asynccontextmanager
async def _engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


def _rate_result(name: str, rate: int, run: Broadcast, size_note: str) -> list[Result]:
    achieved = run.arrivals.rate
    return [
        Result(
            f"broadcast at {rate}/s ({run.arrivals.count:,} partners{size_note})",
            "achieved msg/s",
            f"within {RATE_TOLERANCE:.0%} of {rate}",
            achieved,
            None,
            abs(achieved / rate - 1) <= RATE_TOLERANCE,
            "/s",
        ),
        Result(
            f"broadcast at {rate}/s ({name})",
            "most arriving in any 1 s",
            f"<= {rate + run.burst}",
            float(run.arrivals.peak_per_second),
            None,
            run.arrivals.peak_per_second <= rate + run.burst,  # the limiter's burst of two, plus network jitter
        ),
    ]


async def run(*, quick: bool, database_url: str) -> list[Result]:
    """Every delivery scenario against one migrated database (PostgreSQL for the real targets)."""
    backend = "postgres" if database_url.startswith("postgresql") else "sqlite"
    sizes = {25: 75, 30: 90, "paid": 2000} if quick else {25: 1500, 30: 1800, "paid": 30_000}
    quick_note = "; quick" if quick else ""
    results: list[Result] = []
    with _standin() as base:
        async with aiohttp.ClientSession() as http, _engine(database_url) as engine:
            raw = await _raw_send_rate(base, 1000 if quick else 10_000)
            for rate in (25, 30):
                # the quick run warms up on 0.2 s of sending: every code path and connection, not a second's wait
                warm_up_s = 0.2 if quick else 1.0
                rates = DeliveryRates.for_rate(rate)
                run_ = await _broadcast(engine, base, http, rates, int(sizes[rate]), warm_up_seconds=warm_up_s)
                results.extend(_rate_result(backend, rate, run_, quick_note))
                if rate == 30:
                    results.append(
                        Result(
                            f"broadcast at 30/s ({backend})",
                            "sender CPU, one core",
                            f"<= {CPU_LIMIT:.0%}",
                            run_.cpu_share * 100,
                            None,
                            run_.cpu_share <= CPU_LIMIT,
                            "%",
                        )
                    )
            paid_rates = DeliveryRates.for_rate(1000, paid_broadcast=True)
            paid = await _broadcast(engine, base, http, paid_rates, int(sizes["paid"]))
            achieved = paid.arrivals.rate
            results.append(
                Result(
                    f"paid broadcast ({paid.arrivals.count:,} partners, {backend}{quick_note})",
                    "achieved msg/s vs raw sends",
                    f">= {PAID_TARGET:,.0f}/s",
                    achieved,
                    raw,
                    achieved >= PAID_TARGET and paid.arrivals.paid_flags == paid.arrivals.count,
                    "/s",
                )
            )
            growth = paid.rss_after - paid.rss_before
            results.append(
                Result(
                    f"paid broadcast ({backend})",
                    "peak RSS after vs before",
                    f"<= +{RSS_GROWTH_LIMIT_MIB:.0f} MiB",
                    paid.rss_after,
                    paid.rss_before,
                    growth <= RSS_GROWTH_LIMIT_MIB,
                    " MiB",
                )
            )
            if reachable(6379):
                fleet, cores = await _multi_process_broadcast(
                    database_url, engine, base, http, count=int(sizes["paid"]), processes=FLEET_PROCESSES
                )
                results.append(
                    Result(
                        f"paid broadcast, {FLEET_PROCESSES} processes, limits in Redis ({fleet.count:,}, {backend}"
                        f"{quick_note})",
                        "achieved msg/s vs raw sends",
                        f">= {PAID_TARGET:,.0f}/s",
                        fleet.rate,
                        raw,
                        fleet.rate >= PAID_TARGET and fleet.paid_flags == fleet.count,
                        "/s",
                    )
                )
                results.append(
                    Result(
                        f"paid broadcast, {FLEET_PROCESSES} processes ({backend})",
                        "senders' CPU, cores",
                        "report",
                        cores,
                        None,
                        True,
                    )
                )
            rows = QUICK_ENQUEUE_ROWS if quick else ENQUEUE_ROWS
            bulk, row_by_row = await _enqueue_seconds(engine, rows, 500 if quick else 2000)
            scale = ENQUEUE_ROWS / rows
            label = f"enqueue {ENQUEUE_ROWS:,} outbox rows ({backend}"
            label += f"; quick: {rows:,} rows, x{scale:.0f} extrapolated)" if quick else ")"
            results.append(
                Result(
                    label,
                    "seconds vs row by row",
                    f"<= {ENQUEUE_LIMIT_S:.0f} s",
                    bulk * scale,
                    row_by_row * scale,
                    bulk * scale <= ENQUEUE_LIMIT_S,
                    " s",
                )
            )
    return results
