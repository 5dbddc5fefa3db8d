"""Per-user flood protection: a fixed-window counter, in process memory or in Redis."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol


class Throttle(Protocol):
    async def hit(self, key: str) -> int:
        """Count one hit for `key` in the current window and return the window's total."""
        ...


class MemoryThrottle:
    """For a single process. Windows are aligned to the monotonic clock."""

    def __init__(self, window_seconds: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._window = window_seconds
        self._monotonic = monotonic
        self._counts: dict[str, tuple[int, int]] = {}

    async def hit(self, key: str) -> int:
        window = math.floor(self._monotonic() / self._window)
        start, count = self._counts.get(key, (window, 0))
        if start != window:
            count = 0
            if len(self._counts) > 10_000:
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
        self._counts[key] = (window, count + 1)
        return count + 1
