"""Each Telegram update is handled once, even when Telegram delivers it twice.

Telegram redelivers an update when it did not see the webhook's answer in time (a slow instance, a
load balancer that dropped the connection, an instance that died mid-request). Behind a load
balancer the second delivery usually lands on another instance, so the check is shared: a Redis key
per update id (`storage.update_dedupe.RedisUpdateDedupe`). One process without Redis only needs
to remember recent ids itself (`MemoryUpdateDedupe`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

from aiogram import BaseMiddleware, Bot
from aiogram.types import TelegramObject, Update

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class UpdateDedupe(Protocol):
    async def claim(self, key: str) -> bool:
        """True for the first delivery of ``key``; False when it is being or has been handled."""
        ...

    async def complete(self, key: str) -> None:
        """Handling finished: remember ``key`` for the full dedupe window."""
        ...

    async def busy(self, key: str) -> bool:
        """True while ``key`` is claimed and not yet complete (being handled, or its handler died)."""
        ...


class UpdateBusy(Exception):
    """A redelivered update that another delivery claimed and has not finished: the webhook answers 503, so
    Telegram delivers it again later instead of counting this delivery as done."""

    def __init__(self, update_id: int) -> None:
        super().__init__(f"update {update_id} is being handled by another delivery")
        self.update_id = update_id


class MemoryUpdateDedupe:
    """The most recent ``size`` update keys of this process (a bounded LRU)."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._seen: OrderedDict[str, bool] = OrderedDict()  # key → handled

    async def claim(self, key: str) -> bool:
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = False
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return True

    async def complete(self, key: str) -> None:
        if key in self._seen:
            self._seen[key] = True

    async def busy(self, key: str) -> bool:
        return self._seen.get(key) is False

    def __len__(self) -> int:
        return len(self._seen)


def update_key(bot: Bot | None, update_id: int) -> str:
    """Update ids are per bot; the key carries the bot id so two bots can share one Redis."""
    return f"{bot.id if bot is not None else 0}:{update_id}"


class UpdateDedupeMiddleware(BaseMiddleware):
    """Outer middleware, first in the chain: a repeated update id reaches no handler and no transaction.

    If the dedupe store cannot be reached, the update is handled anyway: answering twice is better
    than not answering.

    A repeat whose first delivery is claimed but not finished is either still being handled (a slow
    instance; Telegram gave up waiting) or was being handled by a process that died. ``on_busy`` says what
    to do with it:

    - ``"retry"`` (webhooks): raise `UpdateBusy`; the webhook answers 503 and Telegram redelivers later,
      when the first delivery has finished (then it is skipped) or its claim has expired (then it is handled).
      Answering 200 and skipping would lose the update for good if its handler had died.
    - ``"take"`` (long polling): handle it. Only one process polls, so an unfinished claim is a dead
      process's: the restarted poller gets the update again because its offset was never confirmed.
    """

    def __init__(self, dedupe: UpdateDedupe, *, on_busy: Literal["retry", "take"] = "take") -> None:
        self._dedupe = dedupe
        self._on_busy = on_busy

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        bot = data.get("bot")
        key = update_key(bot if isinstance(bot, Bot) else None, event.update_id)
        try:
            first = await self._dedupe.claim(key)
        except Exception as exc:
            log.warning("update %s: dedupe check failed (%s); handling it anyway", event.update_id, exc)
            return await handler(event, data)
        if not first:
            if not await self._busy(key):
                log.info("update %s was already delivered; skipped", event.update_id)
                return None
            if self._on_busy == "retry":
                log.info("update %s is claimed by an unfinished delivery; asking for redelivery", event.update_id)
                raise UpdateBusy(event.update_id)
            log.warning("update %s was claimed by a process that did not finish it; handling it", event.update_id)
        try:
            return await handler(event, data)
        finally:
            try:
                await self._dedupe.complete(key)
            except Exception as exc:
                log.warning("update %s: could not record it as handled: %s", event.update_id, exc)

    async def _busy(self, key: str) -> bool:
        try:
            return await self._dedupe.busy(key)
        except Exception as exc:  # the store went away between the two calls: the first answer stands
            log.warning("update %s: dedupe state unknown (%s); treating it as handled", key, exc)
            return False
