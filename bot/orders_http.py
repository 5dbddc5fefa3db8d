"""POST /api/orders and /api/refunds: signed by the shop, settled into the ledger. A refund is one transaction;
orders arriving together share one (bot.order_batcher), each with its own answer.

401 bad or stale signature · 422 invalid body (every field error) · 201 created · 200 an identical replay with
the original result · 409 the same id with a different payload. The signature is checked before the body is
parsed, so nobody without ORDERS_API_SECRET learns anything about the API's validation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.orders_api import (
    BodyError,
    FieldError,
    OrderIn,
    RefundIn,
    conflict_response_body,
    error_response_body,
    parse_order,
    parse_refund,
    signature_error_body,
    verify_signature,
)
from bot.order_batcher import OrderBatcher
from bot.services.context import ServiceContext
from bot.services.ledger import CurrencyNotInPlan, Outcome, RefundTooLarge
from bot.services.registry import UseCases
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

STATUS = {Outcome.CREATED: 201, Outcome.REPLAY: 200, Outcome.CONFLICT: 409}


class OrdersEndpoint:
    """The two routes, with what they need: the secret, the database and the service context."""

    def __init__(
        self,
        secret: bytes,
        sessionmaker: async_sessionmaker[AsyncSession],
        ctx: ServiceContext,
        on_outbox: Callable[[], None] = lambda: None,
    ) -> None:
        self._secret = secret
        self._sessionmaker = sessionmaker
        self._ctx = ctx
        self._on_outbox = on_outbox
        sqlite = sessionmaker.kw["bind"].dialect.name == "sqlite"  # one writer at a time: one batch at a time
        self._batcher = OrderBatcher(sessionmaker, ctx, runners=1 if sqlite else 4, on_outbox=on_outbox)

    def install(self, app: web.Application) -> None:
        app.router.add_post("/api/orders", self.orders)
        app.router.add_post("/api/refunds", self.refunds)
        app.on_cleanup.append(self._close)

    async def _close(self, app: web.Application) -> None:
        await self._batcher.close()

    async def orders(self, request: web.Request) -> web.Response:
        return await self._handle(request, "order")

    async def refunds(self, request: web.Request) -> web.Response:
        return await self._handle(request, "refund")

    async def _handle(self, request: web.Request, kind: str) -> web.Response:
        raw = await request.read()  # the web app caps bodies at 1 MiB; the parser refuses more than 64 KiB
        check = verify_signature(
            self._secret,
            request.headers.get("X-Timestamp"),
            request.headers.get("X-Signature"),
            raw,
            self._ctx.clock.now(),
        )
        if not check.ok:
            log.info("%s %s refused: signature %s", request.method, request.path, check.reason)
            return web.json_response(signature_error_body(check), status=401)
        model: OrderIn | RefundIn
        try:
            model = parse_order(raw) if kind == "order" else parse_refund(raw)
        except BodyError as exc:
            return web.json_response(error_response_body(exc.errors), status=422)
        try:
            if isinstance(model, OrderIn):  # settled with whatever other orders are arriving (bot.order_batcher)
                settlement, outbox = await self._batcher.settle(model), False
            else:
                async with UnitOfWork(self._sessionmaker) as uow:
                    settlement = await UseCases(uow, self._ctx).settlement.ingest_refund(model)
                    outbox = uow.outbox_dirty
        except RefundTooLarge:
            errors = [FieldError("amount", "more than what is left of the order, or another currency")]
            return web.json_response(error_response_body(errors), status=422)
        except CurrencyNotInPlan as exc:
            errors = [FieldError("currency", f"the commission plan pays in {exc.currency}")]
            return web.json_response(error_response_body(errors), status=422)
        except (OperationalError, DBAPIError):
            log.exception("%s %s: the database is unavailable", request.method, request.path)
            return web.json_response({"error": "unavailable"}, status=503, headers={"Retry-After": "5"})
        if outbox:
            self._on_outbox()
        if settlement.outcome is Outcome.CONFLICT:
            return web.json_response(conflict_response_body(model), status=409)
        return web.json_response(settlement.result, status=STATUS[settlement.outcome])


def install_unconfigured(app: web.Application) -> None:
    """Without ORDERS_API_SECRET the routes exist and say why they refuse, so an integrator is not left guessing."""

    async def not_configured(request: web.Request) -> web.Response:
        return web.json_response({"error": "not_configured", "detail": "ORDERS_API_SECRET is not set"}, status=503)

    app.router.add_post("/api/orders", not_configured)
    app.router.add_post("/api/refunds", not_configured)
