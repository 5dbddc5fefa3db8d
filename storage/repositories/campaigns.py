"""Coupon campaigns and their redemptions, events, invitations and RSVPs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Coupon,
    CouponCampaign,
    CouponRedemption,
    EventInvitation,
    OutboxMessage,
    ProgramEvent,
    Rsvp,
)
from storage.repositories.dialect import dialect_insert


@dataclass(frozen=True, slots=True)
class CodeRow:
    coupon: Coupon
    campaign: CouponCampaign | None
    redemptions: int


@dataclass(frozen=True, slots=True)
class EventRow:
    event: ProgramEvent
    invitations: int
    yes: int
    no: int


@dataclass(frozen=True, slots=True)
class InvitationRow:
    invitation: EventInvitation
    attending: bool | None
    """The latest answer; None when the lead has not answered."""


class CampaignRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # ------------------------------------------------------------------ campaigns

    async def add_campaign(self, campaign: CouponCampaign) -> CouponCampaign:
        self._session.add(campaign)
        await self._session.flush()
        return campaign

    async def campaign(self, campaign_id: int) -> CouponCampaign | None:
        return await self._session.get(CouponCampaign, campaign_id)

    async def campaigns(self, limit: int) -> Sequence[CouponCampaign]:
        """Newest first."""
        result = await self._session.execute(select(CouponCampaign).order_by(CouponCampaign.id.desc()).limit(limit))
        return result.scalars().all()

    async def open_campaigns(self, at: datetime) -> Sequence[CouponCampaign]:
        """Active campaigns inside their validity window, ending soonest first."""
        result = await self._session.execute(
            select(CouponCampaign)
            .where(
                CouponCampaign.active.is_(True),
                CouponCampaign.valid_from <= at,
                CouponCampaign.valid_until > at,
            )
            .order_by(CouponCampaign.valid_until, CouponCampaign.id)
        )
        return result.scalars().all()

    async def issued_counts(self, campaign_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """(codes issued, redemptions) per campaign."""
        if not campaign_ids:
            return {}
        codes = await self._session.execute(
            select(Coupon.campaign_id, func.count())
            .where(Coupon.campaign_id.in_(campaign_ids))
            .group_by(Coupon.campaign_id)
        )
        uses = await self._session.execute(
            select(Coupon.campaign_id, func.count())
            .join(CouponRedemption, CouponRedemption.code == Coupon.code)
            .where(Coupon.campaign_id.in_(campaign_ids))
            .group_by(Coupon.campaign_id)
        )
        issued: dict[int, int] = {int(cid): int(n) for cid, n in codes.all() if cid is not None}
        used: dict[int, int] = {int(cid): int(n) for cid, n in uses.all() if cid is not None}
        return {cid: (issued.get(cid, 0), used.get(cid, 0)) for cid in campaign_ids}

    async def set_campaign_active(self, campaign_id: int, active: bool) -> bool:
        """True when the flag changed."""
        campaign = await self.campaign(campaign_id)
        if campaign is None or campaign.active is active:
            return False
        campaign.active = active
        await self._session.flush()
        return True

    # ------------------------------------------------------------------ personal codes

    async def coupon_of(self, campaign_id: int, partner_id: int) -> Coupon | None:
        result = await self._session.execute(
            select(Coupon).where(Coupon.campaign_id == campaign_id, Coupon.partner_id == partner_id)
        )
        return result.scalar_one_or_none()

    async def insert_coupon(self, *, code: str, partner_id: int, campaign_id: int, now: datetime) -> bool:
        """Insert a personal code; False (nothing written) when the code is taken or the partner already has one
        for this campaign."""
        stmt = (
            dialect_insert(self._session)(Coupon)
            .values(code=code, partner_id=partner_id, campaign_id=campaign_id, active=True, created_at=now)
            .on_conflict_do_nothing()
        )
        result = await self._session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def codes_of_partner(self, partner_id: int) -> list[CodeRow]:
        """The partner's codes with their campaigns and redemption counts, newest first."""
        uses = select(CouponRedemption.code, func.count().label("n")).group_by(CouponRedemption.code).subquery()
        result = await self._session.execute(
            select(Coupon, CouponCampaign, func.coalesce(uses.c.n, 0))
            .outerjoin(CouponCampaign, CouponCampaign.id == Coupon.campaign_id)
            .outerjoin(uses, uses.c.code == Coupon.code)
            .where(Coupon.partner_id == partner_id)
            .order_by(Coupon.created_at.desc(), Coupon.code)
        )
        return [CodeRow(coupon, campaign, int(n)) for coupon, campaign, n in result.all()]

    async def redemptions_of(self, code: str) -> int:
        result = await self._session.execute(
            select(func.count()).select_from(CouponRedemption).where(CouponRedemption.code == code)
        )
        return int(result.scalar_one())

    async def _coupon_by_code(self, code: str) -> Coupon | None:
        result = await self._session.execute(select(Coupon).where(func.lower(Coupon.code) == code.strip().lower()))
        return result.scalars().first()

    async def redeemable_owner(self, code: str, at: datetime) -> int | None:
        """The partner who owns `code` if an order at `at` may use it: the code is active; its campaign (if any)
        is active and `at` is inside [valid_from, valid_until); and the code has uses left (the campaign's
        max_uses per personal code, counted from coupon_redemptions). Codes without a campaign are always valid
        while active. Case-insensitive, like the shop's customers type codes."""
        coupon = await self._coupon_by_code(code)
        if coupon is None or not coupon.active:
            return None
        if coupon.campaign_id is None:
            return coupon.partner_id
        campaign = await self.campaign(coupon.campaign_id)
        if campaign is None or not campaign.active or not campaign.valid_from <= at < campaign.valid_until:
            return None
        if campaign.max_uses is not None and await self.redemptions_of(coupon.code) >= campaign.max_uses:
            return None
        return coupon.partner_id

    async def record_redemption(self, code: str, order_id: int, partner_id: int, at: datetime) -> bool:
        """Record that order `order_id` used `code` (any case); a second call for the same order inserts nothing.
        True when a row was inserted; False for a replay or an unknown code."""
        coupon = await self._coupon_by_code(code)
        if coupon is None:
            return False
        stmt = (
            dialect_insert(self._session)(CouponRedemption)
            .values(code=coupon.code, order_id=order_id, partner_id=partner_id, redeemed_at=at)
            .on_conflict_do_nothing(index_elements=["order_id"])
        )
        result = await self._session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    # ------------------------------------------------------------------ events

    async def add_event(self, event: ProgramEvent) -> bool:
        """Insert unless its slug is taken (then False, nothing written)."""
        stmt = (
            dialect_insert(self._session)(ProgramEvent)
            .values(
                slug=event.slug,
                title=event.title,
                starts_at=event.starts_at,
                place=event.place,
                online_url=event.online_url,
                capacity=event.capacity,
                status=event.status,
                created_by=event.created_by,
                created_at=event.created_at,
            )
            .on_conflict_do_nothing(index_elements=["slug"])
        )
        result = await self._session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def event(self, event_id: int, *, lock: bool = False) -> ProgramEvent | None:
        query = select(ProgramEvent).where(ProgramEvent.id == event_id).execution_options(populate_existing=True)
        if lock:  # PostgreSQL serialises RSVPs of one event on its row; SQLite serialises writers anyway
            query = query.with_for_update()
        return (await self._session.execute(query)).scalar_one_or_none()

    async def event_by_slug(self, slug: str) -> ProgramEvent | None:
        result = await self._session.execute(select(ProgramEvent).where(ProgramEvent.slug == slug))
        return result.scalar_one_or_none()

    async def upcoming_events(self, now: datetime, limit: int, *, active_only: bool = True) -> list[EventRow]:
        """Events not started yet, soonest first, with invitation and latest-answer counts."""
        query = select(ProgramEvent).where(ProgramEvent.starts_at > now)
        if active_only:
            query = query.where(ProgramEvent.status == "active")
        events = (await self._session.execute(query.order_by(ProgramEvent.starts_at).limit(limit))).scalars().all()
        return await self._with_counts(events)

    async def _with_counts(self, events: Sequence[ProgramEvent]) -> list[EventRow]:
        ids = [e.id for e in events]
        if not ids:
            return []
        invited = dict(
            (
                await self._session.execute(
                    select(EventInvitation.event_id, func.count())
                    .where(EventInvitation.event_id.in_(ids))
                    .group_by(EventInvitation.event_id)
                )
            ).all()
        )
        answers = await self._session.execute(
            select(EventInvitation.event_id, Rsvp.attending, func.count())
            .join(Rsvp, Rsvp.invitation_id == EventInvitation.id)
            .where(EventInvitation.event_id.in_(ids), Rsvp.id.in_(self._latest_rsvp_ids()))
            .group_by(EventInvitation.event_id, Rsvp.attending)
        )
        yes: dict[int, int] = {}
        no: dict[int, int] = {}
        for event_id, attending, count in answers.all():
            (yes if attending else no)[int(event_id)] = int(count)
        return [EventRow(e, int(invited.get(e.id, 0)), yes.get(e.id, 0), no.get(e.id, 0)) for e in events]

    @staticmethod
    def _latest_rsvp_ids() -> Any:
        return select(func.max(Rsvp.id)).group_by(Rsvp.invitation_id).scalar_subquery()

    async def events_starting_between(self, start: datetime, end: datetime) -> Sequence[ProgramEvent]:
        """Active events with start in (start, end]."""
        result = await self._session.execute(
            select(ProgramEvent)
            .where(ProgramEvent.status == "active", ProgramEvent.starts_at > start, ProgramEvent.starts_at <= end)
            .order_by(ProgramEvent.starts_at, ProgramEvent.id)
        )
        return result.scalars().all()

    async def set_event_status(self, event_id: int, status: str) -> bool:
        event = await self.event(event_id)
        if event is None or event.status == status:
            return False
        event.status = status
        await self._session.flush()
        return True

    # ------------------------------------------------------------------ invitations and RSVPs

    async def invitation_for(self, event_id: int, lead_id: int) -> EventInvitation | None:
        result = await self._session.execute(
            select(EventInvitation).where(EventInvitation.event_id == event_id, EventInvitation.lead_id == lead_id)
        )
        return result.scalar_one_or_none()

    async def insert_invitation(
        self, *, slug: str, event_id: int, partner_id: int, lead_id: int, lead_name: str, now: datetime
    ) -> bool:
        """False (nothing written) when the lead is invited already or the slug is taken."""
        stmt = (
            dialect_insert(self._session)(EventInvitation)
            .values(
                slug=slug,
                event_id=event_id,
                partner_id=partner_id,
                lead_id=lead_id,
                lead_name=lead_name,
                created_at=now,
            )
            .on_conflict_do_nothing()
        )
        result = await self._session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def invitation_by_slug(self, slug: str) -> EventInvitation | None:
        result = await self._session.execute(select(EventInvitation).where(EventInvitation.slug == slug))
        return result.scalar_one_or_none()

    async def latest_answer(self, invitation_id: int) -> Rsvp | None:
        result = await self._session.execute(
            select(Rsvp).where(Rsvp.invitation_id == invitation_id).order_by(Rsvp.id.desc()).limit(1)
        )
        return result.scalar_one_or_none()

    async def attending_count(self, event_id: int, *, excluding_invitation: int | None = None) -> int:
        """Invitations of the event whose latest answer is yes."""
        query = (
            select(func.count())
            .select_from(Rsvp)
            .join(EventInvitation, EventInvitation.id == Rsvp.invitation_id)
            .where(
                EventInvitation.event_id == event_id,
                Rsvp.attending.is_(True),
                Rsvp.id.in_(self._latest_rsvp_ids()),
            )
        )
        if excluding_invitation is not None:
            query = query.where(EventInvitation.id != excluding_invitation)
        return int((await self._session.execute(query)).scalar_one())

    async def add_rsvp(self, *, invitation_id: int, name: str, attending: bool, now: datetime) -> Rsvp:
        row = Rsvp(invitation_id=invitation_id, name=name, attending=attending, responded_at=now)
        self._session.add(row)
        await self._session.flush()
        return row

    async def invitations_of_events(self, event_ids: Sequence[int]) -> list[InvitationRow]:
        """Every invitation of the events with its latest answer, by event, partner and creation."""
        if not event_ids:
            return []
        latest = select(Rsvp.invitation_id, Rsvp.attending).where(Rsvp.id.in_(self._latest_rsvp_ids())).subquery()
        result = await self._session.execute(
            select(EventInvitation, latest.c.attending)
            .outerjoin(latest, latest.c.invitation_id == EventInvitation.id)
            .where(EventInvitation.event_id.in_(event_ids))
            .order_by(EventInvitation.event_id, EventInvitation.partner_id, EventInvitation.id)
        )
        return [InvitationRow(inv, None if attending is None else bool(attending)) for inv, attending in result.all()]

    async def existing_outbox_keys(self, keys: Sequence[str]) -> set[str]:
        """Which of these outbox dedupe keys were queued already (reminders sent are not prepared again)."""
        if not keys:
            return set()
        result = await self._session.execute(select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.in_(keys)))
        return set(result.scalars().all())
