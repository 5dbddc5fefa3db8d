"""Test-only jobs. The bot processes of tier-3 tests import them from the job store's string
reference (``tests.support.jobs:record_marker``): run_bot.py's folder, the project root, is on their path."""

from __future__ import annotations

import os

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.scheduling import job_runtime, scheduled_job
from storage.models import Event

MARKER_EVENT = "test_job_fired"


@scheduled_job(misfire_grace_time=300, coalesce=True, max_instances=1)
async def record_marker(marker: str) -> None:
    """Leaves one `events` row per run, naming the marker and the process that ran it."""
    rt = job_runtime()
    async with rt.unit_of_work() as uow:
        uow.events.add(
            partner_id=None,
            type=MARKER_EVENT,
            occurred_at=rt.clock.now(),
            source="job",
            payload={"marker": marker, "pid": os.getpid()},
        )


async def not_a_job(marker: str) -> None:
    """Async but undecorated: scheduling it must be refused."""


def sync_function(marker: str) -> None:
    """Not even async."""


async def marker_runs(engine: AsyncEngine, marker: str | None = None) -> list[dict[str, object]]:
    """Payloads of the marker rows, oldest first."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(select(Event.payload).where(Event.type == MARKER_EVENT).order_by(Event.id))
        ).scalars()
        payloads = [dict(p) for p in rows]
    return [p for p in payloads if marker is None or p.get("marker") == marker]


async def job_rows(engine: AsyncEngine) -> int:
    """How many jobs the shared job store holds."""
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM apscheduler_jobs"))).scalar_one())
