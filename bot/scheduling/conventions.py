"""How jobs are named and referenced, so a job written today still runs after a restart or a deploy.

- A job is an ``async def`` at module level, referenced as the string ``"package.module:function"``.
  The job store keeps that string, never the function object, so a job survives restarts and needs
  no pickled code.
- Its keyword arguments are ids only (``int`` or ``str``): no bot, no ORM object, nothing whose
  pickled shape changes between releases. The job looks everything else up when it runs.
- Every job declares its misfire policy with `@scheduled_job(...)` beside its code; scheduling an
  undecorated function is refused, so no job runs with a policy nobody chose.
- Job ids are deterministic (`job_id("remind", "lead", 42, at=...)` gives
  ``remind:lead:42:2026-11-26T09:00``): scheduling the same thing again replaces the stored job
  instead of adding a second one. Instants in ids are UTC, so a daylight-saving fold (the same local
  01:30 twice) can never give two different runs one id, nor one run two ids.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

JOB_ID_MAX_LENGTH = 191  # the width of apscheduler_jobs.id
JOB_REF_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
ID_KEY_RE = re.compile(r"^[a-z_][a-z0-9_]*$")
POLICY_ATTRIBUTE = "__job_policy__"

JobArg = int | str
"""What a job's keyword argument may be: an id (or a short code such as a date string)."""

JobFunction = Callable[..., Awaitable[None]]
F = TypeVar("F", bound=JobFunction)


class JobRefError(ValueError):
    """A job reference, id or argument breaks the conventions above."""


@dataclass(frozen=True, slots=True)
class JobPolicy:
    """What happens when a run could not start on time (the process was down, the clock jumped).

    - ``misfire_grace_time``: seconds after the planned time a run is still worth doing; later runs
      are skipped. ``None`` means "always run, however late".
    - ``coalesce``: when several planned runs were missed, run once instead of once per missed time.
    - ``max_instances``: how many runs of this job may overlap in the leader process.
    """

    misfire_grace_time: int | None
    coalesce: bool
    max_instances: int = 1

    def __post_init__(self) -> None:
        if self.misfire_grace_time is not None and self.misfire_grace_time < 1:
            raise JobRefError("misfire_grace_time must be at least 1 second, or None")
        if self.max_instances < 1:
            raise JobRefError("max_instances must be at least 1")


def scheduled_job(*, misfire_grace_time: int | None, coalesce: bool, max_instances: int = 1) -> Callable[[F], F]:
    """Mark an ``async def`` as a schedulable job with its misfire policy."""
    policy = JobPolicy(misfire_grace_time=misfire_grace_time, coalesce=coalesce, max_instances=max_instances)

    def mark(func: F) -> F:
        is_async: bool = inspect.iscoroutinefunction(func)  # a plain bool: no narrowing of F
        if not is_async:
            raise JobRefError(f"{func.__qualname__} must be an async def to be a scheduled job")
        func.__dict__[POLICY_ATTRIBUTE] = policy
        return func

    return mark


def job_policy(func: Callable[..., Any]) -> JobPolicy | None:
    policy = getattr(func, POLICY_ATTRIBUTE, None)
    return policy if isinstance(policy, JobPolicy) else None


def job_ref(func: Callable[..., Any]) -> str:
    """The ``"package.module:function"`` string for a module-level job function."""
    ref = f"{func.__module__}:{func.__qualname__}"
    if not JOB_REF_RE.fullmatch(ref):
        raise JobRefError(f"{ref} is not a module-level function")
    return ref


def resolve_job(ref: str) -> tuple[JobFunction, JobPolicy]:
    """Import the job behind ``ref`` and return it with its declared policy, or say what is wrong."""
    if not isinstance(ref, str) or not JOB_REF_RE.fullmatch(ref):
        raise JobRefError(f"job reference {ref!r} must look like 'package.module:function'")
    module_name, _, name = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise JobRefError(f"job reference {ref!r}: cannot import {module_name} ({exc})") from exc
    func = getattr(module, name, None)
    if func is None:
        raise JobRefError(f"job reference {ref!r}: {module_name} has no {name}")
    policy = job_policy(func)
    if policy is None or not inspect.iscoroutinefunction(func):
        raise JobRefError(f"job reference {ref!r} is not an async function marked with @scheduled_job")
    return func, policy


def check_ids(ids: Mapping[str, object]) -> dict[str, JobArg]:
    """Keyword arguments of a job: lower-case names, ``int`` or ``str`` values, nothing else."""
    checked: dict[str, JobArg] = {}
    for key, value in ids.items():
        if not ID_KEY_RE.fullmatch(key):
            raise JobRefError(f"job argument name {key!r} must be snake_case")
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise JobRefError(
                f"job argument {key}={type(value).__name__}: jobs take ids (int or str) only, "
                "never objects; look the object up inside the job"
            )
        checked[key] = value
    return checked


def format_instant(at: datetime) -> str:
    """An aware instant as it appears in job ids: UTC, to the minute (seconds only when present)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise JobRefError("job ids take timezone-aware datetimes")
    utc = at.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M" if utc.second == 0 and utc.microsecond == 0 else "%Y-%m-%dT%H:%M:%S")


def job_id(*parts: str | int, at: datetime | None = None) -> str:
    """A deterministic job id such as ``remind:lead:42:2026-11-26T09:00``."""
    if not parts:
        raise JobRefError("a job id needs at least one part")
    texts: list[str] = []
    for part in parts:
        if isinstance(part, bool) or not isinstance(part, int | str):
            raise JobRefError(f"job id parts are str or int, not {type(part).__name__}")
        text = str(part)
        if not text or ":" in text or text != text.strip():
            raise JobRefError(f"job id part {text!r} must be non-empty, without ':' or surrounding spaces")
        texts.append(text)
    if at is not None:
        texts.append(format_instant(at))
    return check_job_id(":".join(texts))


def check_job_id(value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise JobRefError("a job id must be a non-empty string")
    if len(value) > JOB_ID_MAX_LENGTH:
        raise JobRefError(f"job id is longer than {JOB_ID_MAX_LENGTH} characters: {value[:40]}…")
    return value
