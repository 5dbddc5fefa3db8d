"""Log lines that say which update or job they belong to, as text or as one JSON object per line (LOG_FORMAT)."""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

# Context variables are module-level by design (one per name, the value per task): the update middleware sets
# CURRENT_UPDATE_ID for the handling of one update, the scheduler's executor CURRENT_JOB_ID for one job run.
CURRENT_UPDATE_ID: ContextVar[int | None] = ContextVar("current_update_id", default=None)
CURRENT_JOB_ID: ContextVar[str | None] = ContextVar("current_job_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, update_id or job_id when the
    line was written while handling an update or running a job, and exception / stack text when there is any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        update_id = CURRENT_UPDATE_ID.get()
        if update_id is not None:
            entry["update_id"] = update_id
        job_id = CURRENT_JOB_ID.get()
        if job_id is not None:
            entry["job_id"] = job_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_handler(log_format: str, filename: str | None = None) -> logging.Handler:
    """A handler writing to `filename` (else stderr) in LOG_FORMAT: text or json."""
    handler: logging.Handler = logging.FileHandler(filename) if filename else logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    return handler
