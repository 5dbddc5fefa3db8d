"""Coupon campaigns and personal codes, events, invitations and RSVPs.

- An admin creates a coupon campaign (`/campaign add`); partners of its levels each take one personal code
  (`/coupon`), unique across all campaigns and retried on a collision. An order using the code is attributed to
  the partner by settlement (`uow.campaigns.redeemable_owner` / `record_redemption`).
- An admin creates an event (`/event add`); a partner invites a lead (`/invite`), once per event and lead: the
  invitation's slug is its RSVP page `{PUBLIC_BASE_URL}/e/<slug>`. Answers there are recorded (the latest
  counts; yes answers beyond the capacity are refused) and the partner is told through the outbox.
- A sweep reminds each inviting partner a day and an hour before the event, listing their leads and answers;
  outbox dedupe keys make every reminder go once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.domain.campaigns import (
    RSVP_NAME_MAX,
    Discount,
    clean_text,
    code_prefix,
    due_reminder,
    eligible,
    generate_code,
    generate_slug,
    is_open,
    parse_campaign,
    parse_event,
    parse_event_ref,
    remind_key,
    split_invite,
)
from bot.domain.errors import UsageError, UserFacingError
from bot.domain.events import EventSource, EventType
from bot.services.acting import Audited, language_of, require_admin
from bot.services.context import ServiceContext
from bot.services.leads import LeadService
from bot.services.ledger import SettlementService
from bot.services.notify import enqueue_text, partner_zone
from bot.services.partners import display_name
from bot.services.views import PartnerView
from storage.models import CouponCampaign, EventInvitation, Partner, ProgramEvent
from storage.repositories.campaigns import EventRow
from storage.uow import UnitOfWork

LIST_LIMIT = 20
CODE_ATTEMPTS = 8
SLUG_ATTEMPTS = 8


# -- read models -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CampaignLine:
    id: int
    name: str
    discount: Discount
    valid_from: datetime
    valid_until: datetime
    max_uses: int | None
    levels: tuple[str, ...]
    active: bool
    issued: int = 0
    redeemed: int = 0


@dataclass(frozen=True, slots=True)
class CampaignList:
    items: tuple[CampaignLine, ...]
    zone: ZoneInfo


@dataclass(frozen=True, slots=True)
class CampaignAdded:
    campaign: CampaignLine
    zone: ZoneInfo
    """The admin's time zone."""


@dataclass(frozen=True, slots=True)
class CampaignDecision:
    campaign: CampaignLine
    changed: bool


@dataclass(frozen=True, slots=True)
class CouponCode:
    code: str
    campaign: CampaignLine | None
    redemptions: int
    usable: bool
    """The campaign is open now and the code has uses left."""


@dataclass(frozen=True, slots=True)
class CouponOverview:
    offers: tuple[CampaignLine, ...]
    """Open campaigns of the partner's level they have no code for yet."""
    codes: tuple[CouponCode, ...]
    ineligible: int
    """Open campaigns not meant for the partner's level."""
    level: str
    zone: ZoneInfo


@dataclass(frozen=True, slots=True)
class IssuedCoupon:
    coupon: CouponCode
    created: bool
    partner_name: str
    zone: ZoneInfo


@dataclass(frozen=True, slots=True)
class EventLine:
    id: int
    slug: str
    title: str
    starts_at: datetime
    place: str | None
    online_url: str | None
    capacity: int | None
    status: str
    invitations: int = 0
    yes: int = 0
    no: int = 0

    @property
    def where(self) -> str:
        return self.place or self.online_url or ""


@dataclass(frozen=True, slots=True)
class EventList:
    items: tuple[EventLine, ...]
    zone: ZoneInfo


@dataclass(frozen=True, slots=True)
class EventAdded:
    event: EventLine
    zone: ZoneInfo
    """The admin's time zone."""


@dataclass(frozen=True, slots=True)
class EventDecision:
    event: EventLine
    changed: bool


@dataclass(frozen=True, slots=True)
class InvitationView:
    slug: str
    url: str
    event: EventLine
    lead_name: str
    created: bool
    partner_name: str
    zone: ZoneInfo


@dataclass(frozen=True, slots=True)
class RsvpPage:
    """What the RSVP page shows. `state`: open (the form) | cancelled | past."""

    slug: str
    event: EventLine
    lead_name: str
    answer: bool | None
    state: str
    zone: ZoneInfo


@dataclass(frozen=True, slots=True)
class RsvpResult:
    """`outcome`: recorded | full (a yes beyond the capacity: nothing written) | closed (cancelled or past)."""

    outcome: str
    page: RsvpPage


def _campaign_line(row: CouponCampaign, counts: tuple[int, int] = (0, 0)) -> CampaignLine:
    return CampaignLine(
        id=row.id,
        name=row.name,
        discount=Discount(row.discount_kind, row.discount_value, row.currency),
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        max_uses=row.max_uses,
        levels=tuple(row.eligible_levels or ()),
        active=row.active,
        issued=counts[0],
        redeemed=counts[1],
    )


def _event_line(row: ProgramEvent, counts: EventRow | None = None) -> EventLine:
    return EventLine(
        id=row.id,
        slug=row.slug,
        title=row.title,
        starts_at=row.starts_at,
        place=row.place,
        online_url=row.online_url,
        capacity=row.capacity,
        status=row.status,
        invitations=counts.invitations if counts else 0,
        yes=counts.yes if counts else 0,
        no=counts.no if counts else 0,
    )


class CampaignService(Audited):
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    # ------------------------------------------------------------------ admins: campaigns

    async def campaigns(self, actor: PartnerView) -> CampaignList:
        require_admin(actor)
        rows = await self._uow.campaigns.campaigns(LIST_LIMIT)
        counts = await self._uow.campaigns.issued_counts([r.id for r in rows])
        items = tuple(_campaign_line(r, counts.get(r.id, (0, 0))) for r in rows)
        return CampaignList(items, await self._zone_of(actor.id))

    async def add_campaign(self, actor: PartnerView, text: str | None) -> CampaignAdded:
        """Create a campaign from `<name> | <discount> | <validity> [| <max uses> [| <levels>]]`; audited."""
        require_admin(actor)
        now = self._ctx.clock.now()
        _, plan = await SettlementService(self._uow, self._ctx).plan_for(now)
        zone = await self._zone_of(actor.id)
        spec = parse_campaign(text, now=now, zone=zone, currency=plan.currency, levels=list(plan.levels))
        row = await self._uow.campaigns.add_campaign(
            CouponCampaign(
                name=spec.name,
                discount_kind=spec.discount.kind,
                discount_value=spec.discount.value,
                currency=spec.discount.currency,
                valid_from=now,
                valid_until=spec.valid_until,
                max_uses=spec.max_uses,
                eligible_levels=list(spec.levels),
                active=True,
                created_by=actor.id,
                created_at=now,
            )
        )
        details = {
            "name": spec.name,
            "discount": f"{spec.discount.kind}:{spec.discount.value}",
            "valid_until": spec.valid_until.isoformat(),
            "max_uses": spec.max_uses,
            "levels": list(spec.levels),
        }
        self._audit(actor, "campaign_add", f"campaign:{row.id}", "ok", details)
        return CampaignAdded(_campaign_line(row), zone)

    async def set_campaign_active(self, actor: PartnerView, campaign_id: int, active: bool) -> CampaignDecision:
        require_admin(actor)
        changed = await self._uow.campaigns.set_campaign_active(campaign_id, active)
        row = await self._uow.campaigns.campaign(campaign_id)
        if row is None:
            raise UsageError("campaigns.campaign.not_found", id=campaign_id)
        action = "campaign_activate" if active else "campaign_deactivate"
        self._audit(actor, action, f"campaign:{campaign_id}", "ok" if changed else "noop", {})
        return CampaignDecision(_campaign_line(row), changed)

    # ------------------------------------------------------------------ partners: coupons

    async def coupon_overview(self, partner_id: int) -> CouponOverview:
        partner = await self._partner(partner_id)
        now = self._ctx.clock.now()
        open_rows = await self._uow.campaigns.open_campaigns(now)
        codes = await self._uow.campaigns.codes_of_partner(partner_id)
        taken = {row.coupon.campaign_id for row in codes}
        offers = tuple(
            _campaign_line(r)
            for r in open_rows
            if eligible(r.eligible_levels or (), partner.level) and r.id not in taken
        )
        ineligible = sum(1 for r in open_rows if not eligible(r.eligible_levels or (), partner.level))
        views = tuple(
            self._code_view(row.coupon.code, row.campaign, row.redemptions, now, active=row.coupon.active)
            for row in codes
        )
        return CouponOverview(offers, views, ineligible, partner.level, partner_zone(self._ctx, partner))

    async def take_coupon(self, partner_id: int, campaign_id: int) -> IssuedCoupon:
        """The partner's personal code of the campaign: issued once (COUPON_ISSUED), the same one afterwards."""
        partner = await self._partner(partner_id)
        uow, now = self._uow, self._ctx.clock.now()
        campaign = await uow.campaigns.campaign(campaign_id)
        zone = partner_zone(self._ctx, partner)
        existing = await uow.campaigns.coupon_of(campaign_id, partner_id)
        if campaign is None:
            raise UserFacingError("campaigns.coupon.not_found")
        if existing is not None:
            used = await uow.campaigns.redemptions_of(existing.code)
            view = self._code_view(existing.code, campaign, used, now, active=existing.active)
            return IssuedCoupon(view, False, display_name(partner), zone)
        if not is_open(campaign.valid_from, campaign.valid_until, campaign.active, now):
            raise UserFacingError("campaigns.coupon.closed", name=campaign.name)
        if not eligible(campaign.eligible_levels or (), partner.level):
            raise UserFacingError("campaigns.coupon.not_eligible", name=campaign.name)
        prefix = code_prefix(campaign.name, campaign.id)
        for _ in range(CODE_ATTEMPTS):
            code = generate_code(prefix, self._ctx.choice)
            if await uow.campaigns.insert_coupon(code=code, partner_id=partner_id, campaign_id=campaign_id, now=now):
                break
            if await uow.campaigns.coupon_of(campaign_id, partner_id) is not None:  # a double press won the race
                return await self.take_coupon(partner_id, campaign_id)
        else:
            raise RuntimeError(f"no free coupon code for campaign {campaign_id} after {CODE_ATTEMPTS} tries")
        uow.events.add(
            partner_id=partner_id,
            type=EventType.COUPON_ISSUED,
            occurred_at=now,
            source=EventSource.BOT,
            payload={"campaign_id": campaign_id, "code": code},
        )
        view = self._code_view(code, campaign, 0, now, active=True)
        return IssuedCoupon(view, True, display_name(partner), zone)

    @staticmethod
    def _code_view(code: str, campaign: CouponCampaign | None, used: int, now: datetime, *, active: bool) -> CouponCode:
        if campaign is None:
            return CouponCode(code, None, used, active)
        line = _campaign_line(campaign)
        usable = (
            active
            and is_open(campaign.valid_from, campaign.valid_until, campaign.active, now)
            and (campaign.max_uses is None or used < campaign.max_uses)
        )
        return CouponCode(code, line, used, usable)

    # ------------------------------------------------------------------ admins: events

    async def events(self, actor: PartnerView) -> EventList:
        require_admin(actor)
        rows = await self._uow.campaigns.upcoming_events(self._ctx.clock.now(), LIST_LIMIT, active_only=False)
        return EventList(tuple(_event_line(r.event, r) for r in rows), await self._zone_of(actor.id))

    async def add_event(self, actor: PartnerView, text: str | None) -> EventAdded:
        """Create an event from `<title> | <YYYY-MM-DD HH:MM> | <place or link> [| <capacity>]`; audited."""
        require_admin(actor)
        now = self._ctx.clock.now()
        zone = await self._zone_of(actor.id)
        spec = parse_event(text, now=now, zone=zone)
        for _ in range(SLUG_ATTEMPTS):
            slug = generate_slug(self._ctx.choice)
            row = ProgramEvent(
                slug=slug,
                title=spec.title,
                starts_at=spec.starts_at,
                place=spec.place,
                online_url=spec.online_url,
                capacity=spec.capacity,
                status="active",
                created_by=actor.id,
                created_at=now,
            )
            if await self._uow.campaigns.add_event(row):
                break
        else:
            raise RuntimeError(f"no free event slug after {SLUG_ATTEMPTS} tries")
        stored = await self._uow.campaigns.event_by_slug(slug)
        assert stored is not None
        details = {"title": spec.title, "starts_at": spec.starts_at.isoformat(), "capacity": spec.capacity}
        self._audit(actor, "event_add", f"event:{stored.id}", "ok", details)
        return EventAdded(_event_line(stored), zone)

    async def cancel_event(self, actor: PartnerView, event_id: int) -> EventDecision:
        require_admin(actor)
        changed = await self._uow.campaigns.set_event_status(event_id, "cancelled")
        row = await self._uow.campaigns.event(event_id)
        if row is None:
            raise UsageError("campaigns.event.not_found", id=event_id)
        self._audit(actor, "event_cancel", f"event:{event_id}", "ok" if changed else "noop", {})
        return EventDecision(_event_line(row), changed)

    # ------------------------------------------------------------------ partners: invitations

    async def upcoming(self, partner_id: int) -> EventList:
        """Active events not started yet, for `/invite` without arguments."""
        partner = await self._partner(partner_id)
        rows = await self._uow.campaigns.upcoming_events(self._ctx.clock.now(), LIST_LIMIT)
        return EventList(tuple(_event_line(r.event) for r in rows), partner_zone(self._ctx, partner))

    async def invite(self, partner_id: int, text: str | None) -> InvitationView:
        """`<lead> <event>`: the lead's invitation to the event, created once (EVENT_INVITED), the same after."""
        parts = split_invite(text)
        ref = parse_event_ref(parts[1]) if parts else None
        if parts is None or ref is None:
            raise UsageError("campaigns.invite.usage")
        partner = await self._partner(partner_id)
        uow, now = self._uow, self._ctx.clock.now()
        event = (
            await uow.campaigns.event(ref.number)
            if ref.number is not None
            else await uow.campaigns.event_by_slug(ref.slug or "")
        )
        if event is None:
            raise UsageError("campaigns.invite.unknown_event", ref=parts[1])
        if event.status != "active":
            raise UserFacingError("campaigns.invite.cancelled", title=event.title)
        if event.starts_at <= now:
            raise UserFacingError("campaigns.invite.past", title=event.title)
        lead = await LeadService(uow, self._ctx).resolve(partner_id, parts[0])
        invitation = await uow.campaigns.invitation_for(event.id, lead.id)
        created = False
        if invitation is None:
            invitation = await self._new_invitation(event, partner_id, lead.id, lead.name, now)
            created = True
            uow.events.add(
                partner_id=partner_id,
                type=EventType.EVENT_INVITED,
                occurred_at=now,
                source=EventSource.BOT,
                payload={"event_id": event.id, "invitation_id": invitation.id, "lead_id": lead.id},
            )
        return InvitationView(
            slug=invitation.slug,
            url=self.rsvp_url(invitation.slug),
            event=_event_line(event),
            lead_name=invitation.lead_name,
            created=created,
            partner_name=display_name(partner),
            zone=partner_zone(self._ctx, partner),
        )

    async def _new_invitation(
        self, event: ProgramEvent, partner_id: int, lead_id: int, lead_name: str, now: datetime
    ) -> EventInvitation:
        for _ in range(SLUG_ATTEMPTS):
            slug = generate_slug(self._ctx.choice)
            inserted = await self._uow.campaigns.insert_invitation(
                slug=slug, event_id=event.id, partner_id=partner_id, lead_id=lead_id, lead_name=lead_name, now=now
            )
            found = await self._uow.campaigns.invitation_for(event.id, lead_id)
            if found is not None:  # ours, or a concurrent press's: either way the one invitation of this lead
                return found
            assert not inserted
        raise RuntimeError(f"no free invitation slug after {SLUG_ATTEMPTS} tries")

    def rsvp_url(self, slug: str) -> str:
        return f"{self._ctx.public_base_url.rstrip('/')}/e/{slug}"

    # ------------------------------------------------------------------ the RSVP page

    async def rsvp_page(self, slug: str) -> RsvpPage | None:
        """What /e/<slug> shows; None for an unknown slug."""
        found = await self._invitation(slug)
        if found is None:
            return None
        invitation, event, partner = found
        answer = await self._uow.campaigns.latest_answer(invitation.id)
        return self._page(invitation, event, partner, answer.attending if answer else None)

    async def answer_rsvp(self, slug: str, name: str, attending: bool) -> RsvpResult | None:
        """Record an answer (the latest counts), record RSVP for the partner and tell them. A yes beyond the
        capacity and answers to cancelled or past events are refused with nothing written. None: unknown slug."""
        found = await self._invitation(slug, lock=True)
        if found is None:
            return None
        invitation, event, partner = found
        page = self._page(invitation, event, partner, None)
        if page.state != "open":
            return RsvpResult("closed", page)
        uow, now = self._uow, self._ctx.clock.now()
        if attending and event.capacity is not None:
            taken = await uow.campaigns.attending_count(event.id, excluding_invitation=invitation.id)
            if taken >= event.capacity:
                return RsvpResult("full", page)
        name = clean_text(name)[:RSVP_NAME_MAX]
        row = await uow.campaigns.add_rsvp(invitation_id=invitation.id, name=name, attending=attending, now=now)
        uow.events.add(
            partner_id=partner.id,
            type=EventType.RSVP,
            occurred_at=now,
            source=EventSource.WEB,
            payload={
                "event_id": event.id,
                "invitation_id": invitation.id,
                "lead_id": invitation.lead_id,
                "attending": attending,
            },
        )
        t = self._ctx.translator.texts(language_of(self._ctx, partner))
        key = "campaigns.rsvp.notice_yes" if attending else "campaigns.rsvp.notice_no"
        await enqueue_text(
            uow,
            self._ctx,
            recipient=partner,
            dedupe_key=f"rsvp:{row.id}",
            text=t(key, name=name, lead=invitation.lead_name, title=event.title),
        )
        return RsvpResult("recorded", self._page(invitation, event, partner, attending))

    async def _invitation(
        self, slug: str, *, lock: bool = False
    ) -> tuple[EventInvitation, ProgramEvent, Partner] | None:
        if not slug or len(slug) > 32:
            return None
        invitation = await self._uow.campaigns.invitation_by_slug(slug)
        if invitation is None:
            return None
        event = await self._uow.campaigns.event(invitation.event_id, lock=lock)
        partner = await self._uow.partners.get(invitation.partner_id)
        if event is None or partner is None:
            return None
        return invitation, event, partner

    def _page(
        self, invitation: EventInvitation, event: ProgramEvent, partner: Partner, answer: bool | None
    ) -> RsvpPage:
        now = self._ctx.clock.now()
        state = "cancelled" if event.status != "active" else "past" if event.starts_at <= now else "open"
        return RsvpPage(
            invitation.slug, _event_line(event), invitation.lead_name, answer, state, partner_zone(self._ctx, partner)
        )

    # ------------------------------------------------------------------ reminders

    async def send_event_reminders(self, now: datetime) -> int:
        """Queue the due 1-day and 1-hour reminders: one per event, partner and kind, listing the partner's
        invited leads and their answers. Returns how many were queued."""
        uow = self._uow
        events = {e.id: e for e in await uow.campaigns.events_starting_between(now, now + timedelta(days=1))}
        kinds = {eid: due_reminder(e.starts_at, now) for eid, e in events.items()}
        due = [eid for eid, kind in kinds.items() if kind is not None]
        by_partner: dict[tuple[int, int], list[tuple[str, bool | None]]] = {}
        for row in await uow.campaigns.invitations_of_events(due):
            key = (row.invitation.event_id, row.invitation.partner_id)
            by_partner.setdefault(key, []).append((row.invitation.lead_name, row.attending))
        keys = {pair: remind_key(pair[0], pair[1], kinds[pair[0]] or "") for pair in by_partner}
        sent = await uow.campaigns.existing_outbox_keys(list(keys.values()))
        queued = 0
        for (event_id, partner_id), leads in by_partner.items():
            dedupe = keys[(event_id, partner_id)]
            partner = await uow.partners.get(partner_id)
            if dedupe in sent or partner is None:
                continue
            kind = kinds[event_id] or ""
            text = self._reminder_text(events[event_id], partner, kind, leads)
            if await enqueue_text(uow, self._ctx, recipient=partner, dedupe_key=dedupe, text=text, urgent=kind == "1h"):
                queued += 1
        return queued

    def _reminder_text(
        self, event: ProgramEvent, partner: Partner, kind: str, leads: list[tuple[str, bool | None]]
    ) -> str:
        t = self._ctx.translator.texts(language_of(self._ctx, partner))
        zone = partner_zone(self._ctx, partner)
        status = {True: "yes", False: "no", None: "pending"}
        lines = [
            t(
                f"campaigns.remind.title_{kind}",
                title=event.title,
                time=event.starts_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                where=event.place or event.online_url or "",
            )
        ]
        lines += [t(f"campaigns.remind.lead_{status[answer]}", name=name) for name, answer in leads]
        return "\n".join(lines)

    # ------------------------------------------------------------------ helpers

    async def _partner(self, partner_id: int) -> Partner:
        partner = await self._uow.partners.get(partner_id)
        if partner is None:
            raise UserFacingError("error.generic")
        return partner

    async def _zone_of(self, partner_id: int) -> ZoneInfo:
        partner = await self._uow.partners.get(partner_id)
        return partner_zone(self._ctx, partner) if partner is not None else self._ctx.timezone
