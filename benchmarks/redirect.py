"""Tracked links: GET /r/<slug> requests per second on one bot process, measured with wrk on loopback.

The server is benchmarks/redirect_server.py in its own process (the one process measured): the production
web app with a real `ClickTracker` on a migrated database seeded with 1,000 partners' links. wrk (`-t2 -c64`,
10 s; 2 s with --quick, named in its rows; each after a 1 s warm-up) runs a Lua script that rotates through every
slug and a few common browser User-Agents, each request from its own address in X-Forwarded-For (the server
trusts it, as behind a reverse proxy), so nearly every click is a new visitor: counted, buffered and written (events and
click counters) in batches while the load runs. wrk does not follow redirects, so each request is one 302
from the bot.

Baseline, same run and same wrk script: a bare aiohttp app in the same kind of process whose one handler
returns a fixed 302. With Redis up, the bot is measured a second time with repeat clicks recognised through
Redis (one `SET NX PX` per click), as a fleet of processes would run. After each run the server writes its
buffer and exits; every answered click must then be in the database.

wrk comes from the Debian package; when it is missing the run installs it with apt-get (as root; a second or two
once `make install` has fetched the package lists), and a run that cannot install it reports one failing row that
says it did not measure. The quick run measures 1 s windows after a 1 s warm-up (10 s otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.report import Result, reachable
from storage.db import create_engine, create_sessionmaker
from storage.migrate import upgrade_to_head
from storage.models import ContentItem, Event, Partner, TrackedLink
from storage.uow import UnitOfWork

TARGET_RPS = 1500.0
LINKS = 1000
THREADS, CONNECTIONS = 2, 64
REDIS_URL = "redis://127.0.0.1:6379/15"
BROWSERS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile "
    "Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Mobile "
    "Safari/537.36 MicroMessenger/8.0.47",
)

_LUA = """
local slugs = {%(slugs)s}
local agents = {%(agents)s}
local counter = 1
local n = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
function request()
  n = n + 1
  local ip = "10." .. tid .. "." .. math.floor(n / 256) %% 256 .. "." .. n %% 256
  local headers = {["User-Agent"] = agents[(n %% #agents) + 1], ["X-Forwarded-For"] = ip}
  return wrk.format("GET", "/r/" .. slugs[(n %% #slugs) + 1], headers)
end
"""


@dataclass(frozen=True, slots=True)
class WrkRun:
    requests: int
    rps: float
    non_3xx: int
    socket_errors: int
    p99_ms: float


def _ensure_wrk() -> str | None:
    """The wrk binary, installing the Debian package when it is missing (needs root and the apt mirror)."""
    found = shutil.which("wrk")
    if found:
        return found
    if not shutil.which("apt-get"):
        print("wrk is missing (apt-get install -y wrk): redirects not measured", file=sys.stderr)
        return None
    print("wrk is missing: apt-get install -y wrk", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True, timeout=600, env=env)
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"could not install wrk: {exc}", file=sys.stderr)
        return None
    return shutil.which("wrk")


def _slug(i: int) -> str:
    return f"Bench{i:05d}"


async def _seed(engine: AsyncEngine, links: int) -> list[str]:
    """`links` partners, each with a tracked link to one content item; returns the slugs."""
    now = datetime.now(UTC)
    tag = uuid.uuid4().hex[:6]
    first_user = 800_000_000 + secrets.randbelow(100_000) * links  # a second run on the same database is fine
    async with UnitOfWork(create_sessionmaker(engine)) as uow:
        item = ContentItem(
            title="Bench item",
            text="Bench {link}",
            url="https://shop.example/p/1?color=red",
            created_at=now,
            updated_at=now,
        )
        uow.session.add(item)
        await uow.flush()
        partners = [
            {
                "tg_user_id": first_user + i,
                "first_name": f"Bench {i}",
                "invite_code": f"rb{tag}{i}",
                "tree_path": "/",
                "role": "partner",
                "depth": 0,
                "unreachable": False,
                "level": "member",
                "joined_at": now,
                "updated_at": now,
            }
            for i in range(links)
        ]
        await uow.session.execute(insert(Partner), partners)
        codes = [p["invite_code"] for p in partners]
        ids = (await uow.session.execute(select(Partner.id).where(Partner.invite_code.in_(codes)))).scalars().all()
        slugs = [f"{_slug(i)}{tag}" for i in range(len(ids))]
        await uow.session.execute(
            insert(TrackedLink),
            [
                {
                    "slug": slug,
                    "partner_id": pid,
                    "content_id": item.id,
                    "product_id": None,
                    "clicks": 0,
                    "created_at": now,
                }
                for slug, pid in zip(slugs, ids, strict=True)
            ],
        )
    return slugs


def _script(slugs: list[str], directory: Path) -> Path:
    path = directory / "redirect.lua"
    quoted = {"slugs": ", ".join(f'"{s}"' for s in slugs), "agents": ", ".join(f'"{a}"' for a in BROWSERS)}
    path.write_text(_LUA % quoted, encoding="utf-8")
    return path


def _number(pattern: str, text: str, default: float = 0.0) -> float:
    found = re.search(pattern, text)
    return float(found.group(1)) if found else default


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


async def _wrk(wrk: str, base: str, script: Path, seconds: int) -> WrkRun:
    process = await asyncio.create_subprocess_exec(
        wrk,
        f"-t{THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        base,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out = (await process.communicate())[0].decode()
    if process.returncode != 0 or "Requests/sec" not in out:
        raise RuntimeError(f"wrk failed:\n{out}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    return WrkRun(
        requests=int(_number(r"(\d+) requests in", out)),
        rps=_number(r"Requests/sec:\s+([\d.]+)", out),
        non_3xx=int(_number(r"Non-2xx or 3xx responses: (\d+)", out)),
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
        p99_ms=_ms(*p99.groups()) if p99 else 0.0,
    )


@contextlib.asynccontextmanager
async def _server(*args: str) -> AsyncIterator[tuple[str, dict[str, float]]]:
    """The server process; yields its base URL and, once the block ends, fills in its final report."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.redirect_server", *args, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    base = (await process.stdout.readline()).decode().strip()
    report: dict[str, float] = {}
    try:
        if not base.startswith("http"):
            raise RuntimeError("the redirect server did not start")
        yield base, report
    finally:
        if process.returncode is None:
            process.terminate()
        out = (await process.communicate())[0].decode().strip().splitlines()
        if out:
            report.update(json.loads(out[-1]))


@dataclass(frozen=True, slots=True)
class Measured:
    run: WrkRun
    answered: int
    """Requests wrk saw answered, warm-up included."""
    report: dict[str, float]


async def _measure(wrk: str, script: Path, seconds: int, *server_args: str) -> Measured:
    async with _server(*server_args) as (base, report):
        warm_up = await _wrk(wrk, base, script, 1)
        run = await _wrk(wrk, base, script, seconds)
    return Measured(run, warm_up.requests + run.requests, report)


async def _written(engine: AsyncEngine) -> tuple[int, int, int]:
    """(link_clicked events, counted ones, sum of the links' click counters)."""
    async with UnitOfWork(create_sessionmaker(engine)) as uow:
        events = await uow.events.count(type="link_clicked")
        counted = sum(
            1
            for payload in (await uow.session.execute(select(Event.payload).where(Event.type == "link_clicked")))
            .scalars()
            .all()
            if payload.get("counted")
        )
        clicks = int((await uow.session.execute(select(func.coalesce(func.sum(TrackedLink.clicks), 0)))).scalar_one())
    return events, counted, clicks


async def _clear_redis(prefix: str) -> None:
    redis = Redis.from_url(REDIS_URL)
    try:
        batch: list[bytes] = []
        async for key in redis.scan_iter(f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await redis.delete(*batch)
                batch.clear()
        if batch:
            await redis.delete(*batch)
    finally:
        await redis.aclose()


def _throughput(name: str, measured: Measured, baseline: float) -> Result:
    run = measured.run
    clean = run.non_3xx == 0 and run.socket_errors == 0
    return Result(
        name,
        f"req/s vs bare aiohttp 302 (p99 {run.p99_ms:.1f} ms)",
        f">= {TARGET_RPS:,.0f}/s",
        run.rps,
        baseline,
        run.rps >= TARGET_RPS and clean,
        "/s",
    )


async def run(*, quick: bool, database_url: str) -> list[Result]:
    backend = "postgres" if database_url.startswith("postgresql") else "sqlite"
    wrk = _ensure_wrk()
    if wrk is None:
        return [
            Result(
                f"redirect /r/<slug> ({backend})",
                "req/s: not measured, wrk missing (apt-get install -y wrk)",
                f">= {TARGET_RPS:,.0f}/s",
                0.0,
                None,
                False,
            )
        ]
    seconds = 1 if quick else 10
    window = f", wrk {seconds} s; quick" if quick else ""
    engine = create_engine(database_url)
    results: list[Result] = []
    try:
        await upgrade_to_head(engine)
        slugs = await _seed(engine, LINKS)
        before = await _written(engine)
        with tempfile.TemporaryDirectory(prefix="pa-redirect-") as tmp:
            script = _script(slugs, Path(tmp))
            baseline = await _measure(wrk, script, seconds, database_url, "--bare")
            bot = await _measure(wrk, script, seconds, database_url, "--trust-forwarded-for")
            results.append(
                _throughput(
                    f"redirect /r/<slug>, {LINKS:,} links, memory dedupe ({backend}{window})", bot, baseline.run.rps
                )
            )
            answered = bot.answered
            dropped = bot.report.get("dropped", 0.0) + bot.report.get("pending", 0.0)
            if reachable(6379):
                prefix = f"pa:bench:click:{uuid.uuid4().hex[:8]}"
                try:
                    shared = await _measure(
                        wrk,
                        script,
                        seconds,
                        database_url,
                        "--trust-forwarded-for",
                        "--redis-url",
                        REDIS_URL,
                        "--redis-prefix",
                        prefix,
                    )
                finally:
                    await _clear_redis(prefix)
                results.append(
                    _throughput(f"redirect /r/<slug>, dedupe in Redis ({backend}{window})", shared, baseline.run.rps)
                )
                answered += shared.answered
                dropped += shared.report.get("dropped", 0.0) + shared.report.get("pending", 0.0)
        events, counted, clicks = (now - then for now, then in zip(await _written(engine), before, strict=True))
        results.append(
            Result(
                f"redirect clicks written ({backend})",
                "link_clicked events vs 302s answered",
                "every answered click written; counters = counted",
                float(events),
                float(answered),
                events >= answered and dropped == 0 and clicks == counted,
            )
        )
    finally:
        await engine.dispose()
    return results
