"""Content reach for partners: the daily pack, tracked links, shares and posters."""

from __future__ import annotations

import hashlib
import html
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.callbacks import ContentCallback
from bot.domain.content import (
    CAPTION_LIMIT,
    COPY_TEXT_LIMIT,
    MESSAGE_LIMIT,
    Audience,
    Candidate,
    Schedule,
    new_slug,
    select_pack,
    share_text,
    tracked_link,
)
from bot.domain.errors import UsageError
from bot.domain.events import EventSource, EventType
from bot.domain.referral import recruit_deep_link
from bot.domain.roles import Role, effective_role, has_at_least
from bot.domain.schedule import DEFAULT_PUSH_HOUR
from bot.services.acting import language_of
from bot.services.context import ServiceContext
from bot.services.leads import LeadService
from bot.services.notify import enqueue_media, enqueue_text, partner_zone
from bot.services.partners import display_name
from bot.services.stories import Featured, StoryService
from storage.models import ContentItem, DailyPack, Partner
from storage.uow import UnitOfWork

SLUG_ATTEMPTS = 8
PUSH_WINDOW_HOURS = 3
"""A pack not pushed within 3 hours of the partner's push hour (the bot was down) waits for the next day."""
INLINE_LIMIT = 20


@dataclass(frozen=True, slots=True)
class PackItem:
    content_id: int
    title: str
    share_text: str
    """Plain text, with the partner's tracked link in it."""
    link: str
    media_kind: str | None
    file_id: str | None
    path: Path | None
    file_key: str
    """Key under which Telegram's file_id of the item's media is kept once uploaded."""


@dataclass(frozen=True, slots=True)
class PackView:
    day: date
    items: list[PackItem]
    scheduled: bool
    """False when nothing was scheduled for the day and the pack fell back to evergreen items."""
    overdue: str | None = None
    """/today: the partner's overdue prospects, shown above the content (as at the top of the pushed pack)."""
    featured: Featured | None = None
    """/today: the story of the day and the week's spotlight, after the overdue prospects (as in the pushed pack)."""


@dataclass(frozen=True, slots=True)
class ShareResult:
    recorded: bool
    """False when this item was already marked shared today."""
    shared_today: int


@dataclass(frozen=True, slots=True)
class LinkLine:
    title: str
    link: str
    clicks: int


@dataclass(frozen=True, slots=True)
class LinksView:
    deep_link: str
    content: list[LinkLine]
    products: list[LinkLine]


@dataclass(frozen=True, slots=True)
class PosterPlan:
    """Everything a poster needs; `file_id` is set when Telegram already has this exact poster."""

    content_id: int
    cache_key: str
    file_id: str | None
    partner_name: str
    title: str
    tagline: str
    link: str
    image_path: Path | None


def candidate(item: ContentItem) -> Candidate:
    return Candidate(
        id=item.id,
        created_at=item.created_at,
        audience=Audience(tuple(item.levels), tuple(item.segments)),
        schedule=Schedule.from_stored(item.publish_on, item.weekdays),
    )


def media_key(item: ContentItem) -> str:
    return f"content:{item.id}:r{item.revision}"


def tagline_of(text: str, limit: int = 80) -> str:
    """The first line of the share text, without the link placeholder: the poster's subtitle."""
    first = next((line.strip() for line in text.replace("{link}", "").splitlines() if line.strip()), "")
    return first if len(first) <= limit else first[: limit - 1] + "…"


def item_keyboard(t: Any, item: PackItem) -> dict[str, Any]:
    """[Poster] [Share] / [Copy text] [Shared ✓], as plain Bot API JSON (outbox rows and replies alike)."""
    copy: dict[str, Any]
    if len(item.share_text) <= COPY_TEXT_LIMIT:
        copy = {"text": t("content.button.copy"), "copy_text": {"text": item.share_text}}
    else:  # too long for a copy button: the bot sends the text on its own, to long-press and copy
        copy = {
            "text": t("content.button.copy"),
            "callback_data": ContentCallback(action="copy", id=item.content_id).pack(),
        }
    return {
        "inline_keyboard": [
            [
                {
                    "text": t("content.button.poster"),
                    "callback_data": ContentCallback(action="poster", id=item.content_id).pack(),
                },
                {
                    "text": t("content.button.share"),
                    "switch_inline_query_chosen_chat": {
                        "query": f"#{item.content_id}",
                        "allow_user_chats": True,
                        "allow_bot_chats": False,
                        "allow_group_chats": True,
                        "allow_channel_chats": True,
                    },
                },
            ],
            [
                copy,
                {
                    "text": t("content.button.shared"),
                    "callback_data": ContentCallback(action="shared", id=item.content_id).pack(),
                },
            ],
        ]
    }


def item_body(item: PackItem) -> str:
    """The item as partners see it (HTML): the title, then the share text with their link.

    A caption that would pass Telegram's 1,024 characters with the title is the share text alone."""
    limit = CAPTION_LIMIT if item.media_kind else MESSAGE_LIMIT
    if len(item.title) + 2 + len(item.share_text) > limit:
        return html.escape(item.share_text)
    return f"<b>{html.escape(item.title)}</b>\n\n{html.escape(item.share_text)}"


class ContentService:
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx
        self._stories = StoryService(uow, ctx)

    # ------------------------------------------------------------------ the daily pack

    def local_day(self, partner: Partner, now: datetime | None = None) -> date:
        return (now or self._ctx.clock.now()).astimezone(partner_zone(self._ctx, partner)).date()

    async def today(self, partner_id: int) -> PackView:
        """/today: the partner's pack for their local day (the same one the push sends)."""
        partner = await self._require(partner_id)
        pack = await self._pack(partner, self.local_day(partner), pushed=False)
        overdue = await LeadService(self._uow, self._ctx).overdue_digest(partner)
        featured = await self._stories.featured(partner, pack.day)
        if not pack.items and overdue is None and featured is None:
            raise UsageError("content.today.empty")
        await self._record_sent(partner, pack, "today")
        return replace(pack, overdue=overdue, featured=featured)

    async def push_pack(self, partner: Partner, now: datetime) -> int:
        """Queue the partner's pack for today through the outbox; returns how many items were queued."""
        day = self.local_day(partner, now)
        pack = await self._pack(partner, day, pushed=True)
        if not pack.items:
            return 0
        t = self._ctx.translator.texts(language_of(self._ctx, partner))
        key = f"pack:{partner.id}:{day.isoformat()}"
        overdue = await LeadService(self._uow, self._ctx).overdue_digest(partner)
        if overdue is not None:  # overdue prospects come first, above the day's content
            await enqueue_text(self._uow, self._ctx, recipient=partner, dedupe_key=f"{key}:leads", text=overdue)
        await self._push_featured(partner, day, f"{key}:featured")
        header = t(
            "content.pack.header" if pack.scheduled else "content.pack.header_evergreen",
            day=day.isoformat(),
            count=len(pack.items),
        )
        await enqueue_text(self._uow, self._ctx, recipient=partner, dedupe_key=f"{key}:head", text=header)
        for item in pack.items:
            markup = item_keyboard(t, item)
            if item.media_kind in ("photo", "video") and (item.file_id or item.path):  # else the text alone
                await enqueue_media(
                    self._uow,
                    self._ctx,
                    recipient=partner,
                    dedupe_key=f"{key}:{item.content_id}",
                    kind=item.media_kind,
                    file_id=item.file_id,
                    path=item.path,
                    caption=item_body(item),
                    reply_markup=markup,
                    file_key=item.file_key,
                )
            else:
                await enqueue_text(
                    self._uow,
                    self._ctx,
                    recipient=partner,
                    dedupe_key=f"{key}:{item.content_id}",
                    text=item_body(item),
                    reply_markup=markup,
                )
        await self._record_sent(partner, pack, "push")
        return len(pack.items)

    async def _push_featured(self, partner: Partner, day: date, dedupe_key: str) -> None:
        """The story of the day and the week's spotlight, between the overdue prospects and the content."""
        featured = await self._stories.featured(partner, day)
        if featured is None:
            return
        if featured.photo_file_id is not None:
            await enqueue_media(
                self._uow,
                self._ctx,
                recipient=partner,
                dedupe_key=dedupe_key,
                kind="photo",
                file_id=featured.photo_file_id,
                path=None,
                caption=featured.text,
            )
        else:
            await enqueue_text(self._uow, self._ctx, recipient=partner, dedupe_key=dedupe_key, text=featured.text)

    async def push_due(self, now: datetime, limit: int = 500) -> int:
        """Queue today's pack for every partner whose local push hour has come; returns how many got one.

        A partner's pack is pushed once per local day (the pack row remembers it), within PUSH_WINDOW_HOURS
        of their push hour, so a restart or a re-run never sends it twice.
        """
        pushed = 0
        default_zone = self._ctx.timezone
        for zone_name in await self._uow.packs.partner_timezones():
            zone = ZoneInfo(zone_name) if zone_name else default_zone
            local = now.astimezone(zone)
            hours = [h for h in range(24) if 0 <= local.hour - h < PUSH_WINDOW_HOURS]
            partners = await self._uow.packs.due_partners(
                timezone=zone_name,
                is_default_zone=zone_name is None or zone == default_zone,
                hours=hours,
                default_hour_due=DEFAULT_PUSH_HOUR in hours,
                day=local.date().isoformat(),
                limit=limit - pushed,
            )
            for partner in partners:
                if await self.push_pack(partner, now):
                    pushed += 1
                else:  # no material at all: remember the day so the partner is not looked at again today
                    await self._mark_pushed(partner, local.date())
            if pushed >= limit:
                break
        return pushed

    async def _pack(self, partner: Partner, day: date, *, pushed: bool) -> PackView:
        uow = self._uow
        stored = await uow.packs.get(partner.id, day.isoformat())
        items: list[ContentItem] = []
        scheduled = True
        if stored is not None:
            items = [i for i in await uow.content.many(stored.content_ids) if i.status == "active"]
            scheduled = bool(stored.content_ids) and all(
                Schedule.from_stored(i.publish_on, i.weekdays).on(day) for i in items
            )
        if not items:
            active = await uow.content.active()
            ids = select_pack([candidate(i) for i in active], day, partner.level, partner.segment)
            by_id = {i.id: i for i in active}
            items = [by_id[i] for i in ids]
            scheduled = any(candidate(i).schedule.on(day) for i in items)
            if stored is None:
                stored = uow.packs.add(
                    DailyPack(
                        partner_id=partner.id,
                        day=day.isoformat(),
                        content_ids=ids,
                        pushed=pushed,
                        created_at=self._ctx.clock.now(),
                    )
                )
            else:
                stored.content_ids = ids
        if pushed and stored is not None:
            stored.pushed = True
        links = await self._links(partner, [i.id for i in items])
        uploaded = await uow.files.many([media_key(i) for i in items if i.media_kind and not i.media_file_id])
        views = []
        for item in items:
            file_id = item.media_file_id or uploaded.get(media_key(item))
            path = Path(item.media_path) if item.media_path else None
            if path is not None and not path.is_file():
                path = None  # the kept original is gone: Telegram's copy, or the text alone
            views.append(
                PackItem(
                    content_id=item.id,
                    title=item.title,
                    share_text=share_text(item.text, links[item.id]),
                    link=links[item.id],
                    media_kind=item.media_kind,
                    file_id=file_id,
                    path=path,
                    file_key=media_key(item),
                )
            )
        return PackView(day=day, items=views, scheduled=scheduled)

    async def _mark_pushed(self, partner: Partner, day: date) -> None:
        stored = await self._uow.packs.get(partner.id, day.isoformat())
        if stored is None:
            self._uow.packs.add(
                DailyPack(
                    partner_id=partner.id,
                    day=day.isoformat(),
                    content_ids=[],
                    pushed=True,
                    created_at=self._ctx.clock.now(),
                )
            )
        else:
            stored.pushed = True

    async def _record_sent(self, partner: Partner, pack: PackView, channel: str) -> None:
        """content_sent once per item per partner per local day, whichever way it arrived first."""
        now, day = self._ctx.clock.now(), pack.day.isoformat()
        await self._uow.events.add_many_once(
            [
                {
                    "dedupe_key": f"content_sent:{partner.id}:{day}:{item.content_id}",
                    "partner_id": partner.id,
                    "type": EventType.CONTENT_SENT,
                    "occurred_at": now,
                    "source": EventSource.SCHEDULER if channel == "push" else EventSource.BOT,
                    "payload": {"content_id": item.content_id, "channel": channel, "day": day},
                }
                for item in pack.items
            ]
        )

    # ------------------------------------------------------------------ tracked links

    async def _links(self, partner: Partner, content_ids: Sequence[int]) -> dict[int, str]:
        """The partner's tracked link for each item, created on first need."""
        uow, base = self._uow, self._ctx.public_base_url
        links = {cid: link.slug for cid, link in (await uow.links.for_content(partner.id, content_ids)).items()}
        for cid in content_ids:
            if cid not in links:
                links[cid] = await self._new_link(partner.id, content_id=cid)
        return {cid: tracked_link(base, slug) for cid, slug in links.items()}

    async def _new_link(self, partner_id: int, *, content_id: int | None = None, product_id: int | None = None) -> str:
        uow, now = self._uow, self._ctx.clock.now()
        for _ in range(SLUG_ATTEMPTS):
            slug = new_slug(self._ctx.choice)
            if await uow.links.insert(
                slug=slug, partner_id=partner_id, content_id=content_id, product_id=product_id, now=now
            ):
                return slug
            # Either the slug is taken (retry) or the pair got its link meanwhile (use it).
            existing = (
                await uow.links.for_content(partner_id, [content_id])
                if content_id is not None
                else await uow.links.for_products(partner_id, [product_id] if product_id is not None else [])
            )
            if existing:
                return next(iter(existing.values())).slug
        raise RuntimeError("could not find a free link slug")

    async def links(self, partner_id: int) -> LinksView:
        """/link: the recruit deep link, a tracked link per active item and per active product, with clicks."""
        uow, base = self._uow, self._ctx.public_base_url
        partner = await self._require(partner_id)
        items = self._for(partner, await uow.content.active())[:INLINE_LIMIT]
        products = list(await uow.products.active())[:INLINE_LIMIT]
        content_links = await uow.links.for_content(partner.id, [i.id for i in items])
        product_links = await uow.links.for_products(partner.id, [p.id for p in products])
        for item in items:
            if item.id not in content_links:
                await self._new_link(partner.id, content_id=item.id)
        for product in products:
            if product.id not in product_links:
                await self._new_link(partner.id, product_id=product.id)
        content_links = await uow.links.for_content(partner.id, [i.id for i in items])
        product_links = await uow.links.for_products(partner.id, [p.id for p in products])
        self._uow.events.add(
            partner_id=partner.id,
            type=EventType.LINK_REQUESTED,
            occurred_at=self._ctx.clock.now(),
            source=EventSource.BOT,
        )
        return LinksView(
            deep_link=recruit_deep_link(self._ctx.bot_username, partner.invite_code),
            content=[
                LinkLine(i.title, tracked_link(base, content_links[i.id].slug), content_links[i.id].clicks)
                for i in items
            ],
            products=[
                LinkLine(p.name, tracked_link(base, product_links[p.id].slug), product_links[p.id].clicks)
                for p in products
            ],
        )

    # ------------------------------------------------------------------ sharing

    async def mark_shared(self, partner_id: int, content_id: int) -> ShareResult:
        """[Shared ✓]: a manual share, counted at most once per item per partner per local day."""
        partner = await self._require(partner_id)
        await self._active_item(content_id, partner)
        now = self._ctx.clock.now()
        day = self.local_day(partner, now)
        recorded = await self._uow.events.add_once(
            dedupe_key=f"shared:manual:{partner.id}:{day.isoformat()}:{content_id}",
            partner_id=partner.id,
            type=EventType.SHARED,
            occurred_at=now,
            source=EventSource.BOT,
            payload={"content_id": content_id, "channel": "manual"},
        )
        return ShareResult(recorded=recorded, shared_today=await self._shared_today(partner, now))

    async def record_inline_share(self, partner_id: int, result_id: str, inline_message_id: str | None) -> bool:
        """A result chosen in inline mode was posted: a `shared` event, channel inline. False for foreign ids."""
        kind, _, raw_id = result_id.partition(":")
        if kind not in RESULT_KINDS or not raw_id.isdecimal() or len(raw_id) > 12:
            return False
        content_id = int(raw_id)
        item = await self._uow.content.get(content_id)
        partner = await self._uow.partners.get(partner_id)
        if item is None or partner is None or not self._may_open(partner, item):
            return False  # a result id this partner was never offered (crafted, or another audience's item)
        now = self._ctx.clock.now()
        payload = {"content_id": content_id, "channel": "inline", "result": RESULT_KINDS[kind]}
        if inline_message_id:
            return await self._uow.events.add_once(
                dedupe_key=f"shared:inline:{inline_message_id}",
                partner_id=partner_id,
                type=EventType.SHARED,
                occurred_at=now,
                source=EventSource.BOT,
                payload=payload,
            )
        self._uow.events.add(
            partner_id=partner_id, type=EventType.SHARED, occurred_at=now, source=EventSource.BOT, payload=payload
        )
        return True

    async def _shared_today(self, partner: Partner, now: datetime) -> int:
        zone = partner_zone(self._ctx, partner)
        local = now.astimezone(zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        since = midnight.astimezone(now.tzinfo) if now.tzinfo else midnight
        await self._uow.flush()
        return await self._uow.events.count_since(partner_id=partner.id, type=EventType.SHARED, since=since)

    async def copy_text(self, partner_id: int, content_id: int) -> str:
        """The share text alone, for partners to long-press and copy when it is too long for a copy button."""
        partner = await self._require(partner_id)
        item = await self._active_item(content_id, partner)
        link = (await self._links(partner, [item.id]))[item.id]
        return share_text(item.text, link)

    # ------------------------------------------------------------------ inline mode

    async def inline_items(self, partner_id: int, query: str) -> list[InlineItem]:
        """What `@bot <query>` offers: the item '#<id>', items matching words, else today's pack, then the newest."""
        uow = self._uow
        partner = await self._require(partner_id)
        query = query.strip()
        items: list[ContentItem]
        if query.startswith("#") and query[1:].isdecimal() and len(query) <= 13:
            found = await uow.content.get(int(query[1:]))
            items = self._for(partner, [found] if found is not None and found.status == "active" else [])
        elif query:
            items = self._for(partner, await uow.content.search(query, INLINE_LIMIT))
        else:
            pack = await self._pack(partner, self.local_day(partner), pushed=False)
            first = [i.content_id for i in pack.items]
            rest = [i.id for i in self._for(partner, await uow.content.active()) if i.id not in first]
            items = await uow.content.many((first + rest)[:INLINE_LIMIT])
        links = await self._links(partner, [i.id for i in items])
        result = []
        for item in items:
            media_file = item.media_file_id or await uow.files.get(media_key(item))
            poster = await uow.files.get(poster_key(item, partner, self._ctx.poster_template_tag))
            result.append(
                InlineItem(
                    content_id=item.id,
                    title=item.title,
                    share_text=share_text(item.text, links[item.id]),
                    media_kind=item.media_kind if media_file else None,
                    media_file_id=media_file,
                    poster_file_id=poster,
                )
            )
        return result

    # ------------------------------------------------------------------ posters

    async def poster(self, partner_id: int, content_id: int) -> PosterPlan:
        """What the poster of `content_id` for this partner shows, and Telegram's copy if it was made before."""
        partner = await self._require(partner_id)
        item = await self._active_item(content_id, partner)
        link = (await self._links(partner, [item.id]))[item.id]
        key = poster_key(item, partner, self._ctx.poster_template_tag)
        file_id = await self._uow.files.get(key)
        self._uow.events.add(
            partner_id=partner.id,
            type=EventType.POSTER_MADE,
            occurred_at=self._ctx.clock.now(),
            source=EventSource.BOT,
            payload={"content_id": item.id, "template": self._ctx.poster_template_tag, "cached": file_id is not None},
        )
        return PosterPlan(
            content_id=item.id,
            cache_key=key,
            file_id=file_id,
            partner_name=display_name(partner),
            title=item.title,
            tagline=tagline_of(item.text),
            link=link,
            image_path=Path(item.media_path) if item.media_kind == "photo" and item.media_path else None,
        )

    async def remember_file(self, key: str, file_id: str) -> None:
        await self._uow.files.put(key, file_id, self._ctx.clock.now())

    async def resolve_item(self, partner_id: int, ref: str | None) -> int:
        """/poster [item]: an item by number (`3` or `#3`) or by title words; none means the first of today's pack."""
        partner = await self._require(partner_id)
        ref = (ref or "").strip().lstrip("#")
        if not ref:
            pack = await self._pack(partner, self.local_day(partner), pushed=False)
            if not pack.items:
                raise UsageError("content.today.empty")
            return pack.items[0].content_id
        if ref.isdecimal() and len(ref) <= 12:
            return (await self._active_item(int(ref), partner)).id
        found = self._for(partner, await self._uow.content.search(ref, INLINE_LIMIT))
        if not found:
            raise UsageError("content.not_found", ref=ref)
        return found[0].id

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _for(partner: Partner, items: Sequence[ContentItem]) -> list[ContentItem]:
        """The items meant for the partner's level and activity segment."""
        return [i for i in items if candidate(i).audience.includes(partner.level, partner.segment)]

    async def _active_item(self, content_id: int, partner: Partner) -> ContentItem:
        """An active item meant for the partner's level and segment (admins may open any). One meant for others is
        answered as one that is gone: an item's number must not open another audience's material."""
        item = await self._uow.content.get(content_id)
        if item is None or item.status != "active" or not self._may_open(partner, item):
            raise UsageError("content.gone")
        return item

    def _may_open(self, partner: Partner, item: ContentItem) -> bool:
        role = effective_role(Role(partner.role), configured_admin=partner.tg_user_id in self._ctx.admin_ids)
        return has_at_least(role, Role.ADMIN) or candidate(item).audience.includes(partner.level, partner.segment)

    async def _require(self, partner_id: int) -> Partner:
        partner = await self._uow.partners.get(partner_id)
        if partner is None:
            raise LookupError(f"partner {partner_id} does not exist")
        return partner


RESULT_KINDS = {"t": "text", "p": "photo", "v": "video", "q": "poster"}


@dataclass(frozen=True, slots=True)
class InlineItem:
    content_id: int
    title: str
    share_text: str
    media_kind: str | None
    media_file_id: str | None
    poster_file_id: str | None


def poster_key(item: ContentItem, partner: Partner, template_tag: str) -> str:
    """Telegram's copy of a poster is reused only for the same item revision, partner name and template version."""
    name = hashlib.sha1(display_name(partner).encode(), usedforsecurity=False).hexdigest()[:8]
    return f"poster:{item.id}:r{item.revision}:{partner.id}:{name}:{template_tag}"
