"""Leaderboard scores (the durable boards), the sync's bookkeeping, rank snapshots, pushes and opt-outs."""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import BigInteger, ColumnElement, Select, String, bindparam, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import (
    Event,
    LeaderboardCount,
    LeaderboardFolded,
    LeaderboardOptOut,
    LeaderboardPush,
    LeaderboardScore,
    LeaderboardStanding,
    LeaderboardSync,
    Partner,
)
from storage.repositories.dialect import dialect_insert

T = TypeVar("T")
CHUNK = 500
"""Rows per multi-row statement (SQLite allows 32766 bound parameters; PostgreSQL 65535)."""


def _chunks(items: Sequence[T], size: int = CHUNK) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@functools.cache
def _standing_statement() -> Select[Any]:
    """Built once: the statement is the same for every board and partner (bound parameters), so reading a rank
    costs the database's microseconds, not the construction and cache-key work of a nested statement."""
    board, partner = bindparam("board", type_=String), bindparam("partner", type_=BigInteger)
    mine_t = aliased(LeaderboardScore)
    above_t, next_t, next_above_t = (aliased(LeaderboardCount) for _ in range(3))
    mine = select(mine_t.score).where(mine_t.board == board, mine_t.partner_id == partner).scalar_subquery()
    value = func.coalesce(mine, 0)
    above = select(func.sum(above_t.n)).where(above_t.board == board, above_t.score > value).scalar_subquery()
    nearest = select(func.min(next_t.score)).where(next_t.board == board, next_t.score > value).scalar_subquery()
    beyond = select(func.sum(next_above_t.n)).where(next_above_t.board == board, next_above_t.score > nearest)
    return select(mine, above, nearest, beyond.scalar_subquery())


class LeaderboardRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # ------------------------------------------------------------------ sync
    async def safe_id(self, name: str) -> int:
        found = await self._session.get(LeaderboardSync, name)
        return 0 if found is None else int(found.safe_id)

    async def unfolded_events(self, after_id: int, types: Collection[str], limit: int) -> list[Event]:
        """Partners' events of `types` with an id above `after_id` that are not folded yet, by id."""
        folded = select(LeaderboardFolded.event_id).where(LeaderboardFolded.event_id == Event.id).exists()
        query = (
            select(Event)
            .where(Event.id > after_id, Event.type.in_(list(types)), Event.partner_id.is_not(None), ~folded)
            .order_by(Event.id)
            .limit(limit)
        )
        return list((await self._session.execute(query)).scalars())

    async def mark_folded(self, event_ids: Sequence[int], now: datetime) -> None:
        for chunk in _chunks(event_ids):
            stmt = (
                dialect_insert(self._session)(LeaderboardFolded)
                .values([{"event_id": i, "folded_at": now} for i in chunk])
                .on_conflict_do_nothing(index_elements=["event_id"])
            )
            await self._session.execute(stmt)

    async def advance(self, name: str, horizon: datetime, now: datetime) -> int:
        """Raise the low-water mark to the highest event folded before `horizon`, and forget folded rows up to it
        (nothing that could still commit has an id that low). The new mark."""
        highest = (
            await self._session.execute(
                select(func.max(LeaderboardFolded.event_id)).where(LeaderboardFolded.folded_at <= horizon)
            )
        ).scalar_one()
        current = await self.safe_id(name)
        mark = max(current, int(highest or 0))
        stmt = dialect_insert(self._session)(LeaderboardSync).values(name=name, safe_id=mark, updated_at=now)
        stmt = stmt.on_conflict_do_update(index_elements=["name"], set_={"safe_id": mark, "updated_at": now})
        await self._session.execute(stmt)
        await self._session.execute(delete(LeaderboardFolded).where(LeaderboardFolded.event_id <= mark))
        return mark

    async def add_scores(self, increments: Mapping[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        """Add to scores (creating rows); the new scores."""
        rows = [{"board": b, "partner_id": p, "score": v} for (b, p), v in increments.items()]
        result: dict[tuple[str, int], int] = {}
        table = LeaderboardScore.__table__
        for chunk in _chunks(rows):
            stmt = dialect_insert(self._session)(LeaderboardScore).values(list(chunk))
            stmt = stmt.on_conflict_do_update(
                index_elements=["board", "partner_id"], set_={"score": table.c.score + stmt.excluded.score}
            ).returning(table.c.board, table.c.partner_id, table.c.score)
            for board, partner, score in (await self._session.execute(stmt)).all():
                result[(str(board), int(partner))] = int(score)
        await self._count(result, increments)
        return result

    async def _count(self, scores: Mapping[tuple[str, int], int], increments: Mapping[tuple[str, int], int]) -> None:
        """Move each changed partner from their old score's count to their new one's (cap boards need none)."""
        delta: dict[tuple[str, int], int] = {}
        for (board, partner), score in scores.items():
            if board.startswith("cap:"):
                continue
            old = score - increments[(board, partner)]
            if old > 0:
                delta[(board, old)] = delta.get((board, old), 0) - 1
            delta[(board, score)] = delta.get((board, score), 0) + 1
        rows = [{"board": b, "score": s, "n": n} for (b, s), n in delta.items() if n]
        table = LeaderboardCount.__table__
        for chunk in _chunks(rows):
            stmt = dialect_insert(self._session)(LeaderboardCount).values(list(chunk))
            stmt = stmt.on_conflict_do_update(
                index_elements=["board", "score"], set_={"n": table.c.n + stmt.excluded.n}
            )
            await self._session.execute(stmt)
        boards = sorted({b for b, _ in delta})
        if boards:
            await self._session.execute(
                delete(LeaderboardCount).where(LeaderboardCount.board.in_(boards), LeaderboardCount.n <= 0)
            )

    async def scores_at(self, pairs: Collection[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Scores of (board, partner) pairs that exist."""
        found: dict[tuple[str, int], int] = {}
        by_board: dict[str, list[int]] = {}
        for board, partner in pairs:
            by_board.setdefault(board, []).append(partner)
        for board, partners in by_board.items():
            for partner, score in (await self.scores_of(board, partners)).items():
                found[(board, partner)] = score
        return found

    # ------------------------------------------------------------------ reads
    async def top(self, board: str, limit: int) -> list[tuple[int, int]]:
        """The first `limit` rows by score desc, partner id."""
        s = LeaderboardScore
        query = (
            select(s.partner_id, s.score)
            .where(s.board == board, s.score > 0)
            .order_by(s.score.desc(), s.partner_id)
            .limit(limit)
        )
        return [(int(p), int(v)) for p, v in (await self._session.execute(query)).all()]

    async def standing_raw(self, board: str, partner_id: int) -> tuple[int | None, int, int | None, int]:
        """(score or None, higher scores, the lowest higher score or None, scores higher than that), in one
        statement: a primary-key read and range reads over the board's distinct scores."""
        result = await self._session.execute(_standing_statement(), {"board": board, "partner": partner_id})
        score, higher, lowest_higher, beyond = result.one()
        return (
            None if score is None else int(score),
            int(higher or 0),
            None if lowest_higher is None else int(lowest_higher),
            int(beyond or 0),
        )

    async def scores_of(self, board: str, partner_ids: Collection[int]) -> dict[int, int]:
        found: dict[int, int] = {}
        for chunk in _chunks(sorted(set(partner_ids))):
            query = select(LeaderboardScore.partner_id, LeaderboardScore.score).where(
                LeaderboardScore.board == board, LeaderboardScore.partner_id.in_(chunk)
            )
            found.update({int(p): int(v) for p, v in (await self._session.execute(query)).all()})
        return found

    async def board_rows(self, board: str, after_partner: int, limit: int) -> list[tuple[int, int]]:
        """A page of a board's rows by partner id (Redis rebuilds from these)."""
        query = (
            select(LeaderboardScore.partner_id, LeaderboardScore.score)
            .where(LeaderboardScore.board == board, LeaderboardScore.partner_id > after_partner)
            .order_by(LeaderboardScore.partner_id)
            .limit(limit)
        )
        return [(int(p), int(v)) for p, v in (await self._session.execute(query)).all()]

    async def summed(self, boards: Collection[str], subtree: str | None = None) -> dict[int, int]:
        """Per partner, the sum of their scores over several boards (e.g. the days of a sprint); only the partners
        of the `subtree` tree path when given."""
        query = select(LeaderboardScore.partner_id, func.sum(LeaderboardScore.score)).where(
            LeaderboardScore.board.in_(list(boards))
        )
        if subtree is not None:
            members = select(Partner.id).where(Partner.tree_path.startswith(subtree, autoescape=True))
            query = query.where(LeaderboardScore.partner_id.in_(members))
        rows = (await self._session.execute(query.group_by(LeaderboardScore.partner_id))).all()
        return {int(p): int(v) for p, v in rows}

    # ------------------------------------------------------------------ teams
    async def nearest_lead(self, tree_path: str) -> Partner | None:
        """The deepest partner with role lead on `tree_path` (the partner included)."""
        ids = [int(part) for part in tree_path.strip("/").split("/") if part]
        query = select(Partner).where(Partner.id.in_(ids), Partner.role == "lead").order_by(Partner.depth.desc())
        return (await self._session.execute(query.limit(1))).scalars().first()

    async def subtree_ids(self, tree_path: str) -> list[int]:
        query = select(Partner.id).where(Partner.tree_path.startswith(tree_path, autoescape=True))
        return [int(i) for i in (await self._session.execute(query)).scalars()]

    # ------------------------------------------------------------------ rank-change notices
    async def score_counts(self, board: str) -> list[tuple[int, int]]:
        """(score, how many partners have it) of a board: its distinct scores, a few thousand at most."""
        query = select(LeaderboardCount.score, LeaderboardCount.n).where(
            LeaderboardCount.board == board, LeaderboardCount.n > 0
        )
        return [(int(s), int(n)) for s, n in (await self._session.execute(query)).all()]

    async def page_with_standings(
        self, board: str, after_partner: int, limit: int
    ) -> list[tuple[int, int, int | None, str | None]]:
        """A page of the board's rows by partner id, with each partner's rank snapshot: (partner, score, rank
        before, board of that rank)."""
        s, st = LeaderboardScore, LeaderboardStanding
        query = (
            select(s.partner_id, s.score, st.rank, st.board)
            .outerjoin(st, st.partner_id == s.partner_id)
            .where(s.board == board, s.partner_id > after_partner)
            .order_by(s.partner_id)
            .limit(limit)
        )
        return [
            (int(p), int(v), None if r is None else int(r), None if b is None else str(b))
            for p, v, r, b in (await self._session.execute(query)).all()
        ]

    async def save_ranks(self, board: str, ranks: Mapping[int, int], now: datetime) -> None:
        for chunk in _chunks(sorted(ranks.items())):
            stmt = dialect_insert(self._session)(LeaderboardStanding).values(
                [{"partner_id": p, "board": board, "rank": r, "updated_at": now} for p, r in chunk]
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=["partner_id"],
                set_={"board": stmt.excluded.board, "rank": stmt.excluded.rank, "updated_at": now},
            )
            await self._session.execute(stmt)

    # ------------------------------------------------------------------ pushes and opt-out
    async def due_pushes(
        self,
        *,
        period: str,
        timezone: str | None,
        is_default_zone: bool,
        hours: Sequence[int],
        default_hour_due: bool,
        limit: int,
    ) -> Sequence[Partner]:
        """Reachable partners in `timezone` whose push hour is one of `hours` (None: the default hour; the daily
        push turned off (-1): the default hour too), not opted out, without the push of `period` yet."""
        if limit <= 0 or not hours:
            return []
        zone: ColumnElement[bool] = Partner.timezone.is_(None) if timezone is None else Partner.timezone == timezone
        if timezone is not None and is_default_zone:
            zone = or_(zone, Partner.timezone.is_(None))
        hour: ColumnElement[bool] = Partner.push_hour.in_(list(hours))
        if default_hour_due:
            hour = or_(hour, Partner.push_hour.is_(None), Partner.push_hour < 0)
        pushed = (
            select(LeaderboardPush.partner_id)
            .where(LeaderboardPush.partner_id == Partner.id, LeaderboardPush.period == period)
            .exists()
        )
        opted_out = select(LeaderboardOptOut.partner_id).where(LeaderboardOptOut.partner_id == Partner.id).exists()
        query = (
            select(Partner)
            .where(zone, hour, Partner.unreachable.is_(False), ~pushed, ~opted_out)
            .order_by(Partner.id)
            .limit(limit)
        )
        return (await self._session.execute(query)).scalars().all()

    async def mark_pushed(self, partner_id: int, period: str, now: datetime) -> None:
        insert = dialect_insert(self._session)
        stmt = insert(LeaderboardPush).values(partner_id=partner_id, period=period, pushed_at=now)
        await self._session.execute(stmt.on_conflict_do_nothing(index_elements=["partner_id", "period"]))

    async def opted_out(self, partner_ids: Collection[int]) -> set[int]:
        found: set[int] = set()
        for chunk in _chunks(sorted(set(partner_ids))):
            query = select(LeaderboardOptOut.partner_id).where(LeaderboardOptOut.partner_id.in_(chunk))
            found.update(int(p) for p in (await self._session.execute(query)).scalars())
        return found

    async def set_opted_out(self, partner_id: int, opted_out: bool, now: datetime) -> None:
        if opted_out:
            stmt = dialect_insert(self._session)(LeaderboardOptOut).values(partner_id=partner_id, created_at=now)
            await self._session.execute(stmt.on_conflict_do_nothing(index_elements=["partner_id"]))
        else:
            await self._session.execute(delete(LeaderboardOptOut).where(LeaderboardOptOut.partner_id == partner_id))
