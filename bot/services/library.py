"""The material center, admin side: drafts built in chat, items saved, edited, archived and listed.

A draft lives in FSM state as plain data (`Draft.to_data`) while the admin fills the form; the item
itself is written once, when the admin presses Save. The original picture or video is downloaded into
`ctx.content_dir` as soon as it is accepted, so the poster renderer always has it.
"""

from __future__ import annotations

import asyncio
import html
import math
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from PIL import Image, UnidentifiedImageError

from bot.domain.content import (
    MAX_MEDIA_BYTES,
    Audience,
    Schedule,
    parse_audience,
    parse_schedule,
    parse_tags,
    share_text,
    share_text_limit,
    tracked_link,
    validate_share_text,
    validate_title,
    validate_url,
)
from bot.domain.errors import UsageError, UserFacingError
from bot.domain.events import EventSource, EventType
from bot.services.context import ServiceContext
from bot.services.views import PartnerView
from storage.models import ContentItem
from storage.uow import UnitOfWork

PAGE_SIZE = 5
SAMPLE_SLUG = "sample"
"""The slug of the sample link shown in previews; real slugs are 8 random characters."""
KEEP_WORD = "-"
"""Sent at the share-text step, keeps the text (or caption) the admin sent with the material."""

Field = Literal["title", "text", "url", "tags", "audience", "schedule"]
FIELDS: tuple[Field, ...] = ("title", "text", "url", "tags", "audience", "schedule")
"""The form's questions, in the order they are asked; also the fields an item's edit buttons change."""

IMAGE_TYPES = {"image/jpeg": ".jpg", "image/jpg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
"""Pictures accepted when sent as a file (document)."""
VIDEO_TYPES = {"video/mp4": ".mp4", "video/quicktime": ".mov", "video/webm": ".webm", "video/x-matroska": ".mkv"}


class FileDownloader(Protocol):
    """What saving an original file needs from the Bot: `aiogram.Bot.download` fits."""

    async def download(self, file: str, destination: Path) -> object: ...


@dataclass(frozen=True, slots=True)
class Material:
    """The body of a new item as the admin sent it, read from their message by the handler.

    kind: photo | video | document | text | other (stickers, voice, audio, locations, …).
    """

    kind: str
    file_id: str | None = None
    file_size: int | None = None
    mime_type: str | None = None
    file_name: str | None = None
    text: str = ""
    """The message text or caption, as plain text (share texts are plain: partners copy them)."""


@dataclass(frozen=True, slots=True)
class Draft:
    """An item being added: what the admin answered so far. Plain data, so it can live in FSM storage."""

    media_kind: str | None = None
    media_file_id: str | None = None
    """None for a picture sent as a file until the preview has uploaded it as a photo."""
    media_path: str | None = None
    sent_text: str = ""
    """The text (or caption) sent with the material, offered as the share text."""
    title: str = ""
    text: str = ""
    url: str = ""
    tags: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    publish_on: tuple[str, ...] = ()
    weekdays: tuple[int, ...] = ()

    @property
    def has_media(self) -> bool:
        return self.media_kind is not None

    @property
    def audience(self) -> Audience:
        return Audience(self.levels, self.segments)

    @property
    def schedule(self) -> Schedule:
        return Schedule.from_stored(self.publish_on, self.weekdays)

    def to_data(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Draft:
        known = {f: data[f] for f in cls.__dataclass_fields__ if f in data}
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in known.items()}
        return cls(**values)


@dataclass(frozen=True, slots=True)
class ItemView:
    """One item as the admin's preview shows it."""

    id: int
    title: str
    text: str
    url: str
    tags: tuple[str, ...]
    audience: Audience
    schedule: Schedule
    media_kind: str | None
    media_file_id: str | None
    media_path: str | None
    status: str
    revision: int
    partner_body: str
    """The item's message as partners get it (HTML), with a sample link."""

    @property
    def archived(self) -> bool:
        return self.status == "archived"


@dataclass(frozen=True, slots=True)
class ItemSummary:
    id: int
    title: str
    media_kind: str | None
    status: str


@dataclass(frozen=True, slots=True)
class LibraryPage:
    items: tuple[ItemSummary, ...]
    page: int
    """0-based, clamped to the pages that exist."""
    pages: int
    total: int

    @property
    def has_prev(self) -> bool:
        return self.page > 0

    @property
    def has_next(self) -> bool:
        return self.page + 1 < self.pages


@dataclass(frozen=True, slots=True)
class ContentCommand:
    """`/content [add | <id> | archive <id> | restore <id>]`, parsed."""

    action: Literal["list", "add", "open", "archive", "restore"]
    item_id: int = 0


@dataclass(frozen=True, slots=True)
class Edit:
    item: ItemView
    changed: bool
    changes: dict[str, Any] = field(default_factory=dict)


def parse_command(args: str | None) -> ContentCommand:
    words = (args or "").split()
    if not words:
        return ContentCommand("list")
    if words == ["add"]:
        return ContentCommand("add")
    if len(words) == 1 and (number := _item_number(words[0])) is not None:
        return ContentCommand("open", number)
    if len(words) == 2 and words[0] in ("archive", "restore") and (number := _item_number(words[1])) is not None:
        return ContentCommand("archive" if words[0] == "archive" else "restore", number)
    raise UsageError("library.usage")


def _item_number(word: str) -> int | None:
    """`12` or `#12`; None for anything else, including `²` (a digit to str.isdigit, not to int) and numbers too
    long to be an id (they would overflow the id column)."""
    digits = word.lstrip("#")
    return int(digits) if digits.isdecimal() and len(digits) <= 12 else None


def parse_field(name: Field, value: str, *, has_media: bool) -> dict[str, Any]:
    """A typed answer → the item columns it sets. Raises UsageError (a content.error.* text) when invalid."""
    if name == "title":
        return {"title": validate_title(value)}
    if name == "text":
        return {"text": validate_share_text(value, has_media=has_media)}
    if name == "url":
        return {"url": validate_url(value)}
    if name == "tags":
        return {"tags": parse_tags(value)}
    if name == "audience":
        audience = parse_audience(value)
        return {"levels": list(audience.levels), "segments": list(audience.segments)}
    dates, weekdays = parse_schedule(value).stored()
    return {"publish_on": dates, "weekdays": weekdays}


def partner_body(title: str, text: str, link: str) -> str:
    """The item as partners see it in their pack (HTML): the title, then the share text with their link.

    Mirrors `bot.services.content.item_body`, so the admin's preview is what partners get.
    """
    return f"<b>{html.escape(title)}</b>\n\n{html.escape(share_text(text, link))}"


def check_fits(title: str, text: str, *, has_media: bool) -> None:
    """Title and share text go out together (as a caption for media): with the link they must fit Telegram."""
    if not title or not text:
        return
    length, limit = len(title) + 2 + len(text), share_text_limit(has_media)
    if length > limit:
        raise UsageError("library.caption_long", length=length, limit=limit)


def size_mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}"


def _readable_image(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return False
    return True


def _remove(path: Path, *, within: Path | None = None) -> None:
    """Delete a file; with `within`, only a file directly in that directory (FSM data names the path)."""
    if within is None or path.parent.resolve() == within.resolve():
        path.unlink(missing_ok=True)


class LibraryService:
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    # -- the add form --------------------------------------------------------------------------------

    async def start_draft(self, material: Material, downloader: FileDownloader) -> Draft:
        """Accept a photo, a video, a picture sent as a file or a text as the body of a new item.

        Refused (nothing downloaded): other kinds of messages and files over 10 MB. Accepted media is
        downloaded into the content directory under a fresh name.
        """
        if material.kind == "text":
            if not material.text.strip():
                raise UsageError("content.error.media_type")
            return Draft(sent_text=material.text)
        kind, suffix = self._media_kind(material)
        if material.file_size is not None and material.file_size > MAX_MEDIA_BYTES:
            raise UsageError("content.error.too_big", size_mb=size_mb(material.file_size))
        if material.file_id is None:
            raise UsageError("content.error.media_type")
        path = await self._download(material.file_id, suffix, downloader, picture=kind == "photo")
        return Draft(
            media_kind=kind,
            media_file_id=None if material.kind == "document" else material.file_id,
            media_path=str(path),
            sent_text=material.text,
        )

    @staticmethod
    def fill(draft: Draft, name: Field, value: str) -> Draft:
        """The draft with one more answer; '-' at the share-text step keeps the text sent with the material."""
        if name == "text" and value.strip() == KEEP_WORD:
            if not draft.sent_text.strip():
                raise UsageError("content.error.text_empty")
            value = draft.sent_text
        changes = parse_field(name, value, has_media=draft.has_media)
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()}
        filled = replace(draft, **values)
        check_fits(filled.title, filled.text, has_media=filled.has_media)
        return filled

    def preview(self, draft: Draft) -> str:
        """The draft's message as partners will get it, with a sample link."""
        return partner_body(draft.title, draft.text, self.sample_link)

    @property
    def sample_link(self) -> str:
        return tracked_link(self._ctx.public_base_url, SAMPLE_SLUG)

    async def discard(self, draft: Draft) -> None:
        """Forget a draft the admin cancelled: its downloaded file is removed."""
        if draft.media_path:
            await asyncio.to_thread(_remove, Path(draft.media_path), within=self._ctx.content_dir)

    async def create(self, admin: PartnerView, draft: Draft) -> ItemView:
        """Save the draft as an active item (revision 1), with a content_added event and an audit entry."""
        if not draft.title or not draft.text or not draft.url:
            raise UserFacingError("library.draft_incomplete")
        now = self._ctx.clock.now()
        item = self._uow.content.add(
            ContentItem(
                title=draft.title,
                text=draft.text,
                url=draft.url,
                tags=list(draft.tags),
                levels=list(draft.levels),
                segments=list(draft.segments),
                publish_on=list(draft.publish_on),
                weekdays=list(draft.weekdays),
                media_kind=draft.media_kind,
                media_file_id=draft.media_file_id,
                media_path=draft.media_path,
                status="active",
                revision=1,
                created_by=admin.id,
                created_at=now,
                updated_at=now,
            )
        )
        await self._uow.flush()
        self._uow.events.add(
            partner_id=admin.id,
            type=EventType.CONTENT_ADDED,
            occurred_at=now,
            source=EventSource.ADMIN,
            payload={"content_id": item.id, "via": "chat"},
        )
        self._audit(admin, "content_add", item.id, "ok", {"title": item.title, "media": item.media_kind or "text"})
        return self._view(item)

    # -- managing items ------------------------------------------------------------------------------

    async def page(self, page: int) -> LibraryPage:
        """Newest first, archived after active, PAGE_SIZE a page."""
        total = await self._uow.content.count()
        pages = max(1, math.ceil(total / PAGE_SIZE))
        page = min(max(page, 0), pages - 1)
        rows = await self._uow.content.page(offset=page * PAGE_SIZE, limit=PAGE_SIZE)
        items = tuple(ItemSummary(r.id, r.title, r.media_kind, r.status) for r in rows)
        return LibraryPage(items, page, pages, total)

    async def get(self, item_id: int) -> ItemView:
        return self._view(await self._require(item_id))

    async def update(self, admin: PartnerView, item_id: int, name: Field, value: str) -> Edit:
        """Change one field from a typed answer; the revision goes up when something actually changed."""
        item = await self._require(item_id)
        changes = parse_field(name, value, has_media=item.media_kind is not None)
        changed = {k: v for k, v in changes.items() if getattr(item, k) != v}
        check_fits(
            changes.get("title", item.title), changes.get("text", item.text), has_media=item.media_kind is not None
        )
        if changed:
            for key, new in changed.items():
                setattr(item, key, new)
            self._bump(item)
        self._audit(admin, "content_edit", item.id, "ok" if changed else "noop", {"field": name})
        return Edit(self._view(item), bool(changed), changed)

    async def archive(self, admin: PartnerView, item_id: int) -> Edit:
        """Archived items are no longer offered to partners; they stay listed, after the active ones."""
        return await self._set_status(admin, item_id, "archived", "content_archive")

    async def restore(self, admin: PartnerView, item_id: int) -> Edit:
        return await self._set_status(admin, item_id, "active", "content_restore")

    # -- internals -----------------------------------------------------------------------------------

    async def _set_status(self, admin: PartnerView, item_id: int, status: str, action: str) -> Edit:
        item = await self._require(item_id)
        changed = item.status != status
        if changed:
            item.status = status
            self._bump(item)
        self._audit(admin, action, item.id, "ok" if changed else "noop", {})
        return Edit(self._view(item), changed, {"status": status} if changed else {})

    def _bump(self, item: ContentItem) -> None:
        item.revision += 1
        item.updated_at = self._ctx.clock.now()

    @staticmethod
    def _media_kind(material: Material) -> tuple[str, str]:
        """(stored media kind, file suffix) of a material, or UsageError for what cannot be used."""
        if material.kind == "photo":
            return "photo", ".jpg"
        if material.kind == "video":
            return "video", VIDEO_TYPES.get((material.mime_type or "").lower(), _suffix(material.file_name, ".mp4"))
        if material.kind == "document" and (material.mime_type or "").lower() in IMAGE_TYPES:
            return "photo", IMAGE_TYPES[(material.mime_type or "").lower()]
        raise UsageError("content.error.media_type")

    async def _download(self, file_id: str, suffix: str, downloader: FileDownloader, *, picture: bool) -> Path:
        directory = self._ctx.content_dir
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        path = directory / f"{uuid.uuid4().hex}{suffix}"
        try:
            await downloader.download(file_id, destination=path)
            size = (await asyncio.to_thread(path.stat)).st_size
            if size > MAX_MEDIA_BYTES:
                raise UsageError("content.error.too_big", size_mb=size_mb(size))
            if picture and not await asyncio.to_thread(_readable_image, path):
                raise UsageError("content.error.image_unreadable")
        except BaseException:
            await asyncio.to_thread(_remove, path)
            raise
        return path

    async def _require(self, item_id: int) -> ContentItem:
        item = await self._uow.content.get(item_id)
        if item is None:
            raise UserFacingError("library.not_found", id=item_id)
        return item

    def _view(self, item: ContentItem) -> ItemView:
        return ItemView(
            id=item.id,
            title=item.title,
            text=item.text,
            url=item.url,
            tags=tuple(item.tags or ()),
            audience=Audience(tuple(item.levels or ()), tuple(item.segments or ())),
            schedule=Schedule.from_stored(item.publish_on or (), item.weekdays or ()),
            media_kind=item.media_kind,
            media_file_id=item.media_file_id,
            media_path=item.media_path,
            status=item.status,
            revision=item.revision,
            partner_body=partner_body(item.title, item.text, self.sample_link),
        )

    def _audit(self, admin: PartnerView, action: str, item_id: int, outcome: str, details: dict[str, Any]) -> None:
        self._uow.audit.add(
            actor_tg_id=admin.tg_user_id,
            actor_partner_id=admin.id,
            action=action,
            target=f"#{item_id}",
            outcome=outcome,
            details=details,
            created_at=self._ctx.clock.now(),
        )


def _suffix(file_name: str | None, default: str) -> str:
    suffix = Path(file_name or "").suffix.lower()
    return suffix if suffix and len(suffix) <= 6 and suffix[1:].isalnum() else default
