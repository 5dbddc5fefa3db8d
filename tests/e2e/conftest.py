"""Tier 3: the real run_bot.py process, polling (or webhooked by) the Bot API emulator over HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from bot.sandbox.emulator import BotAPIEmulator
from tests.support.databases import postgres_database
from tests.support.services import PG_HOST, PG_PORT, require_service

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:TEST-token"
ADMIN_ID = 9000
STARTUP_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BotProcess:
    """`python run_bot.py` as a child process with its own environment."""

    def __init__(self, env: dict[str, str], args: list[str], log_path: Path) -> None:
        self.env = env
        self.args = args
        self.log_path = log_path
        self.web_port = int(env["WEB_PORT"])
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._log = self.log_path.open("wb")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "run_bot.py"), *self.args, cwd=self.log_path.parent, env=self.env,
            stdout=self._log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        await self.wait_healthy()

    async def wait_healthy(self) -> None:
        deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT
        async with aiohttp.ClientSession() as http:
            while asyncio.get_running_loop().time() < deadline:
                assert self.process is not None
                if self.process.returncode is not None:
                    raise AssertionError(f"bot exited with {self.process.returncode}:\n{self.logs()}")
                try:
                    async with http.get(f"http://127.0.0.1:{self.web_port}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"bot did not become healthy:\n{self.logs()}")

    async def stop(self) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout=30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self._log.close()
        return int(self.process.returncode or 0)

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(params=["sqlite", "postgres"])
def e2e_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: the bot process applies the migrations itself at start-up."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'e2e.db'}"
    else:
        require_service("PostgreSQL", PG_HOST, PG_PORT)
        with postgres_database("pa_e2e", migrate=False) as url:
            yield url


def bot_env(emulator: BotAPIEmulator, database_url: str, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT", "CI")}
    return {
        **keep,
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE": emulator.base_url,
        "DATABASE_URL": database_url,
        "ADMIN_IDS": str(ADMIN_ID),
        "DEFAULT_LANGUAGE": "en",
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": str(free_port()),
        "LOG_LEVEL": "INFO",
        "OUTBOX_POLL_SECONDS": "0.2",
        "THROTTLE_RATE": "1000",
        "QUIET_HOURS": "off",  # the suite runs at any hour; quiet hours have their own tests
        **extra,
    }
