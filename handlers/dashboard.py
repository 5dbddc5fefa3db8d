"""/dashboard for team leads and admins: a signed one-time link to the read-only web dashboard. Partners fall through
to `denied`; the use case checks the role again."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import LinkPreviewOptions, Message

from bot.domain.roles import Role
from bot.i18n import Texts
from bot.services.registry import UseCases
from bot.services.views import PartnerView
from handlers.filters import HasRole


async def dashboard(message: Message, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    link = await uc.dashboard.login_link(partner.id, partner.role)
    # No preview: a preview fetcher opening the link would use it up.
    await message.answer(t("dashboard.link", url=link.url), link_preview_options=LinkPreviewOptions(is_disabled=True))


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only)."""
    router = Router(name=__name__)
    router.message.filter(HasRole(Role.LEAD))
    router.message.register(dashboard, Command("dashboard"))
    return router
