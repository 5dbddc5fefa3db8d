"""Team digests for 1,000 team leads on PostgreSQL: `digests:send` building every lead's digest (the four metrics
against the day before, dormant members, overdue revisits, top performers, newcomers, the 14-day chart) and queueing
it. Target: <= 10 s.

Data: `LEADS` leads with `MEMBERS` members each (a two-level tree: the lead, then their recruits), 30 days of daily
rollups per member (about half the member-days active), so the digest reads what it reads in production: rollups,
never raw events.

Baseline, same run, same database: one plain GROUP BY per lead over its team's rollups for yesterday (the least
any digest must read), with no text and no chart.

Sizes: 1,000 leads (full); 100 with --quick, whose time is extrapolated linearly to 1,000 and labelled so. The
chart workers' start-up (processes spawned, matplotlib imported: a few seconds, paid once per bot process) is part of
the full run's time; the quick run starts them before timing the job and adds their start-up once, so a fixed cost
is not multiplied tenfold.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import text

from benchmarks.report import Result
from bot.clock import ManualClock
from bot.i18n import Translator
from bot.media.charts import Series, render_trend
from bot.scheduling import running_with
from bot.scheduling.jobs import send_team_digests
from bot.scheduling.runtime import JobRuntime
from bot.services.context import ServiceContext
from storage.db import create_engine, create_sessionmaker
from storage.migrate import upgrade_to_head

LEADS, QUICK_LEADS = 1_000, 100
MEMBERS = 20
TARGET_SECONDS = 10.0
ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai: every lead's digest (08:30) is due
FIRST_TG_ID = 700_000_000

SEED_LEADS = """
INSERT INTO partners (tg_user_id, first_name, invite_code, tree_path, depth, role, unreachable, level,
                      commission_eligible, joined_at, updated_at, weekly_digest)
SELECT CAST(:first_tg AS bigint) + g, 'Lead ' || g, 'dl' || g, '/', 0, 'lead', false, 'member', true,
       CAST(:now AS timestamptz) - interval '200 days', CAST(:now AS timestamptz), true
FROM generate_series(1, :leads) AS g
"""

FIX_LEAD_PATHS = "UPDATE partners SET tree_path = '/' || id || '/' WHERE tg_user_id > :first_tg AND role = 'lead'"

SEED_MEMBERS = """
INSERT INTO partners (tg_user_id, first_name, invite_code, upline_id, tree_path, depth, role, unreachable, level,
                      commission_eligible, joined_at, updated_at, weekly_digest)
SELECT CAST(:first_tg AS bigint) + CAST(:leads AS bigint) + l.id * 100 + m,
       'Member ' || l.id || '-' || m, 'dm' || l.id || '-' || m, l.id,
       l.tree_path, 1, 'partner', false, 'member', true,
       CAST(:now AS timestamptz) - (m || ' days')::interval, CAST(:now AS timestamptz), true
FROM partners AS l CROSS JOIN generate_series(1, :members) AS m
WHERE l.tg_user_id > :first_tg AND l.role = 'lead'
"""

FIX_MEMBER_PATHS = "UPDATE partners SET tree_path = tree_path || id || '/' WHERE tg_user_id > :first_tg AND depth = 1"

SEED_ROLLUPS = """
INSERT INTO daily_rollups (partner_id, day, content_sent, shares, clicks, leads, followups, revisits, leads_due,
                           quotes, orders, gmv_minor, commission_minor, actions)
SELECT p.id, d::date, 2, s, floor(random() * 5)::int, floor(random() * 2)::int, f, 0, floor(random() * 2)::int,
       0, o, o * 9900, o * 990, s + f + o
FROM partners AS p
CROSS JOIN generate_series(CAST(:today AS date) - 29, CAST(:today AS date), interval '1 day') AS d
CROSS JOIN LATERAL (SELECT floor(random() * 4 + p.id * 0)::int AS s, floor(random() * 2)::int AS f,
                           CASE WHEN random() < 0.05 THEN 1 ELSE 0 END AS o) AS x
WHERE p.tg_user_id > :first_tg AND p.depth = 1 AND random() < 0.5
"""

PLAIN = """
SELECT sum(r.shares), count(DISTINCT r.partner_id) FROM daily_rollups AS r JOIN partners AS p ON p.id = r.partner_id
WHERE r.day = :day AND p.tree_path LIKE :path
"""


async def _start_chart_workers() -> float:
    """Seconds to start the chart worker processes: a few charts at once, so every worker is spawned and draws one
    (the first chart in a process imports matplotlib)."""
    days = [NOW.date() - timedelta(days=13 - i) for i in range(14)]
    series = [Series("warm-up", tuple(range(14)))]
    started = time.perf_counter()
    await asyncio.gather(*(render_trend("warm-up", days, series) for _ in range(2 * (os.cpu_count() or 1))))
    return time.perf_counter() - started


class _NoSender:
    """The job wakes the outbox sender when it queued something; nothing sends here."""

    def wake(self) -> None:
        return None


async def run(quick: bool, database_url: str) -> list[Result]:
    leads = QUICK_LEADS if quick else LEADS
    scale = LEADS / leads
    clock = ManualClock(NOW)
    media = Path(tempfile.mkdtemp(prefix="pa-bench-digests-"))  # the charts queued as pictures are written here
    ctx = ServiceContext(
        clock=clock, translator=Translator.load("zh"), admin_ids=frozenset(), timezone=ZONE, media_dir=media
    )
    engine = create_engine(database_url)
    sessionmaker = create_sessionmaker(engine)
    sender = _NoSender()
    runtime = JobRuntime(
        settings=cast(Any, None),  # the job reads the clock, the context, the database and wakes the sender
        bot=cast(Any, None),
        sessionmaker=sessionmaker,
        clock=clock,
        ctx=ctx,
        sender=cast(Any, sender),
        scheduler=cast(Any, None),
    )
    today = NOW.astimezone(ZONE).date()
    try:
        await upgrade_to_head(engine)
        params = {"now": NOW, "first_tg": FIRST_TG_ID, "leads": leads, "members": MEMBERS, "today": today}
        async with engine.begin() as conn:
            await conn.execute(text("SELECT setseed(0.20261126)"))
            for statement in (SEED_LEADS, FIX_LEAD_PATHS, SEED_MEMBERS, FIX_MEMBER_PATHS, SEED_ROLLUPS):
                await conn.execute(text(statement), params)
            paths = [
                str(p) for p in (await conn.execute(text("SELECT tree_path FROM partners WHERE depth = 0"))).scalars()
            ]
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE partners, daily_rollups"))

        started = time.perf_counter()
        async with engine.connect() as conn:
            for path in paths:
                await conn.execute(text(PLAIN), {"day": today - timedelta(days=1), "path": f"{path}%"})
        baseline = time.perf_counter() - started

        workers = await _start_chart_workers() if quick else 0.0
        started = time.perf_counter()
        with running_with(runtime):
            await send_team_digests()
        elapsed = time.perf_counter() - started
        async with engine.connect() as conn:
            queued = (
                await conn.execute(
                    text("SELECT count(*) FROM outbox WHERE dedupe_key LIKE :charts"), {"charts": "digest:lead:%:chart"}
                )
            ).scalar_one()
            logged = (await conn.execute(text("SELECT count(*) FROM digests_sent"))).scalar_one()
        print(
            f"digests: {leads:,} leads x {MEMBERS} members: {elapsed:.1f} s, {queued:,} charts queued,"
            f" baseline {baseline:.2f} s" + (f", chart workers started in {workers:.1f} s before" if quick else "")
        )
    finally:
        await engine.dispose()
        shutil.rmtree(media, ignore_errors=True)

    label = f"{leads:,} leads x {MEMBERS} members"
    if quick:
        label += (
            f"; quick: x{scale:.0f} extrapolated to {LEADS:,} leads, chart workers' start-up ({workers:.1f} s) once"
        )
    achieved = workers + elapsed * scale
    correct = queued == logged == leads
    return [
        Result(
            scenario=f"team digests ({label})",
            metric="digests:send, s",
            target=f"<= {TARGET_SECONDS:.0f} s",
            achieved=achieved,
            baseline=baseline * scale,
            passed=achieved <= TARGET_SECONDS and correct,
            unit=" s",
        )
    ]
