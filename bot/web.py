"""The bot's own HTTP server: health now; links, APIs and the webhook mount here too."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.i18n import SUPPORTED, Translator
from bot.services.clicks import ClickTracker, LinkLookupError

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]

HEALTH_KEY: web.AppKey[HealthCheck] = web.AppKey("health")
CLICKS_KEY: web.AppKey[ClickTracker] = web.AppKey("clicks")
PAGES_KEY: web.AppKey[dict[tuple[str, str], bytes]] = web.AppKey("pages")
TRUST_FORWARDED_KEY: web.AppKey[bool] = web.AppKey("trust_forwarded_for")

_PAGE = (
    '<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title></head>'
    '<body style="font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#333">'
    "<h1>{title}</h1><p>{body}</p></body></html>"
)
_PAGE_STATUS = {"not_found": 404, "unavailable": 503}


async def healthz(request: web.Request) -> web.Response:
    report = await request.app[HEALTH_KEY]()
    return web.json_response(report, status=200 if report["status"] == "ok" else 503)


def preferred_language(accept_language: str | None) -> str:
    """zh when the browser prefers Chinese to English (by q-value, then order), else en."""
    best, best_q = "en", 0.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-", 1)[0]
        if lang not in SUPPORTED:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > best_q:
            best, best_q = lang, q
    return best


def client_ip(request: web.Request, trust_forwarded_for: bool) -> str:
    """The visitor's address. Behind one trusted proxy (TRUST_FORWARDED_FOR) it is the last address in
    X-Forwarded-For, the one the proxy appended; the earlier ones are whatever the client claimed."""
    if trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last
    return request.remote or ""


def _render_pages(translator: Translator) -> dict[tuple[str, str], bytes]:
    """Every error page in every language, rendered once. They never include the requested slug."""
    pages: dict[tuple[str, str], bytes] = {}
    for lang in SUPPORTED:
        t = translator.texts(lang)
        for page in _PAGE_STATUS:
            title = html.escape(t(f"web.{page}.title"))
            body = html.escape(t(f"web.{page}.body"))
            pages[(lang, page)] = _PAGE.format(lang=lang, title=title, body=body).encode()
    return pages


def _page(request: web.Request, page: str) -> web.Response:
    lang = preferred_language(request.headers.get("Accept-Language"))
    return web.Response(
        body=request.app[PAGES_KEY][(lang, page)],
        status=_PAGE_STATUS[page],
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-store", "Vary": "Accept-Language", "X-Content-Type-Options": "nosniff"},
    )


async def tracked_link_redirect(request: web.Request) -> web.Response:
    """/r/<slug>: 302 to the target with the partner's ref and UTM parameters; a GET is recorded as a click."""
    headers, clicks, slug = request.headers, request.app[CLICKS_KEY], request.match_info["slug"]
    try:
        if request.method == "HEAD":  # link checkers and unfurlers probing the URL: answered, not recorded
            location = await clicks.target(slug)
        else:
            location = await clicks.resolve_and_record(
                slug,
                client_ip(request, request.app[TRUST_FORWARDED_KEY]),
                headers.get("User-Agent"),
                headers.get("Referer"),
            )
    except LinkLookupError:
        return _page(request, "unavailable")
    if location is None:
        return _page(request, "not_found")
    return web.Response(status=302, headers={"Location": location, "Cache-Control": "private, no-store"})


def build_web_app(
    health: HealthCheck,
    clicks: ClickTracker | None = None,
    *,
    translator: Translator | None = None,
    trust_forwarded_for: bool = False,
) -> web.Application:
    """Health, and tracked links when a click tracker is given (GET and HEAD /r/<slug>)."""
    app = web.Application(client_max_size=1024**2)
    app[HEALTH_KEY] = health
    app.router.add_get("/healthz", healthz)
    if clicks is not None:
        app[CLICKS_KEY] = clicks
        app[PAGES_KEY] = _render_pages(translator or Translator.load("en"))
        app[TRUST_FORWARDED_KEY] = trust_forwarded_for
        app.router.add_get("/r/{slug:.*}", tracked_link_redirect)
    return app
