"""Settlement: a stream of paid orders, 10% of them redelivered, settled into the ledger.

The stream goes through `OrderBatcher` (bot/order_batcher.py), as POST /api/orders settles it: up to
`IN_FLIGHT` deliveries wait at once (a shop's webhook burst, or a queue consumer's prefetch), and batch runners
(4 on PostgreSQL, 1 on SQLite: one writer at a time) each take what is waiting into one transaction of
`SettlementService.ingest_orders`. The network: 1,000 partners in a tree (each with up to three recruits, so most
orders pay L1 and L2). Every redelivery is a copy of an earlier order placed later in the stream; some arrive
while their original is still settling (or in the same batch), and the database's unique index decides.

Checked after the run: every unique order CREATED and every redelivery REPLAY; no (txn, line) twice and exactly
the expected number of entries (two per commission line).

Baseline, same run, same database: one INSERT + COMMIT per order into a trivial table through the same session
machinery, from 8 tasks on PostgreSQL and 1 on SQLite: the floor any one-transaction-per-order design pays.

Report only: `ingest_order` with one transaction per order (8 tasks / 1 task), and the same kind of stream as
signed POSTs to `OrdersEndpoint` on a local aiohttp server over `HTTP_CONNECTIONS` connections, client and server
in this one process.

Sizes (quick / full): 1,000 / 10,000 unique orders plus 10% batched; 100 / 3,000 plus 10% one by one; 300 / 3,000
plus 10% over HTTP (each row names its count).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from benchmarks.report import Result
from bot.clock import SystemClock
from bot.domain.orders_api import OrderIn, OrderItemIn, sign
from bot.i18n import Translator
from bot.order_batcher import OrderBatcher
from bot.orders_http import OrdersEndpoint
from bot.services.context import ServiceContext
from bot.services.ledger import Outcome, SettlementService
from bot.services.registry import UseCases
from storage.db import create_engine, create_sessionmaker
from storage.migrate import upgrade_to_head
from storage.models import LedgerEntry, Order, Partner
from storage.uow import UnitOfWork

TARGETS = {"postgres": 1000.0, "sqlite": 500.0}
WORKERS = {"postgres": 8, "sqlite": 1}
"""Concurrent transactions: of the baseline, of the one-order-per-transaction path, and batch runners."""
RUNNERS = {"postgres": 4, "sqlite": 1}
"""Batch runners, as `OrdersEndpoint` starts them."""
IN_FLIGHT = 200
HTTP_CONNECTIONS = 64
"""Deliveries waiting at once in the batched path (a shop's webhook burst, or a queue consumer's prefetch)."""
PARTNERS = 1000
FAN_OUT = 3
"""Recruits per partner: a tree about seven levels deep."""
CUSTOMERS = 5000
REDELIVERED = 0.10
SECRET = b"bench-orders-secret"
BASELINE_TABLE = "bench_settlement_baseline"


@dataclass(frozen=True, slots=True)
class Network:
    codes: list[str]
    has_upline: dict[str, bool]


@dataclass(frozen=True, slots=True)
class Stream:
    orders: list[OrderIn]
    """Deliveries in arrival order, redeliveries included."""
    unique: int
    expected_entries: int
    """Two per commission line: L1 always (every amount is at least ¥1.00), L2 when the seller has an upline."""


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float
    latencies: list[float]
    outcomes: Counter[str]

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000 if ordered else 0.0


async def _seed(engine: AsyncEngine, tag: str) -> Network:
    """`PARTNERS` partners, partner i recruited by partner (i - 1) // FAN_OUT, with materialised paths."""
    now = datetime.now(UTC)
    first_user = 700_000_000 + random.randrange(100_000) * PARTNERS
    codes = [f"st{tag}{i}" for i in range(PARTNERS)]
    async with UnitOfWork(create_sessionmaker(engine)) as uow:
        rows = [
            {
                "tg_user_id": first_user + i,
                "first_name": f"Seller {i}",
                "invite_code": code,
                "tree_path": "/",
                "role": "partner",
                "depth": 0,
                "unreachable": False,
                "level": "member",
                "joined_at": now,
                "updated_at": now,
            }
            for i, code in enumerate(codes)
        ]
        await uow.session.execute(insert(Partner), rows)
        found = await uow.session.execute(select(Partner.invite_code, Partner.id).where(Partner.invite_code.in_(codes)))
        ids = dict(found.tuples().all())
        paths: list[str] = []
        changes = []
        for i, code in enumerate(codes):
            parent = (i - 1) // FAN_OUT if i else None
            path = (paths[parent] if parent is not None else "/") + f"{ids[code]}/"
            paths.append(path)
            changes.append(
                {
                    "id": ids[code],
                    "tree_path": path,
                    "upline_id": ids[codes[parent]] if parent is not None else None,
                    "depth": path.count("/") - 2,
                }
            )
        await uow.session.execute(update(Partner), changes)
    return Network(codes, {code: i > 0 for i, code in enumerate(codes)})


def _stream(network: Network, unique: int, tag: str, rng: random.Random) -> Stream:
    paid_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    orders: list[OrderIn] = []
    expected = 0
    for n in range(unique):
        code = rng.choice(network.codes)
        items = tuple(
            OrderItemIn(
                f"SKU-{rng.randrange(50)}", rng.choice(("tea", "cups")), rng.randint(1, 3), rng.randint(100, 20_000)
            )
            for _ in range(rng.randint(1, 3))
        )
        orders.append(
            OrderIn(
                order_id=f"S{tag}-{n}",
                partner_code=code,
                coupon=None,
                customer_id=f"c{tag}-{rng.randrange(CUSTOMERS)}",
                currency="CNY",
                amount_minor=sum(i.quantity * i.unit_price_minor for i in items),
                items=items,
                paid_at=paid_at,
            )
        )
        expected += 2 * (2 if network.has_upline[code] else 1)
    arrivals = [(float(n), order) for n, order in enumerate(orders)]
    for _ in range(int(unique * REDELIVERED)):  # each redelivery arrives some time after its original
        original = rng.randrange(unique)
        arrivals.append((rng.uniform(original + 0.5, unique), orders[original]))
    arrivals.sort(key=lambda arrival: arrival[0])
    return Stream([order for _, order in arrivals], unique, expected)


async def _drive(items: Sequence[OrderIn], workers: int, handle: Callable[[OrderIn], Awaitable[str]]) -> Run:
    """`workers` tasks take the stream in order; each delivery's latency is measured around `handle`."""
    queue: asyncio.Queue[OrderIn] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()

    async def worker() -> None:
        while not queue.empty():
            item = queue.get_nowait()
            started = time.perf_counter()
            outcome = await handle(item)
            latencies.append(time.perf_counter() - started)
            outcomes[outcome] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return Run(time.perf_counter() - started, latencies, outcomes)


def _context() -> ServiceContext:
    return ServiceContext(
        clock=SystemClock(),
        translator=Translator.load("zh"),
        admin_ids=frozenset(),
        timezone=ZoneInfo("Asia/Shanghai"),
    )


async def _service_path(
    sessionmaker: async_sessionmaker[AsyncSession], ctx: ServiceContext, stream: Stream, workers: int
) -> Run:
    async def settle(order: OrderIn) -> str:
        async with UnitOfWork(sessionmaker) as uow:
            return (await UseCases(uow, ctx).settlement.ingest_order(order)).outcome.value

    return await _drive(stream.orders, workers, settle)


async def _batched_path(
    sessionmaker: async_sessionmaker[AsyncSession], ctx: ServiceContext, stream: Stream, runners: int
) -> Run:
    """The stream through `OrderBatcher`, `IN_FLIGHT` deliveries at a time, as the HTTP endpoint settles them."""
    batcher = OrderBatcher(sessionmaker, ctx, runners=runners)

    async def settle(order: OrderIn) -> str:
        return (await batcher.settle(order)).outcome.value

    try:
        return await _drive(stream.orders, IN_FLIGHT, settle)
    finally:
        await batcher.close()


async def _baseline(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], stream: Stream, workers: int
) -> Run:
    """One INSERT + COMMIT per delivery into a table with a key and one text column."""
    key = "BIGSERIAL PRIMARY KEY" if engine.dialect.name == "postgresql" else "INTEGER PRIMARY KEY AUTOINCREMENT"
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP TABLE IF EXISTS {BASELINE_TABLE}"))
        await conn.execute(text(f"CREATE TABLE {BASELINE_TABLE} (id {key}, order_id VARCHAR(64) NOT NULL)"))
    statement = text(f"INSERT INTO {BASELINE_TABLE} (order_id) VALUES (:order_id)")

    async def insert_one(order: OrderIn) -> str:
        async with sessionmaker() as session, session.begin():
            await session.execute(statement, {"order_id": order.order_id})
        return "inserted"

    try:
        return await _drive(stream.orders, workers, insert_one)
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE IF EXISTS {BASELINE_TABLE}"))


async def _written(sessionmaker: async_sessionmaker[AsyncSession], tag: str) -> tuple[int, int, int]:
    """(orders, ledger entries, (txn, line) pairs written more than once) for this run's order ids."""
    prefix = f"order:api:S{tag}-%"
    async with sessionmaker() as session:
        orders = (
            await session.execute(select(func.count()).select_from(Order).where(Order.external_id.like(f"S{tag}-%")))
        ).scalar_one()
        entries = (
            await session.execute(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.txn.like(prefix)))
        ).scalar_one()
        twice = (
            select(LedgerEntry.txn, LedgerEntry.line)
            .where(LedgerEntry.txn.like(prefix))
            .group_by(LedgerEntry.txn, LedgerEntry.line)
            .having(func.count() > 1)
            .subquery()
        )
        duplicates = (await session.execute(select(func.count()).select_from(twice))).scalar_one()
    return int(orders), int(entries), int(duplicates)


def _body(order: OrderIn) -> bytes:
    def money(minor: int) -> str:
        return f"{minor // 100}.{minor % 100:02d}"

    return json.dumps(
        {
            "order_id": order.order_id,
            "partner_code": order.partner_code,
            "customer_id": order.customer_id,
            "currency": order.currency,
            "amount": money(order.amount_minor),
            "items": [
                {"sku": i.sku, "category": i.category, "quantity": i.quantity, "unit_price": money(i.unit_price_minor)}
                for i in order.items
            ],
            "paid_at": order.paid_at.isoformat(),
        }
    ).encode()


async def _http_path(
    sessionmaker: async_sessionmaker[AsyncSession], ctx: ServiceContext, stream: Stream, workers: int
) -> Run:
    """Signed POST /api/orders through `OrdersEndpoint` on 127.0.0.1; outcome = the HTTP status."""
    app = web.Application()
    OrdersEndpoint(SECRET, sessionmaker, ctx).install(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    bodies = {order.order_id: _body(order) for order in stream.orders}
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=workers)) as http:

            async def post(order: OrderIn) -> str:
                raw = bodies[order.order_id]
                timestamp = int(time.time())
                headers = {"X-Timestamp": str(timestamp), "X-Signature": sign(SECRET, timestamp, raw)}
                async with http.post(f"http://127.0.0.1:{port}/api/orders", data=raw, headers=headers) as response:
                    await response.read()
                    return str(response.status)

            return await _drive(stream.orders, workers, post)
    finally:
        await runner.cleanup()


async def run(quick: bool, database_url: str, label: str) -> list[Result]:
    backend = "postgres" if database_url.startswith("postgresql") else "sqlite"
    target, workers = TARGETS[backend], WORKERS[backend]
    unique, unique_single, unique_http = (1000, 100, 300) if quick else (10_000, 3000, 3000)
    rng = random.Random(20261125)
    engine = create_engine(database_url)
    sessionmaker = create_sessionmaker(engine)
    ctx = _context()
    tasks = f"{workers} task" + ("s" if workers > 1 else "")
    try:
        await upgrade_to_head(engine)
        async with UnitOfWork(sessionmaker) as uow:  # as the app does at start-up
            await SettlementService(uow, ctx).ensure_plan()
        network = await _seed(engine, uuid.uuid4().hex[:6])
        tag = uuid.uuid4().hex[:6]
        stream = _stream(network, unique, tag, rng)
        baseline = await _baseline(engine, sessionmaker, stream, workers)
        batched = await _batched_path(sessionmaker, ctx, stream, RUNNERS[backend])
        orders, entries, duplicates = await _written(sessionmaker, tag)
        correct = _all_settled(batched, stream) and orders == stream.unique and entries == stream.expected_entries
        correct = correct and duplicates == 0
        results = [
            Result(
                f"settlement of an order stream, {PARTNERS:,} partners, 10% redelivered ({label}, batched, "
                f"{stream.unique:,} orders)",
                f"orders/s vs bare INSERT+COMMIT per order ({IN_FLIGHT} in flight, {RUNNERS[backend]} batch runners; "
                f"p99 {batched.p99_ms:.1f} ms vs {baseline.p99_ms:.1f} ms)",
                f">= {target:,.0f}/s",
                batched.rate,
                baseline.rate,
                batched.rate >= target and correct,
                "/s",
            ),
            Result(
                f"settlement duplicates ({label})",
                f"(txn, line) written twice; entries {entries:,} of {stream.expected_entries:,} expected, "
                f"{dict(batched.outcomes)}",
                "0, entries = expected",
                float(duplicates),
                None,
                correct,
            ),
        ]
        single_tag = uuid.uuid4().hex[:6]
        single_stream = _stream(network, unique_single, single_tag, rng)
        single = await _service_path(sessionmaker, ctx, single_stream, workers)
        _, single_entries, single_duplicates = await _written(sessionmaker, single_tag)
        results.append(
            Result(
                f"settlement, one transaction per order ({label}, {tasks}, {single_stream.unique:,} orders)",
                f"orders/s, report only: ingest_order alone (p99 {single.p99_ms:.1f} ms; "
                f"{single_duplicates} duplicates)",
                "report only",
                single.rate,
                baseline.rate,
                _all_settled(single, single_stream)
                and single_duplicates == 0
                and single_entries == single_stream.expected_entries,
                "/s",
            )
        )
        http_tag = uuid.uuid4().hex[:6]
        http_stream = _stream(network, unique_http, http_tag, rng)
        over_http = await _http_path(sessionmaker, ctx, http_stream, HTTP_CONNECTIONS)
        http_redeliveries = len(http_stream.orders) - http_stream.unique
        http_ok = over_http.outcomes == Counter({"201": http_stream.unique, "200": http_redeliveries})
        _, http_entries, http_duplicates = await _written(sessionmaker, http_tag)
        results.append(
            Result(
                f"settlement over HTTP, signed POST /api/orders ({label}, {HTTP_CONNECTIONS} connections, "
                f"{http_stream.unique:,} orders)",
                f"orders/s, report only (p99 {over_http.p99_ms:.1f} ms; {dict(over_http.outcomes)}; "
                f"{http_duplicates} duplicates)",
                "report only",
                over_http.rate,
                batched.rate,
                http_ok and http_duplicates == 0 and http_entries == http_stream.expected_entries,
                "/s",
            )
        )
        return results
    finally:
        await engine.dispose()


def _all_settled(run: Run, stream: Stream) -> bool:
    """Every unique order CREATED once and every redelivery a REPLAY."""
    redeliveries = len(stream.orders) - stream.unique
    return run.outcomes == Counter({Outcome.CREATED.value: stream.unique, Outcome.REPLAY.value: redeliveries})
