"""Scheduled job runs are counted and timed by job function; their log lines carry the job id."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import SystemClock
from bot.logs import JsonFormatter
from bot.monitoring import Metrics
from bot.scheduling import SchedulerState
from tests.scheduling.conftest import wait_until

MARKER = "tests.support.jobs:record_marker"


class JsonCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[dict[str, object]] = []
        self._json = JsonFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self._json.format(record)))


async def test_job_runs_are_counted_by_function_and_logged_with_the_job_id(
    job_engine: AsyncEngine, make_scheduler
) -> None:
    metrics = Metrics(SystemClock())
    capture = JsonCapture()
    executor_log = logging.getLogger("apscheduler.executors.default")
    level = executor_log.level
    executor_log.setLevel(logging.INFO)
    executor_log.addHandler(capture)
    try:
        async with make_scheduler() as scheduler:
            scheduler.observe_runs(metrics.job_run)
            await wait_until(lambda: scheduler.state is SchedulerState.LEADER)
            await scheduler.schedule_at(MARKER, datetime.now(UTC) - timedelta(seconds=1), "test:metrics:1", marker="m")
            await scheduler.run_due_jobs()
            await wait_until(
                lambda: (
                    metrics.registry.get_sample_value(
                        "partner_assistant_job_runs_total", {"job": "record_marker", "outcome": "ok"}
                    )
                    == 1
                )
            )
    finally:
        executor_log.removeHandler(capture)
        executor_log.setLevel(level)
    assert metrics.registry.get_sample_value("partner_assistant_job_seconds_count", {"job": "record_marker"}) == 1
    running = [line for line in capture.lines if str(line["message"]).startswith("Running job")]
    assert running and all(line["job_id"] == "test:metrics:1" for line in running)
