"""Shared fixtures: the same suite runs on SQLite and on PostgreSQL, with real Redis where needed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.sandbox.client import EmulatorClient
from bot.sandbox.emulator import BotAPIEmulator
from storage.db import create_engine
from tests.support.databases import postgres_database, sqlite_database, wipe
from tests.support.harness import BotHarness
from tests.support.services import PG_HOST, PG_PORT, REDIS_HOST, REDIS_PORT, require_service

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database per backend for the whole run; tests empty it before use."""
    if request.param == "sqlite":
        with sqlite_database(tmp_path_factory.mktemp("sqlite")) as url:
            yield url
    else:
        require_service("PostgreSQL", PG_HOST, PG_PORT)
        with postgres_database() as url:
            yield url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await wipe(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def harness(engine: AsyncEngine) -> AsyncIterator[BotHarness]:
    h = BotHarness(engine)
    yield h
    await h.close()


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/15"


@pytest.fixture
async def emulator(tmp_path: Path) -> AsyncIterator[BotAPIEmulator]:
    """A local Bot API emulator on 127.0.0.1 (quick webhook retries keep failure tests short)."""
    emu = BotAPIEmulator(files_dir=tmp_path / "emulator-files", webhook_retry_delay=0.05)
    await emu.start()
    yield emu
    await emu.stop()


@pytest.fixture
async def client(emulator: BotAPIEmulator) -> AsyncIterator[EmulatorClient]:
    """The emulator's control API: act as Telegram users and read what they received."""
    async with EmulatorClient(emulator.base_url) as emulator_client:
        yield emulator_client


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parent.parent
