"""Group commit for incoming orders: concurrent deliveries settle together, one transaction per batch.

Each POST /api/orders used to be one transaction of about a dozen statements; at a thousand orders a second
the database spends its time on round trips and commits, not on work. `OrderBatcher` queues each delivery
and lets a few runner tasks take whatever is waiting, up to `max_batch`, into one unit of work with
`SettlementService.ingest_orders`, which settles a batch with a fixed number of statements. Nothing waits for
a batch to fill: a runner takes what is there the moment it is free, so at low traffic a batch is one order and
the latency is that of settling it alone; under load batches grow by themselves while the previous one commits.

Isolation: when a batch's transaction fails (a deadlock, a constraint the batch tripped, a bug), it is rolled
back and each of its orders is settled again alone, so one bad order fails only its own delivery. A database
that is down fails every delivery of the batch with the same error (the caller answers 503).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.domain.orders_api import OrderIn
from bot.services.context import ServiceContext
from bot.services.ledger import CurrencyNotInPlan, Settlement
from bot.services.registry import UseCases
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

MAX_BATCH = 200


@dataclass(slots=True)
class _Delivery:
    order: OrderIn
    done: asyncio.Future[Settlement]


class OrderBatcher:
    """Settles orders of one `source` in batches; `settle` is what a caller awaits for one order."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        ctx: ServiceContext,
        *,
        source: str = "api",
        runners: int = 4,
        max_batch: int = MAX_BATCH,
        on_outbox: Callable[[], None] = lambda: None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._ctx = ctx
        self._source = source
        self._max_batch = max_batch
        self._on_outbox = on_outbox
        self._queue: asyncio.Queue[_Delivery] = asyncio.Queue()
        self._runners = runners
        self._tasks: list[asyncio.Task[None]] = []

    async def settle(self, order: OrderIn) -> Settlement:
        """What `SettlementService.ingest_order` returns for `order` (or raises: `CurrencyNotInPlan`, a database
        error), settled in whichever batch takes it."""
        self._start()
        done: asyncio.Future[Settlement] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Delivery(order, done))
        return await done

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def _start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._run(), name=f"order-batcher-{i}") for i in range(self._runners)]

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            batch = [d for d in batch if not d.done.cancelled()]  # the client went away before we began
            try:
                if batch:
                    await self._settle_batch(batch)
            except Exception as exc:  # a runner must outlive any batch, or later deliveries would wait forever
                log.exception("settling a batch of %s orders failed", len(batch))
                for delivery in batch:
                    _fail(delivery, exc)

    async def _settle_batch(self, batch: list[_Delivery]) -> None:
        try:
            async with UnitOfWork(self._sessionmaker) as uow:
                results = await UseCases(uow, self._ctx).settlement.ingest_orders(
                    [d.order for d in batch], source=self._source
                )
                outbox = uow.outbox_dirty
        except (OperationalError, DBAPIError) as exc:
            if len(batch) == 1 or _unavailable(exc):
                for delivery in batch:
                    _fail(delivery, exc)
                return
            log.warning("a batch of %s orders failed (%s); settling them one by one", len(batch), exc)
            for delivery in batch:
                await self._settle_batch([delivery])
            return
        except Exception as exc:
            if len(batch) == 1:
                _fail(batch[0], exc)
                return
            log.exception("a batch of %s orders failed; settling them one by one", len(batch))
            for delivery in batch:
                await self._settle_batch([delivery])
            return
        if outbox:
            self._on_outbox()
        for delivery, result in zip(batch, results, strict=True):
            if delivery.done.done():
                continue
            if isinstance(result, CurrencyNotInPlan):
                delivery.done.set_exception(result)
            else:
                delivery.done.set_result(result)


def _unavailable(exc: DBAPIError) -> bool:
    """The database is not there at all (connection refused or lost): retrying order by order won't help."""
    return bool(exc.connection_invalidated) or isinstance(exc.orig, (ConnectionError, OSError))


def _fail(delivery: _Delivery, exc: BaseException) -> None:
    if not delivery.done.done():
        delivery.done.set_exception(exc)
