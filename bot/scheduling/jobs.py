"""The app's own scheduled jobs. Each opens its own unit of work and calls the same service code a
handler would; its policy is declared on it and listed in README "Scheduled jobs"."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.scheduling.conventions import scheduled_job
from bot.scheduling.runtime import JobRuntime, job_runtime

if TYPE_CHECKING:
    from bot.services.digests import PreparedDigests, ReadDigests
    from bot.services.registry import UseCases
    from bot.services.rhythm import MetricsKey

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


SEGMENTS_DAILY = "bot.scheduling.jobs:segment_partners"
SEGMENTS_DAILY_ID = "segments:daily"
SEGMENTS_DAILY_CRON = "30 2 * * *"
SEGMENT_BATCH = 2000


async def segment_all(rt: JobRuntime, batch: int = SEGMENT_BATCH) -> tuple[int, int]:
    """Every partner's activity segment at the clock's now, a transaction per batch of partners (keyset by id).
    (partners looked at, partners whose segment changed)."""
    now = rt.clock.now()
    after, seen, changed = 0, 0, 0
    memo: dict[MetricsKey, str] = {}  # segments of metric values already evaluated in this run
    while True:
        async with rt.unit_of_work() as uow:
            run = await rt.use_cases(uow).rhythm.segment_batch(after, batch, now, memo)
        seen, changed = seen + run.partners, changed + run.changed
        if run.last_id is None or run.partners < batch:
            return seen, changed
        after = run.last_id


# Daily at 02:30 in the deployment's TIMEZONE (after levels:evaluate, before the morning touches). A run up to 6 hours
# late still runs (segments should be fresh before the touches go out); missed runs coalesce into one (metrics are
# read at run time); one instance. A repeated run changes nothing: a partner already in their segment is left
# alone, and each change event's dedupe key (rhythm:<key>:<partner>:segment:<local day>:<segment>) is recorded once.
@scheduled_job(misfire_grace_time=6 * 3600, coalesce=True, max_instances=1)
async def segment_partners() -> None:
    """Every partner is put in their activity segment (tiered operations); changes are recorded as events."""
    rt = job_runtime()
    seen, changed = await segment_all(rt)
    log.info("segments: %s partners, %s changed segment", seen, changed)


PRUNE_OUTBOX = "bot.scheduling.jobs:prune_outbox"
PRUNE_OUTBOX_ID = "outbox:prune"
PRUNE_OUTBOX_CRON = "15 4 * * *"
PRUNE_OUTBOX_BATCH = 5000


# Daily at 04:15 in the deployment's TIMEZONE (after the night's jobs, before the morning packs). A run up to 6 hours
# late still runs; missed runs coalesce into one (the cut-off is computed at run time, so one run deletes what all
# would have); one instance. Deleting is idempotent: a repeated or interrupted run finds what is left. A batch of
# 5,000 rows per transaction keeps each delete short next to the sender's updates.
@scheduled_job(misfire_grace_time=6 * 3600, coalesce=True, max_instances=1)
async def prune_outbox() -> None:
    """Outbox rows sent, dead-lettered or cancelled more than OUTBOX_RETENTION_DAYS ago are deleted, then the
    pictures under MEDIA_DIR that no waiting row sends and none queued within that time."""
    rt = job_runtime()
    deleted = await _in_batches(rt, lambda uc: uc.stats.prune_outbox(PRUNE_OUTBOX_BATCH), PRUNE_OUTBOX_BATCH)
    async with rt.unit_of_work() as uow:
        files = await rt.use_cases(uow).stats.prune_media()
    log.info(
        "outbox retention: deleted %s finished rows and %s unused pictures older than %s days",
        deleted,
        files,
        rt.ctx.outbox_retention_days,
    )


TICK_RHYTHM = "bot.scheduling.jobs:tick_rhythm"
TICK_RHYTHM_ID = "rhythm:tick"
RHYTHM_BATCH = 500


# Every minute. A run more than 50 s late is skipped: the next one is due within seconds and finds the same rows
# (a row is due until a run moves its wake_at); missed runs coalesce; one instance, and the engine's dedupe keys
# (rhythm:<key>:<partner>:<segment>:<touch>:<local day>) make sure no touch is queued twice on a day anyway.
@scheduled_job(misfire_grace_time=50, coalesce=True, max_instances=1)
async def tick_rhythm() -> None:
    """Partners whose tiered-operations touch time has come get their segment's touches (unless paused)."""
    rt = job_runtime()
    total = await _in_batches(rt, lambda uc: uc.rhythm.tick_due(limit=RHYTHM_BATCH), RHYTHM_BATCH)
    if total:
        log.info("ran the tiered-operations rhythm for %s partners", total)
        rt.sender.wake()


TICK_SPRINTS = "bot.scheduling.jobs:tick_sprints"
TICK_SPRINTS_ID = "sprints:tick"
TICK_SPRINTS_EVERY_MINUTES = 5
SPRINT_BATCH = 2000
"""Participants per transaction; each batch of a nudge stage recounts the standings once."""


# Every 5 minutes. A run more than 4 minutes late is skipped: the next one is due soon and finds the same work (a
# stage is due until the sprint row records it done); missed runs coalesce, and a stage overtaken by a later one
# while the bot was down is skipped, not sent late; one instance, and the outbox dedupe keys
# 'sprint:<id>:<stage>:<partner>' make sure no stage message is queued twice anyway.
@scheduled_job(misfire_grace_time=240, coalesce=True, max_instances=1)
async def tick_sprints() -> None:
    """Sprint participants get the kickoff, mid-sprint nudge, final push and results as each comes due; ended
    sprints get their final standings, winners and the admins' summary."""
    rt = job_runtime()
    total = await _in_batches(rt, lambda uc: uc.sprints.tick(limit=SPRINT_BATCH), SPRINT_BATCH)
    if total:
        log.info("announced sprint stages to %s participants", total)
        rt.sender.wake()


PICK_SPOTLIGHT = "bot.scheduling.jobs:pick_weekly_spotlight"
PICK_SPOTLIGHT_ID = "spotlight:weekly"
PICK_SPOTLIGHT_CRON = "5 0 * * mon"


# Mondays at 00:05 in the deployment's TIMEZONE, before any partner's morning pack. A run up to 2 days late still
# picks (the week's spotlight is worth having for the rest of the week; it ranks the two full weeks before this
# Monday whenever it runs); missed runs coalesce into one; one instance. A repeated run changes nothing: a week that
# has a spotlight (an admin's pick or an earlier run's) is left alone, and the notice's dedupe key
# (spotlight:<week>:<partner>) sends it once.
@scheduled_job(misfire_grace_time=2 * 86400, coalesce=True, max_instances=1)
async def pick_weekly_spotlight() -> None:
    """When no admin picked this week's spotlight partner, the top riser of the last two weeks gets it and is told."""
    rt = job_runtime()
    async with rt.unit_of_work() as uow:
        picked = await rt.use_cases(uow).stories.pick_top_riser(rt.clock.now())
    if picked is not None:
        log.info("spotlight: partner %s is the top riser of the week", picked)
        rt.sender.wake()


SYNC_LEADERBOARDS = "bot.scheduling.jobs:sync_leaderboards"
SYNC_LEADERBOARDS_ID = "leaderboards:sync"
LEADERBOARD_SYNC_BATCH = 2000


# Every minute. A run more than 50 s late is skipped: the next one is due within seconds and folds the same events
# (an event waits until a run folds it); missed runs coalesce, so after downtime one run folds the backlog in
# batches; one instance, so two runs never fold the same event into the same score at once (and a fold is one
# transaction with its folded-event markers, so a repeated run adds nothing twice anyway).
@scheduled_job(misfire_grace_time=50, coalesce=True, max_instances=1)
async def sync_leaderboards() -> None:
    """New shares, orders and points-earning actions show up on the leaderboards (SQL, and Redis when configured)."""
    rt = job_runtime()
    total = await _in_batches(rt, lambda uc: uc.leaderboards.sync(limit=LEADERBOARD_SYNC_BATCH), LEADERBOARD_SYNC_BATCH)
    if total:
        log.info("leaderboards: folded %s events", total)


NOTIFY_RANK_CHANGES = "bot.scheduling.jobs:notify_rank_changes"
NOTIFY_RANK_CHANGES_ID = "leaderboards:notices"
RANK_NOTICE_BATCH = 500


# Every 10 minutes. A run more than 9 minutes late is skipped (the next one compares the same ranks); missed runs
# coalesce; one instance. A notice's outbox dedupe key 'rank-change:<partner>:<local day>' allows one a day per
# partner whatever runs, and a rank is compared with the last one seen, so a re-run finds nothing new to say.
# One run reads the board once, in pages of 500 partners (a transaction each).
@scheduled_job(misfire_grace_time=540, coalesce=True, max_instances=1)
async def notify_rank_changes() -> None:
    """Partners overtaken on this week's points board, or who just entered its top 10, are told (once a day)."""
    rt = job_runtime()
    now = rt.clock.now()
    after: int | None = 0
    while after is not None:  # a transaction per page of the board, by partner id
        async with rt.unit_of_work() as uow:
            after = await rt.use_cases(uow).leaderboards.notify_changes(now, after, RANK_NOTICE_BATCH)


PUSH_LEADERBOARDS = "bot.scheduling.jobs:push_leaderboards"
PUSH_LEADERBOARDS_ID = "leaderboards:push"
LEADERBOARD_PUSH_BATCH = 200


# Every 5 minutes. A run more than 4 minutes late is skipped: the next one finds the same partners (a partner is due
# for 3 hours from their push hour, until their push is recorded); missed runs coalesce; one instance, and the
# leaderboard_pushes row plus the outbox dedupe key 'rank-push:<partner>:<period>' send each push once.
@scheduled_job(misfire_grace_time=240, coalesce=True, max_instances=1)
async def push_leaderboards() -> None:
    """On Mondays (last week) and on the 1st (last month), at each partner's push hour: the top 10 and their place."""
    rt = job_runtime()
    now = rt.clock.now()
    total = await _in_batches(
        rt, lambda uc: uc.leaderboards.push_due(now, LEADERBOARD_PUSH_BATCH), LEADERBOARD_PUSH_BATCH
    )
    if total:
        log.info("leaderboards: queued %s pushes", total)


EVALUATE_RECENT_LEVELS = "bot.scheduling.jobs:evaluate_recent_levels"
EVALUATE_RECENT_LEVELS_ID = "levels:events"
RECENT_EVENTS_BATCH = 2000


# Every minute. A run more than 50 s late is skipped: the next one is due within seconds and starts where the
# cursor stopped (job_cursors 'levels:events'), so nothing is lost; missed runs coalesce; one instance, so two runs
# never read the same events at once (badges are once by their primary key and notices deduplicated anyway).
@scheduled_job(misfire_grace_time=50, coalesce=True, max_instances=1)
async def evaluate_recent_levels() -> None:
    """Partners who shared, followed up, added a lead, sold, recruited, graduated or won a sprint since the last
    run get their level and badges evaluated now, not only at the nightly review."""
    rt = job_runtime()
    evaluated = awarded = 0
    more = True
    while more:  # a transaction per batch of events
        async with rt.unit_of_work() as uow:
            run, more = await rt.use_cases(uow).levels.evaluate_recent(rt.clock.now(), RECENT_EVENTS_BATCH)
        evaluated += run.evaluated
        awarded += len(run.badges) + len(run.promoted) + len(run.demoted)
    if awarded:
        log.info("levels on events: %s partners evaluated, %s badges or level changes", evaluated, awarded)
        rt.sender.wake()


SWEEP_STREAKS = "bot.scheduling.jobs:sweep_streaks"
SWEEP_STREAKS_ID = "streaks:sweep"
STREAK_BATCH = 500


# Every 10 minutes. A run more than 9 minutes late is skipped: the next one is due within minutes and finds the
# same partners (a missed day stays unchecked until a run checks it; tonight's reminder stays due until midnight);
# missed runs coalesce; one instance. The event key 'streak_freeze:<partner>:<day>' and the outbox keys
# 'streak-freeze:<partner>:<day>' and 'streak-risk:<partner>:<day>' make a repeated run record and send nothing twice.
@scheduled_job(misfire_grace_time=540, coalesce=True, max_instances=1)
async def sweep_streaks() -> None:
    """Missed days that are over get a streak freeze when one is left; partners whose streak is at risk get
    tonight's one reminder once their local reminder hour has come."""
    rt = job_runtime()
    now = rt.clock.now()
    async with rt.unit_of_work() as uow:
        zones = await rt.use_cases(uow).streaks.timezones()
    frozen = reminded = 0
    for zone in zones:  # freezes first: a day covered after midnight keeps the streak the evening check reads
        frozen += await _streak_pages(rt, zone, now, remind=False)
        reminded += await _streak_pages(rt, zone, now, remind=True)
    if frozen or reminded:
        log.info("streaks: %s freezes used, %s at-risk reminders queued", frozen, reminded)
        rt.sender.wake()


async def _streak_pages(rt: JobRuntime, zone: str | None, now: datetime, *, remind: bool) -> int:
    """One streak step over a time zone's partners, a page (a transaction) at a time; what it did in all."""
    after = done = 0
    while True:
        async with rt.unit_of_work() as uow:
            streaks = rt.use_cases(uow).streaks
            step = streaks.remind_page if remind else streaks.freeze_page
            page = await step(zone, now, after_id=after, limit=STREAK_BATCH)
        done += page.done
        if page.seen < STREAK_BATCH:
            return done
        after = page.last_id


REFRESH_ROLLUPS = "bot.scheduling.jobs:refresh_rollups"
REFRESH_ROLLUPS_ID = "rollups:refresh"


# Every 5 minutes. A run more than 4 minutes late is skipped: the next one is due soon and recomputes the same two
# days; missed runs coalesce; one instance. Recomputing a day replaces its rows, so a repeated run changes nothing.
# After downtime longer than a day, `python run_bot.py rollups rebuild FROM` fills the days in between.
@scheduled_job(misfire_grace_time=240, coalesce=True, max_instances=1)
async def refresh_rollups() -> None:
    """Yesterday's and today's behaviour rollups, recomputed (a transaction per day): dashboards stay minutes fresh
    and late events (an order settled after midnight) still land on their day."""
    rt = job_runtime()
    today = rt.clock.now().astimezone(rt.ctx.timezone).date()
    rows = 0
    for day in (today - timedelta(days=1), today):
        async with rt.unit_of_work() as uow:
            rows += await rt.use_cases(uow).behaviour.recompute(day)
    log.debug("rollups: %s partner-days recomputed", rows)


SEND_TEAM_DIGESTS = "bot.scheduling.jobs:send_team_digests"
SEND_TEAM_DIGESTS_ID = "digests:send"
DIGEST_BATCH = 100


# Every 5 minutes. A run more than 4 minutes late is skipped: the next one is due soon and finds the same leads (a
# digest is due from the lead's digest time until the day ends, and `digests_sent` records it once built); missed
# runs coalesce; one instance. The outbox keys 'digest:lead:<lead>:daily|weekly:<local date>' send nothing twice.
@scheduled_job(misfire_grace_time=240, coalesce=True, max_instances=1)
async def send_team_digests() -> None:
    """Team leads whose local digest time has come get today's team digest (and on Monday the weekly one), with the
    14-day chart; pages of 100 leads, a transaction each."""
    rt = job_runtime()
    now = rt.clock.now()
    sent = 0

    async def read(after: int) -> ReadDigests:
        async with rt.unit_of_work() as uow:
            return await rt.use_cases(uow).digests.read_due(now, after, DIGEST_BATCH)

    # A page is read (in a unit of work of its own) while the page before is composed, and queued once the page
    # after it is composed: the database, the composing and the chart workers all work at once.
    reading: asyncio.Task[ReadDigests] | None = asyncio.create_task(read(0), name="digests-read")
    drawing: list[PreparedDigests] = []  # composed pages, their charts being drawn
    try:
        while reading is not None:
            page = await reading
            reading = None
            last = page.page.seen < DIGEST_BATCH
            if not last:
                reading = asyncio.create_task(read(page.page.last_id), name="digests-read")
            async with rt.unit_of_work() as uow:
                digests = rt.use_cases(uow).digests
                drawing.append(await digests.compose(page))
                while drawing and (len(drawing) > 1 or last):
                    sent += await digests.queue(drawing[0], now)
                    drawing.pop(0)
    finally:
        if reading is not None:  # a page failed: the one being read is not wanted, nor are the charts drawn
            reading.cancel()
            with contextlib.suppress(BaseException):
                read_ahead = await reading
                await read_ahead.charts.cancel()
        for unqueued in drawing:
            await unqueued.charts.cancel()
    if sent:
        log.info("queued %s team digests", sent)
        rt.sender.wake()
