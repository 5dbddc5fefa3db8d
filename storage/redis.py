"""Redis adapters: the shared throttle counter (FSM storage and isolation come from aiogram)."""

from __future__ import annotations

import math
import time

from redis.asyncio import Redis


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
