"""Enqueueing bot-initiated messages into the outbox, inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.schedule import quiet_hours_end
from bot.services.context import ServiceContext
from storage.models import Partner
from storage.uow import UnitOfWork


def partner_zone(ctx: ServiceContext, partner: Partner) -> ZoneInfo:
    """The partner's own time zone, else the deployment's."""
    return ZoneInfo(partner.timezone) if partner.timezone else ctx.timezone


def deliverable_at(ctx: ServiceContext, partner: Partner, now: datetime) -> datetime:
    """Now, or when the partner's quiet hours end."""
    start, end = quiet_hours_of(ctx, partner)
    return quiet_hours_end(now, partner_zone(ctx, partner), start, end)


def quiet_hours_of(ctx: ServiceContext, partner: Partner) -> tuple[int, int]:
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
        not_before=now if urgent else deliverable_at(ctx, recipient, now),
        now=now,
        urgent=urgent,
    )
    uow.outbox_dirty = uow.outbox_dirty or added
    return added
