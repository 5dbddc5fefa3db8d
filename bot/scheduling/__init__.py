"""Persisted jobs, leader election and the conventions jobs follow (see README "Scheduled jobs")."""

from bot.scheduling.conventions import (
    JobPolicy,
    JobRefError,
    check_ids,
    job_id,
    job_ref,
    resolve_job,
    scheduled_job,
)
from bot.scheduling.leader import ElectionState, LeaderElection, LeaderLock, LocalLeaderLock
from bot.scheduling.runtime import JobRuntime, job_runtime, running_with
from bot.scheduling.service import JobScheduler, SchedulerState

__all__ = [
    "ElectionState",
    "JobPolicy",
    "JobRefError",
    "JobRuntime",
    "JobScheduler",
    "LeaderElection",
    "LeaderLock",
    "LocalLeaderLock",
    "SchedulerState",
    "check_ids",
    "job_id",
    "job_ref",
    "job_runtime",
    "resolve_job",
    "running_with",
    "scheduled_job",
]
