"""Leader locks on shared infrastructure: a Redis key with a TTL, or a PostgreSQL advisory lock.

Both answer one question for the scheduler election: "is this process still the one allowed to run
jobs?" (see `bot.scheduling.leader`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import uuid
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

# Take the key when it is free, or refresh it when it is already ours (a restarted election loop).
_ACQUIRE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return 1
end
return 0
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def holder_token() -> str:
    """Who holds a lock, readable in Redis and logs: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lock_name_for(database_url: str) -> str:
    """The deployment a lock belongs to: the database whose job table it protects.

    The database name (not the host, which processes may spell differently) keeps two deployments
    sharing one Redis from electing a single leader between them.
    """
    url = make_url(database_url)
    return f"pa:scheduler:leader:{url.database or 'default'}"


class RedisLeaderLock:
    """A Redis key holding this process's token, with a TTL the holder keeps renewing.

    When the holder dies the key expires after at most ``ttl_seconds`` and a standby takes it.
    Renewal and release only touch the key while it still holds our token, so a deposed leader can
    never extend or delete its successor's lock.
    """

    kind = "redis"

    def __init__(self, redis: Redis, key: str, ttl_seconds: float, *, token: str | None = None) -> None:
        self._redis = redis
        self.key = key
        self.ttl_ms = max(1, round(ttl_seconds * 1000))
        self.token = token or holder_token()

    async def acquire(self) -> bool:
        return bool(await self._redis.eval(_ACQUIRE, 1, self.key, self.token, self.ttl_ms))

    async def renew(self) -> bool:
        return bool(await self._redis.eval(_RENEW, 1, self.key, self.token, self.ttl_ms))

    async def release(self) -> None:
        await self._redis.eval(_RELEASE, 1, self.key, self.token)

    async def close(self) -> None:
        return None  # the Redis client belongs to the app


def advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class PostgresAdvisoryLock:
    """A session-level ``pg_try_advisory_lock`` held on a dedicated connection.

    The lock lives exactly as long as that database session: when the leader process dies, the server
    sees the connection close and drops the lock, so a standby gets it on its next try. TCP
    keepalives on the session make the server notice a silently vanished leader within about the TTL.
    Advisory locks are per database, so the key only has to be unique within the deployment.
    """

    kind = "postgres"

    def __init__(self, database_url: str, ttl_seconds: float, *, name: str = "partner-assistant:scheduler") -> None:
        self.key = advisory_key(name)
        keepalive = max(1, round(ttl_seconds / 3))
        server_settings = {
            "application_name": "partner-assistant-scheduler-lock",
            "tcp_keepalives_idle": str(keepalive),
            "tcp_keepalives_interval": str(keepalive),
            "tcp_keepalives_count": "3",
        }
        connect_args: dict[str, Any] = {"server_settings": server_settings, "timeout": max(1.0, ttl_seconds / 3)}
        self._engine: AsyncEngine = create_async_engine(database_url, poolclass=NullPool, connect_args=connect_args)
        self._conn: AsyncConnection | None = None
        self._held = False

    async def _connection(self) -> AsyncConnection:
        if self._conn is None:
            conn = await self._engine.connect()
            self._conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    async def acquire(self) -> bool:
        if self._held:
            return await self.renew()
        try:
            conn = await self._connection()
            self._held = bool(
                (await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})).scalar_one()
            )
        except Exception:
            await self._drop_connection()
            raise
        return self._held

    async def renew(self) -> bool:
        """Still held: our session is alive and the server lists the lock as granted to it."""
        if not self._held or self._conn is None:
            return False
        query = text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted"
            " AND classid::bigint = :classid AND objid::bigint = :objid AND objsubid = 1"
        )
        # A bigint advisory key shows in pg_locks as its high and low 32 bits, unsigned.
        params = {"classid": (self.key >> 32) & 0xFFFFFFFF, "objid": self.key & 0xFFFFFFFF}
        try:
            held = bool((await self._conn.execute(query, params)).scalar_one())
        except Exception:
            await self._drop_connection()
            raise
        if not held:
            self._held = False
        return held

    async def release(self) -> None:
        if self._held and self._conn is not None:
            try:
                await self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            finally:
                self._held = False

    async def close(self) -> None:
        await self._drop_connection()
        await self._engine.dispose()

    async def _drop_connection(self) -> None:
        """Closing the session releases the advisory lock on the server."""
        self._held = False
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception as exc:
                log.debug("closing the scheduler lock connection failed: %s", exc)
                with contextlib.suppress(Exception):
                    await conn.invalidate()
