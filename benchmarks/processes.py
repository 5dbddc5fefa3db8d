"""Whole processes for the process benchmarks (benchmarks/memory.py, benchmarks/e2e_http.py): the Bot API emulator
or the stand-in in a process of their own, the real `run_bot.py` polling it, the bare aiogram bot
(benchmarks/bare_bot.py), users' messages injected through the emulator's control API, and a process's memory read
from /proc (psutil is not a dependency).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "123456:BENCH-token"
ADMIN_ID = 9000
STARTUP_TIMEOUT_S = 180.0
JOB_RUNS = re.compile(r'^partner_assistant_job_runs_total\{job="(\w+)",outcome="(\w+)"\} ([0-9.e+]+)$', re.M)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server(module: str) -> Iterator[str]:
    """`python -m bot.sandbox.emulator` or `python -m benchmarks.standin` on a free port: its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", "0"], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.asynccontextmanager
async def own_postgres(prefix: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database for a scenario run on its own (`python -m benchmarks.memory`), dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@dataclass(frozen=True, slots=True)
class Memory:
    rss_mib: float
    peak_mib: float
    """VmHWM: the most resident memory the process has had since it started."""


def memory(pid: int) -> Memory:
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024  # kB
    return Memory(values["VmRSS"], values["VmHWM"])


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Process:
    """A child process whose output goes to a log file; stopped with SIGTERM as a deployment would."""

    process: asyncio.subprocess.Process
    log_path: Path
    _log: Any = field(repr=False, default=None)

    @property
    def pid(self) -> int:
        return self.process.pid

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout=60)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._log is not None:
            self._log.close()
        return int(self.process.returncode or 0)


def bot_env(api_base: str, database_url: str, web_port: int, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return {
        **keep,
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE": api_base,
        "DATABASE_URL": database_url,
        "ADMIN_IDS": str(ADMIN_ID),
        "DEFAULT_LANGUAGE": "en",
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": str(web_port),
        "LOG_LEVEL": "INFO",
        "THROTTLE_RATE": "1000",  # one user's burst of benchmark messages is not a flood
        "QUIET_HOURS": "off",  # the benchmark runs at any hour
        **extra,
    }


async def start_bot(
    api_base: str,
    database_url: str,
    workdir: Path,
    *,
    profile: Path | None = None,
    extra: Mapping[str, str] | None = None,
) -> tuple[Process, int]:
    """`python run_bot.py` (long polling), healthy at /healthz: the process and its web port.

    With `profile`, run_bot.py runs under benchmarks/profiled_bot.py: SIGUSR1 and SIGUSR2 start and stop cProfile."""
    port = free_port()
    log = (workdir / "bot.log").open("wb")
    env = bot_env(api_base, database_url, port, **(extra or {}))
    command: Sequence[str] = (str(ROOT / "run_bot.py"),)
    if profile is not None:
        command = ("-m", "benchmarks.profiled_bot", str(profile))
        env["PYTHONPATH"] = str(ROOT)
    child = await asyncio.create_subprocess_exec(
        sys.executable, *command, cwd=workdir, env=env, stdout=log, stderr=asyncio.subprocess.STDOUT
    )
    process = Process(child, workdir / "bot.log", log)
    deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT_S
    async with aiohttp.ClientSession() as http:
        while asyncio.get_running_loop().time() < deadline:
            if child.returncode is not None:
                raise RuntimeError(f"run_bot.py exited with {child.returncode}:\n{process.logs()[-4000:]}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return process, port
            await asyncio.sleep(0.2)
    await process.stop()
    raise RuntimeError(f"run_bot.py did not become healthy:\n{process.logs()[-4000:]}")


async def start_bare_bot(api_base: str, workdir: Path, database_url: str | None = None) -> Process:
    """benchmarks/bare_bot.py polling `api_base`, ready to poll; with `database_url`, its one-transaction handler."""
    log_path = workdir / ("one-transaction-bot.log" if database_url else "bare-bot.log")
    args = [api_base] if database_url is None else [api_base, database_url]
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.bare_bot", *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=log_path.open("wb"),
    )  # fmt: skip
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), timeout=STARTUP_TIMEOUT_S)
    if line.strip() != b"ready":
        raise RuntimeError(f"the bare bot did not start: {line!r}\n{log_path.read_text()[-4000:]}")
    return Process(child, log_path)


def workdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "first_name": f"U{user_id}", "language_code": "en"}


async def inject(http: aiohttp.ClientSession, base: str, messages: list[tuple[int, str]], concurrency: int) -> None:
    """Users' private messages `(user id, text)` into the emulator's update queue, `concurrency` requests at once."""
    slots = asyncio.Semaphore(concurrency)

    async def one(user_id: int, text: str) -> None:
        async with slots, http.post(f"{base}/_emu/updates/message", json={"user": user(user_id), "text": text}) as r:
            r.raise_for_status()

    await asyncio.gather(*(one(user_id, text) for user_id, text in messages))


async def wait_idle(http: aiohttp.ClientSession, base: str, *, quiet_ms: int = 1000, max_wait: float = 600) -> bool:
    """Until every update was fetched and the bot made no call for `quiet_ms` (the emulator's own check)."""
    body = {"quiet_ms": quiet_ms, "timeout": max_wait}
    limit = aiohttp.ClientTimeout(total=max_wait + 30)
    async with http.post(f"{base}/_emu/wait_idle", json=body, timeout=limit) as r:
        return bool((await r.json())["idle"])


async def bot_calls(http: aiohttp.ClientSession, base: str) -> list[dict[str, Any]]:
    """Every Bot API call the emulator recorded except polls: method, params, ts (epoch seconds)."""
    async with http.get(f"{base}/_emu/calls") as response:
        calls: list[dict[str, Any]] = await response.json()
    return [call for call in calls if call["method"] != "getUpdates"]


async def job_outcomes(http: aiohttp.ClientSession, port: int) -> dict[str, dict[str, float]]:
    """Runs of each job (by function name) in the bot process on `port`, by outcome (ok, error), from /metrics."""
    async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
        body = await response.text()
    runs: dict[str, dict[str, float]] = {}
    for job, outcome, count in JOB_RUNS.findall(body):
        runs.setdefault(job, {})[outcome] = float(count)
    return runs


async def job_runs(http: aiohttp.ClientSession, port: int) -> dict[str, int]:
    """How many times each job (by function name, any outcome) has run in the bot process on `port`, from /metrics."""
    return {job: int(sum(outcomes.values())) for job, outcomes in (await job_outcomes(http, port)).items()}


async def reset(http: aiohttp.ClientSession, base: str) -> None:
    async with http.post(f"{base}/_emu/reset") as response:
        response.raise_for_status()
