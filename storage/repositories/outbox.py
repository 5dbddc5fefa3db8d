"""The outbox: bot-initiated messages, enqueued with the change that causes them."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, DateTime, Table, bindparam, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Broadcast, OutboxMessage, Partner
from storage.repositories.dialect import dialect_insert, on_postgres, unnest_insert

FINAL_STATUSES = ("sent", "dead", "cancelled")
"""Statuses a row never leaves: the sender is done with it."""


class ClaimedMessage(NamedTuple):
    """A row this sender now owns ('sending'): what it needs to send it and record the outcome."""

    id: int
    chat_id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    not_before: datetime


_OUTBOX: Table = OutboxMessage.__table__  # type: ignore[assignment]  # Core statements for executemany updates


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def enqueue(
        self,
        *,
        dedupe_key: str,
        chat_id: int,
        partner_id: int | None,
        kind: str,
        payload: Mapping[str, Any],
        not_before: datetime,
        now: datetime,
        urgent: bool = False,
    ) -> bool:
        """Insert unless a message with the same key exists. True when a row was added."""
        values = {
            "dedupe_key": dedupe_key,
            "chat_id": chat_id,
            "partner_id": partner_id,
            "kind": kind,
            "payload": dict(payload),
            "urgent": urgent,
            "status": "pending",
            "attempts": 0,
            "not_before": not_before,
            "created_at": now,
        }
        insert = dialect_insert(self._session)
        stmt = insert(OutboxMessage).values(**values).on_conflict_do_nothing(index_elements=["dedupe_key"])
        result = await self._session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def enqueue_many(self, rows: Sequence[Mapping[str, Any]], *, chunk: int = 5000) -> int:
        """Bulk insert (broadcasts): each row as for `enqueue`, all with the same keys; existing dedupe keys are
        skipped. Returns how many rows were added.

        One statement per `chunk` rows, so a 100,000-partner broadcast is queued in seconds: on PostgreSQL an
        INSERT … SELECT FROM unnest of arrays (`unnest_insert`: the same SQL for any count), on SQLite an executemany
        through Core.
        """
        executemany = None
        if not on_postgres(self._session):
            insert = dialect_insert(self._session)(_OUTBOX)
            executemany = insert.on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(_OUTBOX.c.id)
        added = 0
        for start in range(0, len(rows), chunk):
            batch = [
                {"status": "pending", "attempts": 0, "urgent": False, **row} for row in rows[start : start + chunk]
            ]
            if executemany is None:
                unnested = unnest_insert(_OUTBOX, batch, conflict=["dedupe_key"]).returning(_OUTBOX.c.id)
                added += len((await self._session.execute(unnested)).all())
            else:
                added += len((await self._session.execute(executemany, batch)).all())
        return added

    async def enqueue_rows(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """As `enqueue_many` for a handful of rows, without counting what was added: no RETURNING, so PostgreSQL
        runs one prepared statement whatever the number of rows (settlement's notices, batch after batch)."""
        if not rows:
            return
        insert = dialect_insert(self._session)
        stmt = insert(_OUTBOX).on_conflict_do_nothing(index_elements=["dedupe_key"])
        await self._session.execute(
            stmt, [{"status": "pending", "attempts": 0, "urgent": False, **row} for row in rows]
        )

    async def claim_due(self, now: datetime, limit: int) -> list[ClaimedMessage]:
        """Mark up to `limit` due rows 'sending' for this sender, oldest first, in one statement.

        On PostgreSQL the rows are picked with SKIP LOCKED, so several senders never claim the same row.
        """
        due = (
            select(OutboxMessage.id)
            .where(OutboxMessage.status == "pending", OutboxMessage.not_before <= now)
            .order_by(OutboxMessage.not_before, OutboxMessage.id)
            .limit(limit)
        )
        if on_postgres(self._session):
            due = due.with_for_update(skip_locked=True)
        table = _OUTBOX.c
        claim = (
            update(_OUTBOX)
            .where(table.id.in_(due.scalar_subquery()))
            .values(status="sending", claimed_at=now, attempts=table.attempts + 1)
            .returning(table.id, table.chat_id, table.kind, table.payload, table.attempts, table.not_before)
        )
        rows = [ClaimedMessage(*row) for row in await self._session.execute(claim)]
        return sorted(rows, key=lambda row: (row.not_before, row.id))

    async def get(self, message_id: int) -> OutboxMessage | None:
        return await self._session.get(OutboxMessage, message_id)

    async def mark_sent(self, sent: Sequence[tuple[int, int | None, datetime]]) -> None:
        """(row id, Telegram message id, sent at) for rows whose API call succeeded."""
        if not sent:
            return
        if on_postgres(self._session):
            # One statement for the whole batch: at paid-broadcast speed this is most of the sender's DB work.
            batch = (
                func.unnest(
                    bindparam("b_ids", [i for i, _, _ in sent], type_=postgresql.ARRAY(BigInteger)),
                    bindparam("b_message_ids", [m for _, m, _ in sent], type_=postgresql.ARRAY(BigInteger)),
                    bindparam("b_sent_at", [t for _, _, t in sent], type_=postgresql.ARRAY(DateTime(timezone=True))),
                )
                .table_valued("id", "message_id", "sent_at")
                .render_derived(name="batch")
            )
            await self._session.execute(
                update(_OUTBOX)
                .where(_OUTBOX.c.id == batch.c.id)
                .values(status="sent", sent_at=batch.c.sent_at, telegram_message_id=batch.c.message_id, last_error=None)
            )
            return
        stmt = (
            update(_OUTBOX)
            .where(_OUTBOX.c.id == bindparam("b_id"))
            .values(
                status="sent",
                sent_at=bindparam("b_sent_at"),
                telegram_message_id=bindparam("b_message_id"),
                last_error=None,
            )
        )
        await self._session.execute(stmt, [{"b_id": i, "b_message_id": m, "b_sent_at": t} for i, m, t in sent])

    async def retry_later(self, rows: Sequence[tuple[int, datetime, str]]) -> None:
        """(row id, not before, error) for transient failures: the row goes back to the queue."""
        if rows:
            stmt = (
                update(_OUTBOX)
                .where(_OUTBOX.c.id == bindparam("b_id"))
                .values(status="pending", not_before=bindparam("b_not_before"), last_error=bindparam("b_error"))
            )
            await self._session.execute(stmt, [{"b_id": i, "b_not_before": n, "b_error": e} for i, n, e in rows])

    async def mark_dead(self, rows: Sequence[tuple[int, str]]) -> None:
        """(row id, reason) for messages that can never be delivered (the dead letters)."""
        if rows:
            stmt = (
                update(_OUTBOX)
                .where(_OUTBOX.c.id == bindparam("b_id"))
                .values(status="dead", last_error=bindparam("b_error"))
            )
            await self._session.execute(stmt, [{"b_id": i, "b_error": e} for i, e in rows])

    async def give_back(self, rows: Sequence[tuple[int, datetime]]) -> None:
        """(row id, not before) for claimed rows that were never sent: pending again, the claim not counted."""
        if rows:
            stmt = (
                update(_OUTBOX)
                .where(_OUTBOX.c.id == bindparam("b_id"), _OUTBOX.c.status == "sending")
                .values(
                    status="pending",
                    not_before=bindparam("b_not_before"),
                    claimed_at=None,
                    attempts=_OUTBOX.c.attempts - 1,
                )
            )
            await self._session.execute(stmt, [{"b_id": i, "b_not_before": n} for i, n in rows])

    async def mark_chats_unreachable(self, chat_ids: Sequence[int]) -> None:
        """Partners who blocked the bot; they become reachable again when they write to it."""
        if chat_ids:
            await self._session.execute(
                update(Partner).where(Partner.tg_user_id.in_(list(chat_ids))).values(unreachable=True)
            )

    async def status_counts(self, since: datetime | None = None) -> dict[str, int]:
        """How many rows are in each status, optionally only rows created since `since`."""
        query = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        if since is not None:
            query = query.where(OutboxMessage.created_at >= since)
        return {status: int(count) for status, count in (await self._session.execute(query)).all()}

    async def top_dead_reasons(self, limit: int, since: datetime | None = None) -> list[tuple[str, int]]:
        """The most frequent reasons messages were dead-lettered, most frequent first."""
        reason = func.coalesce(OutboxMessage.last_error, "")
        query = (
            select(reason, func.count())
            .where(OutboxMessage.status == "dead")
            .group_by(reason)
            .order_by(func.count().desc(), reason)
            .limit(limit)
        )
        if since is not None:
            query = query.where(OutboxMessage.created_at >= since)
        return [(str(text), int(count)) for text, count in (await self._session.execute(query)).all()]

    async def prune(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` rows in a final status that were due, and last sent or tried, before `before`; a
        broadcast's rows only once it has finished and kept its counts. How many were deleted.

        `not_before < before` lets the (status, not_before) index find them; a row is never sent before it is due."""
        finished = select(Broadcast.id).where(Broadcast.final_counts.is_not(None))
        last_touched = func.coalesce(OutboxMessage.sent_at, OutboxMessage.claimed_at, OutboxMessage.created_at)
        doomed = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.status.in_(FINAL_STATUSES),
                OutboxMessage.not_before < before,
                last_touched < before,
                or_(OutboxMessage.broadcast_id.is_(None), OutboxMessage.broadcast_id.in_(finished)),
            )
            .limit(limit)
        )
        result = await self._session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(doomed)))
        return int(getattr(result, "rowcount", 0))

    async def media_in_use(self) -> set[str]:
        """The local files (payload "path") of rows still to be sent: retention must not delete those."""
        path = OutboxMessage.payload["path"].as_string()
        query = select(path).where(OutboxMessage.status.in_(("pending", "sending")), path.is_not(None)).distinct()
        return {str(p) for p in (await self._session.execute(query)).scalars()}

    async def release_stale(self, before: datetime) -> int:
        """Rows left 'sending' by a crashed sender go back to pending."""
        result = await self._session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == "sending", OutboxMessage.claimed_at < before)
            .values(status="pending")
        )
        return int(getattr(result, "rowcount", 0))

    async def unreachable_chats(self, chat_ids: Collection[int]) -> set[int]:
        """Which of these chats are partners who blocked the bot (a 403) and have not written to it since."""
        if not chat_ids:
            return set()
        query = select(Partner.tg_user_id).where(Partner.tg_user_id.in_(list(chat_ids)), Partner.unreachable.is_(True))
        return {int(chat) for chat in (await self._session.execute(query)).scalars()}

    async def mark_partner_unreachable(self, chat_id: int) -> None:
        await self._session.execute(update(Partner).where(Partner.tg_user_id == chat_id).values(unreachable=True))

    async def by_key(self, dedupe_key: str) -> OutboxMessage | None:
        result = await self._session.execute(select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key))
        return result.scalar_one_or_none()

    async def existing_keys(self, keys: Sequence[str], chunk: int = 1000) -> set[str]:
        """Which of `keys` are already queued (in any status): lookups on the unique dedupe-key index."""
        found: set[str] = set()
        for at in range(0, len(keys), chunk):
            stmt = select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.in_(keys[at : at + chunk]))
            found.update(str(k) for k in (await self._session.execute(stmt)).scalars())
        return found
