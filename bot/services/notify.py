"""Enqueueing bot-initiated messages into the outbox, inside the caller's transaction."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from bot.delivery.media import persist_photo
from bot.domain.schedule import quiet_hours_end
from bot.services.context import ServiceContext
from storage.models import Partner
from storage.uow import UnitOfWork


class DeliveryPrefs(Protocol):
    """A recipient's own delivery settings (a partner row, or a broadcast recipient read in bulk)."""

    @property
    def timezone(self) -> str | None: ...
    @property
    def quiet_start_min(self) -> int | None: ...
    @property
    def quiet_end_min(self) -> int | None: ...


def partner_zone(ctx: ServiceContext, partner: DeliveryPrefs) -> ZoneInfo:
    """The partner's own time zone, else the deployment's."""
    return ZoneInfo(partner.timezone) if partner.timezone else ctx.timezone


def deliverable_at(ctx: ServiceContext, partner: DeliveryPrefs, now: datetime) -> datetime:
    """Now, or when the partner's quiet hours end."""
    start, end = quiet_hours_of(ctx, partner)
    return quiet_hours_end(now, partner_zone(ctx, partner), start, end)


def quiet_hours_of(ctx: ServiceContext, partner: DeliveryPrefs) -> tuple[int, int]:
    """The partner's quiet hours in minutes after local midnight, else the deployment's default."""
    if partner.quiet_start_min is None or partner.quiet_end_min is None:
        return ctx.default_quiet
    return partner.quiet_start_min, partner.quiet_end_min


async def enqueue_text(
    uow: UnitOfWork,
    ctx: ServiceContext,
    *,
    recipient: Partner,
    dedupe_key: str,
    text: str,
    reply_markup: dict[str, Any] | None = None,
    urgent: bool = False,
) -> bool:
    """Queue an HTML text message for `recipient`; a repeated `dedupe_key` queues nothing.

    Non-urgent messages wait for the end of the recipient's quiet hours in their own time zone.
    """
    payload: dict[str, Any] = {"text": text, "parse_mode": "HTML"}
    return await _enqueue(
        uow, ctx, recipient, dedupe_key, kind="text", payload=payload, markup=reply_markup, urgent=urgent
    )


def text_row(
    ctx: ServiceContext,
    *,
    recipient: Partner,
    dedupe_key: str,
    text: str,
    urgent: bool = False,
    reply_markup: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The outbox row `enqueue_text` would insert, for callers that queue many at once with
    `OutboxRepository.enqueue_many` (set `uow.outbox_dirty` when it added any)."""
    payload: dict[str, Any] = {"text": text, "parse_mode": "HTML"}
    return _row(ctx, recipient, dedupe_key=dedupe_key, kind="text", payload=payload, markup=reply_markup, urgent=urgent)


def photo_row(
    ctx: ServiceContext, *, recipient: Partner, dedupe_key: str, path: Path, caption: str | None = None
) -> dict[str, Any]:
    """The outbox row `enqueue_photo` would insert for a picture already stored with `persist_photo`, for
    `OutboxRepository.enqueue_many` as `text_row`."""
    payload: dict[str, Any] = {"parse_mode": "HTML", "path": str(path)}
    if caption is not None:
        payload["caption"] = caption
    return _row(ctx, recipient, dedupe_key=dedupe_key, kind="photo", payload=payload, markup=None, urgent=False)


def _row(
    ctx: ServiceContext,
    recipient: Partner,
    *,
    dedupe_key: str,
    kind: str,
    payload: dict[str, Any],
    markup: dict[str, Any] | None,
    urgent: bool,
) -> dict[str, Any]:
    now = ctx.clock.now()
    if markup is not None:
        payload["reply_markup"] = markup
    return {
        "dedupe_key": dedupe_key,
        "chat_id": recipient.tg_user_id,
        "partner_id": recipient.id,
        "kind": kind,
        "payload": payload,
        "urgent": urgent,
        "not_before": now if urgent else deliverable_at(ctx, recipient, now),
        "created_at": now,
    }


async def enqueue_photo(
    uow: UnitOfWork,
    ctx: ServiceContext,
    *,
    recipient: Partner,
    dedupe_key: str,
    photo: str | Path | bytes,
    caption: str | None = None,
    reply_markup: dict[str, Any] | None = None,
    urgent: bool = False,
) -> bool:
    """Queue a picture with an optional HTML caption for `recipient`; a repeated `dedupe_key` queues nothing.

    `photo` is a Telegram file_id (str), a local file (Path), or the picture itself (bytes), which is written
    under MEDIA_DIR first so the message survives a restart. Quiet hours apply as for text.
    """
    payload: dict[str, Any] = {"parse_mode": "HTML"}
    if isinstance(photo, bytes):
        payload["path"] = str(await persist_photo(ctx.media_dir, photo))
    elif isinstance(photo, Path):
        payload["path"] = str(await asyncio.to_thread(_existing_file, photo))
    else:
        payload["file_id"] = photo
    if caption is not None:
        payload["caption"] = caption
    return await _enqueue(
        uow, ctx, recipient, dedupe_key, kind="photo", payload=payload, markup=reply_markup, urgent=urgent
    )


CAPTION_LIMIT = 1024
"""Telegram's longest photo caption."""


async def enqueue_step(
    uow: UnitOfWork,
    ctx: ServiceContext,
    *,
    recipient: Partner,
    dedupe_key: str,
    text: str,
    media: str | None,
    reply_markup: dict[str, Any] | None = None,
) -> bool:
    """A playbook step's or rhythm touch's message: the text alone, or with `media` (a picture under
    `ctx.playbook_media`) the picture with the text as its caption and the buttons under it. A text longer than a
    caption may be goes as its own message after the picture (`<key>:text`), keeping the buttons."""
    if media is None:
        return await enqueue_text(
            uow, ctx, recipient=recipient, dedupe_key=dedupe_key, text=text, reply_markup=reply_markup
        )
    photo = ctx.playbook_media / media
    if len(text) <= CAPTION_LIMIT:
        return await enqueue_photo(
            uow, ctx, recipient=recipient, dedupe_key=dedupe_key, photo=photo, caption=text, reply_markup=reply_markup
        )
    queued = await enqueue_photo(uow, ctx, recipient=recipient, dedupe_key=dedupe_key, photo=photo)
    await enqueue_text(
        uow, ctx, recipient=recipient, dedupe_key=f"{dedupe_key}:text", text=text, reply_markup=reply_markup
    )
    return queued


async def enqueue_media(
    uow: UnitOfWork,
    ctx: ServiceContext,
    *,
    recipient: Partner,
    dedupe_key: str,
    kind: str,
    file_id: str | None,
    path: Path | None,
    caption: str | None = None,
    reply_markup: dict[str, Any] | None = None,
    file_key: str | None = None,
) -> bool:
    """Queue a photo or video (`kind`) from a Telegram file_id or a kept file; a repeated `dedupe_key` queues nothing.

    With `file_key`, the file_id Telegram gives the first upload of `path` is stored under that key, so later
    messages send the file_id instead of uploading again.
    """
    if kind not in ("photo", "video"):
        raise ValueError(f"not a media kind: {kind!r}")
    payload: dict[str, Any] = {"parse_mode": "HTML"}
    if file_id:
        payload["file_id"] = file_id
    elif path is not None:
        payload["path"] = str(path)
    else:
        raise ValueError("a media message needs a file_id or a path")
    if caption is not None:
        payload["caption"] = caption
    if file_key:
        payload["file_key"] = file_key
    return await _enqueue(
        uow, ctx, recipient, dedupe_key, kind=kind, payload=payload, markup=reply_markup, urgent=False
    )


async def enqueue_edit(
    uow: UnitOfWork,
    ctx: ServiceContext,
    *,
    recipient: Partner,
    dedupe_key: str,
    message_id: int,
    text: str,
    reply_markup: dict[str, Any] | None = None,
) -> bool:
    """Queue an edit of a message the bot sent `recipient` earlier (e.g. a progress counter).

    Edits are urgent: they change what the recipient already has in front of them.
    """
    payload: dict[str, Any] = {"text": text, "parse_mode": "HTML", "message_id": message_id}
    return await _enqueue(
        uow, ctx, recipient, dedupe_key, kind="edit", payload=payload, markup=reply_markup, urgent=True
    )


def _existing_file(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(2, "no such picture", str(path))
    return path.resolve()


async def _enqueue(
    uow: UnitOfWork,
    ctx: ServiceContext,
    recipient: Partner,
    dedupe_key: str,
    *,
    kind: str,
    payload: dict[str, Any],
    markup: dict[str, Any] | None,
    urgent: bool,
) -> bool:
    row = _row(ctx, recipient, dedupe_key=dedupe_key, kind=kind, payload=payload, markup=markup, urgent=urgent)
    now = row.pop("created_at")
    added = await uow.outbox.enqueue(**row, now=now)
    uow.outbox_dirty = uow.outbox_dirty or added
    return added
