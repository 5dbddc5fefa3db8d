"""Leads, their follow-ups and revisit reminders."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Lead, LeadFollowup, LeadReminder, Partner

OPEN_REMINDER = ("pending", "sent")


class LeadRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def by_number(self, partner_id: int, number: int) -> Lead | None:
        stmt = select(Lead).where(Lead.partner_id == partner_id, Lead.number == number)
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def by_name_prefix(self, partner_id: int, prefix: str, limit: int = 6) -> Sequence[Lead]:
        """The partner's leads whose name starts with `prefix` (case-insensitive), newest first."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = (
            select(Lead)
            .where(Lead.partner_id == partner_id, func.lower(Lead.name).like(f"{escaped}%", escape="\\"))
            .order_by(Lead.number.desc())
            .limit(limit)
        )
        return (await self._session.execute(stmt)).scalars().all()

    # -- leads ------------------------------------------------------------------------------------------

    def add(self, lead: Lead) -> Lead:
        self._session.add(lead)
        return lead

    async def get(self, lead_id: int) -> Lead | None:
        return await self._session.get(Lead, lead_id)

    async def max_number(self, partner_id: int) -> int:
        stmt = select(func.max(Lead.number)).where(Lead.partner_id == partner_id)
        return int((await self._session.execute(stmt)).scalar_one() or 0)

    async def by_contact(
        self, partner_id: int, *, phone: str | None, wechat: str | None, telegram: str | None, tg_user_id: int | None
    ) -> Lead | None:
        """The partner's lead with any of these contacts (a duplicate), lowest number first."""
        conditions = []
        if phone:
            conditions.append(Lead.phone == phone)
        if wechat:
            conditions.append(func.lower(Lead.wechat) == wechat.lower())
        if telegram:
            conditions.append(Lead.telegram == telegram)
        if tg_user_id is not None:
            conditions.append(Lead.tg_user_id == tg_user_id)
        if not conditions:
            return None
        stmt = select(Lead).where(Lead.partner_id == partner_id, or_(*conditions)).order_by(Lead.number).limit(1)
        return (await self._session.execute(stmt)).scalar_one_or_none()

    def _overdue(self, now: datetime, stale_before: datetime, final: Sequence[str]) -> ColumnElement[bool]:
        due = exists().where(
            LeadReminder.lead_id == Lead.id,
            LeadReminder.status.in_(OPEN_REMINDER),
            LeadReminder.due_at <= now,
        )
        stale = func.coalesce(Lead.last_followup_at, Lead.created_at) < stale_before
        return and_(Lead.stage.not_in(list(final)), or_(due, stale))

    async def page(
        self,
        partner_id: int,
        *,
        stage: str | None = None,
        search: str | None = None,
        overdue: tuple[datetime, datetime, Sequence[str]] | None = None,
        offset: int = 0,
        limit: int = 10,
    ) -> tuple[Sequence[Lead], int]:
        """One page of the partner's leads (newest number first) and how many match in all.

        `overdue` is (now, stale_before, final stages): only overdue leads, most overdue first."""
        conditions: list[ColumnElement[bool]] = [Lead.partner_id == partner_id]
        if stage is not None:
            conditions.append(Lead.stage == stage)
        if search:
            pattern = "%" + search.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            conditions.append(
                or_(
                    func.lower(Lead.name).like(pattern, escape="\\"),
                    func.lower(func.coalesce(Lead.note, "")).like(pattern, escape="\\"),
                    func.coalesce(Lead.phone, "").like(pattern, escape="\\"),
                    func.lower(func.coalesce(Lead.wechat, "")).like(pattern, escape="\\"),
                    func.coalesce(Lead.telegram, "").like(pattern, escape="\\"),
                )
            )
        order: list[Any] = [Lead.number.desc()]
        if overdue is not None:
            conditions.append(self._overdue(*overdue))
            order = [func.coalesce(Lead.last_followup_at, Lead.created_at), Lead.number]
        total = (await self._session.execute(select(func.count()).select_from(Lead).where(*conditions))).scalar_one()
        if total <= offset:
            return [], int(total)  # nothing on this page (every /today of a partner without overdue leads)
        stmt = select(Lead).where(*conditions).order_by(*order).offset(offset).limit(limit)
        return (await self._session.execute(stmt)).scalars().all(), int(total)

    async def overdue_counts(
        self, partner_ids: Sequence[int], now: datetime, stale_before: datetime, final: Sequence[str]
    ) -> dict[int, int]:
        """partner id → how many of their leads are overdue (partners without any are left out)."""
        if not partner_ids:
            return {}
        stmt = (
            select(Lead.partner_id, func.count())
            .where(Lead.partner_id.in_(list(partner_ids)), self._overdue(now, stale_before, final))
            .group_by(Lead.partner_id)
        )
        return {int(pid): int(n) for pid, n in (await self._session.execute(stmt)).all()}

    async def subtree_ids(self, tree_path: str) -> list[int]:
        """Ids of everyone below the partner with this materialised path (not the partner themselves)."""
        escaped = tree_path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = select(Partner.id).where(
            Partner.tree_path.like(f"{escaped}%", escape="\\"), Partner.tree_path != tree_path
        )
        return [int(pid) for pid in (await self._session.execute(stmt)).scalars()]

    async def all_of(self, partner_id: int) -> Sequence[Lead]:
        stmt = select(Lead).where(Lead.partner_id == partner_id).order_by(Lead.number)
        return (await self._session.execute(stmt)).scalars().all()

    async def delete(self, lead: Lead) -> None:
        """The lead with its follow-ups and reminders (explicitly: not every database enforces the cascade)."""
        await self._session.execute(delete(LeadFollowup).where(LeadFollowup.lead_id == lead.id))
        await self._session.execute(delete(LeadReminder).where(LeadReminder.lead_id == lead.id))
        await self._session.delete(lead)
        await self._session.flush()

    # -- follow-ups -------------------------------------------------------------------------------------

    def add_followup(self, followup: LeadFollowup) -> LeadFollowup:
        self._session.add(followup)
        return followup

    async def last_followup(self, lead_id: int) -> LeadFollowup | None:
        stmt = (
            select(LeadFollowup)
            .where(LeadFollowup.lead_id == lead_id)
            .order_by(LeadFollowup.created_at.desc(), LeadFollowup.id.desc())
            .limit(1)
        )
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def followups_of(self, partner_id: int) -> Sequence[LeadFollowup]:
        stmt = select(LeadFollowup).where(LeadFollowup.partner_id == partner_id).order_by(LeadFollowup.id)
        return (await self._session.execute(stmt)).scalars().all()

    # -- reminders --------------------------------------------------------------------------------------

    def add_reminder(self, reminder: LeadReminder) -> LeadReminder:
        self._session.add(reminder)
        return reminder

    async def open_reminder(self, lead_id: int) -> LeadReminder | None:
        """The lead's pending or fired reminder (at most one is open)."""
        stmt = (
            select(LeadReminder)
            .where(LeadReminder.lead_id == lead_id, LeadReminder.status.in_(OPEN_REMINDER))
            .order_by(LeadReminder.id.desc())
            .limit(1)
        )
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def due_reminders(self, now: datetime, limit: int) -> Sequence[LeadReminder]:
        stmt = (
            select(LeadReminder)
            .where(LeadReminder.status == "pending", LeadReminder.due_at <= now)
            .order_by(LeadReminder.due_at, LeadReminder.id)
            .limit(limit)
        )
        return (await self._session.execute(stmt)).scalars().all()

    async def reminders_of(self, partner_id: int) -> Sequence[LeadReminder]:
        stmt = select(LeadReminder).where(LeadReminder.partner_id == partner_id).order_by(LeadReminder.id)
        return (await self._session.execute(stmt)).scalars().all()
