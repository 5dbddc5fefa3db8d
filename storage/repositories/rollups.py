"""Daily rollups: recomputing one day of the deployment's calendar from the source tables, and reading sums.

A day is recomputed whole: its rows are deleted and the day's GROUP BY results inserted, in the caller's
transaction, so running it twice (or for a day already done) gives the same rows.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Executable,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.behaviour import COUNT_FIELDS, DayCounts
from storage.models import DailyRollup, Event, LeadReminder, LedgerEntry, Order, Partner, PartnerBadge
from storage.repositories.dialect import among, on_postgres

COUNTED_ORDER_STATUS = "settled"
"""Orders that count: attributed and settled (a fully refunded one becomes 'refunded'), as for the rules engine."""
COMMISSION_KINDS = ("commission", "reversal")
"""Ledger kinds of per-order commission: what was earned, less what refunds took back."""
NOT_DUE_REMINDER = "cancelled"

EVENT_COLUMNS: dict[str, str] = {
    "content_sent": "content_sent",
    "shared": "shares",
    "link_clicked": "clicks",
    "lead_added": "leads",
    "followed_up": "followups",
    "quote_sent": "quotes",
}
"""Event type → the rollup column that counts it."""


@dataclass(frozen=True, slots=True)
class WindowSums:
    sums: dict[int, list[DayCounts]]
    """Partner id → their counts over each window."""
    last_action: dict[int, date]
    """Partner id → their last day with an action within the windows (absent: none there)."""


@dataclass(frozen=True, slots=True)
class PeriodTotals:
    """A period's counts summed over a set of partners (bot/domain/behaviour.py `behaviour`, done by the database)."""

    active: int
    """Partners with an action in the period."""
    shared: int
    followed_up: int
    counts: DayCounts


class RollupRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def recompute_day(self, day: date, start: datetime, end: datetime, action_types: Collection[str]) -> int:
        """Replace the rows of `day` (the UTC range `start`..`end`) with counts from the sources; returns the
        number of partners with a row.

        One INSERT … SELECT: the database adds up each source per partner and the sources per partner, so none of
        the day's rows (tens of thousands on a large network) passes through the process."""
        in_day = and_(Event.occurred_at >= start, Event.occurred_at < end, Event.partner_id.is_not(None))
        revisit = Event.payload["revisit"].as_boolean()
        is_revisit = case((Event.type == "followed_up", case((revisit.is_(True), 1), else_=0)), else_=0)

        def of_type(types: Collection[str]) -> ColumnElement[Any]:
            return func.sum(case((Event.type.in_(set(types)), 1), else_=0)) if types else literal(0)

        events = {column: of_type([t for t, c in EVENT_COLUMNS.items() if c == column]) for column in COUNT_FIELDS}
        events |= {"revisits": func.sum(is_revisit), "actions": of_type(action_types)}
        types = {*EVENT_COLUMNS, *action_types}
        due = select(LeadReminder.partner_id, func.count(func.distinct(LeadReminder.lead_id))).where(
            LeadReminder.due_at >= start, LeadReminder.due_at < end, LeadReminder.status != NOT_DUE_REMINDER
        )
        gmv = func.coalesce(func.sum(Order.amount_minor - Order.refunded_minor), 0)
        orders = select(Order.partner_id, func.count(), gmv).where(
            Order.paid_at >= start,
            Order.paid_at < end,
            Order.partner_id.is_not(None),
            Order.status == COUNTED_ORDER_STATUS,
        )
        earned = select(LedgerEntry.partner_id, func.coalesce(func.sum(LedgerEntry.amount_minor), 0)).where(
            LedgerEntry.created_at >= start,
            LedgerEntry.created_at < end,
            LedgerEntry.partner_id.is_not(None),
            LedgerEntry.kind.in_(COMMISSION_KINDS),
        )
        sources = union_all(
            _counts(select(Event.partner_id).where(in_day, Event.type.in_(types)), events, Event.partner_id),
            _counts(due, {"leads_due": due.selected_columns[1]}, LeadReminder.partner_id),
            _counts(
                orders, dict(zip(("orders", "gmv_minor"), orders.selected_columns[1:], strict=True)), Order.partner_id
            ),
            _counts(earned, {"commission_minor": earned.selected_columns[1]}, LedgerEntry.partner_id),
        ).subquery()
        per_partner = select(
            sources.c.partner_id,
            literal(day, Date),
            *(cast(func.sum(sources.c[name]), BigInteger) for name in COUNT_FIELDS),
        ).group_by(sources.c.partner_id)
        await self._session.execute(delete(DailyRollup).where(DailyRollup.day == day))
        inserted = insert(DailyRollup).from_select(["partner_id", "day", *COUNT_FIELDS], per_partner)
        result = await self._session.execute(inserted)
        return int(getattr(result, "rowcount", 0))

    async def first_activity(self) -> datetime | None:
        """The earliest event, order payment or ledger line: nothing before it has anything to roll up."""
        firsts = [
            (await self._session.execute(select(func.min(column)))).scalar_one()
            for column in (Event.occurred_at, Order.paid_at, LedgerEntry.created_at)
        ]
        found = [at for at in firsts if at is not None]
        return min(found) if found else None

    async def _all(self, stmt: Executable) -> Sequence[Any]:
        rows: Sequence[Any] = (await self._session.execute(stmt)).all()
        return rows

    async def _core_rows(self, stmt: Executable) -> Sequence[Any]:
        """`_all` on the session's connection, skipping the ORM's result handling (thousands of plain rows for a
        page of digests); nothing of these tables is ever pending in the session, so there is nothing to flush."""
        connection = await self._session.connection()
        rows: Sequence[Any] = (await connection.execute(stmt)).all()
        return rows

    async def totals(self, first: date, last: date, team: str | None = None) -> PeriodTotals:
        """Everybody's (or a `team`'s, a lead's tree path) counts over `first`..`last`, summed by the database:
        the partners whose sums show an action, a share, a follow-up, and the sums of all (one row, whatever the
        network's size)."""
        sums = select(
            DailyRollup.partner_id, *(func.sum(getattr(DailyRollup, name)).label(name) for name in COUNT_FIELDS)
        ).where(DailyRollup.day >= first, DailyRollup.day <= last)
        per_partner = in_team(sums, DailyRollup.partner_id, team).group_by(DailyRollup.partner_id).subquery()
        having = [func.count(case((per_partner.c[name] > 0, 1))) for name in ("actions", "shares", "followups")]
        summed = [func.coalesce(cast(func.sum(per_partner.c[name]), BigInteger), 0) for name in COUNT_FIELDS]
        row = (await self._session.execute(select(*having, *summed))).one()
        active, shared, followed_up = (int(v) for v in row[:3])
        return PeriodTotals(active, shared, followed_up, DayCounts(*(int(v) for v in row[3:])))

    async def per_day(self, first: date, last: date, team: str | None = None) -> dict[date, DayCounts]:
        """The counts of everybody (or a `team`) summed per day: the trend charts."""
        columns = [func.sum(getattr(DailyRollup, name)) for name in COUNT_FIELDS]
        stmt = select(DailyRollup.day, *columns).where(DailyRollup.day >= first, DailyRollup.day <= last)
        stmt = in_team(stmt, DailyRollup.partner_id, team)
        result = await self._all(stmt.group_by(DailyRollup.day))
        return {r[0]: DayCounts(*(int(v or 0) for v in r[1:])) for r in result}

    async def daily_rows(self, first: date, last: date, team: str | None = None) -> dict[int, dict[date, DayCounts]]:
        """Each partner's rows of `first`..`last`, by day (only days with a row)."""
        columns = [getattr(DailyRollup, name) for name in COUNT_FIELDS]
        stmt = select(DailyRollup.partner_id, DailyRollup.day, *columns).where(
            DailyRollup.day >= first, DailyRollup.day <= last
        )
        result: dict[int, dict[date, DayCounts]] = {}
        for row in await self._all(in_team(stmt, DailyRollup.partner_id, team)):
            result.setdefault(int(row[0]), {})[row[1]] = DayCounts(*(int(v) for v in row[2:]))
        return result

    async def last_action_days(self, until: date, team: str | None = None) -> dict[int, date]:
        """Each partner's last day with an action, up to `until`."""
        stmt = select(DailyRollup.partner_id, func.max(DailyRollup.day)).where(
            DailyRollup.actions > 0, DailyRollup.day <= until
        )
        stmt = in_team(stmt, DailyRollup.partner_id, team)
        return {int(p): d for p, d in await self._all(stmt.group_by(DailyRollup.partner_id))}

    async def window_sums(self, windows: Sequence[tuple[date, date]], partner_ids: Collection[int]) -> WindowSums:
        """Each of these partners with a row in any of `windows` (first..last, both included): their counts summed
        over each window, in the order given (zeros for a window without a row), and their last day with an action
        in the windows' span. Several periods of many teams in one pass: a page of digests.

        The partners are named by id (the digest has read its teams already): the database reads their rows through
        the primary key, whatever the size of the table."""
        if not windows or not partner_ids:
            return WindowSums({}, {})
        last_action = func.max(case((DailyRollup.actions > 0, DailyRollup.day)))
        columns = [  # cast: PostgreSQL sums bigints as numeric, which the driver would hand over as Decimal
            cast(
                func.sum(case((DailyRollup.day.between(first, last), getattr(DailyRollup, name)), else_=0)), BigInteger
            )
            for first, last in windows
            for name in COUNT_FIELDS
        ]
        stmt = select(DailyRollup.partner_id, last_action, *columns).where(
            DailyRollup.day >= min(first for first, _ in windows),
            DailyRollup.day <= max(last for _, last in windows),
            among(self._session, DailyRollup.partner_id, partner_ids),
        )
        width = len(COUNT_FIELDS)
        result = WindowSums({}, {})
        for row in await self._core_rows(stmt.group_by(DailyRollup.partner_id)):
            partner_id = int(row[0])
            if row[1] is not None:
                result.last_action[partner_id] = row[1]
            values = row[2:]
            result.sums[partner_id] = [DayCounts(*values[at : at + width]) for at in range(0, len(values), width)]
        return result

    async def team_days(
        self, first: date, last: date, teams: Mapping[int, Collection[int]]
    ) -> dict[int, dict[date, DayCounts]]:
        """Each team's counts (team id → its partners' ids) summed per day over `first`..`last` (only days with a
        row), added up by the database: a page of digests' trend charts, a hundred teams' two weeks in one query
        whose result is a row per team and day, not per partner and day. A partner may be in several teams (a lead
        under another lead) and counts in each."""
        pairs = [(team, partner) for team, members in teams.items() for partner in set(members)]
        if not pairs:
            return {}
        if on_postgres(self._session):
            membership = (
                func.unnest(
                    bindparam("m_teams", [t for t, _ in pairs], type_=postgresql.ARRAY(BigInteger)),
                    bindparam("m_partners", [p for _, p in pairs], type_=postgresql.ARRAY(BigInteger)),
                )
                .table_valued("team_id", "partner_id")
                .render_derived(name="membership")
            )
            team_id: ColumnElement[Any] = membership.c.team_id
            partner_id: ColumnElement[Any] = membership.c.partner_id
        else:  # SQLite: the pairs as a JSON array, read by json_each
            membership = func.json_each(bindparam("m_pairs", json.dumps(pairs), type_=String)).table_valued("value")
            team_id = func.json_extract(membership.c.value, "$[0]")
            partner_id = func.json_extract(membership.c.value, "$[1]")
        sums = [cast(func.sum(getattr(DailyRollup, name)), BigInteger) for name in COUNT_FIELDS]
        stmt = (
            select(team_id, DailyRollup.day, *sums)
            .select_from(membership)
            .join(DailyRollup, DailyRollup.partner_id == partner_id)
            .where(DailyRollup.day >= first, DailyRollup.day <= last)
            .group_by(team_id, DailyRollup.day)
        )
        result: dict[int, dict[date, DayCounts]] = {}
        for row in await self._core_rows(stmt):
            result.setdefault(int(row[0]), {})[row[1]] = DayCounts(*(int(v) for v in row[2:]))
        return result

    async def last_action_days_of(self, until: date, partner_ids: Collection[int]) -> dict[int, date]:
        """`last_action_days` of these partners."""
        if not partner_ids:
            return {}
        stmt = select(DailyRollup.partner_id, func.max(DailyRollup.day)).where(
            DailyRollup.actions > 0, DailyRollup.day <= until, among(self._session, DailyRollup.partner_id, partner_ids)
        )
        return {int(p): d for p, d in await self._all(stmt.group_by(DailyRollup.partner_id))}

    async def partner_count(self, joined_before: datetime, team: str | None = None) -> int:
        stmt = select(func.count()).select_from(Partner).where(Partner.joined_at < joined_before)
        stmt = in_team(stmt, Partner.id, team)
        return int((await self._session.execute(stmt)).scalar_one())

    async def joined_between(
        self, start: datetime, end: datetime, team: str | None = None
    ) -> list[tuple[int, datetime]]:
        stmt = select(Partner.id, Partner.joined_at).where(Partner.joined_at >= start, Partner.joined_at < end)
        stmt = in_team(stmt, Partner.id, team)
        return [(int(p), at) for p, at in await self._all(stmt)]

    async def badge_holders(self, badge: str, partner_ids: Collection[int]) -> set[int]:
        if not partner_ids:
            return set()
        stmt = select(PartnerBadge.partner_id).where(
            PartnerBadge.badge == badge, PartnerBadge.partner_id.in_(set(partner_ids))
        )
        return {int(p) for p in (await self._session.execute(stmt)).scalars().all()}

    async def segment_mix(self, team: str | None = None) -> dict[str | None, int]:
        stmt = select(Partner.segment, func.count()).group_by(Partner.segment)
        stmt = in_team(stmt, Partner.id, team)
        return {segment: int(n) for segment, n in await self._all(stmt)}

    async def segment_moves(
        self, start: datetime, end: datetime, team: str | None = None
    ) -> dict[tuple[str | None, str | None], int]:
        """How many `segment_changed` events in the range moved from `previous` to `segment`, by (previous,
        segment): counted by the database (a daily run records one per partner who moved, a network's worth)."""
        previous, segment = Event.payload["previous"].as_string(), Event.payload["segment"].as_string()
        stmt = select(previous, segment, func.count()).where(
            Event.type == "segment_changed", Event.occurred_at >= start, Event.occurred_at < end
        )
        stmt = in_team(stmt, Event.partner_id, team).group_by(previous, segment)
        return {(a, b): int(n) for a, b, n in await self._all(stmt)}


def _counts(
    stmt: Select[*tuple[Any, ...]], columns: dict[str, ColumnElement[Any]], partner_column: Any
) -> Select[*tuple[Any, ...]]:
    """`stmt` (a select from one source) as each partner's row of every count column, grouped by partner: the
    `columns` it counts (bigint: PostgreSQL sums bigints as numeric), zeros for the others."""
    values = [cast(columns.get(name, literal(0)), BigInteger).label(name) for name in COUNT_FIELDS]
    return stmt.with_only_columns(partner_column.label("partner_id"), *values).group_by(partner_column)


AnySelect = TypeVar("AnySelect", bound=Select[*tuple[Any, ...]])


def in_team(stmt: AnySelect, partner_column: Any, team: str | None) -> AnySelect:
    """`stmt` narrowed to a team: `team` is a team lead's tree path, their referral subtree with the lead included
    (None: everybody)."""
    if team is None:
        return stmt
    members = select(Partner.id).where(Partner.tree_path.startswith(team, autoescape=True))
    return stmt.where(partner_column.in_(members))


def in_subtrees(tree_paths: Collection[str]) -> ColumnElement[bool]:
    """Partners whose tree path starts with any of `tree_paths`.

    The prefixes are written into the SQL as literals, not bound: PostgreSQL plans a prepared statement run often
    enough once for any parameters (a generic plan), and for `LIKE $1` that plan cannot use the tree-path index, so
    each page of digests would scan every partner once per prefix."""
    patterns = sorted({path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for path in tree_paths})
    return or_(*(Partner.tree_path.like(literal(p, String, literal_execute=True), escape="\\") for p in patterns))
