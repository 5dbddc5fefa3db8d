"""No filter or handler of the bot's routers runs in a worker thread.

aiogram sends every filter or handler that is not a coroutine function through `asyncio.to_thread`, a bare magic
filter (`F.text`) included; handlers/filters.py explains what that cost. `Inline(F.…)` checks the same on the loop."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from aiogram import F, Router
from aiogram.dispatcher.event.handler import CallableObject
from aiogram.types import Chat, Contact, Message
from magic_filter import MagicFilter

from handlers import build_routers
from handlers.filters import Inline


def _routers(router: Router) -> Iterator[Router]:
    yield router
    for sub in router.sub_routers:
        yield from _routers(sub)


def _callables() -> Iterator[tuple[str, CallableObject]]:
    for top in build_routers():
        for router in _routers(top):
            for event, observer in router.observers.items():
                for obj in observer._handler.filters or []:  # the router-wide filters (router.message.filter)
                    yield f"{router.name} {event} router filter {obj.callback!r}", obj
                for handler in observer.handlers:
                    name = getattr(handler.callback, "__qualname__", repr(handler.callback))
                    yield f"{router.name} {event} handler {name}", handler
                    for obj in handler.filters or []:
                        yield f"{router.name} {event} {name} filter {obj.callback!r}", obj


def test_every_filter_and_handler_runs_on_the_event_loop() -> None:
    checked = list(_callables())
    threaded = [where for where, obj in checked if not obj.awaitable]
    assert len(checked) > 300  # the walk reached every router
    assert threaded == [], "wrap magic filters as Inline(F.…) and make handlers async:\n" + "\n".join(threaded)


def test_a_bare_magic_filter_would_be_caught() -> None:
    router = Router()
    router.message.register(lambda: None, F.text)  # what the walk above must never find
    handler = router.message.handlers[0]
    assert handler.filters is not None
    assert not handler.filters[0].awaitable and not handler.awaitable


def _message(fields: dict[str, object]) -> Message:
    return Message.model_validate(
        {"message_id": 1, "date": datetime.now(UTC), "chat": Chat(id=1, type="private"), **fields}
    )


@pytest.mark.parametrize(
    ("magic", "fields", "expected"),
    [
        (F.text, {"text": "hi"}, "hi"),
        (F.text, {}, None),
        (~F.text.startswith("/"), {"text": "/lead"}, False),
        (~F.text.startswith("/"), {"text": "Wang"}, True),
        (F.text & ~F.text.startswith("/"), {"text": "Wang"}, True),
        (F.text & ~F.text.startswith("/"), {}, None),
        (F.text.in_({"Skip"}), {"text": "Skip"}, True),
        (F.contact, {"contact": Contact(phone_number="1", first_name="A")}, Contact(phone_number="1", first_name="A")),
        (F.text.as_("said"), {"text": "hi"}, {"said": "hi"}),
    ],
)
async def test_inline_gives_what_the_magic_filter_gives(
    magic: MagicFilter, fields: dict[str, object], expected: object
) -> None:
    message = _message(fields)
    assert await Inline(magic)(message) == expected == magic.resolve(message)
