"""Protocols the services depend on, so they never import the adapters behind them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol


class Scheduler(Protocol):
    """Persisted jobs: schedule, replace and cancel work that runs later in the scheduler leader.

    ``job_ref`` is ``"package.module:function"`` naming an ``async def`` marked with
    `bot.scheduling.scheduled_job`; ``ids`` are its keyword arguments and may only be ints or
    strings. Scheduling with an existing ``job_id`` replaces that job (deterministic ids: see
    `bot.scheduling.job_id`); re-scheduling it unchanged keeps its next run time. Any process may
    call these methods; only the elected leader runs jobs. The job store is written in its own
    transaction, not the caller's unit of work: schedule after the change that needs the job, and
    write jobs so they do nothing when what they refer to is gone.
    """

    async def schedule_at(self, job_ref: str, run_at: datetime, job_id: str, /, **ids: int | str) -> None:
        """Run once at ``run_at`` (timezone-aware)."""
        ...

    async def schedule_interval(
        self,
        job_ref: str,
        job_id: str,
        /,
        *,
        every: timedelta,
        first_run_at: datetime | None = None,
        **ids: int | str,
    ) -> None:
        """Run every ``every``, first at ``first_run_at`` (default: one interval from now)."""
        ...

    async def schedule_cron(
        self, job_ref: str, job_id: str, /, *, cron: str, timezone: str = "UTC", **ids: int | str
    ) -> None:
        """Run on a crontab schedule (``"0 9 * * *"``) read in ``timezone``."""
        ...

    async def cancel(self, job_id: str) -> bool:
        """Remove the job; False when there was none."""
        ...

    async def next_run_at(self, job_id: str) -> datetime | None:
        """When the job runs next (UTC), or None when there is no such job."""
        ...
