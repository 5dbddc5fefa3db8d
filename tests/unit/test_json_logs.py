"""Tier 1: the JSON log formatter (LOG_FORMAT=json)."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from bot.logs import CURRENT_JOB_ID, CURRENT_UPDATE_ID, JsonFormatter, log_handler


def record(message: str = "hello %s", args: tuple[object, ...] = ("world",), exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    rec = logging.LogRecord("bot.test", logging.WARNING, __file__, 1, message, args, exc_info)
    rec.created = 1_764_133_200.25  # 2025-11-26T05:00:00.250Z
    return rec


def test_fields() -> None:
    line = JsonFormatter().format(record())
    assert "\n" not in line
    assert json.loads(line) == {
        "time": "2025-11-26T05:00:00.250+00:00",
        "level": "WARNING",
        "logger": "bot.test",
        "message": "hello world",
    }


def test_exception_text() -> None:
    entry = json.loads(JsonFormatter().format(record(exc=True)))
    assert entry["exception"].startswith("Traceback")
    assert entry["exception"].endswith("ValueError: boom")


@pytest.mark.parametrize(
    ("update_id", "job_id", "expected"),
    [
        (None, None, {}),
        (42, None, {"update_id": 42}),
        (None, "playbooks:tick", {"job_id": "playbooks:tick"}),
    ],
)
def test_update_and_job_ids_from_the_context(
    update_id: int | None, job_id: str | None, expected: dict[str, object]
) -> None:
    update_token, job_token = CURRENT_UPDATE_ID.set(update_id), CURRENT_JOB_ID.set(job_id)
    try:
        entry = json.loads(JsonFormatter().format(record()))
    finally:
        CURRENT_UPDATE_ID.reset(update_token)
        CURRENT_JOB_ID.reset(job_token)
    assert {k: v for k, v in entry.items() if k in ("update_id", "job_id")} == expected


def test_non_ascii_and_odd_arguments_stay_one_json_line() -> None:
    entry = json.loads(JsonFormatter().format(record("伙伴 %s\n%r", ("助手", {1, 2}))))
    assert entry["message"] == "伙伴 助手\n{1, 2}"


@pytest.mark.parametrize(("log_format", "formatter"), [("json", JsonFormatter), ("text", logging.Formatter)])
def test_log_handler_format(log_format: str, formatter: type[logging.Formatter]) -> None:
    assert type(log_handler(log_format).formatter) is formatter
