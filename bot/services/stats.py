"""Numbers for admins: how the outbox is doing, so a stuck queue or a wave of blocked partners is seen early."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.delivery.media import remove_unused
from bot.domain.behaviour import PeriodName, parse_period
from bot.services.context import ServiceContext
from storage.uow import UnitOfWork

OUTBOX_STATUSES = ("pending", "sending", "sent", "dead")
SECTIONS = ("delivery",)
TOP_REASONS = 5


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """Outbox rows per status, among those kept (finished rows are deleted after `kept_days`) and among those
    created in the last 24 hours, and why rows died."""

    overall: dict[str, int]
    last_day: dict[str, int]
    dead_reasons: list[tuple[str, int]]
    kept_days: int

    @property
    def statuses(self) -> list[str]:
        """The four outbox statuses, then any other status in use (e.g. cancelled broadcast rows)."""
        extra = sorted((set(self.overall) | set(self.last_day)) - set(OUTBOX_STATUSES))
        return [*OUTBOX_STATUSES, *extra]


def parse_section(args: str | None) -> str | PeriodName:
    """`/stats delivery`, or the behaviour report's period: `/stats [today|7d|30d|month]` (default today)."""
    section = (args or "").strip().lower()
    if section in SECTIONS:
        return section
    return parse_period(section)


class StatsService:
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    async def delivery(self) -> DeliveryReport:
        """Counts by status (the rows kept, and the last 24 h) and the most frequent dead-letter reasons."""
        since = self._ctx.clock.now() - timedelta(hours=24)
        outbox = self._uow.outbox
        return DeliveryReport(
            overall=await outbox.status_counts(),
            last_day=await outbox.status_counts(since),
            dead_reasons=await outbox.top_dead_reasons(TOP_REASONS),
            kept_days=self._ctx.outbox_retention_days,
        )

    def retention_cutoff(self) -> datetime:
        """Finished outbox rows, and pictures no waiting row sends, older than this are deleted."""
        return self._ctx.clock.now() - timedelta(days=self._ctx.outbox_retention_days)

    async def prune_outbox(self, limit: int) -> int:
        """Delete up to `limit` finished outbox rows older than OUTBOX_RETENTION_DAYS; how many were deleted."""
        return await self._uow.outbox.prune(self.retention_cutoff(), limit)

    async def prune_media(self) -> int:
        """Delete the pictures under MEDIA_DIR no waiting outbox row sends and none queued within
        OUTBOX_RETENTION_DAYS; how many files were deleted."""
        in_use = await self._uow.outbox.media_in_use()
        return await asyncio.to_thread(remove_unused, self._ctx.media_dir, in_use, self.retention_cutoff())
