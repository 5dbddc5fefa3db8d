"""Enqueueing bot-initiated messages into the outbox, inside the caller's transaction."""

from __future__ import annotations

from typing import Any

from bot.services.context import ServiceContext
from storage.models import Partner
from storage.uow import UnitOfWork


async def enqueue_text(
    uow: UnitOfWork,
    ctx: ServiceContext,
    *,
    recipient: Partner,
    dedupe_key: str,
    text: str,
    reply_markup: dict[str, Any] | None = None,
) -> bool:
    """Queue an HTML text message for `recipient`; a repeated `dedupe_key` queues nothing."""
    now = ctx.clock.now()
    payload: dict[str, Any] = {"text": text, "parse_mode": "HTML"}
    if reply_markup is not None:
        payload["reply_markup"] = reply_markup
    added = await uow.outbox.enqueue(
        dedupe_key=dedupe_key,
        chat_id=recipient.tg_user_id,
        partner_id=recipient.id,
        kind="text",
        payload=payload,
        not_before=now,
        now=now,
    )
    uow.outbox_dirty = uow.outbox_dirty or added
    return added
