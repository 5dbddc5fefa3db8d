"""Choosing the job store and the leader lock from the settings (used by the app factory)."""

from __future__ import annotations

from redis.asyncio import Redis

from bot.config import Settings
from bot.scheduling.leader import LeaderLock, LocalLeaderLock
from bot.scheduling.service import JobScheduler
from storage.jobstore import create_job_store
from storage.leader_lock import PostgresAdvisoryLock, RedisLeaderLock, lock_name_for


def build_leader_lock(settings: Settings, redis: Redis | None) -> LeaderLock:
    """Redis when configured, else a PostgreSQL advisory lock, else (SQLite alone) the local lock."""
    ttl = settings.scheduler_lock_ttl_seconds
    if redis is not None:
        return RedisLeaderLock(redis, lock_name_for(settings.database_url), ttl)
    if settings.database_url.startswith("postgresql"):
        return PostgresAdvisoryLock(settings.database_url, ttl)
    return LocalLeaderLock()


def build_job_scheduler(settings: Settings, redis: Redis | None) -> JobScheduler:
    """The app's scheduler: jobs in the app database, run by whichever process holds the lock."""
    return JobScheduler(
        create_job_store(settings.database_url),
        build_leader_lock(settings, redis),
        lock_ttl_seconds=settings.scheduler_lock_ttl_seconds,
        poll_seconds=settings.scheduler_poll_seconds,
    )
