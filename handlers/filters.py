"""Router-level filters for role checks."""

from __future__ import annotations

from aiogram.filters import Filter
from aiogram.types import TelegramObject

from bot.domain.roles import Role, has_at_least
from bot.services.views import PartnerView


class HasRole(Filter):
    """Passes when the current partner holds `role` or a higher one."""

    def __init__(self, role: Role) -> None:
        self.role = role

    async def __call__(self, event: TelegramObject, partner: PartnerView | None = None) -> bool:
        return partner is not None and has_at_least(partner.role, self.role)
