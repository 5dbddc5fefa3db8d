"""Router-level filters: role checks, and magic filters checked on the event loop."""

from __future__ import annotations

from typing import Any

from aiogram.filters import Filter
from aiogram.types import TelegramObject
from magic_filter import MagicFilter

from bot.domain.roles import Role, has_at_least
from bot.services.views import PartnerView


class HasRole(Filter):
    """Passes when the current partner holds `role` or a higher one."""

    def __init__(self, role: Role) -> None:
        self.role = role

    async def __call__(self, event: TelegramObject, partner: PartnerView | None = None) -> bool:
        return partner is not None and has_at_least(partner.role, self.role)


class Inline(Filter):
    """A magic filter (`F.text`, `F.contact`…) checked on the event loop instead of in a worker thread.

    aiogram runs every filter that is not a coroutine function through `asyncio.to_thread`, and a bare magic filter
    is not one (aiogram calls its synchronous `resolve`), so each check of `F.text` among a handler's filters was a
    hand-off to the default thread pool and back to read an attribute. Found by profiling the update path
    (benchmarks/update_handling.py): an update reaching the catch-all passed six such checks, `/today` three.

    The result is what aiogram would use: falsy rejects, a dict (from `.as_(name)`) goes to the handler.
    `tests/unit/test_router_filters.py` fails on any filter or handler aiogram would run in a thread."""

    def __init__(self, magic: MagicFilter) -> None:
        self.magic = magic

    async def __call__(self, event: TelegramObject) -> Any:
        return self.magic.resolve(event)

    def __str__(self) -> str:
        return f"Inline({self.magic!r})"
