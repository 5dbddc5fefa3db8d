"""The two leaderboard backends behind `BoardStore`: SQL (the durable `leaderboard_scores` table) and Redis sorted
sets that mirror it.

Redis layout: one sorted set per board, ``lb:<board key>``, members the partner id zero-padded to 19 digits (so
Redis' lexicographic order of equal scores is the id order, as in SQL), scores the board's values. Each set expires
`KEEP_AFTER_END` after its period ends. Writes are absolute (``ZADD … GT`` with the score SQL just returned), never
increments: scores only grow, so replaying a write, or a rebuild from an older SQL snapshot racing with a newer
write, always converges on the highest (= latest) value. A set that is missing (expired, flushed, a new Redis)
is rebuilt from SQL when it is first read or written.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime, time, timedelta
from typing import Protocol, cast
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from bot.domain.leaderboards import Standing, board_period_end, standing_from
from storage.repositories.leaderboards import LeaderboardRepository

PREFIX = "lb:"
KEEP_AFTER_END = timedelta(days=40)
"""Last week's and last month's boards are still read by the Monday and 1st-of-month pushes."""
REBUILD_PAGE = 5000

_STANDING = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0} end
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
local v = s or '0'
local above = redis.call('ZCOUNT', KEYS[1], '(' .. v, '+inf')
local nxt = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. v, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
if #nxt == 0 then return {1, s or '', above} end
return {1, s or '', above, nxt[2], redis.call('ZCOUNT', KEYS[1], '(' .. nxt[2], '+inf')}
"""


class BoardStore(Protocol):
    """Where boards are read (and mirrored to). Both implementations give identical answers."""

    async def top(self, board: str, limit: int) -> list[tuple[int, int]]:
        """The first `limit` (partner, score) by score desc, partner id."""

    async def standing(self, board: str, partner_id: int) -> Standing: ...

    async def scores_of(self, board: str, partner_ids: Collection[int]) -> dict[int, int]: ...

    async def publish(self, scores: Mapping[tuple[str, int], int]) -> None:
        """New absolute scores, just written to SQL (inside the same transaction)."""


def member(partner_id: int) -> str:
    return f"{partner_id:019d}"


def _int(value: bytes | str | float) -> int:
    return int(float(value.decode() if isinstance(value, bytes) else value))


class SqlBoards:
    def __init__(self, repo: LeaderboardRepository) -> None:
        self._repo = repo

    async def top(self, board: str, limit: int) -> list[tuple[int, int]]:
        return await self._repo.top(board, limit)

    async def standing(self, board: str, partner_id: int) -> Standing:
        return standing_from(*await self._repo.standing_raw(board, partner_id))

    async def scores_of(self, board: str, partner_ids: Collection[int]) -> dict[int, int]:
        return await self._repo.scores_of(board, partner_ids)

    async def publish(self, scores: Mapping[tuple[str, int], int]) -> None:
        """SQL is the source: nothing to mirror."""


class RedisBoards:
    def __init__(self, redis: Redis, repo: LeaderboardRepository, zone: ZoneInfo) -> None:
        self._redis = redis
        self._repo = repo
        self._zone = zone
        self._standing = redis.register_script(_STANDING)

    def _expires(self, board: str) -> datetime:
        end: date = board_period_end(board)
        return datetime.combine(end, time(0), tzinfo=self._zone) + KEEP_AFTER_END

    async def rebuild(self, board: str) -> int:
        """Load the board from SQL into its sorted set; how many rows there were."""
        key, after, total = PREFIX + board, 0, 0
        while True:
            rows = await self._repo.board_rows(board, after, REBUILD_PAGE)
            if not rows:
                break
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zadd(key, {member(p): s for p, s in rows}, gt=True)
                pipe.expireat(key, self._expires(board))
                await pipe.execute()
            total += len(rows)
            after = rows[-1][0]
            if len(rows) < REBUILD_PAGE:
                break
        return total

    async def _ensure(self, board: str) -> bool:
        """The board's set exists (rebuilt if it was missing); False when the board is empty."""
        if await self._redis.exists(PREFIX + board):
            return True
        return await self.rebuild(board) > 0

    async def top(self, board: str, limit: int) -> list[tuple[int, int]]:
        if limit <= 0 or not await self._ensure(board):
            return []
        key = PREFIX + board
        reply = cast("list[tuple[bytes, float]]", await self._redis.zrevrange(key, 0, limit - 1, withscores=True))
        head = [(int(m), _int(s)) for m, s in reply]
        if len(head) < limit:
            return sorted(head, key=lambda row: (-row[1], row[0]))
        boundary = head[-1][1]
        above = [row for row in head if row[1] > boundary]
        ties = cast("list[bytes]", await self._redis.zrangebyscore(key, boundary, boundary, 0, limit - len(above)))
        return sorted(above, key=lambda row: (-row[1], row[0])) + [(int(m), boundary) for m in ties]

    async def standing(self, board: str, partner_id: int) -> Standing:
        for _ in range(2):
            reply = await self._standing(keys=[PREFIX + board], args=[member(partner_id)])
            if int(reply[0]) == 1:
                score = _int(reply[1]) if reply[1] else None
                if len(reply) == 3:
                    return standing_from(score, int(reply[2]), None, 0)
                return standing_from(score, int(reply[2]), _int(reply[3]), int(reply[4]))
            if not await self.rebuild(board):
                break
        return standing_from(None, 0, None, 0)

    async def scores_of(self, board: str, partner_ids: Collection[int]) -> dict[int, int]:
        ids = sorted(set(partner_ids))
        if not ids or not await self._ensure(board):
            return {}
        found: dict[int, int] = {}
        for start in range(0, len(ids), REBUILD_PAGE):
            chunk = ids[start : start + REBUILD_PAGE]
            values = await self._redis.zmscore(PREFIX + board, [member(p) for p in chunk])
            found.update({p: _int(v) for p, v in zip(chunk, values, strict=True) if v is not None})
        return found

    async def publish(self, scores: Mapping[tuple[str, int], int]) -> None:
        by_board: dict[str, dict[str, int]] = {}
        for (board, partner), score in scores.items():
            if not board.startswith("cap:"):
                by_board.setdefault(board, {})[member(partner)] = score
        for board, mapping in by_board.items():
            key = PREFIX + board
            if not await self._redis.exists(key):
                await self.rebuild(board)  # this transaction's view of SQL already holds the new scores
                continue
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zadd(key, mapping, gt=True)
                pipe.expireat(key, self._expires(board))
                await pipe.execute()
