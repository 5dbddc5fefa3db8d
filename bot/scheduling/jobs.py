"""The app's own scheduled jobs. Each opens its own unit of work and calls the same service code a
handler would; its policy is declared on it and listed in README "Scheduled jobs"."""

from __future__ import annotations

import logging

from bot.scheduling.conventions import scheduled_job
from bot.scheduling.runtime import job_runtime

log = logging.getLogger(__name__)

RELEASE_STALE_OUTBOX = "bot.scheduling.jobs:release_stale_outbox"
RELEASE_STALE_OUTBOX_ID = "outbox:release-stale"


# Every minute. A sweep more than 50 s late is skipped: the next one is due within seconds anyway
# (grace below the interval); after downtime one sweep does the work of all missed ones (coalesce);
# overlapping sweeps would only contend for the same rows (one instance).
@scheduled_job(misfire_grace_time=50, coalesce=True, max_instances=1)
async def release_stale_outbox() -> None:
    """Messages a crashed sender left half-claimed go back to the queue, so no notice is stuck."""
    rt = job_runtime()
    released = await rt.sender.release_stale()
    if released:
        log.warning("released %s outbox rows left claimed by a stopped sender", released)
        rt.sender.wake()


REPORT_BROADCASTS = "bot.scheduling.jobs:report_broadcast_progress"
REPORT_BROADCASTS_ID = "broadcasts:progress"
REPORT_BROADCASTS_EVERY_SECONDS = 3


# Every 3 s. A report more than 2 s late is skipped (the next one carries fresher numbers anyway);
# missed runs coalesce into one; one instance, so two reports never race to edit the same message.
@scheduled_job(misfire_grace_time=2, coalesce=True, max_instances=1)
async def report_broadcast_progress() -> None:
    """Running broadcasts' progress messages show fresh numbers, and finished ones get their summary."""
    rt = job_runtime()
    async with rt.unit_of_work() as uow:
        await rt.use_cases(uow).broadcasts.report_progress()


RELEASE_COMMISSION = "bot.scheduling.jobs:release_matured_commission"
RELEASE_COMMISSION_ID = "ledger:release"
RELEASE_BATCH = 500


# Every 10 minutes. A run more than 9 minutes late is skipped (the next one does the same work); missed runs
# coalesce; one instance, and each release is a once-only ledger transaction ('release:<entry>') anyway.
@scheduled_job(misfire_grace_time=540, coalesce=True, max_instances=1)
async def release_matured_commission() -> None:
    """Commission whose hold period has ended moves from pending to available, and the partner is told."""
    rt = job_runtime()
    total = 0
    while True:
        async with rt.unit_of_work() as uow:
            released = await rt.use_cases(uow).settlement.release_matured(RELEASE_BATCH)
        total += released
        if released < RELEASE_BATCH:
            break
    if total:
        log.info("released %s matured commission lines", total)


DISPATCH_PACKS = "bot.scheduling.jobs:dispatch_daily_packs"
DISPATCH_PACKS_ID = "packs:dispatch"
PACK_BATCH = 500


# Every minute. A run more than 50 s late is skipped: the next one is due within seconds and picks up the same
# partners (each partner's pack is pushed once per local day, remembered in daily_packs); missed runs coalesce;
# one instance, so two runs never queue the same partner's pack at the same moment.
@scheduled_job(misfire_grace_time=50, coalesce=True, max_instances=1)
async def dispatch_daily_packs() -> None:
    """Partners whose local push hour has come get today's content pack through the outbox."""
    rt = job_runtime()
    total = 0
    while True:  # a transaction per batch, so a large network's morning never holds one long transaction
        async with rt.unit_of_work() as uow:
            pushed = await rt.use_cases(uow).content.push_due(rt.clock.now(), limit=PACK_BATCH)
        total += pushed
        if pushed < PACK_BATCH:
            break
    if total:
        log.info("queued today's content pack for %s partners", total)
