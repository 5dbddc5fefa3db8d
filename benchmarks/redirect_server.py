"""The process measured by the redirect benchmark: the bot's own web app serving /r/<slug>, or the baseline.

`python -m benchmarks.redirect_server DATABASE_URL [--redis-url URL --redis-prefix P] [--trust-forwarded-for]
[--bare]` serves on a
free loopback port and prints its base URL once it is ready. The app is the production one: `build_web_app`
with a `ClickTracker` on the given (migrated, seeded) database, the access log off and the start-up heap
frozen as `BotApp.start()` does. `--bare` serves the baseline instead: a bare aiohttp app whose one handler
answers every /r/<slug> with a fixed 302 (that process imports none of the bot's modules). On SIGTERM it stops
serving, writes the buffered clicks and prints one JSON line: clicks not written, clicks refused by a full buffer,
CPU seconds used.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import secrets
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from aiohttp import web
from redis.asyncio import Redis

from storage.db import create_engine, create_sessionmaker

if TYPE_CHECKING:
    from bot.services.clicks import ClickDedupe, ClickTracker

FIXED_TARGET = "https://shop.example/p/1?ref=bench&utm_source=partner&utm_medium=telegram&utm_campaign=1"


async def _fixed_redirect(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": FIXED_TARGET})


def _bare_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/r/{slug:.*}", _fixed_redirect)
    return app


async def _health() -> dict[str, str]:
    return {"status": "ok"}


async def serve(
    database_url: str, *, bare: bool, redis_url: str | None, redis_prefix: str, trust_forwarded_for: bool
) -> dict[str, float]:
    engine = create_engine(database_url)
    redis = Redis.from_url(redis_url) if redis_url else None
    tracker: ClickTracker | None = None
    if bare:
        app = _bare_app()
    else:  # the bot's modules (aiogram among them) are imported by the bot's process only, not by the bare one
        from bot.clock import SystemClock
        from bot.i18n import Translator
        from bot.services.clicks import ClickTracker, MemoryClickDedupe
        from bot.services.context import ServiceContext
        from bot.web import build_web_app
        from storage.click_dedupe import RedisClickDedupe

        translator = Translator.load("en")
        ctx = ServiceContext(
            clock=SystemClock(),
            translator=translator,
            admin_ids=frozenset(),
            timezone=ZoneInfo("UTC"),
            link_salt=secrets.token_bytes(32),
        )
        dedupe: ClickDedupe = RedisClickDedupe(redis, prefix=redis_prefix) if redis else MemoryClickDedupe()
        tracker = ClickTracker(create_sessionmaker(engine), ctx, dedupe=dedupe)
        app = build_web_app(_health, tracker, translator=translator, trust_forwarded_for=trust_forwarded_for)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    if tracker is not None:
        tracker.start()
    gc.collect()
    gc.freeze()  # as BotApp.start() does

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    await stop.wait()

    await runner.cleanup()
    report = {"pending": 0.0, "dropped": 0.0, "cpu": time.process_time()}
    if tracker is not None:
        await tracker.stop()
        report.update(pending=float(tracker.pending), dropped=float(tracker.dropped))
    if redis is not None:
        await redis.aclose()
    await engine.dispose()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.redirect_server")
    parser.add_argument("database_url")
    parser.add_argument("--bare", action="store_true", help="serve the baseline: a fixed 302, nothing else")
    parser.add_argument("--redis-url", help="recognise repeat clicks through Redis instead of in memory")
    parser.add_argument("--redis-prefix", default="pa:bench:click")
    parser.add_argument("--trust-forwarded-for", action="store_true", help="as behind a reverse proxy")
    args = parser.parse_args()
    report = asyncio.run(
        serve(
            args.database_url,
            bare=args.bare,
            redis_url=args.redis_url,
            redis_prefix=args.redis_prefix,
            trust_forwarded_for=args.trust_forwarded_for,
        )
    )
    print(json.dumps(report), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
