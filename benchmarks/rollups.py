"""The daily behaviour rollup (`rollups:refresh`) for 100,000 partners and 10,000,000 events on PostgreSQL.

Data: `PARTNERS` partners and `EVENTS` events over the last 30 days (shares, content sent, clicks, follow-ups a
tenth of them revisits, prospects, quotes), plus settled orders for one partner in ten with their commission lines.
The run is `bot.scheduling.jobs.refresh_rollups`, exactly what the job runs: yesterday and today recomputed, a
transaction per day. Target: <= 30 s.

Also measured (no target, printed for the record): rebuilding all 30 days, as `run_bot.py rollups rebuild` does
(with --quick the last 7 days, extrapolated to 30 and labelled so).

Checked: the rollups' totals of the two days equal the events and orders counted with plain SQL.

Baseline, same run, same database: that plain SQL alone, one GROUP BY partner and type over the two days' events.

Sizes: 100,000 partners and 10,000,000 events (full); 2,000 and 200,000 with --quick (the same 100 events per
partner), whose times are extrapolated linearly to the full size and labelled so.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.report import Result
from bot.clock import ManualClock
from bot.i18n import Translator
from bot.scheduling import running_with
from bot.scheduling.jobs import refresh_rollups
from bot.scheduling.runtime import JobRuntime
from bot.services.behaviour import BehaviourService
from bot.services.context import ServiceContext
from storage.db import create_engine, create_sessionmaker
from storage.migrate import upgrade_to_head
from storage.models import DailyRollup
from storage.uow import UnitOfWork

PARTNERS, EVENTS = 100_000, 10_000_000
QUICK_PARTNERS, QUICK_EVENTS = 2_000, 200_000
TARGET_SECONDS = 30.0
REBUILD_DAYS, QUICK_REBUILD_DAYS = 30, 7
ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai: today is half over
FIRST_TG_ID = 800_000_000

SEED_PARTNERS = """
INSERT INTO partners (tg_user_id, first_name, invite_code, tree_path, depth, role, unreachable, level,
                      commission_eligible, joined_at, updated_at)
SELECT :first_tg + g, 'Roll ' || g, 'roll' || g, '/', 0, 'partner', false, 'member', true,
       CAST(:now AS timestamptz) - interval '90 days', CAST(:now AS timestamptz)
FROM generate_series(1, :n) AS g
"""

SEED_EVENTS = """
INSERT INTO events (partner_id, type, payload, occurred_at, source)
SELECT :first_id + floor(random() * :n)::int,
       t.type,
       CAST(CASE WHEN t.type = 'followed_up' AND random() < 0.1 THEN '{"revisit": true}' ELSE '{}' END AS json),
       CAST(:now AS timestamptz) - random() * interval '30 days',
       'bot'
FROM generate_series(1, :events) AS g
CROSS JOIN LATERAL (
    SELECT (ARRAY['shared', 'shared', 'shared', 'content_sent', 'content_sent', 'link_clicked', 'link_clicked',
                  'followed_up', 'lead_added', 'quote_sent'])[1 + floor(random() * 10 + g * 0)::int] AS type
) AS t
"""

SEED_ORDERS = """
INSERT INTO orders (source, external_id, fingerprint, customer_id, partner_id, attribution, currency, amount_minor,
                    refunded_minor, items, paid_at, status, created_at)
SELECT 'bench', 'roll-' || p.id, 'x', 'c' || p.id, p.id, 'partner_code', 'CNY', 9900, 0, '[]',
       CAST(:now AS timestamptz) - random() * interval '30 days', 'settled', CAST(:now AS timestamptz)
FROM partners AS p
WHERE p.tg_user_id > :first_tg AND p.id % 10 = 3
"""

SEED_LEDGER = """
INSERT INTO ledger_entries (txn, line, account, partner_id, bucket, amount_minor, currency, kind, order_id,
                            created_at)
SELECT 'order:bench:' || o.external_id, 1, 'partner:' || o.partner_id, o.partner_id, 'pending', 990, 'CNY',
       'commission', o.id, o.paid_at
FROM orders AS o WHERE o.source = 'bench'
"""

PLAIN_COUNTS = """
SELECT count(*) FILTER (WHERE type = 'shared'), count(DISTINCT partner_id)
FROM events WHERE occurred_at >= :start AND occurred_at < :end AND type IN
    ('content_sent', 'shared', 'link_clicked', 'lead_added', 'followed_up', 'quote_sent', 'order_attributed')
"""

PLAIN_GROUPED = """
SELECT partner_id, type, count(*) FROM events
WHERE occurred_at >= :start AND occurred_at < :end AND type IN
    ('content_sent', 'shared', 'link_clicked', 'lead_added', 'followed_up', 'quote_sent', 'order_attributed')
GROUP BY partner_id, type
"""


async def _seed(engine: AsyncEngine, partners: int, events: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("SELECT setseed(0.20261126)"))
        params = {"now": NOW, "first_tg": FIRST_TG_ID, "n": partners, "events": events}
        await conn.execute(text(SEED_PARTNERS), params)
        first_id = await conn.execute(text("SELECT min(id) FROM partners WHERE tg_user_id > :t"), {"t": FIRST_TG_ID})
        params["first_id"] = int(first_id.scalar_one())
        await conn.execute(text(SEED_EVENTS), params)
        await conn.execute(text(SEED_ORDERS), params)
        await conn.execute(text(SEED_LEDGER), params)
    async with engine.connect() as conn:  # fresh statistics, as autovacuum would have after a day of inserts
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE partners, events, orders, ledger_entries"))


async def run(quick: bool, database_url: str) -> list[Result]:
    partners, events = (QUICK_PARTNERS, QUICK_EVENTS) if quick else (PARTNERS, EVENTS)
    scale = EVENTS / events
    clock = ManualClock(NOW)
    ctx = ServiceContext(clock=clock, translator=Translator.load("zh"), admin_ids=frozenset(), timezone=ZONE)
    engine = create_engine(database_url)
    sessionmaker = create_sessionmaker(engine)
    runtime = JobRuntime(
        settings=cast(Any, None),  # the job reads only the clock, the context and the database
        bot=cast(Any, None),
        sessionmaker=sessionmaker,
        clock=clock,
        ctx=ctx,
        sender=cast(Any, None),
        scheduler=cast(Any, None),
    )
    try:
        await upgrade_to_head(engine)
        started = time.perf_counter()
        await _seed(engine, partners, events)
        print(f"rollups: seeded {partners:,} partners and {events:,} events in {time.perf_counter() - started:.1f} s")
        today = NOW.astimezone(ZONE).date()
        start = datetime.combine(today - timedelta(days=1), datetime.min.time(), ZONE)
        end = datetime.combine(today + timedelta(days=1), datetime.min.time(), ZONE)

        started = time.perf_counter()
        async with engine.connect() as conn:
            await conn.execute(text(PLAIN_GROUPED), {"start": start, "end": end})
        baseline = time.perf_counter() - started

        started = time.perf_counter()
        with running_with(runtime):
            await refresh_rollups()
        daily = time.perf_counter() - started

        async with engine.connect() as conn:
            shares, _ = (await conn.execute(text(PLAIN_COUNTS), {"start": start, "end": end})).one()
            rolled = (
                await conn.execute(
                    select(func.sum(DailyRollup.shares)).where(DailyRollup.day >= today - timedelta(days=1))
                )
            ).scalar_one()
        correct = int(rolled or 0) == int(shares)

        rebuilt = QUICK_REBUILD_DAYS if quick else REBUILD_DAYS
        started = time.perf_counter()
        for offset in range(rebuilt):
            async with UnitOfWork(sessionmaker) as uow:
                await BehaviourService(uow, ctx).recompute(today - timedelta(days=offset))
        rebuild = time.perf_counter() - started
        print(
            f"rollups: the job (2 days) {daily:.1f} s, plain GROUP BY {baseline:.1f} s, {rebuilt}-day rebuild"
            f" {rebuild:.1f} s; shares {shares:,} counted, {int(rolled or 0):,} rolled up"
        )
    finally:
        await engine.dispose()

    label = f"{partners:,} partners, {events:,} events"
    if quick:
        label += f"; quick: x{scale:.0f} extrapolated to {EVENTS:,} events"
    achieved = daily * scale
    return [
        Result(
            scenario=f"daily rollup ({label})",
            metric="rollups:refresh, 2 days, s",
            target=f"<= {TARGET_SECONDS:.0f} s",
            achieved=achieved,
            baseline=baseline * scale,
            passed=achieved <= TARGET_SECONDS and correct,
            unit=" s",
        ),
        Result(
            scenario=f"rollup rebuild, {REBUILD_DAYS} days ({label}"
            + (f"; {rebuilt} days rebuilt, x{REBUILD_DAYS / rebuilt:.1f} extrapolated)" if quick else ")"),
            metric="run_bot.py rollups rebuild, s",
            target="(recorded)",
            achieved=rebuild * scale * REBUILD_DAYS / rebuilt,
            baseline=None,
            passed=correct,
            unit=" s",
        ),
    ]
