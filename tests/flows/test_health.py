"""Tier 2: the app factory's parts come up, and /healthz reports the database, Redis and scheduler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bot.app import create_app
from bot.config import Settings, load_settings
from bot.sandbox.emulator import BotAPIEmulator
from bot.scheduling.jobs import DISPATCH_PACKS_ID, REFRESH_ROLLUPS_ID
from tests.e2e.conftest import free_port


def _settings(emulator: BotAPIEmulator, database_url: str, **overrides: Any) -> Settings:
    """A bot of admin 1 on `emulator` and `database_url`."""
    return load_settings(
        bot_token="123456:TEST-token",
        telegram_api_base=emulator.base_url,
        database_url=database_url,
        admin_ids="1",
        **overrides,
    )


async def test_healthz_reports_each_dependency(database_url: str, redis_url: str, tmp_path: Path) -> None:
    port = free_port()
    async with BotAPIEmulator(files_dir=tmp_path / "files") as emulator:
        settings = _settings(emulator, database_url, redis_url=redis_url, web_port=port)
        app = create_app(settings)
        await app.start()
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    assert response.status == 200
                    assert await response.json() == {"db": "ok", "redis": "ok", "scheduler": "leader", "status": "ok"}
                await app.scheduler.stop()
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    assert response.status == 503
                    assert (await response.json())["scheduler"] == "stopped"
            assert app.ctx.bot_username == "partner_assistant_bot"
            default_menus = [c for c in emulator.core.list_commands() if c["scope"]["type"] == "default"]
            assert {c.get("language_code") for c in default_menus} >= {"zh", "en"}
        finally:
            await app.stop()


async def test_the_first_pack_dispatch_and_rollups_refresh_follow_start_up_as_configured(
    database_url: str, tmp_path: Path
) -> None:
    async with BotAPIEmulator(files_dir=tmp_path / "files") as emulator:
        settings = _settings(emulator, database_url, redis_url=None, web_port=free_port(), startup_catch_up_seconds=300)
        app = create_app(settings)
        started = datetime.now(UTC)
        await app.start(serve_web=False)
        try:
            dispatch = await app.scheduler.next_run_at(DISPATCH_PACKS_ID)
            refresh = await app.scheduler.next_run_at(REFRESH_ROLLUPS_ID)
        finally:
            await app.stop()
    assert dispatch is not None and refresh is not None
    assert started + timedelta(seconds=300) <= dispatch <= datetime.now(UTC) + timedelta(seconds=300)
    assert started + timedelta(seconds=150) <= refresh <= datetime.now(UTC) + timedelta(seconds=150)
