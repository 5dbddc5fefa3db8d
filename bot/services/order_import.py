"""An admin's CSV of orders: a preview first, then the valid orders settled exactly as the API settles them."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.errors import UsageError
from bot.domain.orders_csv import CsvFileError, CsvOrders, read_orders_csv
from bot.services.context import ServiceContext
from bot.services.ledger import CurrencyNotInPlan, Outcome, SettlementService
from bot.services.views import PartnerView
from storage.uow import UnitOfWork

SOURCE = "csv"
BATCH = 500
"""Orders settled per `ingest_orders` call: a 10,000-row file is 20 batches, not 10,000 settlements."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    created: int
    replayed: int
    conflicts: list[str]


class OrderImportService:
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    @staticmethod
    def preview(data: bytes) -> CsvOrders:
        """Read the file; raises UsageError for a file that cannot be read at all."""
        try:
            return read_orders_csv(data)
        except CsvFileError as exc:
            raise UsageError("orders.csv.unreadable", reason=str(exc)) from None

    async def import_orders(self, admin: PartnerView, data: bytes) -> ImportResult:
        """Settle the file's valid orders, exactly as previewed (the file is read again), in this one transaction."""
        settlement = SettlementService(self._uow, self._ctx)
        created = replayed = 0
        conflicts: list[str] = []
        orders = self.preview(data).orders
        for start in range(0, len(orders), BATCH):
            chunk = orders[start : start + BATCH]
            for order, result in zip(chunk, await settlement.ingest_orders(chunk, source=SOURCE), strict=True):
                if isinstance(result, CurrencyNotInPlan):
                    conflicts.append(f"{order.order_id} ({order.currency})")
                elif result.outcome is Outcome.CREATED:
                    created += 1
                elif result.outcome is Outcome.REPLAY:
                    replayed += 1
                else:
                    conflicts.append(order.order_id)
        self._uow.audit.add(
            actor_tg_id=admin.tg_user_id,
            actor_partner_id=admin.id,
            action="orders_csv_import",
            target=None,
            outcome="ok",
            details={"created": created, "replayed": replayed, "conflicts": conflicts[:50]},
            created_at=self._ctx.clock.now(),
        )
        return ImportResult(created, replayed, conflicts)
