"""Admin broadcasts: an audience, a preview count, deliveries through the outbox, progress and cancel."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from bot.callbacks import BroadcastCallback
from bot.domain.broadcasts import Audience, AudienceKind, Progress
from bot.domain.errors import UserFacingError
from bot.domain.events import EventSource, EventType
from bot.domain.roles import Role, has_at_least
from bot.i18n import Texts
from bot.services.context import ServiceContext
from bot.services.notify import deliverable_at, enqueue_edit
from bot.services.partners import display_name
from bot.services.views import PartnerView
from storage.models import Broadcast, Partner
from storage.repositories.broadcasts import Recipient
from storage.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class AudiencePreview:
    total: int
    reachable: int
    lead_name: str | None = None


@dataclass(frozen=True, slots=True)
class BroadcastView:
    id: int
    status: str
    progress: Progress


def message_payload(message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The outbox kind and payload delivering a broadcast message."""
    if message["kind"] == "photo":
        return "photo", {"file_id": message["file_id"], "caption": message.get("caption"), "parse_mode": "HTML"}
    return "text", {"text": message["text"], "parse_mode": "HTML"}


class BroadcastService:
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    async def preview(self, audience: Audience) -> AudiencePreview:
        recipients, lead = await self._recipients(audience)
        reachable = sum(1 for r in recipients if not r.unreachable)
        return AudiencePreview(len(recipients), reachable, display_name(lead) if lead else None)

    async def start(
        self, admin: PartnerView, audience: Audience, message: dict[str, Any], progress_chat_id: int
    ) -> BroadcastView:
        """Queue one outbox row per reachable recipient, in this transaction, all tagged with the broadcast."""
        uow, now = self._uow, self._ctx.clock.now()
        recipients, _ = await self._recipients(audience)
        reachable = [r for r in recipients if not r.unreachable]
        broadcast = await uow.broadcasts.add(
            Broadcast(
                created_by=admin.id,
                status="running",
                audience=audience.to_json(),
                message=message,
                total=len(recipients),
                skipped=len(recipients) - len(reachable),
                progress_chat_id=progress_chat_id,
                created_at=now,
            )
        )
        kind, payload = message_payload(message)
        rows = [
            {
                "dedupe_key": f"broadcast:{broadcast.id}:partner:{r.partner_id}",
                "chat_id": r.tg_user_id,
                "partner_id": r.partner_id,
                "kind": kind,
                "payload": payload,
                "not_before": deliverable_at(self._ctx, r, now),
                "created_at": now,
                "broadcast_id": broadcast.id,
            }
            for r in reachable
        ]
        await uow.outbox.enqueue_many(rows)
        uow.outbox_dirty = uow.outbox_dirty or bool(rows)
        uow.events.add(
            partner_id=admin.id,
            type=EventType.BROADCAST_STARTED,
            occurred_at=now,
            source=EventSource.ADMIN,
            payload={"broadcast_id": broadcast.id, "audience": audience.to_json(), "recipients": len(reachable)},
        )
        return BroadcastView(broadcast.id, broadcast.status, await self._progress(broadcast))

    async def attach_progress_message(self, broadcast_id: int, message_id: int) -> None:
        broadcast = await self._require(broadcast_id)
        broadcast.progress_message_id = message_id

    async def cancel(self, broadcast_id: int) -> BroadcastView:
        """Stop a running broadcast: messages not yet sent are never sent."""
        broadcast = await self._require(broadcast_id)
        if broadcast.status == "running":
            await self._uow.broadcasts.cancel_pending(broadcast.id)
            await self._finish(broadcast, "cancelled")
        return BroadcastView(broadcast.id, broadcast.status, await self._progress(broadcast))

    async def report_progress(self) -> int:
        """Edit each running broadcast's progress message when its numbers moved; close finished ones.

        Runs every few seconds on the scheduler. Returns how many broadcasts were reported.
        """
        reported = 0
        for broadcast in await self._uow.broadcasts.running():
            progress = await self._progress(broadcast)
            if progress.finished:
                await self._finish(broadcast, "done")
            t = await self._admin_texts(broadcast)
            text = self.progress_text(t, broadcast, progress)
            if text != broadcast.last_reported:
                broadcast.last_reported = text
                markup = None if progress.finished else stop_markup(t("broadcast.stop_button"), broadcast.id)
                await self._enqueue_progress(broadcast, text, markup)
                reported += 1
        return reported

    async def _admin_texts(self, broadcast: Broadcast) -> Texts:
        admin = await self._uow.partners.get(broadcast.created_by)
        language = self._ctx.translator.resolve_language(
            admin.language if admin else None, admin.tg_language_code if admin else None
        )
        return self._ctx.translator.texts(language)

    @staticmethod
    def progress_text(t: Texts, broadcast: Broadcast | BroadcastView, progress: Progress) -> str:
        params = {
            "id": broadcast.id,
            "sent": f"{progress.sent:,}",
            "total": f"{progress.total:,}",
            "unreachable": f"{progress.unreachable:,}",
            "waiting": f"{progress.waiting:,}",
            "not_sent": f"{progress.waiting + progress.cancelled:,}",
        }
        key = {"running": "broadcast.progress", "done": "broadcast.done", "cancelled": "broadcast.cancelled"}
        return t(key.get(broadcast.status, "broadcast.progress"), **params)

    async def _enqueue_progress(self, broadcast: Broadcast, text: str, markup: dict[str, Any] | None) -> None:
        """Edit the progress message through the outbox; the same numbers are never queued twice."""
        admin = await self._uow.partners.get(broadcast.created_by)
        if broadcast.progress_message_id is None or admin is None:
            return
        digest = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]
        await enqueue_edit(
            self._uow,
            self._ctx,
            recipient=admin,
            dedupe_key=f"broadcast:{broadcast.id}:progress:{digest}",
            message_id=broadcast.progress_message_id,
            text=text,
            reply_markup=markup,
        )

    async def _finish(self, broadcast: Broadcast, status: str) -> None:
        """Done or cancelled, with its final counts kept on the broadcast: its outbox rows are deleted after
        OUTBOX_RETENTION_DAYS (the `outbox:prune` job leaves a broadcast's rows alone until these are set)."""
        broadcast.status = status
        broadcast.finished_at = self._ctx.clock.now()
        broadcast.final_counts = await self._uow.broadcasts.counts(broadcast.id)

    async def _progress(self, broadcast: Broadcast) -> Progress:
        stored = broadcast.final_counts
        counts = stored if stored is not None else await self._uow.broadcasts.counts(broadcast.id)
        return Progress(
            total=broadcast.total,
            sent=counts.get("sent", 0),
            failed=counts.get("dead", 0),
            cancelled=counts.get("cancelled", 0),
            skipped=broadcast.skipped,
        )

    async def _recipients(self, audience: Audience) -> tuple[list[Recipient], Partner | None]:
        repo = self._uow.broadcasts
        if audience.kind is AudienceKind.EVERYONE:
            return await repo.recipients(repo.audience_query()), None
        if audience.kind is AudienceKind.ROLE:
            query = repo.audience_query(role=audience.role, configured_admins=self._ctx.admin_ids)
            return await repo.recipients(query), None
        if audience.kind is AudienceKind.CODES:
            return await repo.recipients(repo.audience_query(codes=audience.codes)), None
        if audience.kind is AudienceKind.LEVEL:
            return await repo.recipients(repo.audience_query(level=audience.group or "")), None
        if audience.kind is AudienceKind.SEGMENT:
            return await repo.recipients(repo.audience_query(segment=audience.group or "")), None
        lead = await self._lead(audience.lead or "")
        return await repo.recipients(repo.audience_query(subtree_of=lead.tree_path)), lead

    async def _lead(self, spec: str) -> Partner:
        lead = await self._uow.partners.by_handle(spec)
        if lead is None:
            raise UserFacingError("roles.target_not_found", target=spec)
        configured_admin = lead.tg_user_id in self._ctx.admin_ids
        if not configured_admin and not has_at_least(Role(lead.role), Role.LEAD):
            raise UserFacingError("broadcast.not_a_lead", name=display_name(lead))
        return lead

    async def _require(self, broadcast_id: int) -> Broadcast:
        broadcast = await self._uow.broadcasts.get(broadcast_id)
        if broadcast is None:
            raise UserFacingError("broadcast.not_found", id=broadcast_id)
        return broadcast


def stop_markup(stop_label: str, broadcast_id: int) -> dict[str, Any]:
    """The [Cancel broadcast] button under a running broadcast's progress message."""
    data = BroadcastCallback(action="stop", value=str(broadcast_id)).pack()
    return {"inline_keyboard": [[{"text": stop_label, "callback_data": data}]]}
