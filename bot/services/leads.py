"""Prospects: adding, listing, follow-ups, revisits and reminders."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.callbacks import LeadCallback
from bot.domain.errors import UsageError, UserFacingError
from bot.domain.events import EventSource, EventType
from bot.domain.lead_reminders import WhenError, parse_when, split_trailing_when
from bot.domain.leads import NOTE_MAX, LeadArgsError, LeadDraft, mask_phone, parse_lead_line, parse_lead_ref
from bot.domain.roles import Role, has_at_least
from bot.i18n import Texts
from bot.services.acting import language_of
from bot.services.context import ServiceContext
from bot.services.notify import enqueue_text, partner_zone
from bot.services.views import PartnerView
from storage.models import Lead, LeadFollowup, LeadReminder, Partner
from storage.uow import UnitOfWork

PAGE_SIZE = 8
CHANNELS = ("call", "chat", "visit")
SNOOZES = {"1d": timedelta(days=1), "1w": timedelta(weeks=1)}
REMIND_PRESETS = {"tmr": "tomorrow 09:00", "3d": "in 3d", "1w": "in 1w"}
"""The [Remind me] buttons: callback value → the phrase it stands for."""
DIGEST_LIMIT = 5
DUE_BATCH = 200
OUTCOME_MAX = 200


@dataclass(frozen=True, slots=True)
class FollowupView:
    channel: str
    outcome: str | None
    note: str
    next_step: str | None
    revisit: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LeadCard:
    """A lead as its owner sees it (`masked`: as their team lead sees it, without contacts or notes)."""

    id: int
    number: int
    name: str
    stage: str
    phone: str | None
    wechat: str | None
    telegram: str | None
    note: str | None
    created_at: datetime
    last_followup: FollowupView | None
    reminder_at: datetime | None
    reminder_status: str | None
    overdue: bool
    zone: ZoneInfo
    masked: bool = False


@dataclass(frozen=True, slots=True)
class AddResult:
    card: LeadCard
    created: bool
    """False: a lead with the same contact exists, and `card` is that one."""


@dataclass(frozen=True, slots=True)
class LeadPage:
    items: tuple[LeadCard, ...]
    total: int
    page: int
    pages: int
    filter: str
    """all | overdue | a stage key | q."""
    query: str


@dataclass(frozen=True, slots=True)
class FollowupResult:
    card: LeadCard
    revisit: bool
    reminder_at: datetime | None


@dataclass(frozen=True, slots=True)
class MemberLeads:
    member_name: str
    cards: tuple[LeadCard, ...]


@dataclass(frozen=True, slots=True)
class DataExport:
    data: bytes
    filename: str
    leads: int


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


# -- rendering (handlers, and the reminder job through the outbox) ----------------------------------------


def card_text(card: LeadCard, t: Texts, stage_label: str) -> str:
    """The lead card: stage, contacts (owner only), last follow-up and next reminder. User text is escaped."""
    lines = [t("leads.card.title", number=card.number, name=card.name, stage=stage_label)]
    if card.phone:
        lines.append(t("leads.card.phone", phone=card.phone))
    if not card.masked:
        if card.wechat:
            lines.append(t("leads.card.wechat", wechat=card.wechat))
        if card.telegram:
            lines.append(t("leads.card.telegram", telegram=card.telegram))
        if card.note:
            lines.append(t("leads.card.note", note=card.note))
    lines.append(t("leads.card.added", date=_local(card.created_at, card.zone, "%Y-%m-%d")))
    last = card.last_followup
    if last is None:
        lines.append(t("leads.card.no_followup"))
    elif card.masked:
        lines.append(t("leads.card.last_masked", date=_local(last.created_at, card.zone, "%Y-%m-%d")))
    else:
        lines.append(
            t(
                "leads.card.last",
                date=_local(last.created_at, card.zone, "%Y-%m-%d"),
                channel=t(f"leads.channel.{last.channel}"),
                note=last.note,
            )
        )
        if last.next_step:
            lines.append(t("leads.card.next_step", step=last.next_step))
    if card.reminder_at is not None:
        lines.append(t("leads.card.reminder", when=_local(card.reminder_at, card.zone, "%Y-%m-%d %H:%M")))
    if card.overdue:
        lines.append(t("leads.card.overdue"))
    return "\n".join(lines)


def _local(moment: datetime, zone: ZoneInfo, fmt: str) -> str:
    return moment.astimezone(zone).strftime(fmt)


def _button(text: str, action: str, lead_id: int, value: str = "") -> dict[str, Any]:
    return {"text": text, "callback_data": LeadCallback(action=action, id=lead_id, value=value).pack()}


def card_keyboard(card: LeadCard, t: Texts) -> dict[str, Any]:
    """[Log follow-up] [Remind me] / [Stage ▸] [Quote] [Invite] / [Won] [Lost], as Bot API JSON."""
    i = card.id
    return {
        "inline_keyboard": [
            [_button(t("leads.button.followup"), "fu", i), _button(t("leads.button.remind"), "remind", i)],
            [
                _button(t("leads.button.stage"), "stage", i),
                _button(t("leads.button.quote"), "quote", i),
                _button(t("leads.button.invite"), "invite", i),
            ],
            [_button(t("leads.button.won"), "won", i), _button(t("leads.button.lost"), "lost", i)],
        ]
    }


def reminder_keyboard(lead_id: int, t: Texts) -> dict[str, Any]:
    """[Done] [Snooze 1d] [Snooze 1w] / [Log follow-up] under a fired reminder."""
    return {
        "inline_keyboard": [
            [
                _button(t("leads.button.done"), "done", lead_id),
                _button(t("leads.button.snooze_1d"), "snooze", lead_id, "1d"),
                _button(t("leads.button.snooze_1w"), "snooze", lead_id, "1w"),
            ],
            [_button(t("leads.button.followup"), "fu", lead_id)],
        ]
    }


class LeadService:
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    async def resolve(self, partner_id: int, token: str) -> Lead:
        """The partner's own lead named by `token` (a number from /leads or a name prefix).

        Raises `leads.unknown` when nothing matches and `leads.ambiguous` (listing the candidates) when a
        name prefix matches several leads. Another partner's leads are never found.
        """
        ref = parse_lead_ref(token)
        if ref is None:
            raise UserFacingError("leads.unknown", ref=token)
        if ref.number is not None:
            lead = await self._uow.leads.by_number(partner_id, ref.number)
            if lead is None:
                raise UserFacingError("leads.unknown", ref=token)
            return lead
        assert ref.name_prefix is not None
        found = await self._uow.leads.by_name_prefix(partner_id, ref.name_prefix)
        exact = [lead for lead in found if lead.name.casefold() == ref.name_prefix]
        if len(exact) == 1:
            return exact[0]
        if len(found) == 1:
            return found[0]
        if not found:
            raise UserFacingError("leads.unknown", ref=token)
        candidates = ", ".join(f"#{lead.number} {lead.name}" for lead in found)
        raise UserFacingError("leads.ambiguous", ref=token, candidates=candidates)

    async def set_stage(self, lead: Lead, stage: str) -> None:
        """Move `lead` to `stage` (a quote makes it `quoted`, a confirmed order `won`); won records when."""
        now = self._ctx.clock.now()
        lead.stage = stage
        lead.updated_at = now
        if stage == "won" and lead.won_at is None:
            lead.won_at = now
        await self._uow.flush()

    # -- adding -----------------------------------------------------------------------------------------

    def parse_line(self, args: str | None) -> LeadDraft:
        """`/lead <name> [phone | wechat id | @telegram] [note]`; a bad part raises the usage naming it."""
        try:
            return parse_lead_line(args or "")
        except LeadArgsError as exc:
            raise UsageError(f"leads.usage.add_{exc.part}") from None

    async def add(self, partner_id: int, draft: LeadDraft, source: str, *, force: bool = False) -> AddResult:
        """Store a new lead with the next running number, unless one with the same contact exists (then that one
        is returned, `created` False) or `force` says to add it anyway."""
        uow, now = self._uow, self._ctx.clock.now()
        partner = await self._partner(partner_id)
        if not draft.name.strip():
            raise UsageError("leads.usage.add_name")
        if not force:
            existing = await uow.leads.by_contact(
                partner_id,
                phone=draft.phone,
                wechat=draft.wechat,
                telegram=draft.telegram,
                tg_user_id=draft.tg_user_id,
            )
            if existing is not None:
                return AddResult(card=await self._card(existing, partner), created=False)
        # never reuse a number, even of a deleted lead: every lead ever added left a lead_added event
        added_before = await uow.events.count(partner_id=partner_id, type=EventType.LEAD_ADDED)
        number = max(added_before, await uow.leads.max_number(partner_id)) + 1
        lead = uow.leads.add(
            Lead(
                partner_id=partner_id,
                number=number,
                name=draft.name.strip()[:128],
                phone=draft.phone,
                wechat=draft.wechat,
                telegram=draft.telegram,
                tg_user_id=draft.tg_user_id,
                note=draft.note,
                stage="new",
                source=source,
                created_at=now,
                updated_at=now,
            )
        )
        await uow.flush()
        self._event(partner_id, EventType.LEAD_ADDED, {"lead_id": lead.id, "source": source})
        return AddResult(card=await self._card(lead, partner), created=True)

    # -- reading ----------------------------------------------------------------------------------------

    async def card(self, partner_id: int, lead_id: int) -> LeadCard:
        partner = await self._partner(partner_id)
        return await self._card(await self._own(partner_id, lead_id), partner)

    async def card_by_ref(self, partner_id: int, token: str) -> LeadCard:
        partner = await self._partner(partner_id)
        return await self._card(await self.resolve(partner_id, token), partner)

    async def listing(self, partner_id: int, args: str | None, page: int = 0) -> LeadPage:
        """`/leads`, `/leads <stage>`, `/leads overdue`, `/leads <search text>`."""
        words = (args or "").strip()
        if not words or words.casefold() == "all":
            return await self.page(partner_id, "all", "", page)
        if words.casefold() in ("overdue", "逾期"):
            return await self.page(partner_id, "overdue", "", page)
        stage = self._ctx.lead_stages.find(words)
        if stage is not None:
            return await self.page(partner_id, stage.key, "", page)
        if len(words) > 64:
            raise UsageError("leads.usage.list")
        return await self.page(partner_id, "q", words, page)

    async def page(self, partner_id: int, filter: str, query: str, page: int) -> LeadPage:
        partner = await self._partner(partner_id)
        page = max(page, 0)
        stage = filter if filter in self._ctx.lead_stages.keys else None
        if filter not in ("all", "overdue", "q") and stage is None:
            raise UsageError("leads.usage.list")
        overdue = self._overdue_args() if filter == "overdue" else None
        search = query if filter == "q" else None
        leads, total = await self._uow.leads.page(
            partner_id, stage=stage, search=search, overdue=overdue, offset=page * PAGE_SIZE, limit=PAGE_SIZE
        )
        pages = max(1, -(-total // PAGE_SIZE))
        if not leads and page >= pages:  # an old paging button after deletions: the last page there is
            page = pages - 1
            leads, total = await self._uow.leads.page(
                partner_id, stage=stage, search=search, overdue=overdue, offset=page * PAGE_SIZE, limit=PAGE_SIZE
            )
        cards = tuple([await self._card(lead, partner) for lead in leads])
        return LeadPage(items=cards, total=total, page=page, pages=pages, filter=filter, query=query)

    # -- follow-ups -------------------------------------------------------------------------------------

    async def followup_line(self, partner_id: int, args: str | None) -> FollowupResult:
        """`/followup <lead> <note>`: a chat follow-up; a trailing reminder phrase sets the next reminder."""
        lead_token, _, rest = (args or "").strip().partition(" ")
        if not lead_token or not rest.strip():
            raise UsageError("leads.usage.followup")
        lead = await self.resolve(partner_id, lead_token)
        partner = await self._partner(partner_id)
        try:
            note, remind_at = split_trailing_when(rest.strip(), self._ctx.clock.now(), self._zone(partner))
        except WhenError as exc:
            raise self._when_error(exc) from None
        if not note:
            raise UsageError("leads.usage.followup")
        return await self._followup(
            partner, lead, channel="chat", outcome=None, note=note, next_step=None, remind_at=remind_at
        )

    async def followup(
        self,
        partner_id: int,
        lead_id: int,
        *,
        channel: str,
        outcome: str | None,
        note: str,
        next_step: str | None,
    ) -> FollowupResult:
        """The [Log follow-up] form's record; `next_step` may end with a reminder phrase (`send brochure in 2d`)."""
        if channel not in CHANNELS:
            raise UsageError("leads.usage.followup")
        partner = await self._partner(partner_id)
        lead = await self._own(partner_id, lead_id)
        remind_at = None
        if next_step:
            try:
                next_step, remind_at = split_trailing_when(next_step, self._ctx.clock.now(), self._zone(partner))
            except WhenError as exc:
                raise self._when_error(exc) from None
        return await self._followup(
            partner, lead, channel=channel, outcome=outcome, note=note, next_step=next_step or None, remind_at=remind_at
        )

    async def _followup(
        self,
        partner: Partner,
        lead: Lead,
        *,
        channel: str,
        outcome: str | None,
        note: str,
        next_step: str | None,
        remind_at: datetime | None,
    ) -> FollowupResult:
        """Record it. A follow-up on a lead whose reminder is due, or on a won deal, is a revisit (回访): the due
        reminder is done, and `revisited` is recorded beside `followed_up`. The first moves a new lead on."""
        uow, now = self._uow, self._ctx.clock.now()
        if len(note) > NOTE_MAX or (outcome and len(outcome) > OUTCOME_MAX):
            raise UsageError("leads.usage.too_long")
        open_reminder = await uow.leads.open_reminder(lead.id)
        due = open_reminder is not None and (open_reminder.status == "sent" or open_reminder.due_at <= now)
        reason = "due" if due else "won" if lead.stage == "won" else None
        followup = uow.leads.add_followup(
            LeadFollowup(
                lead_id=lead.id,
                partner_id=partner.id,
                channel=channel,
                outcome=outcome,
                note=note,
                next_step=next_step,
                revisit=reason is not None,
                created_at=now,
            )
        )
        if due and open_reminder is not None:
            open_reminder.status, open_reminder.closed_at = "done", now
        lead.last_followup_at = now
        lead.updated_at = now
        if lead.stage == "new":
            lead.stage = "contacted"
        await uow.flush()
        payload = {"lead_id": lead.id, "followup_id": followup.id, "channel": channel, "revisit": reason is not None}
        self._event(partner.id, EventType.FOLLOWED_UP, payload)
        if reason is not None:
            self._event(
                partner.id, EventType.REVISITED, {"lead_id": lead.id, "followup_id": followup.id, "reason": reason}
            )
        if remind_at is not None:
            await self._set_reminder(lead, remind_at)
        return FollowupResult(card=await self._card(lead, partner), revisit=reason is not None, reminder_at=remind_at)

    # -- reminders --------------------------------------------------------------------------------------

    async def remind(self, partner_id: int, lead_id: int, text: str) -> LeadCard:
        """[Remind me]: a typed phrase or a preset, in the partner's local time; replaces the open reminder."""
        partner = await self._partner(partner_id)
        lead = await self._own(partner_id, lead_id)
        phrase = REMIND_PRESETS.get(text, text)
        try:
            when = parse_when(phrase, self._ctx.clock.now(), self._zone(partner))
        except WhenError as exc:
            raise self._when_error(exc) from None
        await self._set_reminder(lead, when)
        return await self._card(lead, partner)

    async def snooze(self, partner_id: int, lead_id: int, value: str) -> LeadCard:
        """[Snooze 1d] / [Snooze 1w] on a fired reminder: the next one that long from now."""
        if value not in SNOOZES:
            raise UsageError("leads.usage.remind")
        partner = await self._partner(partner_id)
        lead = await self._own(partner_id, lead_id)
        await self._set_reminder(lead, self._ctx.clock.now() + SNOOZES[value])
        return await self._card(lead, partner)

    async def done(self, partner_id: int, lead_id: int) -> LeadCard:
        """[Done] on a fired reminder: it is closed without a new one (a later reminder set since stays)."""
        partner = await self._partner(partner_id)
        lead = await self._own(partner_id, lead_id)
        reminder = await self._uow.leads.open_reminder(lead.id)
        if reminder is not None and (reminder.status == "sent" or reminder.due_at <= self._ctx.clock.now()):
            reminder.status, reminder.closed_at = "done", self._ctx.clock.now()
            await self._uow.flush()
        return await self._card(lead, partner)

    async def _set_reminder(self, lead: Lead, when: datetime) -> LeadReminder:
        """A lead has at most one open reminder: the previous one is replaced (snoozed)."""
        uow, now = self._uow, self._ctx.clock.now()
        previous = await uow.leads.open_reminder(lead.id)
        if previous is not None:
            previous.status, previous.closed_at = "snoozed", now
        reminder = uow.leads.add_reminder(
            LeadReminder(lead_id=lead.id, partner_id=lead.partner_id, due_at=when, status="pending", created_at=now)
        )
        await uow.flush()
        return reminder

    async def fire_due(self, now: datetime, limit: int = DUE_BATCH) -> int:
        """Pending reminders whose time has come: the partner gets the lead card with [Done] [Snooze 1d] [Snooze 1w]
        through the outbox (once per reminder time), and the reminder is marked sent."""
        uow = self._uow
        fired = 0
        for reminder in await uow.leads.due_reminders(now, limit):
            lead = await uow.leads.get(reminder.lead_id)
            partner = await uow.partners.get(reminder.partner_id)
            reminder.status, reminder.fired_at = "sent", now
            fired += 1
            if lead is None or partner is None:
                continue
            t = self._texts(partner)
            card = await self._card(lead, partner)
            text = "\n".join(
                [t("leads.remind.fired"), card_text(card, t, self._ctx.lead_stages.label(lead.stage, t.language))]
            )
            await enqueue_text(
                uow,
                self._ctx,
                recipient=partner,
                dedupe_key=f"remind:lead:{lead.id}:{reminder.due_at.strftime('%Y-%m-%dT%H:%M')}",
                text=text,
                reply_markup=reminder_keyboard(lead.id, t),
                urgent=True,  # the partner chose this moment themselves: quiet hours do not hold it back
            )
        await uow.flush()
        return fired

    # -- stages -----------------------------------------------------------------------------------------

    async def change_stage(self, partner_id: int, lead_id: int, stage: str) -> LeadCard:
        """[Stage ▸] / [Won] / [Lost]. A lost lead's open reminder is cancelled."""
        if self._ctx.lead_stages.get(stage) is None:
            raise UsageError("leads.usage.stage")
        partner = await self._partner(partner_id)
        lead = await self._own(partner_id, lead_id)
        await self.set_stage(lead, stage)
        if stage == "lost":
            reminder = await self._uow.leads.open_reminder(lead.id)
            if reminder is not None:
                reminder.status, reminder.closed_at = "cancelled", self._ctx.clock.now()
                await self._uow.flush()
        return await self._card(lead, partner)

    # -- overdue ----------------------------------------------------------------------------------------

    def _overdue_args(self) -> tuple[datetime, datetime, tuple[str, ...]]:
        now = self._ctx.clock.now()
        return now, now - timedelta(days=self._ctx.lead_overdue_days), self._ctx.lead_stages.final_keys

    async def overdue_digest(self, partner: Partner) -> str | None:
        """The top of the daily pack: the partner's overdue leads (at most DIGEST_LIMIT named), or None."""
        leads, total = await self._uow.leads.page(partner.id, overdue=self._overdue_args(), limit=DIGEST_LIMIT)
        if not total:
            return None
        t = self._texts(partner)
        lines = [t("leads.digest.title", count=total)]
        lines += [
            t(
                "leads.digest.item",
                number=lead.number,
                name=lead.name,
                stage=self._ctx.lead_stages.label(lead.stage, t.language),
            )
            for lead in leads
        ]
        if total > len(leads):
            lines.append(t("leads.digest.more", count=total - len(leads)))
        return "\n".join(lines)

    async def overdue_by_member(self, lead_partner: Partner) -> dict[int, int]:
        """For a team lead: member partner id → overdue leads, for members of their subtree who have any."""
        members = await self._uow.leads.subtree_ids(lead_partner.tree_path)
        return await self._uow.leads.overdue_counts(members, *self._overdue_args())

    async def overdue_of(self, partner_ids: list[int]) -> dict[int, int]:
        """Partner id → overdue leads, for those of `partner_ids` who have any (many teams' digests at once)."""
        return await self._uow.leads.overdue_counts(partner_ids, *self._overdue_args())

    async def member_leads(self, viewer: PartnerView, handle: str) -> MemberLeads:
        """`/team <code | @username>`: a member's leads, masked for a team lead (name, stage, dates, phone as
        138****5678) and only for members of their own subtree; admins see anyone's, with the contacts."""
        uow = self._uow
        member = await uow.partners.by_handle(handle.strip())
        viewer_row = await self._partner(viewer.id)
        in_team = member is not None and member.id != viewer.id and member.tree_path.startswith(viewer_row.tree_path)
        if member is None or not (in_team or has_at_least(viewer.role, Role.ADMIN)):
            raise UserFacingError("leads.team.not_member", handle=handle)
        leads, _ = await uow.leads.page(member.id, limit=50)
        masked = not has_at_least(viewer.role, Role.ADMIN)
        cards = tuple([await self._card(lead, viewer_row, masked=masked) for lead in leads])
        name = " ".join(p for p in (member.first_name, member.last_name) if p)
        return MemberLeads(member_name=name, cards=cards)

    # -- privacy ----------------------------------------------------------------------------------------

    async def export(self, partner_id: int) -> DataExport:
        """/mydata: the partner's profile, leads, follow-ups, reminders and ledger entries as one JSON file."""
        uow = self._uow
        partner = await self._partner(partner_id)
        leads = await uow.leads.all_of(partner_id)
        numbers = {lead.id: lead.number for lead in leads}
        data = {
            "exported_at": _iso(self._ctx.clock.now()),
            "profile": {
                "telegram_user_id": partner.tg_user_id,
                "username": partner.username,
                "first_name": partner.first_name,
                "last_name": partner.last_name,
                "language": partner.language,
                "role": partner.role,
                "level": partner.level,
                "invite_code": partner.invite_code,
                "timezone": partner.timezone,
                "joined_at": _iso(partner.joined_at),
            },
            "leads": [
                {
                    "number": lead.number,
                    "name": lead.name,
                    "phone": lead.phone,
                    "wechat": lead.wechat,
                    "telegram": lead.telegram,
                    "note": lead.note,
                    "stage": lead.stage,
                    "source": lead.source,
                    "created_at": _iso(lead.created_at),
                    "last_followup_at": _iso(lead.last_followup_at),
                    "won_at": _iso(lead.won_at),
                }
                for lead in leads
            ],
            "followups": [
                {
                    "lead_number": numbers.get(f.lead_id),
                    "channel": f.channel,
                    "outcome": f.outcome,
                    "note": f.note,
                    "next_step": f.next_step,
                    "revisit": f.revisit,
                    "created_at": _iso(f.created_at),
                }
                for f in await uow.leads.followups_of(partner_id)
            ],
            "reminders": [
                {
                    "lead_number": numbers.get(r.lead_id),
                    "due_at": _iso(r.due_at),
                    "status": r.status,
                    "created_at": _iso(r.created_at),
                    "fired_at": _iso(r.fired_at),
                    "closed_at": _iso(r.closed_at),
                }
                for r in await uow.leads.reminders_of(partner_id)
            ],
            "earnings": [
                {
                    "bucket": e.bucket,
                    "amount_minor": e.amount_minor,
                    "currency": e.currency,
                    "kind": e.kind,
                    "tier": e.tier,
                    "level": e.level,
                    "rate": e.rate,
                    "created_at": _iso(e.created_at),
                }
                for e in await uow.ledger.entries_for(partner_id, limit=100_000)
            ],
        }
        body = json.dumps(data, ensure_ascii=False, indent=2).encode()
        day = self._ctx.clock.now().astimezone(self._zone(partner)).strftime("%Y%m%d")
        return DataExport(data=body, filename=f"mydata-{day}.json", leads=len(leads))

    async def delete(self, viewer: PartnerView, lead_id: int) -> int:
        """/deletelead, confirmed: the lead, its follow-ups and reminders go; the audit keeps its number and id
        only. Returns the number."""
        uow = self._uow
        lead = await self._own(viewer.id, lead_id)
        number = lead.number
        await uow.leads.delete(lead)
        uow.audit.add(
            actor_tg_id=viewer.tg_user_id,
            actor_partner_id=viewer.id,
            action="lead.delete",
            target=f"lead:{lead_id}",
            outcome="done",
            created_at=self._ctx.clock.now(),
            details={"lead_id": lead_id, "number": number},
        )
        return number

    # -- helpers ----------------------------------------------------------------------------------------

    async def _partner(self, partner_id: int) -> Partner:
        partner = await self._uow.partners.get(partner_id)
        if partner is None:
            raise LookupError(f"partner {partner_id} does not exist")
        return partner

    async def _own(self, partner_id: int, lead_id: int) -> Lead:
        """The lead, if it is the partner's own; anyone else's (or a deleted one) is unknown to them."""
        lead = await self._uow.leads.get(lead_id)
        if lead is None or lead.partner_id != partner_id:
            raise UserFacingError("leads.gone")
        return lead

    async def _card(self, lead: Lead, partner: Partner, *, masked: bool = False) -> LeadCard:
        uow, now = self._uow, self._ctx.clock.now()
        last = await uow.leads.last_followup(lead.id)
        reminder = await uow.leads.open_reminder(lead.id)
        stale = (lead.last_followup_at or lead.created_at) < now - timedelta(days=self._ctx.lead_overdue_days)
        due = reminder is not None and reminder.due_at <= now
        overdue = lead.stage not in self._ctx.lead_stages.final_keys and (due or stale)
        return LeadCard(
            id=lead.id,
            number=lead.number,
            name=lead.name,
            stage=lead.stage,
            phone=mask_phone(lead.phone) if masked else lead.phone,
            wechat=None if masked else lead.wechat,
            telegram=None if masked else lead.telegram,
            note=None if masked else lead.note,
            created_at=lead.created_at,
            last_followup=None
            if last is None
            else FollowupView(
                channel=last.channel,
                outcome=None if masked else last.outcome,
                note="" if masked else last.note,
                next_step=None if masked else last.next_step,
                revisit=last.revisit,
                created_at=last.created_at,
            ),
            reminder_at=reminder.due_at if reminder is not None else None,
            reminder_status=reminder.status if reminder is not None else None,
            overdue=overdue,
            zone=self._zone(partner),
            masked=masked,
        )

    def _zone(self, partner: Partner) -> ZoneInfo:
        return partner_zone(self._ctx, partner)

    def _texts(self, partner: Partner) -> Texts:
        language = language_of(self._ctx, partner)
        return self._ctx.translator.texts(language)

    def _event(self, partner_id: int, type: EventType, payload: dict[str, object]) -> None:
        self._uow.events.add(
            partner_id=partner_id, type=type, occurred_at=self._ctx.clock.now(), source=EventSource.BOT, payload=payload
        )

    @staticmethod
    def _when_error(exc: WhenError) -> UserFacingError:
        if exc.past:
            return UsageError("leads.when.past", part=exc.part)
        return UsageError("leads.when.unknown", part=exc.part)
