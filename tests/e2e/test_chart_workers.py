"""Tier 3: a process killed with `kill -9` leaves no chart worker behind (each worker watches its parent and ends when
it is gone; before, every bot or benchmark process killed mid-digest left two idle 300 MB workers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DRAWER = """
import asyncio
from datetime import date

from bot.media.charts import Series, _workers, render_trend


async def main() -> None:
    await asyncio.gather(*(render_trend("t", [date(2026, 11, 26)], [Series("a", (1,))]) for _ in range(4)))
    print(" ".join(str(pid) for pid in _workers.pool()._processes), flush=True)
    await asyncio.sleep(120)


if __name__ == "__main__":
    asyncio.run(main())
"""


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped by whoever adopted it, is not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_chart_workers_end_when_their_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "drawer.py"
    script.write_text(DRAWER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    workers: list[int] = []
    try:
        assert parent.stdout is not None
        workers += [int(pid) for pid in parent.stdout.readline().split()]
        assert workers and all(alive(pid) for pid in workers)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in workers if alive(pid)]
    finally:
        parent.kill()
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
