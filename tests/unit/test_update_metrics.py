"""Tier 1: the update middleware's outcome labels and the update_id it puts into the log context."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from aiogram.types import Chat, Message, TelegramObject, Update

from bot.clock import SystemClock
from bot.domain.errors import UserFacingError
from bot.logs import CURRENT_UPDATE_ID
from bot.monitoring import Metrics, UpdateMetricsMiddleware


def update(update_id: int = 7) -> Update:
    message = Message(message_id=1, date=datetime(2026, 11, 26, tzinfo=UTC), chat=Chat(id=1, type="private"))
    return Update(update_id=update_id, message=message)


@pytest.mark.parametrize(
    ("failure", "outcome"),
    [(None, "ok"), (UserFacingError("error.generic"), "refused"), (RuntimeError("boom"), "error")],
)
async def test_outcome_and_update_id(failure: Exception | None, outcome: str) -> None:
    metrics = Metrics(SystemClock())
    seen: list[int | None] = []

    async def handler(event: TelegramObject, data: dict[str, Any]) -> str:
        seen.append(CURRENT_UPDATE_ID.get())
        if failure is not None:
            raise failure
        return "done"

    middleware = UpdateMetricsMiddleware(metrics)
    if failure is None:
        assert await middleware(handler, update(42), {}) == "done"
    else:
        with pytest.raises(type(failure)):
            await middleware(handler, update(42), {})
    assert seen == [42] and CURRENT_UPDATE_ID.get() is None
    labels = {"type": "message", "outcome": outcome}
    assert metrics.registry.get_sample_value("partner_assistant_updates_total", labels) == 1
    assert metrics.registry.get_sample_value("partner_assistant_update_seconds_count", {"type": "message"}) == 1


async def test_without_metrics_only_the_update_id_is_set() -> None:
    async def handler(event: TelegramObject, data: dict[str, Any]) -> int | None:
        return CURRENT_UPDATE_ID.get()

    assert await UpdateMetricsMiddleware(None)(handler, update(9), {}) == 9
