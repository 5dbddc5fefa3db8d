"""Moving a commission line from pending to available: shared by the hold's end and an admin's release.

A module of its own because both the settlement service and the fraud service need it, and the settlement
service calls the fraud service.
"""

from __future__ import annotations

from bot.domain.money import Money, format_money
from bot.services.acting import language_of
from bot.services.context import ServiceContext
from bot.services.notify import enqueue_text
from storage.models import LedgerEntry
from storage.uow import UnitOfWork

PLATFORM_COMMISSION = "platform:commission"
"""The platform account every commission line is balanced against."""


async def release_entry(uow: UnitOfWork, ctx: ServiceContext, entry: LedgerEntry) -> int | None:
    """Post `release:<entry>` (what refunds left of the line: pending → available) and tell the partner.

    Returns the amount moved, or None when the line was released before (the transaction key is once-only).
    """
    if await uow.ledger.was_released(entry.id):
        return None
    pending = entry.amount_minor + await uow.ledger.pending_reversals(entry)
    lines = [
        {
            "txn": f"release:{entry.id}",
            "line": n,
            "account": entry.account,
            "partner_id": entry.partner_id,
            "bucket": bucket,
            "amount_minor": amount,
            "currency": entry.currency,
            "kind": "release",
            "order_id": entry.order_id,
            "tier": entry.tier,
            "rules_version": entry.rules_version,
            "created_at": ctx.clock.now(),
        }
        for n, (bucket, amount) in enumerate((("pending", -pending), ("available", pending)), start=1)
    ]
    if not await uow.ledger.post(lines):
        return None
    partner = await uow.partners.get(entry.partner_id) if entry.partner_id else None
    if partner is not None and pending > 0:
        language = language_of(ctx, partner)
        await enqueue_text(
            uow,
            ctx,
            recipient=partner,
            dedupe_key=f"released:{entry.id}",
            text=ctx.translator.texts(language)(
                "wallet.notice.available", amount=format_money(Money(pending, entry.currency), language)
            ),
        )
    return pending
