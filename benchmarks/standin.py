"""A minimal Bot API stand-in for delivery benchmarks: answers every send instantly and notes when it arrived.

It runs in its own process (`python -m benchmarks.standin`, first line printed is the base URL) so its CPU is
not counted as the sender's. The full emulator (bot.sandbox.emulator) parses HTML, keeps chats and needs every
recipient to exist, which makes it, not the sender, the bottleneck at paid-broadcast speeds.

A whole bot process can run against it too (benchmarks/memory.py): `getUpdates` waits (1 s at most) and finds nothing,
`set…`/`delete…` methods (menus, webhook) answer true, and neither counts as an arrival.

`GET /_count` says how many sends arrived (cheap, for polling); `GET /_stats` also reports the first and last
arrival, the most that arrived within any one second and the longest gaps; `POST /_reset` forgets them.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import itertools
import json
import signal
import time
from typing import Any

from aiohttp import web

_BOT = {"id": 123456, "is_bot": True, "first_name": "Bench", "username": "bench_bot"}


class StandIn:
    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.paid_flags = 0
        self._message_id = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._method)
        app.router.add_get("/_count", self._count)
        app.router.add_get("/_stats", self._stats)
        app.router.add_post("/_reset", self._reset)
        return app

    async def _method(self, request: web.Request) -> web.Response:
        method = request.match_info["method"].lower()
        if method == "getme":
            return _ok(_BOT)
        values: dict[str, Any] = {}
        if request.content_type == "application/json":
            values = await request.json()
        elif request.can_read_body:
            values = dict(await request.post())
        if method == "getupdates":  # a whole bot process polls too (benchmarks/memory.py): nobody ever writes
            # Held for at most a second: a bot stopping waits for its poll in flight to end.
            await asyncio.sleep(min(float(values.get("timeout") or 0), 1.0))
            return _ok([])
        if method.startswith(("set", "delete")):  # the bot's start-up: menus, webhook removal
            return _ok(True)
        self.arrivals.append(time.time())
        if str(values.get("allow_paid_broadcast", "")).lower() == "true":
            self.paid_flags += 1
        self._message_id += 1
        chat_id = int(values.get("chat_id", 0))
        return _ok(
            {"message_id": self._message_id, "date": int(time.time()), "chat": {"id": chat_id, "type": "private"}}
        )

    async def _count(self, request: web.Request) -> web.Response:
        """Cheap enough to poll while a broadcast runs (`/_stats` walks every arrival)."""
        return web.json_response({"count": len(self.arrivals)})

    async def _stats(self, request: web.Request) -> web.Response:
        times = self.arrivals
        peak = max((bisect.bisect_left(times, t + 1.0, lo=i) - i for i, t in enumerate(times)), default=0)
        gaps = sorted((b - a for a, b in itertools.pairwise(times)), reverse=True)[:5]
        return web.json_response(
            {
                "count": len(times),
                "first": times[0] if times else None,
                "last": times[-1] if times else None,
                "peak_per_second": peak,
                "paid_flags": self.paid_flags,
                "largest_gaps_ms": [round(gap * 1000, 1) for gap in gaps],
            }
        )

    async def _reset(self, request: web.Request) -> web.Response:
        self.arrivals.clear()
        self.paid_flags = 0
        return web.json_response({"ok": True})


def _ok(result: Any) -> web.Response:
    return web.Response(text=json.dumps({"ok": True, "result": result}), content_type="application/json")


async def _serve(host: str, port: int) -> None:
    runner = web.AppRunner(StandIn().app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    print(f"http://{bound_host}:{bound_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks.standin")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(_serve(args.host, args.port))
