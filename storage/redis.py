"""Redis adapters: the client every part shares, and the throttle counter (FSM storage and isolation come from
aiogram)."""

from __future__ import annotations

import math
import time

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

HEALTH_CHECK_SECONDS = 5
"""A pooled connection idle this long is PINGed before it carries a command."""
SOCKET_TIMEOUT_SECONDS = 5.0
"""A Redis that stops answering (a network partition, not a refused connection) fails a command after this long
instead of holding the update for as long as TCP takes to notice."""


def redis_client(url: str) -> Redis:
    """The process's Redis client. Without retries (`Redis.from_url` sets none), every connection pooled before an
    outage failed the first command it carried after Redis came back: a user got the error text although Redis was
    up again. Idle connections are checked first and a command that met a dead connection is tried again on a new
    one (twice, 50-200 ms apart). A retried write whose reply was lost may apply twice; the writes this bot makes
    survive that: counters over-count one hit, a repeated `SET NX` claim finds its own key and is treated as taken
    (the update is redelivered after the claim expires, the lock waits for its expiry)."""
    return Redis.from_url(
        url,
        health_check_interval=HEALTH_CHECK_SECONDS,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 2),
    )


class RedisThrottle:
    """Fixed-window counter shared by every bot process."""

    def __init__(self, redis: Redis, window_seconds: float, prefix: str = "pa:throttle") -> None:
        self._redis = redis
        self._window = window_seconds
        self._prefix = prefix

    async def hit(self, key: str) -> int:
        window = math.floor(time.time() / self._window)
        redis_key = f"{self._prefix}:{key}:{window}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(redis_key)
            pipe.expire(redis_key, max(1, math.ceil(self._window * 2)))
            count, _ = await pipe.execute()
        return int(count)
