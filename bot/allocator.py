"""C allocator settings for a long-running bot process (glibc's malloc on Linux).

A bot process reads result sets of thousands of rows in its nightly jobs and then idles. With glibc's defaults
the big buffers of those reads stay in the process: the threshold above which malloc maps memory of its own
(returned to the system on free) rises with every large block freed, up to 32 MiB, so later large blocks come from
the heap and fragment it; the top of the heap is only given back past 128 KiB of it free after that threshold
doubles too; and each thread that allocates (the resolver's, `asyncio.to_thread` for pictures) gets an arena of
its own. Fixed thresholds and two arenas kept the peak of a bot serving 100,000 partners while its jobs ran 5 MB
lower (303 → 298 MB, README "Benchmarks").

Each setting applies only when its glibc environment variable is not set, so an operator's own choice wins.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
from collections.abc import Mapping

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
"""mallopt() parameter numbers, from glibc's malloc.h."""

SETTINGS: tuple[tuple[str, int, int], ...] = (
    ("MALLOC_ARENA_MAX", M_ARENA_MAX, 2),
    ("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, 128 * 1024),
    ("MALLOC_TRIM_THRESHOLD_", M_TRIM_THRESHOLD, 128 * 1024),
)
"""(environment variable that overrides it, mallopt parameter, value)."""


def tune_malloc(environ: Mapping[str, str] | None = None) -> list[str]:
    """Apply SETTINGS that the environment does not set; the names of those applied (none off glibc).

    Call it once at start-up, before the process starts threads: the arena limit holds for arenas made later."""
    environ = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return []
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return []
    applied = []
    for variable, parameter, value in SETTINGS:
        if variable in environ:
            continue
        if mallopt(ctypes.c_int(parameter), ctypes.c_int(value)) == 1:  # 1 on success, 0 when refused
            applied.append(variable)
    if applied:
        log.debug("malloc settings applied: %s", ", ".join(applied))
    return applied
