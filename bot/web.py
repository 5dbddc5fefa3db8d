"""The bot's own HTTP server: health now; links, APIs and the webhook mount here too."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]

HEALTH_KEY: web.AppKey[HealthCheck] = web.AppKey("health")


async def healthz(request: web.Request) -> web.Response:
    report = await request.app[HEALTH_KEY]()
    return web.json_response(report, status=200 if report["status"] == "ok" else 503)


def build_web_app(health: HealthCheck) -> web.Application:
    app = web.Application(client_max_size=1024**2)
    app[HEALTH_KEY] = health
    app.router.add_get("/healthz", healthz)
    return app
