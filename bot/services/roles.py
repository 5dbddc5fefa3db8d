"""Granting and revoking roles, and the audit trail of every use or refusal of a power."""

from __future__ import annotations

from bot.domain.errors import UsageError, UserFacingError
from bot.domain.events import EventSource, EventType
from bot.domain.roles import GRANTABLE_ROLES, Role, has_at_least, role_after_revoke
from bot.services.acting import Audited
from bot.services.context import ServiceContext
from bot.services.notify import enqueue_text
from bot.services.partners import PartnerService, display_name
from bot.services.views import AuditLine, PartnerView, RoleChange
from storage.models import Partner
from storage.uow import UnitOfWork


def parse_role_args(args: str | None, usage_key: str) -> tuple[str, Role]:
    """`<invite code or @username> lead|admin` → (target, role)."""
    parts = (args or "").split()
    if len(parts) != 2:
        raise UsageError(usage_key)
    target, raw_role = parts
    try:
        role = Role(raw_role.lower())
    except ValueError:
        raise UsageError("roles.unknown_role", role=raw_role) from None
    if role not in GRANTABLE_ROLES:
        raise UsageError("roles.unknown_role", role=raw_role)
    return target, role


class RoleService(Audited):
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx
        self._partners = PartnerService(uow, ctx)

    async def grant(self, actor: PartnerView, args: str | None) -> RoleChange:
        target_spec, role = parse_role_args(args, "grant.usage")
        target = await self._resolve(target_spec)
        changed = not has_at_least(Role(target.role), role)
        if changed:
            target.role = role.value
            target.updated_at = self._ctx.clock.now()
            self._event(target, EventType.ROLE_GRANTED, role, actor)
            await self._notify(target, "notice.role_granted", role, kind="grant")
        self._audit(actor, "grant", target_spec, "ok" if changed else "noop", {"role": role.value})
        return RoleChange(target=self._partners.view(target), role=role, changed=changed)

    async def revoke(self, actor: PartnerView, args: str | None) -> RoleChange:
        target_spec, role = parse_role_args(args, "revoke.usage")
        target = await self._resolve(target_spec)
        name = display_name(target)
        if role is Role.ADMIN and target.tg_user_id in self._ctx.admin_ids:
            raise UserFacingError("revoke.config_admin", name=name)
        if role is Role.ADMIN and target.id == actor.id:
            raise UserFacingError("revoke.self_admin")
        new_role = role_after_revoke(Role(target.role), role)
        if new_role is not None:
            target.role = new_role.value
            target.updated_at = self._ctx.clock.now()
            self._event(target, EventType.ROLE_REVOKED, role, actor)
            await self._notify(target, "notice.role_revoked", role, kind="revoke")
        self._audit(actor, "revoke", target_spec, "ok" if new_role else "noop", {"role": role.value})
        return RoleChange(target=self._partners.view(target), role=role, changed=new_role is not None)

    def denied(self, actor_tg_id: int, actor_partner_id: int | None, command: str) -> None:
        """Record that someone without the power tried a privileged command."""
        self._uow.audit.add(
            actor_tg_id=actor_tg_id,
            actor_partner_id=actor_partner_id,
            action=command,
            target=None,
            outcome="denied",
            created_at=self._ctx.clock.now(),
        )

    async def recent_audit(self, limit: int = 20) -> list[AuditLine]:
        rows = await self._uow.audit.recent(limit)
        return [AuditLine(r.created_at, r.actor_tg_id, r.action, r.target, r.outcome) for r in rows]

    async def _resolve(self, spec: str) -> Partner:
        target = await self._uow.partners.by_handle(spec)
        if target is None:
            raise UserFacingError("roles.target_not_found", target=spec)
        return target

    def _event(self, target: Partner, type: EventType, role: Role, actor: PartnerView) -> None:
        self._uow.events.add(
            partner_id=target.id,
            type=type,
            occurred_at=self._ctx.clock.now(),
            source=EventSource.ADMIN,
            payload={"role": role.value, "by": actor.id},
        )

    async def _notify(self, target: Partner, key: str, role: Role, *, kind: str) -> None:
        t = self._ctx.translator.texts(self._partners.view(target).language)
        stamp = self._ctx.clock.now().strftime("%Y%m%dT%H%M%S%f")
        await enqueue_text(
            self._uow,
            self._ctx,
            recipient=target,
            dedupe_key=f"role:{kind}:{target.id}:{role.value}:{stamp}",
            text=t(key, role=t(f"role.{role.value}")),
        )
