"""Long polling handles a bounded number of updates at once, within what the database pool serves.

Unbounded, a backlog of pending updates (after downtime, or a burst of answers to a broadcast) starts a task for every
update at once; those the pool cannot serve within its checkout timeout fail (benchmarks/e2e_http.py measured it:
2,000 queued /me on PostgreSQL, QueuePool TimeoutError for the last ones)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from bot import runner
from bot.config import Settings
from storage.db import create_engine


class _Dispatcher:
    def __init__(self) -> None:
        self.polling_kwargs: dict[str, Any] = {}

    async def start_polling(self, bot: object, **kwargs: Any) -> None:
        self.polling_kwargs = kwargs  # returns at once, as when polling ends

    async def stop_polling(self) -> None:
        raise AssertionError("polling had already ended")


class _Bot:
    async def delete_webhook(self, drop_pending_updates: bool) -> bool:
        return True


class _App:
    def __init__(self) -> None:
        self.bot = _Bot()
        self.dispatcher = _Dispatcher()
        self.stopped = False

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.stopped = True


async def test_long_polling_bounds_the_updates_handled_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    app = _App()
    monkeypatch.setattr(runner, "create_app", lambda settings: app)

    await runner.run_polling(cast(Settings, None))

    assert app.dispatcher.polling_kwargs["tasks_concurrency_limit"] == runner.POLLING_CONCURRENCY
    assert app.dispatcher.polling_kwargs.get("handle_as_tasks", True)  # the limit only applies to tasks
    assert app.stopped


@pytest.mark.parametrize(
    "url", ["postgresql+asyncpg://postgres@127.0.0.1:5432/never_connected", "sqlite+aiosqlite:///never_created.db"]
)
async def test_the_limit_leaves_room_in_the_database_pool(url: str) -> None:
    engine = create_engine(url)  # connects to nothing until used
    try:
        pool: Any = engine.pool
        assert 1 <= runner.POLLING_CONCURRENCY < pool.size() + pool._max_overflow  # the sender and jobs need some too
    finally:
        await engine.dispose()
