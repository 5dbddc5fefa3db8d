"""GET and POST /e/<slug>: the RSVP page of an event invitation, in Chinese or English by Accept-Language.

GET shows the event and a form (name prefilled with the invited lead's, yes/no). POST records the answer (the
latest counts) and tells the inviting partner through the outbox. 200 shown or recorded · 400 a bad form (the
page again, with what was wrong) · 404 unknown invitation · 409 a yes beyond the capacity (nothing written) ·
410 the event was cancelled or is over · 413 a body over 8 KiB. One transaction per request. Everything shown
is autoescaped by Jinja2, so names cannot inject HTML.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, Template
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.campaigns import parse_rsvp_form
from bot.services.campaigns import RsvpPage
from bot.services.context import ServiceContext
from bot.services.registry import UseCases
from bot.web import preferred_language
from storage.uow import UnitOfWork

TEMPLATES = Path(__file__).parent / "web_templates"
MAX_BODY = 8 * 1024
_HEADERS = {
    "Cache-Control": "no-store",
    "Vary": "Accept-Language",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_CLOSED_NOTICE = {"cancelled": "campaigns.rsvp.cancelled", "past": "campaigns.rsvp.past"}


def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, auto_reload=False)


class RsvpEndpoint:
    """The two routes, with the database, the service context and the outbox sender's wake-up."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        ctx: ServiceContext,
        on_outbox: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._ctx = ctx
        self._on_outbox = on_outbox
        self._template: Template = _environment().get_template("rsvp.html")

    def install(self, app: web.Application) -> None:
        app.router.add_get("/e/{slug}", self.show)
        app.router.add_post("/e/{slug}", self.answer)

    async def show(self, request: web.Request) -> web.Response:
        async with UnitOfWork(self._sessionmaker) as uow:
            page = await UseCases(uow, self._ctx).campaigns.rsvp_page(request.match_info["slug"])
        if page is None:
            return self._render(request, None, status=404)
        notice = _CLOSED_NOTICE.get(page.state)
        return self._render(request, page, status=200 if notice is None else 410, notice=notice, name=page.lead_name)

    async def answer(self, request: web.Request) -> web.Response:
        slug = request.match_info["slug"]
        raw = await request.content.read(MAX_BODY + 1)
        too_large = len(raw) > MAX_BODY or (request.content_length or 0) > MAX_BODY
        fields = None if too_large else _form_fields(request, raw)
        async with UnitOfWork(self._sessionmaker) as uow:
            service = UseCases(uow, self._ctx).campaigns
            page = await service.rsvp_page(slug)
            if page is None:
                return self._render(request, None, status=404)
            if too_large:
                return self._render(request, page, status=413, errors=("campaigns.rsvp.too_large",))
            form = parse_rsvp_form(*(fields or (None, None)))
            if form.errors or form.attending is None:
                choice = {True: "yes", False: "no", None: ""}[form.attending]
                return self._render(request, page, status=400, errors=form.errors, name=form.name, choice=choice)
            result = await service.answer_rsvp(slug, form.name, form.attending)
            outbox = uow.outbox_dirty
        if outbox:
            self._on_outbox()
        if result is None:
            return self._render(request, None, status=404)
        choice = "yes" if form.attending else "no"
        if result.outcome == "full":
            return self._render(request, result.page, status=409, notice="campaigns.rsvp.full", name=form.name)
        if result.outcome == "closed":
            return self._render(request, result.page, status=410, notice=_CLOSED_NOTICE.get(result.page.state))
        thanks = "campaigns.rsvp.thanks_yes" if form.attending else "campaigns.rsvp.thanks_no"
        return self._render(request, result.page, status=200, notice=thanks, name=form.name, choice=choice)

    def _render(
        self,
        request: web.Request,
        page: RsvpPage | None,
        *,
        status: int,
        notice: str | None = None,
        errors: tuple[str, ...] = (),
        name: str = "",
        choice: str | None = None,
    ) -> web.Response:
        lang = preferred_language(request.headers.get("Accept-Language"))
        t = self._ctx.translator.texts(lang)

        def tr(key: str, **params: Any) -> Markup:
            # Locale texts are trusted markup-free text; `Texts` escapes every parameter.
            return Markup(t(key, **params))  # noqa: S704

        when = ""
        if page is not None:
            local = page.event.starts_at.astimezone(page.zone)
            when = f"{local:%Y-%m-%d %H:%M} ({page.zone.key})"
        if choice is None and page is not None and page.answer is not None:
            choice = "yes" if page.answer else "no"
        body = self._template.render(
            lang=lang,
            heading=t("campaigns.rsvp.not_found_title" if page is None else "campaigns.rsvp.page_title"),
            tr=tr,
            page=page,
            when=when,
            notice=notice,
            errors=errors,
            name=name,
            choice=choice or "",
        )
        return web.Response(text=body, status=status, content_type="text/html", charset="utf-8", headers=_HEADERS)


def _form_fields(request: web.Request, raw: bytes) -> tuple[str | None, str | None] | None:
    """(name, attending) from an urlencoded body; None when the body is not a readable form."""
    if request.content_type != "application/x-www-form-urlencoded":
        return None
    try:
        parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return None
    name = parsed.get("name", [None])[0]
    attending = parsed.get("attending", [None])[0]
    return name, attending
