"""Leaderboards: a partner's own rank and value on a board of 1,000,000 partners.

The board is loaded straight into storage (COPY into `leaderboard_scores` and its per-score counts into
`leaderboard_counts`, as the sync keeps them; pipelined ZADDs into the sorted set),
scores drawn from a long-tailed distribution like weekly points (most partners have a few, a few have
thousands; many ties). Then "own rank + value" (rank = 1 + the higher scores, the lowest higher score and its
rank: what /rank's last line needs) is read for random partners, one at a time, through the real backends:

- Redis: `RedisBoards.standing` (one Lua script call: ZSCORE, ZCOUNT, ZRANGEBYSCORE, ZCOUNT). Target p99 ≤ 2 ms.
  Baseline, same run: a bare ZSCORE round trip. It passes only if 200 random partners' standings from Redis
  equal the SQL ones.
- SQL fallback on PostgreSQL: `SqlBoards.standing` (one statement: the partner's row by primary key, and sums
  over the board's distinct scores above it) through the app's session machinery. Target p99 ≤ 50 ms.
  Baseline: `SELECT 1` through the same session.

Sizes (quick / full): 100,000 / 1,000,000 partners (the quick run's label says so); 500 / 3,000 reads.
"""

from __future__ import annotations

import gc
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from zoneinfo import ZoneInfo

import asyncpg
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from benchmarks.report import Result, reachable
from storage.db import create_engine, create_sessionmaker
from storage.leaderboards import PREFIX, RedisBoards, SqlBoards, member
from storage.migrate import upgrade_to_head
from storage.repositories.leaderboards import LeaderboardRepository

TARGET_REDIS_MS = 2.0
TARGET_SQL_MS = 50.0
REDIS_DB = 12
PIPELINE = 10_000


def _scores(count: int, seed: int = 7) -> list[int]:
    rng = random.Random(seed)
    return [int(rng.paretovariate(1.2) * 3) if rng.random() < 0.9 else rng.randint(1, 5000) for _ in range(count)]


def _p99(samples: list[float]) -> float:
    return _quantile(samples, 0.99)


def _quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _metric(measured: list[float], baseline: list[float]) -> str:
    """p99 is the target; the medians show what a read costs when the machine is not busy with anything else."""
    return f"p99 latency (p50 {_quantile(measured, 0.5):.2f} ms; baseline p50 {_quantile(baseline, 0.5):.2f} ms)"


async def _timed(reads: int, partners: int, call: Callable[[int], Awaitable[object]]) -> list[float]:
    rng = random.Random(11)
    for _ in range(50):  # warm-up: connections, prepared statements, the script's SHA
        await call(rng.randint(1, partners))
    gc.collect()  # the loading's garbage goes now, not as a pause in the middle of the reads
    samples: list[float] = []
    for _ in range(reads):
        partner = rng.randint(1, partners)
        started = time.perf_counter()
        await call(partner)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def _load_sql(database_url: str, board: str, scores: list[int]) -> None:
    """COPY the board and its per-score counts, then VACUUM ANALYZE (statistics and the visibility map)."""
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.copy_records_to_table(
            "leaderboard_scores",
            records=((board, pid, score) for pid, score in enumerate(scores, start=1) if score > 0),
            columns=["board", "partner_id", "score"],
        )
        await conn.execute(
            "INSERT INTO leaderboard_counts (board, score, n) SELECT board, score, count(*) FROM leaderboard_scores"
            " WHERE board = $1 GROUP BY board, score",
            board,
        )
        await conn.execute("VACUUM ANALYZE leaderboard_scores")
        await conn.execute("VACUUM ANALYZE leaderboard_counts")
    finally:
        await conn.close()


async def _redis_result(session: AsyncSession, board: str, scores: list[int], reads: int, size: str) -> Result:
    partners = len(scores)
    redis = Redis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB}")
    key = PREFIX + board
    try:
        pairs = [(member(pid), s) for pid, s in enumerate(scores, start=1) if s > 0]
        for start in range(0, len(pairs), PIPELINE):
            async with redis.pipeline(transaction=False) as pipe:
                pipe.zadd(key, dict(pairs[start : start + PIPELINE]))
                await pipe.execute()
        del pairs
        await redis.expire(key, 3600)
        boards = RedisBoards(redis, LeaderboardRepository(session), ZoneInfo("Asia/Shanghai"))
        sql = SqlBoards(LeaderboardRepository(session))
        timings = await _timed(reads, partners, lambda p: boards.standing(board, p))
        bare = await _timed(reads, partners, lambda p: redis.zscore(key, member(p)))
        sample = random.Random(3).sample(range(1, partners + 1), 200)
        same = [await boards.standing(board, p) == await sql.standing(board, p) for p in sample]
        return Result(
            f"leaderboard own rank, Redis ({size})",
            _metric(timings, bare),
            f"<= {TARGET_REDIS_MS:g} ms",
            _p99(timings),
            _p99(bare),
            _p99(timings) <= TARGET_REDIS_MS and all(same),
            " ms",
        )
    finally:
        await redis.delete(key)
        await redis.aclose()


async def run(*, quick: bool, database_url: str) -> list[Result]:
    partners = 100_000 if quick else 1_000_000
    reads = 500 if quick else 3_000
    size = f"{partners:,} partners, {reads:,} reads" + (" (quick)" if quick else "")
    board = f"points:w:bench-{uuid.uuid4().hex[:8]}"
    scores = _scores(partners)
    results: list[Result] = []
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine)
        await _load_sql(database_url, board, scores)
        async with create_sessionmaker(engine)() as session:
            sql = SqlBoards(LeaderboardRepository(session))
            timings = await _timed(reads, partners, lambda p: sql.standing(board, p))
            bare = await _timed(reads, partners, lambda _: session.execute(text("SELECT 1")))
            results.append(
                Result(
                    f"leaderboard own rank, SQL fallback (PostgreSQL, {size})",
                    _metric(timings, bare),
                    f"<= {TARGET_SQL_MS:g} ms",
                    _p99(timings),
                    _p99(bare),
                    _p99(timings) <= TARGET_SQL_MS,
                    " ms",
                )
            )
            if reachable(6379):
                results.append(await _redis_result(session, board, scores, reads, size))
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM leaderboard_scores WHERE board = :b"), {"b": board})
            await conn.execute(text("DELETE FROM leaderboard_counts WHERE board = :b"), {"b": board})
    finally:
        await engine.dispose()
    return results
