"""What the use cases an admin drives share: the role check on every action, the audit row it leaves, and the
language a notice to a partner is written in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.domain.errors import UsageError
from bot.domain.roles import Role, has_at_least
from bot.services.context import ServiceContext
from bot.services.views import PartnerView
from storage.models import Partner
from storage.uow import UnitOfWork


def require_admin(actor: PartnerView) -> None:
    """Refuse (`denied.admin`, nothing written) unless `actor` is an admin: checked by the use case itself, not
    only by the router's filter, so no other entry point (a button, a job) can skip it."""
    if not has_at_least(actor.role, Role.ADMIN):
        raise UsageError("denied.admin")


class Audited:
    """A use case whose actions leave audit rows: `_audit` writes one in the update's transaction."""

    _uow: UnitOfWork
    _ctx: ServiceContext

    def _audit(
        self, actor: PartnerView, action: str, target: str | None, outcome: str, details: Mapping[str, Any]
    ) -> None:
        """An append-only row of what `actor` did (or tried) to `target`."""
        self._uow.audit.add(
            actor_tg_id=actor.tg_user_id,
            actor_partner_id=actor.id,
            action=action,
            target=target,
            outcome=outcome,
            details=details,
            created_at=self._ctx.clock.now(),
        )


def language_of(ctx: ServiceContext, partner: Partner) -> str:
    """The language to write to `partner` in: their choice, else their Telegram language, else the default."""
    return ctx.translator.resolve_language(partner.language, partner.tg_language_code)
