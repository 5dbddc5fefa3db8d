"""The app's own scheduled jobs. Each opens its own unit of work and calls the same service code a
handler would; its policy is declared on it and listed in README "Scheduled jobs"."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from bot.scheduling.conventions import scheduled_job
from bot.scheduling.runtime import JobRuntime, job_runtime

if TYPE_CHECKING:
    from bot.services.registry import UseCases

log = logging.getLogger(__name__)


async def _in_batches(rt: JobRuntime, step: Callable[[UseCases], Awaitable[int]], batch: int) -> int:
    """Run `step` in a transaction of its own, again and again until it does less than `batch`: a large backlog
    never holds one long transaction. How much was done in all."""
    total = 0
    while True:
        async with rt.unit_of_work() as uow:
            done = await step(rt.use_cases(uow))
        total += done
        if done < batch:
            return total


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
    total = await _in_batches(rt, lambda uc: uc.settlement.release_matured(RELEASE_BATCH), RELEASE_BATCH)
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
    total = await _in_batches(rt, lambda uc: uc.content.push_due(rt.clock.now(), limit=PACK_BATCH), PACK_BATCH)
    if total:
        log.info("queued today's content pack for %s partners", total)


EVALUATE_LEVELS = "bot.scheduling.jobs:evaluate_levels"
EVALUATE_LEVELS_ID = "levels:evaluate"
EVALUATE_LEVELS_CRON = "0 2 * * *"
LEVELS_BATCH = 500


# Daily at 02:00 in the deployment's TIMEZONE. A run up to 6 hours late still runs (after a night's downtime
# partners still get their level the same morning); missed runs coalesce into one (metrics are read at run
# time, so one run does the work of all missed ones); one instance, and notices are deduplicated per day anyway.
@scheduled_job(misfire_grace_time=6 * 3600, coalesce=True, max_instances=1)
async def evaluate_levels() -> None:
    """Every partner's level follows their metrics (promotion, demotion) and new badges are awarded."""
    rt = job_runtime()
    now = rt.clock.now()
    after, changed, badges = 0, 0, 0
    while True:  # a transaction per batch of partners
        async with rt.unit_of_work() as uow:
            ids = await uow.metrics.partner_ids_after(after, LEVELS_BATCH)
            if not ids:
                break
            run = await rt.use_cases(uow).levels.evaluate(ids, now)
        changed += len(run.promoted) + len(run.demoted)
        badges += len(run.badges)
        after = ids[-1]
        if len(ids) < LEVELS_BATCH:
            break
    if changed or badges:
        log.info("levels: %s partners changed level, %s badges awarded", changed, badges)


ANNOUNCE_POOLS = "bot.scheduling.jobs:announce_closed_pools"
ANNOUNCE_POOLS_ID = "pools:announce"
ANNOUNCE_POOLS_CRON = "0 3 * * *"


# Daily at 03:00 (deployment time zone). A run up to 6 hours late still goes (admins want the preview the same
# morning); missed runs coalesce; one instance. The notices are deduplicated per (pool, period, admin) in the
# outbox, and posting is a once-only ledger transaction, so a repeated run sends and posts nothing twice.
@scheduled_job(misfire_grace_time=6 * 3600, coalesce=True, max_instances=1)
async def announce_closed_pools() -> None:
    """Each dividend pool whose period just closed and is not posted: every admin gets its preview with [Post]."""
    rt = job_runtime()
    async with rt.unit_of_work() as uow:
        queued = await rt.use_cases(uow).pools.announce_closed()
    if queued:
        log.info("queued %s dividend pool previews for admins", queued)
        rt.sender.wake()


REMIND_EVENTS = "bot.scheduling.jobs:remind_upcoming_events"
REMIND_EVENTS_ID = "events:remind"


# Every minute. A run more than 50 s late is skipped: the next one is due within seconds and finds the same
# events (the 1-day window lasts 23 hours, the 1-hour one an hour); missed runs coalesce; one instance. Each
# reminder's outbox dedupe key `event-remind:<event>:<partner>:<1d|1h>` makes it go once whatever runs.
@scheduled_job(misfire_grace_time=50, coalesce=True, max_instances=1)
async def remind_upcoming_events() -> None:
    """Partners who invited leads to an event get a reminder a day and an hour before it, with the answers."""
    rt = job_runtime()
    async with rt.unit_of_work() as uow:
        queued = await rt.use_cases(uow).campaigns.send_event_reminders(rt.clock.now())
    if queued:
        log.info("queued %s event reminders", queued)
        rt.sender.wake()


FIRE_LEAD_REMINDERS = "bot.scheduling.jobs:fire_lead_reminders"
FIRE_LEAD_REMINDERS_ID = "leads:remind"
REMINDER_BATCH = 200


# Every minute. A run more than 50 s late is skipped: the next one is due within seconds and finds the same
# reminders (they stay pending until a run marks them sent); missed runs coalesce, so after downtime one run sends
# every reminder that came due meanwhile; one instance, and the outbox dedupe key
# 'remind:lead:<lead>:<due minute>' makes sure a reminder is never queued twice anyway.
@scheduled_job(misfire_grace_time=50, coalesce=True, max_instances=1)
async def fire_lead_reminders() -> None:
    """Prospect reminders whose time has come: the partner gets the lead card with [Done] [Snooze 1d] [Snooze 1w]."""
    rt = job_runtime()
    total = await _in_batches(rt, lambda uc: uc.leads.fire_due(rt.clock.now(), limit=REMINDER_BATCH), REMINDER_BATCH)
    if total:
        log.info("sent %s prospect reminders", total)
        rt.sender.wake()


TICK_PLAYBOOKS = "bot.scheduling.jobs:tick_playbooks"
TICK_PLAYBOOKS_ID = "playbooks:tick"
PLAYBOOK_BATCH = 200


# Every minute. A run more than 50 s late is skipped: the next one is due within seconds and finds the same rows
# (a row is due until a run moves its wake_at); missed runs coalesce; one instance, and the engine's dedupe keys
# ('playbook:<key>:<partner>:<step>:send…') make sure no step message is queued twice anyway.
@scheduled_job(misfire_grace_time=50, coalesce=True, max_instances=1)
async def tick_playbooks() -> None:
    """Partners whose playbook step, nudge or day has come (or who did something since) get what the engine decides."""
    rt = job_runtime()
    total = await _in_batches(rt, lambda uc: uc.playbooks.tick_due(limit=PLAYBOOK_BATCH), PLAYBOOK_BATCH)
    if total:
        log.info("ran playbooks for %s partners", total)
        rt.sender.wake()
