"""Clocks: time-dependent code takes one, so tests can move time instead of sleeping."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to (tests, simulations)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, moment: datetime) -> None:
        self._now = moment.astimezone(UTC)


class OffsetClock:
    """System time moved forward by the number of seconds written in a file: how an end-to-end test moves the
    time of a real bot process (a reminder due tomorrow arrives now). The file is re-read at most every
    `reread_seconds`; a missing or unreadable file is an offset of zero. Only for sandboxes: the settings refuse
    it unless the Bot API is a local emulator."""

    def __init__(self, path: Path, *, reread_seconds: float = 0.2) -> None:
        self._path = path
        self._reread = reread_seconds
        self._offset = timedelta(0)
        self._read_at = float("-inf")

    def now(self) -> datetime:
        moment = time.monotonic()
        if moment - self._read_at >= self._reread:
            self._read_at = moment
            try:
                self._offset = timedelta(seconds=float(self._path.read_text(encoding="utf-8").strip() or 0))
            except (OSError, ValueError):
                self._offset = timedelta(0)
        return datetime.now(UTC) + self._offset
