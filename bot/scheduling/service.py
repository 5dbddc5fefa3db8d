"""The scheduler the rest of the code uses: persisted jobs, run only by the elected leader.

`JobScheduler` implements the `bot.ports.Scheduler` port on APScheduler 3:

- jobs live in ``apscheduler_jobs`` in the application database (`storage.jobstore`), so they
  survive restarts and every process of a fleet sees the same jobs;
- every process starts APScheduler *paused*: a paused scheduler writes jobs to the store but runs
  none. The process that wins the leader lock (`bot.scheduling.leader`) resumes it; losing the lock
  pauses it again at once;
- APScheduler only reads its store when its own timer says the next known job is due, so jobs that
  another process wrote would wait for that timer. The leader therefore wakes it every
  ``poll_seconds`` (``SCHEDULER_POLL_SECONDS``): a job scheduled anywhere starts within that time.

Why a day's job does not fire twice when the wall clock steps (NTP correction, VM resume, manual
change):

- the job store holds one row per job id, and the pass that starts a run also, before any other pass
  can see it, deletes a one-off job's row or moves a recurring job's ``next_run_time`` past the run.
  A clock stepping backwards finds the one-off job gone and the recurring job's next time still
  ahead (tomorrow's 09:00 stays tomorrow's), so nothing fires again;
- a clock stepping forwards over several planned times gives one run per job when the job
  coalesces, or none when it is later than the job's misfire grace;
- ids are deterministic and carry UTC instants, so whatever re-creates "today's" jobs (a restart, a
  handler, another process) overwrites the same row instead of adding a second one;
- re-scheduling a recurring job *unchanged* (same function, ids, policy and trigger, as every start
  does) keeps its stored next run instead of recomputing it from the wall clock, so a restart while
  the clock is stepped back cannot put today's already-run 09:00 in front of the clock again;
- APScheduler's timer runs on the event loop's monotonic clock, and the leader's periodic wakeup
  re-reads the store against the new wall time within ``poll_seconds`` of a step.

What remains is re-scheduling a one-off job that has *already run* with a past time: that is a new
run by design. Jobs that must never repeat write their effects with dedupe keys derived from their id
(outbox rows have a unique ``dedupe_key``).

The store is synchronous: writes from `schedule_*`/`cancel` run in a worker thread (retrying a locked
SQLite database for a few seconds); the leader's wakeup reads and updates run on the event loop, as
APScheduler's AsyncIOScheduler does, on a connection whose waits are capped (`storage.jobstore.create_sync_engine`:
0.1 s for SQLite's lock, a few seconds for PostgreSQL); when one fails the wakeup looks again a second later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.logs import CURRENT_JOB_ID
from bot.scheduling.conventions import JobArg, JobPolicy, JobRefError, check_ids, check_job_id, resolve_job
from bot.scheduling.leader import ElectionState, LeaderElection, LeaderLock
from bot.scheduling.runtime import JobRuntime, running_with

log = logging.getLogger(__name__)

SchedulerState = ElectionState


class RuntimeExecutor(AsyncIOExecutor):  # type: ignore[misc]
    """Runs coroutine jobs on the loop with this app's `JobRuntime` as the current runtime."""

    def __init__(self) -> None:
        super().__init__()
        self.runtime: JobRuntime | None = None
        self.on_run: Callable[[str, str, float | None], None] | None = None
        self._started: dict[str, tuple[str, float]] = {}
        """job id -> (job function name, perf_counter at submission) of the runs in flight, for `on_run`."""

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        if self.runtime is None:
            raise RuntimeError("no JobRuntime installed: call JobScheduler.install_runtime() first")
        if self.on_run is not None:
            self._started[job.id] = (str(job.func_ref).rpartition(":")[2], time.perf_counter())
        job_token = CURRENT_JOB_ID.set(job.id)  # every log line of the run carries the job id
        try:
            with running_with(self.runtime):  # the job's task copies this context when it is created
                super()._do_submit_job(job, run_times)
        finally:
            CURRENT_JOB_ID.reset(job_token)

    def _run_job_success(self, job_id: str, events: list[Any]) -> None:
        super()._run_job_success(job_id, events)
        name, started = self._started.pop(job_id, (job_id, time.perf_counter()))
        if self.on_run is not None:
            seconds = time.perf_counter() - started
            for event in events:
                if event.code == EVENT_JOB_MISSED:  # too late for its misfire grace time: not run
                    self.on_run(name, "missed", None)
                else:
                    self.on_run(name, "error" if event.code == EVENT_JOB_ERROR else "ok", seconds)

    def _run_job_error(self, job_id: str, exc: BaseException, traceback: Any = None) -> None:
        super()._run_job_error(job_id, exc, traceback)
        name, started = self._started.pop(job_id, (job_id, time.perf_counter()))
        if self.on_run is not None:
            self.on_run(name, "error", time.perf_counter() - started)

    def running(self) -> list[asyncio.Future[Any]]:
        return [f for f in self._pending_futures if not f.done()]


STORE_RETRY_SECONDS = 1.0
STORE_PATIENCE_SECONDS = 5.0
"""How long a store call from a worker thread keeps retrying a locked SQLite database."""

T = TypeVar("T")


def _patiently(call: Callable[..., T], *args: Any) -> T:
    """A job store call made in a worker thread, retried while SQLite reports the database locked.

    The store's SQLite connection gives up on a lock after 0.1 s (`storage.jobstore`), which the leader's wakeup on
    the event loop needs; off the loop, waiting harms nothing, so calls from `schedule_*`, `cancel` and the readers
    retry for up to STORE_PATIENCE_SECONDS, as the store's own longer wait used to. Anything else is raised at once.
    """
    deadline = time.monotonic() + STORE_PATIENCE_SECONDS
    while True:
        try:
            return call(*args)
        except OperationalError as exc:
            if "locked" not in str(exc.orig) or time.monotonic() >= deadline:
                raise
        time.sleep(0.05)


class _ResilientScheduler(AsyncIOScheduler):  # type: ignore[misc]  # APScheduler has no type information
    """AsyncIOScheduler whose wakeup survives a job store that cannot be reached for a moment.

    On SQLite a wakeup can find the database locked (a write transaction of the same process, waiting for the
    event loop the wakeup is blocking; the store gives up after 0.1 s so that transaction can finish); on
    PostgreSQL the server may be restarting. APScheduler would raise out of its timer callback (a traceback, and
    no timer until the next tick). Instead this logs one line and looks again shortly. A job whose run was started but
    whose next run could not be stored may run once more: jobs write their effects with dedupe keys.
    """

    def _process_jobs(self) -> float | None:
        try:
            wait: float | None = super()._process_jobs()
        except (OperationalError, DBAPIError) as exc:
            log.warning(
                "job store unavailable (%s); the scheduler looks again in %s s",
                type(getattr(exc, "orig", exc)).__name__,
                STORE_RETRY_SECONDS,
            )
            return STORE_RETRY_SECONDS
        return wait


class JobScheduler:
    """Schedule, replace and cancel persisted jobs from any process; run them only in the leader."""

    def __init__(
        self,
        job_store: Any,
        lock: LeaderLock,
        *,
        lock_ttl_seconds: float = 15.0,
        poll_seconds: float = 2.0,
    ) -> None:
        self._executor = RuntimeExecutor()
        self._aps = _ResilientScheduler(
            timezone=UTC,
            jobstores={"default": job_store},
            executors={"default": self._executor},
            # Only for jobs added without a policy, which `_add` never does: every job declares its own.
            job_defaults={"misfire_grace_time": 60, "coalesce": True, "max_instances": 1},
        )
        self._election = LeaderElection(
            lock,
            ttl_seconds=lock_ttl_seconds,
            on_elected=self._on_elected,
            on_deposed=self._on_deposed,
            on_tick=self.wakeup,
            tick_seconds=poll_seconds,
        )
        self._elect = True

    # ------------------------------------------------------------------ lifecycle

    def observe_runs(self, on_run: Callable[[str, str, float | None], None]) -> None:
        """Call `on_run(job function name, outcome, seconds)` after every run: ok or error with its duration,
        missed (too late for its misfire grace time) without one. Called on the event loop (metrics)."""
        self._executor.on_run = on_run

    def install_runtime(self, runtime: JobRuntime) -> None:
        """Give jobs run by this scheduler the app's parts (called by the app factory)."""
        self._executor.runtime = runtime

    @property
    def state(self) -> ElectionState:
        """leader (runs jobs), standby (writes jobs, waits for the lock) or stopped."""
        if not self._aps.running:
            return ElectionState.STOPPED
        if not self._elect:
            return ElectionState.STANDBY
        return self._election.state

    async def start(self, *, elect: bool = True) -> None:
        """Open the job store (paused) and, with ``elect``, start competing for leadership.

        ``elect=False`` gives a writer that never runs jobs (tools, tests, a process that must not lead).
        """
        self._elect = elect
        self._aps.start(paused=True)
        if elect:
            self._election.start()

    async def stop(self, *, grace_seconds: float = 10.0, release_lock: bool = True) -> None:
        """Step down, free the lock, let running jobs finish (up to ``grace_seconds``) and close the store.

        ``release_lock=False`` leaves the lock to expire as a crashed process would (handover tests).
        """
        if self._elect:
            await self._election.stop(release=release_lock)
        running = self._executor.running() if self._aps.running else []
        if running:
            await asyncio.wait(running, timeout=grace_seconds)
        if self._aps.running:
            self._aps.shutdown(wait=False)  # cancels what is still running
            for _ in range(100):  # AsyncIOScheduler shuts down on the next loop iteration
                if not self._aps.running:
                    break
                await asyncio.sleep(0)

    async def _on_elected(self) -> None:
        self._aps.resume()

    async def _on_deposed(self) -> None:
        # Pausing starts no new runs from now on. Runs already started finish: the store has already
        # moved past them, so no other leader will start the same occurrence.
        if self._aps.running:
            self._aps.pause()

    def wakeup(self) -> None:
        """Re-read the job store now (the leader does this every poll interval)."""
        if self._aps.running:
            self._aps.wakeup()

    async def run_due_jobs(self) -> None:
        """Start the jobs that are due now and wait until they finish (tests, tools)."""
        self.wakeup()
        await asyncio.sleep(0)  # the wakeup runs on the next loop iteration
        await asyncio.sleep(0)
        running = self._executor.running()
        if running:
            await asyncio.wait(running)

    # ------------------------------------------------------------------ the Scheduler port

    async def schedule_at(self, job_ref: str, run_at: datetime, job_id: str, /, **ids: JobArg) -> None:
        if run_at.tzinfo is None or run_at.utcoffset() is None:
            raise JobRefError("run_at must be timezone-aware")
        await self._add(job_ref, job_id, DateTrigger(run_date=run_at.astimezone(UTC), timezone=UTC), ids)

    async def schedule_interval(
        self,
        job_ref: str,
        job_id: str,
        /,
        *,
        every: timedelta,
        first_run_at: datetime | None = None,
        **ids: JobArg,
    ) -> None:
        if every <= timedelta(0):
            raise JobRefError("every must be positive")
        if first_run_at is not None and (first_run_at.tzinfo is None or first_run_at.utcoffset() is None):
            raise JobRefError("first_run_at must be timezone-aware")
        trigger = IntervalTrigger(
            seconds=every.total_seconds(),
            start_date=first_run_at.astimezone(UTC) if first_run_at else None,
            timezone=UTC,
        )
        await self._add(job_ref, job_id, trigger, ids, explicit_start=first_run_at is not None)

    async def schedule_cron(
        self, job_ref: str, job_id: str, /, *, cron: str, timezone: str = "UTC", **ids: JobArg
    ) -> None:
        try:
            trigger = CronTrigger.from_crontab(cron, timezone=ZoneInfo(timezone))
        except ValueError as exc:
            raise JobRefError(f"bad crontab {cron!r}: {exc}") from exc
        await self._add(job_ref, job_id, trigger, ids)

    async def cancel(self, job_id: str) -> bool:
        self._require_started()
        try:
            await asyncio.to_thread(_patiently, self._aps.remove_job, job_id, "default")
        except JobLookupError:
            return False
        log.info("cancelled job %s", job_id)
        return True

    async def next_run_at(self, job_id: str) -> datetime | None:
        self._require_started()
        job = await asyncio.to_thread(_patiently, self._aps.get_job, job_id, "default")
        if job is None or job.next_run_time is None:
            return None
        run_at: datetime = job.next_run_time.astimezone(UTC)
        return run_at

    async def job_ids(self) -> list[str]:
        """Every stored job id, soonest first (paused jobs last)."""
        self._require_started()
        jobs = await asyncio.to_thread(_patiently, self._aps.get_jobs, "default")
        return [str(job.id) for job in jobs]

    async def _add(
        self, job_ref: str, job_id: str, trigger: Any, ids: Mapping[str, object], *, explicit_start: bool = True
    ) -> None:
        self._require_started()
        _func, policy = resolve_job(job_ref)
        kwargs = check_ids(ids)
        check_job_id(job_id)
        wanted = _Schedule(job_ref, kwargs, policy, _trigger_key(trigger, explicit_start=explicit_start))
        written = await asyncio.to_thread(_patiently, self._write, job_id, trigger, wanted, explicit_start)
        if not written:
            log.debug("job %s is already scheduled exactly so; its next run is kept", job_id)

    def _write(self, job_id: str, trigger: Any, wanted: _Schedule, explicit_start: bool) -> bool:
        """Add or replace the job, unless the stored one is the same schedule (then keep its next run).

        Keeping an unchanged job matters for recurring jobs registered at every start: re-adding would
        recompute the next run from "now", which resets an interval on every restart and, while the
        wall clock is stepped back, would put today's already-run 09:00 in front of the clock again.
        """
        existing = self._aps.get_job(job_id, "default")
        if existing is not None and _Schedule.of(existing, explicit_start=explicit_start) == wanted:
            return False
        self._aps.add_job(
            wanted.job_ref,  # stored as the string: the store never pickles the function
            trigger=trigger,
            id=job_id,
            name=job_id,
            kwargs=wanted.kwargs,
            replace_existing=True,
            misfire_grace_time=wanted.policy.misfire_grace_time,
            coalesce=wanted.policy.coalesce,
            max_instances=wanted.policy.max_instances,
            jobstore="default",
            executor="default",
        )
        return True

    def _require_started(self) -> None:
        if not self._aps.running:
            raise RuntimeError("the scheduler is not started")


@dataclass(frozen=True, slots=True)
class _Schedule:
    """What makes two stored jobs "the same schedule": function, ids, policy and trigger."""

    job_ref: str
    kwargs: dict[str, JobArg]
    policy: JobPolicy
    trigger: tuple[Any, ...]

    @classmethod
    def of(cls, job: Any, *, explicit_start: bool) -> _Schedule:
        policy = JobPolicy(
            misfire_grace_time=job.misfire_grace_time, coalesce=job.coalesce, max_instances=job.max_instances
        )
        return cls(
            str(job.func_ref), dict(job.kwargs), policy, _trigger_key(job.trigger, explicit_start=explicit_start)
        )


def _trigger_key(trigger: Any, *, explicit_start: bool) -> tuple[Any, ...]:
    """A comparable description of a trigger. An interval's start counts only when the caller chose it."""
    if isinstance(trigger, DateTrigger):
        return ("date", trigger.run_date)
    if isinstance(trigger, IntervalTrigger):
        return ("interval", trigger.interval, str(trigger.timezone), trigger.start_date if explicit_start else None)
    if isinstance(trigger, CronTrigger):
        return ("cron", str(trigger), str(trigger.timezone))
    return ("other", repr(trigger))
