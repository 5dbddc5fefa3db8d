"""The read-only web dashboard (issue 8 §4) on the bot's aiohttp server, rendered with Jinja2 (autoescaped).

GET /dashboard/login?token=… exchanges a one-time /dashboard link for a session: an HttpOnly, SameSite=Lax cookie
(Secure when PUBLIC_BASE_URL is https) and a 303 to /dashboard. Every other page needs that session: without one
it answers 401 with a page that says to send /dashboard in the bot, and shows no data. Pages: / (overview),
/partners (search, pages), /partners/<id>, /content, /sprint, /delivery (admins). A team lead sees their team only:
a partner outside it is absent from the table and their detail is 404. One transaction per request, read-only
except the login. Texts are in the viewer's language (zh/en); every value is escaped by Jinja2.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from aiohttp import web
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.behaviour import Behaviour, PeriodName, Ratio, trend
from bot.domain.dashboard import COOKIE_NAME, SESSION_TTL, TokenProblem
from bot.domain.money import Money, format_money
from bot.rsvp_http import TEMPLATES
from bot.services.context import ServiceContext
from bot.services.dashboard import OpenedSession, Viewer
from bot.services.registry import UseCases
from bot.web import preferred_language
from storage.uow import UnitOfWork

_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'",
}
_LOGIN_PROBLEM = {
    TokenProblem.MALFORMED: "dashboard.login.invalid",
    TokenProblem.BAD_SIGNATURE: "dashboard.login.invalid",
    TokenProblem.EXPIRED: "dashboard.login.expired",
}

Page = Callable[[web.Request, UseCases, Viewer], Awaitable[web.Response]]


def _period(request: web.Request) -> PeriodName:
    try:
        return PeriodName(request.query.get("period", PeriodName.TODAY.value))
    except ValueError:
        return PeriodName.TODAY


def _metric_rows(now: Behaviour, before: Behaviour) -> list[tuple[str, str, str, str]]:
    """(metric, this period, previous period, arrow) for the four behaviour metrics (shares per partner twice)."""
    rows = []
    for key in ("shared", "avg_all", "avg_active", "followed_up", "revisit_rate"):
        a, b = getattr(now, key), getattr(before, key)
        if isinstance(a, Ratio) and isinstance(b, Ratio):
            shown = (a.percent(), b.percent()) if key == "revisit_rate" else (a.tenths(), b.tenths())
            rows.append((key, *shown, trend(a.value, b.value).value))
        else:
            rows.append((key, str(a), str(b), trend(a, b).value))
    return rows


class DashboardEndpoint:
    """The dashboard's routes, with the database and the service context."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], ctx: ServiceContext) -> None:
        self._sessionmaker = sessionmaker
        self._ctx = ctx
        self._env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, auto_reload=False)
        self._secure = urlparse(ctx.public_base_url).scheme == "https"

    def install(self, app: web.Application) -> None:
        app.router.add_get("/dashboard/login", self.login)
        app.router.add_get("/dashboard", self._page(self.overview))
        app.router.add_get("/dashboard/partners", self._page(self.partners))
        app.router.add_get("/dashboard/partners/{partner_id}", self._page(self.partner))
        app.router.add_get("/dashboard/content", self._page(self.content))
        app.router.add_get("/dashboard/sprint", self._page(self.sprint))
        app.router.add_get("/dashboard/delivery", self._page(self.delivery))

    # --- access ----------------------------------------------------------------------------------------------

    async def login(self, request: web.Request) -> web.Response:
        async with UnitOfWork(self._sessionmaker) as uow:
            opened = await UseCases(uow, self._ctx).dashboard.open_session(request.query.get("token"))
        if not isinstance(opened, OpenedSession):
            key = "dashboard.login.used" if opened is None else _LOGIN_PROBLEM[opened]
            return self._message(request, None, key, status=403 if opened is None else 400)
        response = web.Response(status=303, headers={**_HEADERS, "Location": "/dashboard"})
        response.set_cookie(
            COOKIE_NAME,
            opened.cookie,
            max_age=int(SESSION_TTL.total_seconds()),
            path="/dashboard",
            httponly=True,
            samesite="Lax",
            secure=self._secure,
        )
        return response

    def _page(self, page: Page) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            async with UnitOfWork(self._sessionmaker) as uow:
                uc = UseCases(uow, self._ctx)
                viewer = await uc.dashboard.viewer(request.cookies.get(COOKIE_NAME))
                if viewer is None:
                    return self._message(request, None, "dashboard.unauthorized", status=401)
                return await page(request, uc, viewer)

        return handler

    # --- pages -----------------------------------------------------------------------------------------------

    async def overview(self, request: web.Request, uc: UseCases, viewer: Viewer) -> web.Response:
        period = _period(request)
        t = self._ctx.translator.texts(viewer.language)
        labels = (
            t("behaviour.chart.title"),
            t("behaviour.chart.shares"),
            t("behaviour.chart.followups"),
            t("behaviour.chart.orders"),
        )
        overview = await uc.dashboard.overview(viewer, period, labels)
        report = overview.report
        metrics = _metric_rows(report.now, report.before)
        c = report.now.counts

        def money(minor: int) -> str:
            return format_money(Money(minor, report.currency), viewer.language)

        funnel = [
            ("content_sent", str(c.content_sent)),
            ("shares", str(c.shares)),
            ("clicks", str(c.clicks)),
            ("leads", str(c.leads)),
            ("quotes", str(c.quotes)),
            ("orders", str(c.orders)),
            ("gmv", money(c.gmv_minor)),
            ("commission", money(c.commission_minor)),
        ]
        segments = [(s, report.segments.get(s, 0)) for s in ("high", "mid", "low", None)]
        chart = "data:image/png;base64," + base64.b64encode(overview.chart_png).decode()
        return self._render(
            request,
            viewer,
            "dashboard_overview.html",
            nav="overview",
            period=period.value,
            periods=[p.value for p in PeriodName],
            report=report,
            metrics=metrics,
            funnel=funnel,
            segments=segments,
            chart=chart,
        )

    async def partners(self, request: web.Request, uc: UseCases, viewer: Viewer) -> web.Response:
        try:
            page = int(request.query.get("page", "1"))
        except ValueError:
            page = 1
        listing = await uc.dashboard.partners(viewer, request.query.get("q", ""), page)
        return self._render(request, viewer, "dashboard_partners.html", nav="partners", listing=listing)

    async def partner(self, request: web.Request, uc: UseCases, viewer: Viewer) -> web.Response:
        raw = request.match_info["partner_id"]
        detail = await uc.dashboard.partner(viewer, int(raw)) if raw.isdecimal() and len(raw) < 19 else None
        if detail is None:
            return self._message(request, viewer, "dashboard.not_found", status=404)
        return self._render(request, viewer, "dashboard_partner.html", nav="partners", detail=detail)

    async def content(self, request: web.Request, uc: UseCases, viewer: Viewer) -> web.Response:
        period = _period(request)
        page = await uc.dashboard.content(viewer, period)
        return self._render(
            request,
            viewer,
            "dashboard_content.html",
            nav="content",
            period=period.value,
            periods=[p.value for p in PeriodName],
            page=page,
        )

    async def sprint(self, request: web.Request, uc: UseCases, viewer: Viewer) -> web.Response:
        standings = await uc.dashboard.sprint(viewer)
        return self._render(request, viewer, "dashboard_sprint.html", nav="sprint", standings=standings)

    async def delivery(self, request: web.Request, uc: UseCases, viewer: Viewer) -> web.Response:
        report = await uc.dashboard.delivery(viewer)
        if report is None:
            return self._message(request, viewer, "dashboard.admins_only", status=403)
        return self._render(request, viewer, "dashboard_delivery.html", nav="delivery", report=report)

    # --- rendering -------------------------------------------------------------------------------------------

    def _render(
        self, request: web.Request, viewer: Viewer | None, template: str, *, status: int = 200, **values: Any
    ) -> web.Response:
        language = viewer.language if viewer is not None else preferred_language(request.headers.get("Accept-Language"))
        t = self._ctx.translator.texts(language)

        def tr(key: str, **params: Any) -> Markup:
            # Locale texts are trusted; `Texts` escapes every parameter.
            return Markup(t(key, **params))  # noqa: S704

        def when(moment: datetime | None) -> str:
            if moment is None:
                return "–"
            return moment.astimezone(viewer.zone if viewer else self._ctx.timezone).strftime("%Y-%m-%d %H:%M")

        body = self._env.get_template(template).render(
            lang=language, tr=tr, has=t.has, when=when, viewer=viewer, zone=self._ctx.timezone.key, **values
        )
        return web.Response(text=body, status=status, content_type="text/html", charset="utf-8", headers=_HEADERS)

    def _message(self, request: web.Request, viewer: Viewer | None, key: str, *, status: int) -> web.Response:
        return self._render(request, viewer, "dashboard_message.html", status=status, nav="", message=key)
