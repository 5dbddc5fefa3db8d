"""Case stories (/story, /stories, admin approval) and the weekly spotlight (专属展示位, /spotlight).

A partner has at most one story waiting for review. Every admin is told of a new one through the outbox with
[Approve] [Reject]; the decision is taken in the database only from `pending`, so a second admin (or a double
press) finds it decided. An approved story is featured in the daily pack of one day: the first day from tomorrow
(deployment TIMEZONE) after the last day already taken, one story a day network-wide; each partner sees it on that
date of their own zone, and from then on it is listed in /stories.

The spotlight belongs to a week (Monday, deployment TIMEZONE): an admin's pick, or, when nobody was picked by the
time the week starts, the top riser (bot.domain.stories.top_riser) chosen by the weekly job. The daily pack shows
it all week with the partner's level title and their last 7 days of shares, follow-ups and orders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from bot.callbacks import StoryCallback
from bot.domain.errors import UsageError
from bot.domain.events import EventSource, EventType
from bot.domain.roles import Role
from bot.domain.stories import (
    SpotlightArgs,
    WeeklyActions,
    check_photo_size,
    clean_reason,
    clean_text,
    excerpt,
    feature_day,
    parse_spotlight,
    top_riser,
    week_start,
)
from bot.i18n import Raw, Texts
from bot.services.acting import Audited, language_of, require_admin
from bot.services.context import ServiceContext
from bot.services.notify import enqueue_photo, enqueue_text, partner_zone
from bot.services.partners import display_name
from bot.services.views import PartnerView
from storage.models import Partner, Story
from storage.uow import UnitOfWork

PAGE_SIZE = 3
NAME_MAX = 40
"""Names are cut in headers so a photo's caption stays within Telegram's 1,024 characters."""
ACTION_TYPES = (EventType.SHARED, EventType.FOLLOWED_UP, EventType.LEAD_ADDED, EventType.ORDER_ATTRIBUTED)
"""What counts as action for the top riser."""
STAT_DAYS = 7


def short_name(partner: Partner) -> str:
    name = display_name(partner)
    return name if len(name) <= NAME_MAX else name[: NAME_MAX - 1] + "…"


@dataclass(frozen=True, slots=True)
class StoryView:
    id: int
    author_name: str
    text: str
    photo_file_id: str | None
    status: str
    """pending · approved · rejected."""
    featured_on: date | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class Review:
    story: StoryView
    changed: bool
    """False: the story had been decided already (by `reviewer`), and nothing was written."""
    reviewer: str | None = None


@dataclass(frozen=True, slots=True)
class StoriesPage:
    items: tuple[StoryView, ...]
    page: int
    """From 0."""
    pages: int


@dataclass(frozen=True, slots=True)
class Featured:
    """The daily pack's story of the day and spotlight of the week, as one HTML text (a caption when `photo`)."""

    text: str
    photo_file_id: str | None


@dataclass(frozen=True, slots=True)
class SpotlightView:
    week: date
    """The Monday the week starts on."""
    partner_name: str
    level_title: str
    shares: int
    followups: int
    orders: int
    """In the last 7 days."""
    blurb: str | None
    picked_by: str | None
    """The admin's name; None: the top riser."""


@dataclass(frozen=True, slots=True)
class SpotlightAnswer:
    week: date
    spotlight: SpotlightView | None
    picked: bool
    """True: this command picked the partner (else it only shows the week's pick)."""


def _view(story: Story, author: Partner) -> StoryView:
    return StoryView(
        id=story.id,
        author_name=short_name(author),
        text=story.text,
        photo_file_id=story.photo_file_id,
        status=story.status,
        featured_on=date.fromisoformat(story.featured_on) if story.featured_on else None,
        reason=story.reason,
    )


def review_keyboard(t: Texts, story_id: int) -> dict[str, Any]:
    """[Approve] [Reject] on an admin's notice, as Bot API JSON."""
    return {
        "inline_keyboard": [
            [
                {
                    "text": t("stories.button.approve"),
                    "callback_data": StoryCallback(action="approve", id=story_id).pack(),
                },
                {
                    "text": t("stories.button.reject"),
                    "callback_data": StoryCallback(action="reject", id=story_id).pack(),
                },
            ]
        ]
    }


def spotlight_text(view: SpotlightView, t: Texts) -> str:
    """The spotlight's short profile: name, level, last 7 days, and the admin's words if any."""
    text = t(
        "spotlight.profile",
        name=view.partner_name,
        level=view.level_title,
        shares=view.shares,
        followups=view.followups,
        orders=view.orders,
    )
    if view.blurb:
        text += "\n" + t("spotlight.blurb", blurb=view.blurb)
    return text


class StoryService(Audited):
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx
        self._featured: dict[tuple[str, str], Featured | None] = {}
        """Per transaction: a batch of packs shares the same story and spotlight texts."""

    # ------------------------------------------------------------------ the author's side

    async def start_form(self, partner_id: int) -> None:
        """Before the /story form opens: refused while the partner has a story waiting."""
        if await self._uow.stories.pending_of(partner_id) is not None:
            raise UsageError("stories.pending_exists")

    async def submit(
        self, partner_id: int, raw_text: str | None, *, photo_file_id: str | None = None, photo_size: int | None = None
    ) -> StoryView:
        """Store a new story for review and tell every admin. Refused, writing nothing, while another of the
        partner's stories waits, or when the text or the photo does not fit."""
        author = await self._author(partner_id)
        await self.start_form(partner_id)
        text = clean_text(raw_text, with_photo=photo_file_id is not None)
        check_photo_size(photo_size)
        now = self._ctx.clock.now()
        story = await self._uow.stories.add(
            Story(partner_id=partner_id, text=text, photo_file_id=photo_file_id, status="pending", submitted_at=now)
        )
        self._uow.events.add(
            partner_id=partner_id,
            type=EventType.STORY_SUBMITTED,
            occurred_at=now,
            source=EventSource.BOT,
            payload={"story_id": story.id, "photo": photo_file_id is not None},
        )
        for admin in await self._admins():
            t = self._ctx.translator.texts(language_of(self._ctx, admin))
            notice = t("stories.notice.new", id=story.id, name=short_name(author), code=author.invite_code, text=text)
            key = f"story:{story.id}:new:{admin.id}"
            markup = review_keyboard(t, story.id)
            if photo_file_id is not None:
                await enqueue_photo(
                    self._uow,
                    self._ctx,
                    recipient=admin,
                    dedupe_key=key,
                    photo=photo_file_id,
                    caption=notice,
                    reply_markup=markup,
                )
            else:
                await enqueue_text(
                    self._uow, self._ctx, recipient=admin, dedupe_key=key, text=notice, reply_markup=markup
                )
        return _view(story, author)

    async def page(self, partner_id: int, page: int) -> StoriesPage:
        """/stories: approved stories whose featured day has come (the reader's local day), newest first."""
        reader = await self._author(partner_id)
        today = self._ctx.clock.now().astimezone(partner_zone(self._ctx, reader)).date().isoformat()
        total = await self._uow.stories.count_listed(today)
        pages = max(1, math.ceil(total / PAGE_SIZE))
        page = min(max(page, 0), pages - 1)
        rows = await self._uow.stories.listed(today, page * PAGE_SIZE, PAGE_SIZE)
        return StoriesPage(tuple(_view(story, author) for story, author in rows), page, pages)

    # ------------------------------------------------------------------ the admins' side

    async def approve(self, actor: PartnerView, story_id: int) -> Review:
        """Approve a pending story: it takes the next free featured day, and its author is told which."""
        require_admin(actor)
        story, author = await self._load(story_id)
        now = self._ctx.clock.now()
        values = {"status": "approved", "reviewed_by": actor.id, "reviewed_at": now}
        if story.status != "pending" or not await self._uow.stories.decide(story_id, values):
            return await self._already(actor, story_id, "story_approve")
        await self._uow.stories.lock_feature_queue()
        last = await self._uow.stories.last_featured_day()
        tomorrow = now.astimezone(self._ctx.timezone).date() + timedelta(days=1)
        day = feature_day(tomorrow, date.fromisoformat(last) if last else None)
        await self._uow.stories.set_featured(story_id, day.isoformat())
        self._uow.events.add(
            partner_id=author.id,
            type=EventType.STORY_APPROVED,
            occurred_at=now,
            source=EventSource.ADMIN,
            payload={"story_id": story_id, "by": actor.id, "featured_on": day.isoformat()},
        )
        self._audit(actor, "story_approve", f"story:{story_id}", "ok", {"featured_on": day.isoformat()})
        t = self._ctx.translator.texts(language_of(self._ctx, author))
        await enqueue_text(
            self._uow,
            self._ctx,
            recipient=author,
            dedupe_key=f"story:{story_id}:approved",
            text=t("stories.notice.approved", id=story_id, day=day.isoformat()),
        )
        story, author = await self._load(story_id)
        return Review(_view(story, author), changed=True)

    async def prepare_reject(self, actor: PartnerView, story_id: int) -> Review:
        """[Reject]: check the story still waits before the admin is asked for the reason."""
        require_admin(actor)
        story, author = await self._load(story_id)
        if story.status != "pending":
            return await self._already(actor, story_id, "story_reject")
        return Review(_view(story, author), changed=True)

    async def reject(self, actor: PartnerView, story_id: int, raw_reason: str | None) -> Review:
        """Reject a pending story with a reason, which its author is told."""
        require_admin(actor)
        reason = clean_reason(raw_reason)
        story, author = await self._load(story_id)
        now = self._ctx.clock.now()
        values = {"status": "rejected", "reviewed_by": actor.id, "reviewed_at": now, "reason": reason}
        if story.status != "pending" or not await self._uow.stories.decide(story_id, values):
            return await self._already(actor, story_id, "story_reject")
        self._audit(actor, "story_reject", f"story:{story_id}", "ok", {"reason": reason})
        t = self._ctx.translator.texts(language_of(self._ctx, author))
        await enqueue_text(
            self._uow,
            self._ctx,
            recipient=author,
            dedupe_key=f"story:{story_id}:rejected",
            text=t("stories.notice.rejected", id=story_id, reason=reason),
        )
        story, author = await self._load(story_id)
        return Review(_view(story, author), changed=True)

    # ------------------------------------------------------------------ the spotlight

    async def spotlight(self, actor: PartnerView, args: str | None) -> SpotlightAnswer:
        """`/spotlight [next] [@username|code [blurb]]`: show or pick this (or next) week's partner."""
        require_admin(actor)
        parsed: SpotlightArgs = parse_spotlight(args)
        today = self._ctx.clock.now().astimezone(self._ctx.timezone).date()
        week = week_start(today) + timedelta(days=7 if parsed.next_week else 0)
        if parsed.handle is None:
            return SpotlightAnswer(week, await self._spotlight_view(week, actor.language), picked=False)
        target = await self._uow.partners.by_handle(parsed.handle)
        if target is None:
            raise UsageError("spotlight.not_found", handle=parsed.handle)
        now = self._ctx.clock.now()
        await self._uow.stories.pick(
            week=week.isoformat(), partner_id=target.id, blurb=parsed.blurb, picked_by=actor.id, now=now
        )
        self._audit(
            actor, "spotlight_pick", f"partner:{target.id}", "ok", {"week": week.isoformat(), "blurb": parsed.blurb}
        )
        await self._tell_spotlighted(target, week)
        return SpotlightAnswer(week, await self._spotlight_view(week, actor.language), picked=True)

    async def pick_top_riser(self, now: datetime) -> int | None:
        """The weekly job: when nobody has this week's spotlight yet, it goes to the top riser of the two weeks
        before, who is told. The partner's id, or None when the week was taken or nobody acted."""
        zone = self._ctx.timezone
        week = week_start(now.astimezone(zone).date())
        if await self._uow.stories.spotlight(week.isoformat()) is not None:
            return None

        def midnight(day: date) -> datetime:
            return datetime.combine(day, time(0), zone)

        rows = await self._uow.stories.weekly_actions(
            [str(t) for t in ACTION_TYPES],
            midnight(week - timedelta(days=14)),
            midnight(week - timedelta(days=7)),
            midnight(week),
        )
        winner = top_riser(WeeklyActions(pid, previous, current) for pid, previous, current in rows)
        if winner is None or not await self._uow.stories.pick_once(week=week.isoformat(), partner_id=winner, now=now):
            return None
        partner = await self._uow.partners.get(winner)
        assert partner is not None  # a foreign key
        await self._tell_spotlighted(partner, week)
        return winner

    # ------------------------------------------------------------------ the daily pack

    async def featured(self, partner: Partner, day: date) -> Featured | None:
        """The story of `day` and the spotlight of its week, for the partner's pack; None when there is neither."""
        language = language_of(self._ctx, partner)
        key = (day.isoformat(), language)
        if key not in self._featured:
            self._featured[key] = await self._compose(day, language)
        return self._featured[key]

    async def _compose(self, day: date, language: str) -> Featured | None:
        t = self._ctx.translator.texts(language)
        parts: list[str] = []
        photo: str | None = None
        found = await self._uow.stories.featured_on(day.isoformat())
        if found is not None:
            story, author = found
            parts.append(t("stories.pack", name=short_name(author), text=excerpt(story.text)))
            photo = story.photo_file_id
        spotlight = await self._spotlight_view(week_start(day), language)
        if spotlight is not None:
            parts.append(t("spotlight.pack", profile=Raw(spotlight_text(spotlight, t))))
        return Featured("\n\n".join(parts), photo) if parts else None

    # ------------------------------------------------------------------ internals

    async def _spotlight_view(self, week: date, language: str) -> SpotlightView | None:
        found = await self._uow.stories.spotlight(week.isoformat())
        if found is None:
            return None
        row, partner = found
        picker = await self._uow.partners.get(row.picked_by) if row.picked_by is not None else None
        now = self._ctx.clock.now()
        counts = await self._uow.stories.action_counts(
            partner.id,
            [str(t) for t in (EventType.SHARED, EventType.FOLLOWED_UP, EventType.ORDER_ATTRIBUTED)],
            now - timedelta(days=STAT_DAYS),
            now,
        )
        return SpotlightView(
            week=week,
            partner_name=short_name(partner),
            level_title=await self._level_title(partner, language),
            shares=counts.get(EventType.SHARED, 0),
            followups=counts.get(EventType.FOLLOWED_UP, 0),
            orders=counts.get(EventType.ORDER_ATTRIBUTED, 0),
            blurb=row.blurb,
            picked_by=short_name(picker) if picker is not None else None,
        )

    async def _level_title(self, partner: Partner, language: str) -> str:
        from bot.services.ledger import SettlementService  # here: bot.services.ledger imports the partner service

        _, plan = await SettlementService(self._uow, self._ctx).plan_for(self._ctx.clock.now())
        level = plan.levels.get(partner.level)
        if level is None:
            return partner.level
        return level.title.zh if language == "zh" else level.title.en

    async def _tell_spotlighted(self, partner: Partner, week: date) -> None:
        t = self._ctx.translator.texts(language_of(self._ctx, partner))
        await enqueue_text(
            self._uow,
            self._ctx,
            recipient=partner,
            dedupe_key=f"spotlight:{week.isoformat()}:{partner.id}",
            text=t("spotlight.notice", week=week.isoformat()),
        )

    async def _already(self, actor: PartnerView, story_id: int, action: str) -> Review:
        """The story was decided before this admin's press: nothing written but the audit row."""
        story, author = await self._load(story_id)
        reviewer = await self._uow.partners.get(story.reviewed_by) if story.reviewed_by is not None else None
        self._audit(actor, action, f"story:{story_id}", "noop", {"status": story.status})
        return Review(_view(story, author), changed=False, reviewer=short_name(reviewer) if reviewer else None)

    async def _load(self, story_id: int) -> tuple[Story, Partner]:
        story = await self._uow.stories.get(story_id)
        if story is None:
            raise UsageError("stories.not_found", id=story_id)
        author = await self._uow.partners.get(story.partner_id)
        assert author is not None  # a foreign key
        return story, author

    async def _author(self, partner_id: int) -> Partner:
        partner = await self._uow.partners.get(partner_id)
        if partner is None:
            raise UsageError("error.not_registered")
        return partner

    async def _admins(self) -> list[Partner]:
        """Every admin: stored with the role, or configured in ADMIN_IDS (once they have started the bot)."""
        admins = {p.id: p for p in await self._uow.partners.with_roles([Role.ADMIN.value])}
        for tg_id in sorted(self._ctx.admin_ids):
            configured = await self._uow.partners.by_tg_id(tg_id)
            if configured is not None:
                admins[configured.id] = configured
        return list(admins.values())
