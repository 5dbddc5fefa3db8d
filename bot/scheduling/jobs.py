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
