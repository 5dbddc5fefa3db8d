"""The fleet-wide record of update ids already taken by some bot process (Redis ``SET NX EX``)."""

from __future__ import annotations

from redis.asyncio import Redis


class RedisUpdateDedupe:
    """One key per update: claimed with a short TTL while handled, then kept for the dedupe window.

    The short claim means an update whose instance died mid-handling can be handled again when
    Telegram redelivers it after ``claim_seconds``; a handled one is refused for ``ttl_seconds``.
    """

    def __init__(self, redis: Redis, ttl_seconds: int, *, claim_seconds: int = 120, prefix: str = "pa:update") -> None:
        self._redis = redis
        self._ttl = ttl_seconds
        self._claim = min(claim_seconds, ttl_seconds)
        self._prefix = prefix

    async def claim(self, key: str) -> bool:
        return bool(await self._redis.set(f"{self._prefix}:{key}", b"handling", nx=True, ex=self._claim))

    async def complete(self, key: str) -> None:
        await self._redis.set(f"{self._prefix}:{key}", b"handled", ex=self._ttl)

    async def busy(self, key: str) -> bool:
        return bool(await self._redis.get(f"{self._prefix}:{key}") == b"handling")
