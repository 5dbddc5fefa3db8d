"""Telegram's flood limits for everything the bot sends on its own, shared by every sender process.

Telegram answers 429 to a bot that sends more than about 30 messages a second overall, more than about one a
second to one chat, or more than 20 a minute to one group. The limiter keeps the outbox under those limits so
broadcasts go out at full speed without being throttled, and it holds the whole bot still for exactly the
`retry_after` Telegram asks for when a 429 happens anyway.

The rates are GCRA buckets from `pyrate_limiter` (state in Redis when configured, so every process shares one
budget; in process memory otherwise). Every decision is taken at a timestamp read from the injected `Clock`,
so tests move time instead of sleeping.

A sender asks for its messages a few at a time (`take`): the 429 pause, the bot-wide slots and each chat's own
slot in one decision. On Redis that is one round trip for several messages, running pyrate_limiter's own GCRA
script once per bucket inside one Lua script, instead of three calls per message.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from inspect import isawaitable
from typing import Protocol, TypeVar

from pyrate_limiter import GCRA, Decision, InMemoryStateStore, Rate, RedisStateStore, StateStore
from redis.asyncio import Redis

from bot.clock import Clock

T = TypeVar("T")

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
CHAT_INTERVAL_S = 1.0
"""About one message a second to one chat."""
GROUP_INTERVAL_S = 3.0
"""20 messages a minute to one group, spaced evenly so no 60-second window ever holds more than 20."""
_REDIS_TTL_MS = MINUTE_MS
"""Idle limiter keys expire after a minute: far longer than any bucket takes to drain, so clocks of different
processes that disagree by a little never reset a bucket early."""


@dataclass(frozen=True, slots=True)
class DeliveryRates:
    """The budgets the limiter enforces; `per_second` is DELIVERY_RATE or, with paid broadcasts, DELIVERY_PAID_RATE."""

    per_second: int
    burst: int = 1
    """How many messages may leave back to back; 1 spaces every message exactly 1/per_second apart."""
    paid_broadcast: bool = False

    @property
    def slots_per_take(self) -> int:
        """Bot-wide slots a sender takes at once: one up to 200/s; at paid speeds five (5 ms of sending at 1000/s)
        per shared-store round trip instead of one per message."""
        return max(1, min(self.burst, self.per_second // 200))

    @classmethod
    def for_rate(cls, per_second: int, *, paid_broadcast: bool = False) -> DeliveryRates:
        """Messages spaced evenly, with a burst of two (2% of the rate at paid speeds) to absorb timer jitter.

        Without it every late wake-up would be lost for good and a 25/s setting would deliver ~24/s; with it
        the long-run rate is exact and no one-second window ever holds more than the rate plus one burst.
        """
        return cls(per_second=per_second, burst=max(2, per_second // 50), paid_broadcast=paid_broadcast)


@dataclass(frozen=True, slots=True)
class Take:
    """The limiter's answer for a few messages (`DeliveryLimiter.take`)."""

    paused: float = 0.0
    """Seconds the bot is still paused after a 429; nothing was taken."""
    wait: float = 0.0
    """Seconds until the bot-wide slots are free; nothing was taken."""
    chat_waits: tuple[float, ...] = ()
    """One per chat asked for, in order: 0 when its slot was taken (send now), else seconds until it is free."""


async def _resolve(value: T | Awaitable[T]) -> T:
    """pyrate_limiter stores answer directly (memory) or with an awaitable (async Redis)."""
    if isawaitable(value):
        return await value
    return value


class PauseFlag(Protocol):
    """When the bot may talk to the Bot API again after a 429, as epoch milliseconds."""

    async def until_ms(self) -> int: ...

    async def extend(self, until_ms: int) -> None:
        """Move the end of the pause later (never earlier)."""
        ...


class MemoryPause:
    """The pause of a single process."""

    def __init__(self) -> None:
        self._until = 0

    async def until_ms(self) -> int:
        return self._until

    async def extend(self, until_ms: int) -> None:
        self._until = max(self._until, until_ms)

    def shift(self, delta_ms: int) -> None:
        """The clock stepped by `delta_ms`: a pause in force keeps the time it had left."""
        self._until += delta_ms


_EXTEND_PAUSE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local wanted = tonumber(ARGV[1])
if wanted > current then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return wanted
end
return current
"""


class RedisPause:
    """One "paused until" key that every sender process reads before each call to the Bot API."""

    def __init__(self, redis: Redis, key: str, clock: Clock) -> None:
        self._redis = redis
        self._key = key
        self._clock = clock
        self._extend = redis.register_script(_EXTEND_PAUSE)

    async def until_ms(self) -> int:
        raw = await self._redis.get(self._key)
        return int(raw) if raw else 0

    async def extend(self, until_ms: int) -> None:
        # The key outlives the pause by a minute so a process whose clock is slightly behind still sees it.
        ttl_ms = max(1, until_ms - _epoch_ms(self._clock)) + MINUTE_MS
        await self._extend(keys=[self._key], args=[until_ms, ttl_ms])


_TAKE = """
-- KEYS[1] the 429 pause, KEYS[2] the bot-wide bucket, KEYS[3..] one bucket per chat.
-- ARGV: now_ms, ttl_ms, bot-wide slots (0: already held, take chats only), then the bot-wide, private-chat and
-- group rates, each as a count and (emission_us, burst) pairs, then one flag per chat, 1 for a group.
-- Replies {1, ms} paused, {2, ms} bot-wide slots not free (nothing taken), or {0, 0, chat_wait_ms...}.
local function rates_at(p)
    local n = tonumber(ARGV[p])
    local args = {}
    for i = 1, 2 * n do
        args[i] = ARGV[p + i]
    end
    return {n = n, args = args}, p + 1 + 2 * n
end
local now, ttl, slots = ARGV[1], ARGV[2], tonumber(ARGV[3])
local bot_rates, private_rates, group_rates, flags
bot_rates, flags = rates_at(4)
private_rates, flags = rates_at(flags)
group_rates, flags = rates_at(flags)
local function take(key, weight, rates)
    local argv = {now, weight, ttl, rates.n}
    for i = 1, #rates.args do
        argv[4 + i] = rates.args[i]
    end
    return gcra({key}, argv)
end
if slots > 0 then
    local paused = tonumber(redis.call('GET', KEYS[1]) or '0') - tonumber(now)
    if paused > 0 then
        return {1, paused}
    end
    local bot = take(KEYS[2], slots, bot_rates)
    if bot[1] >= 0 then
        return {2, bot[2]}
    end
end
local reply = {0, 0}
for i = 3, #KEYS do
    local rates = private_rates
    if ARGV[flags + i - 3] == '1' then
        rates = group_rates
    end
    local chat = take(KEYS[i], 1, rates)
    if chat[1] >= 0 then
        reply[i] = math.max(1, chat[2])
    else
        reply[i] = 0
    end
end
return reply
"""


def _take_script(gcra: GCRA) -> str:
    """`_TAKE` with pyrate_limiter's own GCRA script as its `gcra(KEYS, ARGV)` function: the body reads its
    bucket from KEYS[1] and its arguments from ARGV, which the function's parameters stand in for, so every
    bucket moves exactly as `RedisStateStore.check` would move it, in one round trip for them all."""
    body = gcra.redis_script()
    if body is None:  # pragma: no cover - GCRA always has one
        raise TypeError("pyrate_limiter's GCRA has no Redis script")
    return f"local function gcra(KEYS, ARGV)\n{body}\nend\n{_TAKE}"


def _rate_args(gcra: GCRA, rates: list[Rate]) -> list[int | float]:
    return [len(rates), *gcra.redis_args(rates)]


def _pause_key(prefix: str) -> str:
    return f"{prefix}:paused-until"


def _epoch_ms(clock: Clock) -> int:
    return int(clock.now().timestamp() * 1000)


class DeliveryLimiter:
    """Decides, per message, whether it may go to the Bot API now, or how long it has to wait.

    Build it with `in_memory` for one process or `on_redis` for several; both behave the same.
    """

    def __init__(
        self,
        clock: Clock,
        rates: DeliveryRates,
        pause: PauseFlag,
        *,
        redis: Redis | None = None,
        prefix: str = "pa:delivery",
    ) -> None:
        self._clock = clock
        self.rates = rates
        self._pause = pause
        self._redis = redis
        self._prefix = prefix
        self._gcra = GCRA()
        self._global_rates = [Rate(rates.per_second, SECOND_MS, burst=rates.burst)]
        self._chat_rates = [Rate(1, SECOND_MS, burst=1)]
        self._group_rates = [Rate(1, SECOND_MS, burst=1), Rate(20, MINUTE_MS, burst=1)]
        self._global = self._store("global")
        self._take_script = redis.register_script(_take_script(self._gcra)) if redis is not None else None
        self._rate_args = [
            *_rate_args(self._gcra, self._global_rates),
            *_rate_args(self._gcra, self._chat_rates),
            *_rate_args(self._gcra, self._group_rates),
        ]
        self._local: dict[str, StateStore] = {}
        self._idle_at: OrderedDict[str, int] = OrderedDict()
        """In memory: when each chat's bucket will have drained (epoch ms), least recently used first."""
        self._last_ms = 0
        """The latest time read, to notice the clock stepping back (NTP)."""

    @classmethod
    def in_memory(cls, clock: Clock, rates: DeliveryRates) -> DeliveryLimiter:
        """Limits held in this process: right for a single bot process."""
        return cls(clock, rates, MemoryPause())

    @classmethod
    def on_redis(
        cls, clock: Clock, rates: DeliveryRates, redis: Redis, *, prefix: str = "pa:delivery"
    ) -> DeliveryLimiter:
        """Limits and the 429 pause shared through Redis by every process that uses the same prefix."""
        return cls(clock, rates, RedisPause(redis, _pause_key(prefix), clock), redis=redis, prefix=prefix)

    @property
    def shared(self) -> bool:
        return self._redis is not None

    def _key(self, name: str) -> str:
        """The Redis key of bucket `name` ("global", "chat:<id>"): one for `take` and the one-bucket calls alike."""
        return f"{self._prefix}:{name}"

    def _store(self, name: str) -> StateStore:
        if self._redis is not None:
            return RedisStateStore(self._redis, self._key(name), ttl_ms=_REDIS_TTL_MS)
        return InMemoryStateStore()

    def _chat_store(self, name: str) -> StateStore:
        if self._redis is not None:
            # Redis expires idle chat keys itself; the store object only caches the script.
            store = self._local.get(name)
            if store is None:
                if len(self._local) >= 4096:
                    self._local.clear()
                store = self._local[name] = self._store(name)
            return store
        store = self._local.get(name)
        if store is None:
            store = self._local[name] = InMemoryStateStore()
        return store

    async def _check(self, store: StateStore, rates: list[Rate], weight: int = 1) -> float:
        decision: Decision = await _resolve(store.check(self._gcra, rates, self._now_ms(), weight))
        if decision.allowed:
            return 0.0
        return max(1, decision.retry_after_ms or 1) / 1000

    async def paused_for(self) -> float:
        """Seconds until the bot may call the Bot API again after a 429; 0 when it may now."""
        now_ms = self._now_ms()
        remaining_ms = await self._pause.until_ms() - now_ms
        return max(0, remaining_ms) / 1000

    async def pause(self, seconds: float) -> None:
        """Hold every sender back for `seconds` from now (Telegram's retry_after)."""
        await self._pause.extend(self._now_ms() + math.ceil(seconds * 1000))

    async def take_global(self, slots: int = 1) -> float:
        """Take `slots` slots of the bot-wide rate at once (at most the burst): 0 when taken, else the seconds
        until they are free."""
        return await self._check(self._global, self._global_rates, min(slots, self.rates.burst))

    async def take(self, slots: int, chat_ids: Sequence[int]) -> Take:
        """Check the 429 pause and take `slots` bot-wide slots (at most the burst), then one slot of each chat in
        `chat_ids`, as one decision: when the bot is paused or the slots are not free, nothing is taken. With
        `slots` 0 (slots already held) only the chats are taken. On Redis this is one round trip."""
        slots = min(slots, self.rates.burst)
        if self._take_script is None:
            if slots:
                paused = await self.paused_for()
                if paused > 0:
                    return Take(paused=paused)
                wait = await self.take_global(slots)
                if wait > 0:
                    return Take(wait=wait)
            return Take(chat_waits=tuple([await self.take_chat(chat_id) for chat_id in chat_ids]))
        keys = [_pause_key(self._prefix), self._key("global")]
        keys.extend(self._key(f"chat:{chat_id}") for chat_id in chat_ids)
        args = [self._now_ms(), _REDIS_TTL_MS, slots, *self._rate_args]
        args.extend(1 if chat_id < 0 else 0 for chat_id in chat_ids)
        reply = await self._take_script(keys=keys, args=args)
        status, wait_ms = int(reply[0]), int(reply[1])
        if status == 1:
            return Take(paused=wait_ms / 1000)
        if status == 2:
            return Take(wait=max(1, wait_ms) / 1000)
        return Take(chat_waits=tuple(int(ms) / 1000 for ms in reply[2:]))

    async def take_chat(self, chat_id: int) -> float:
        """Take one slot of this chat's own rate (groups, with negative ids, have the stricter one)."""
        rates = self._group_rates if chat_id < 0 else self._chat_rates
        name = f"chat:{chat_id}"
        wait = await self._check(self._chat_store(name), rates)
        if self._redis is None:
            # a refused message leaves the bucket as it was, and so when it drains
            drains_at = self._last_ms + int(self.chat_interval(chat_id) * SECOND_MS) if wait == 0 else None
            self._forget_drained(name, drains_at)
        return wait

    @staticmethod
    def chat_interval(chat_id: int) -> float:
        """The spacing of messages to one chat, used to spread a chat's backlog over time."""
        return GROUP_INTERVAL_S if chat_id < 0 else CHAT_INTERVAL_S

    def _now_ms(self) -> int:
        """The clock's time in epoch milliseconds. When it stepped back by more than a second (NTP), the in-memory
        buckets hold times that are now in the future and would refuse every message for as long as the step: they
        are forgotten, and a 429 pause in force keeps only what was left of it."""
        now_ms = _epoch_ms(self._clock)
        if self._redis is None and now_ms < self._last_ms - SECOND_MS:
            self._global = self._store("global")
            self._local.clear()
            self._idle_at.clear()
            if isinstance(self._pause, MemoryPause):
                self._pause.shift(now_ms - self._last_ms)
        self._last_ms = now_ms
        return now_ms

    def _forget_drained(self, name: str, idle_at_ms: int | None) -> None:
        """Note that chat bucket `name`, just used for a message, drains by `idle_at_ms` (a chat's bucket is empty
        one spacing after its last message; None when the message was refused), and forget the buckets that have
        drained, so memory stays flat over long broadcasts.

        Buckets are kept in order of last use, so the drained ones are at the front: each message costs O(1)
        instead of a sweep over every chat of the last seconds stalling the sender. A group's 3 s spacing can
        hold private chats behind it for at most those 3 s.
        """
        if idle_at_ms is not None:
            self._idle_at[name] = idle_at_ms
            self._idle_at.move_to_end(name)
        while self._idle_at:
            oldest, drained_at = next(iter(self._idle_at.items()))
            if drained_at > self._last_ms:
                break
            del self._idle_at[oldest]
            self._local.pop(oldest, None)
