"""The daily segment computation (tiered operations, `segments:daily`) for 100,000 partners on PostgreSQL.

Data: `PARTNERS` partners with about 14 events each over the last 30 days (1.4 million in all), unevenly spread
as in a real network: every 10th partner is very active (30-90 events), three in ten are steady (10-30), the rest
occasional (0-5). Types: half shares, the rest clicks, follow-ups and prospects; one partner in twenty has 1-3
settled orders. The run is `bot.scheduling.jobs.segment_all`, exactly what the job runs: batches of
`SEGMENT_BATCH` partners, each a transaction with its bulk metric reads, segment changes and events.

Measured (target <= 60 s each):
- the first run, when every partner is new (a rhythm row, a `segment_changed` event and a segment for each);
- the next day's run (a few partners change).

Checked after each run: every partner's segment is what `playbooks.rhythm.segment_for` gives on metrics read with
one plain SQL query, and the first run recorded one event per partner.

Baseline, same run, same database: that plain query alone, a single GROUP BY over the events (and one over the
orders) computing the four metrics the segments' conditions use, for every partner at once.

Sizes: 100,000 partners (full); 5,000 with --quick, whose times are extrapolated linearly to 100,000 and labelled so.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.report import Result
from bot.clock import ManualClock
from bot.domain.events import EventType
from bot.i18n import Translator
from bot.scheduling.jobs import segment_all
from bot.scheduling.runtime import JobRuntime
from bot.services.context import ServiceContext
from bot.services.rhythm import TIERED, load_rhythms
from playbooks.rhythm import segment_for
from storage.db import create_engine, create_sessionmaker
from storage.migrate import upgrade_to_head
from storage.models import Event, Partner

PARTNERS = 100_000
QUICK_PARTNERS = 5_000
TARGET_SECONDS = 60.0
NOW = datetime(2026, 11, 26, 18, 30, tzinfo=UTC)  # 02:30 in Asia/Shanghai, when the job runs
FIRST_TG_ID = 900_000_000

SEED_PARTNERS = """
INSERT INTO partners (tg_user_id, first_name, invite_code, tree_path, depth, role, unreachable, level,
                      commission_eligible, joined_at, updated_at)
SELECT :first_tg + g, 'Seg ' || g, 'seg' || g, '/', 0, 'partner', false, 'member', true,
       CAST(:now AS timestamptz) - interval '90 days', CAST(:now AS timestamptz)
FROM generate_series(1, :n) AS g
"""

SEED_EVENTS = """
INSERT INTO events (partner_id, type, payload, occurred_at, source)
SELECT p.id,
       (ARRAY['shared', 'shared', 'shared', 'shared', 'shared', 'link_clicked', 'link_clicked',
              'followed_up', 'followed_up', 'lead_added'])[1 + floor(random() * 10)::int],
       '{}',
       CAST(:now AS timestamptz) - random() * interval '30 days',
       'bot'
FROM partners AS p
CROSS JOIN LATERAL generate_series(
    1,
    CASE WHEN p.id % 10 = 0 THEN 30 + floor(random() * 61)::int
         WHEN p.id % 10 < 4 THEN 10 + floor(random() * 21)::int
         ELSE floor(random() * 6)::int END
) AS g
WHERE p.tg_user_id > :first_tg
"""

SEED_ORDERS = """
INSERT INTO orders (source, external_id, fingerprint, customer_id, partner_id, attribution, currency, amount_minor,
                    refunded_minor, items, paid_at, status, created_at)
SELECT 'bench', 'seg-' || p.id || '-' || g, 'x', 'c' || p.id, p.id, 'partner_code', 'CNY', 9900, 0, '[]',
       CAST(:now AS timestamptz) - random() * interval '40 days', 'settled', CAST(:now AS timestamptz)
FROM partners AS p
CROSS JOIN LATERAL generate_series(1, 1 + floor(random() * 3)::int) AS g
WHERE p.tg_user_id > :first_tg AND p.id % 20 = 7
"""

# The baseline and the check: the four metrics of the segments' conditions for every partner, in plain SQL.
PLAIN_METRICS = """
WITH e AS (
    SELECT partner_id,
           count(*) FILTER (WHERE type = 'shared' AND occurred_at >= :d7) AS shares_7d,
           count(*) FILTER (WHERE type = 'followed_up' AND occurred_at >= :d7) AS followups_7d,
           count(*) FILTER (WHERE type = 'shared') AS shares_30d
    FROM events
    WHERE occurred_at >= :d30 AND type IN ('shared', 'followed_up')
    GROUP BY partner_id
), o AS (
    SELECT partner_id, count(*) AS sales_30d
    FROM orders
    WHERE status = 'settled' AND paid_at >= :d30
    GROUP BY partner_id
)
SELECT p.id, p.segment, coalesce(e.shares_7d, 0), coalesce(e.followups_7d, 0), coalesce(e.shares_30d, 0),
       coalesce(o.sales_30d, 0)
FROM partners AS p LEFT JOIN e ON e.partner_id = p.id LEFT JOIN o ON o.partner_id = p.id
"""


async def _seed(engine: AsyncEngine, partners: int) -> int:
    async with engine.begin() as conn:
        await conn.execute(text("SELECT setseed(0.20261126)"))
        params = {"now": NOW, "first_tg": FIRST_TG_ID, "n": partners}
        await conn.execute(text(SEED_PARTNERS), params)
        events = (await conn.execute(text(SEED_EVENTS), params)).rowcount
        await conn.execute(text(SEED_ORDERS), params)
    async with engine.connect() as conn:  # fresh statistics, as autovacuum would have after a day of inserts
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("ANALYZE partners, events, orders"))
    return int(events)


async def _plain(engine: AsyncEngine, now: datetime) -> tuple[float, list[Any]]:
    started = time.perf_counter()
    async with engine.connect() as conn:
        params = {"d7": now - timedelta(days=7), "d30": now - timedelta(days=30)}
        rows = list((await conn.execute(text(PLAIN_METRICS), params)).all())
    return time.perf_counter() - started, rows


def _mismatches(ctx: ServiceContext, rows: list[Any]) -> int:
    rhythm = ctx.rhythms[TIERED]
    wrong = 0
    for _, segment, shares_7d, followups_7d, shares_30d, sales_30d in rows:
        metrics = {"shares_7d": shares_7d, "followups_7d": followups_7d, "shares_30d": shares_30d}
        expected = segment_for(rhythm, metrics | {"sales_30d": sales_30d}).key
        wrong += expected != segment
    return wrong


async def _timed_run(runtime: JobRuntime) -> tuple[float, int, int]:
    started = time.perf_counter()
    seen, changed = await segment_all(runtime)
    return time.perf_counter() - started, seen, changed


async def run(quick: bool, database_url: str) -> list[Result]:
    partners = QUICK_PARTNERS if quick else PARTNERS
    scale = PARTNERS / partners
    clock = ManualClock(NOW)
    ctx = ServiceContext(
        clock=clock,
        translator=Translator.load("zh"),
        admin_ids=frozenset(),
        timezone=ZoneInfo("Asia/Shanghai"),
        rhythms=load_rhythms(),
    )
    engine = create_engine(database_url)
    runtime = JobRuntime(
        settings=cast(Any, None),  # segment_all reads neither settings, the bot, the sender nor the scheduler
        bot=cast(Any, None),
        sessionmaker=create_sessionmaker(engine),
        clock=clock,
        ctx=ctx,
        sender=cast(Any, None),
        scheduler=cast(Any, None),
    )
    try:
        await upgrade_to_head(engine)
        started = time.perf_counter()
        events = await _seed(engine, partners)
        print(f"segments: seeded {partners:,} partners and {events:,} events in {time.perf_counter() - started:.1f} s")

        baseline, _ = await _plain(engine, NOW)
        first, seen, changed = await _timed_run(runtime)
        _, rows = await _plain(engine, NOW)
        wrong_first = _mismatches(ctx, rows)
        async with engine.connect() as conn:
            recorded = (
                await conn.execute(
                    select(func.count()).select_from(Event).where(Event.type == EventType.SEGMENT_CHANGED)
                )
            ).scalar_one()
            total = (await conn.execute(select(func.count()).select_from(Partner))).scalar_one()
        mix = Counter(str(row[1]) for row in rows)
        print(f"segments: first run {first:.1f} s for {seen:,} partners, mix {dict(mix)}")

        clock.advance(timedelta(days=1))
        next_baseline, _ = await _plain(engine, clock.now())
        daily, seen_daily, changed_daily = await _timed_run(runtime)
        _, rows = await _plain(engine, clock.now())
        wrong_daily = _mismatches(ctx, rows)
    finally:
        await engine.dispose()

    correct_first = wrong_first == 0 and recorded == changed == seen == total
    label = f"{partners:,} partners, {events:,} events"
    if quick:
        label += f"; quick: times x{scale:.0f} extrapolated to {PARTNERS:,}"
    return [
        Result(
            f"daily segments, first run ({label})",
            f"s for every partner new (segment, rhythm row, event each; {wrong_first} wrong) vs one plain GROUP BY",
            f"<= {TARGET_SECONDS:.0f} s",
            first * scale,
            baseline * scale,
            first * scale <= TARGET_SECONDS and correct_first,
            " s",
        ),
        Result(
            f"daily segments, next day ({label})",
            f"s, {changed_daily:,} changed segment ({wrong_daily} wrong) vs one plain GROUP BY",
            f"<= {TARGET_SECONDS:.0f} s",
            daily * scale,
            next_baseline * scale,
            daily * scale <= TARGET_SECONDS and wrong_daily == 0 and seen_daily == total,
            " s",
        ),
    ]
