"""Trend charts as PNG pictures, drawn with matplotlib (headless Agg backend) in the CJK font posters use.

`trend_png` is CPU-bound: callers await `render_trend`, which draws in a pool of worker processes (one per core,
started on first use), so a page of digests draws on every core while the event loop goes on. matplotlib is
imported on first use, not when the bot starts, and its object API is used directly (no pyplot global state).

Speed: a morning's digests draw a thousand charts that differ only in their numbers (the title, legend and dates
are the same for every team that day). So each process keeps its last few figures, keyed by those texts, with the
parts that never change (title, legend, the date axis, the frame) drawn once into a saved background; a chart
restores that background and draws only the y axis and the lines. The y axis follows the largest number shown, and
its top is rounded up to the next of a few "nice" limits (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 times a power of ten):
teams of any size then share a dozen axes a day, each drawn once per process and kept (drawing an axis, its ticks,
labels and grid, costs as much as the rest of a chart).
The picture is then mapped onto a palette of colours chosen once per figure (a chart of a few flat colours loses
nothing to it) and written as a PNG with light compression: a third of the size, and quicker to encode, than full
colour.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import multiprocessing
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

from PIL import Image

from bot.media.fonts import cjk_font_path

log = logging.getLogger(__name__)

COLOURS = ("#2563eb", "#16a34a", "#ea580c", "#9333ea")
KEEP_FIGURES = 4
"""Figures kept per process and thread (a language and a day each, typically)."""
KEEP_SCALES = 24
"""y axes kept per figure (2 MB each at 960x540): two decades of nice limits."""
NICE_STEPS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
HEADROOM = 1.08
"""The axis goes at least 8% above the largest value, so the top marker is not cut by the frame."""
PALETTE_COLOURS = 64
"""Colours kept in the PNG: the four line colours, greys and their anti-aliased edges."""


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    values: tuple[int, ...]


@lru_cache(maxsize=1)
def _font_family() -> str | None:
    """Register the CJK font with matplotlib once; its family name, or None (Latin only) when there is none."""
    from matplotlib import font_manager

    path = cjk_font_path()
    if path is None:
        return None
    font_manager.fontManager.addfont(str(path))
    return str(font_manager.FontProperties(fname=str(path)).get_name())


@dataclass(slots=True)
class _Template:
    canvas: Any
    axes: Any
    lines: list[Any]
    background: Any
    """The figure drawn without the lines and the y axis."""
    palette: Any
    """A Pillow image whose palette has the colours of a full drawing of this figure."""
    scales: OrderedDict[float, Any] = field(default_factory=OrderedDict)
    """The background with the y axis drawn, by the axis' upper limit (`axis_limit`), latest last."""


_local = threading.local()


def _templates() -> OrderedDict[tuple[Any, ...], _Template]:
    cache: OrderedDict[tuple[Any, ...], _Template] | None = getattr(_local, "templates", None)
    if cache is None:
        cache = _local.templates = OrderedDict()
    return cache


def _template(title: str, days: tuple[str, ...], labels: tuple[str, ...], width: int, height: int) -> _Template:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    family = _font_family()
    style: dict[str, Any] = {"fontfamily": family} if family else {}
    figure = Figure(figsize=(width / 100, height / 100), dpi=100)
    canvas: Any = FigureCanvasAgg(figure)  # matplotlib leaves draw and copy_from_bbox untyped
    axes = figure.add_subplot()
    lines = [
        axes.plot(days, [0] * len(days), marker="o", linewidth=2, color=colour, label=label)[0]
        for colour, label in zip(COLOURS, labels, strict=False)
    ]
    axes.set_title(title, fontsize=15, loc="left", **style)
    axes.grid(axis="y", alpha=0.3)
    axes.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    for spine in ("top", "right"):
        axes.spines[spine].set_visible(False)
    # above the plot, beside the title: drawn once, and no line of any team can run under it
    figure.legend(
        handles=lines,
        loc="upper right",
        bbox_to_anchor=(0.98, 0.995),
        ncols=len(lines),
        frameon=False,
        prop={"family": family} if family else None,
    )
    axes.tick_params(axis="x", labelrotation=45, labelsize=9)
    # fixed margins instead of tight_layout, which measures every label on each draw
    figure.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.14)
    changing = [*lines, axes.yaxis]
    for artist in changing:
        artist.set_visible(False)
    canvas.draw()
    background = canvas.copy_from_bbox(figure.bbox)
    for artist in changing:
        artist.set_visible(True)
    for rank, line in enumerate(lines):  # a full drawing once, with crossing lines, to choose the palette from
        line.set_ydata([(i + rank) % 4 for i in range(len(days))])
    axes.set_ylim(0, 4)
    canvas.draw()
    palette = _rgb(canvas).quantize(PALETTE_COLOURS, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    return _Template(canvas, axes, lines, background, palette)


def axis_limit(top: int) -> float:
    """The y axis' upper limit for a chart whose largest value is `top`: `top` with some headroom, rounded up to the
    next nice limit (never below 1)."""
    wanted = max(top, 1) * HEADROOM
    power = 10.0 ** math.floor(math.log10(wanted))
    # the last step is the next power of ten, so one always fits
    return round(next(step * power for step in NICE_STEPS if step * power >= wanted - 1e-9), 6)


def _rgb(canvas: Any) -> Image.Image:
    return Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")


def trend_png(
    title: str, days: Sequence[date], series: Sequence[Series], *, width: int = 960, height: int = 540
) -> bytes:
    """A line chart of `series` over `days` (one value per day), labelled in any language."""
    day_labels = tuple(f"{d.month}/{d.day}" for d in days)
    key = (title, day_labels, tuple(s.label for s in series), width, height)
    cache = _templates()
    template = cache.get(key)
    if template is None:
        template = cache[key] = _template(title, day_labels, key[2], width, height)
        while len(cache) > KEEP_FIGURES:
            cache.popitem(last=False)
    cache.move_to_end(key)
    top = 1
    for line, one in zip(template.lines, series, strict=False):
        line.set_ydata(one.values)
        top = max(top, *one.values) if one.values else top
    axes, canvas = template.axes, template.canvas
    renderer = canvas.get_renderer()
    limit = axis_limit(top)
    axes.set_ylim(0, limit)
    scale = template.scales.get(limit)
    if scale is None:
        canvas.restore_region(template.background)
        axes.yaxis.draw(renderer)  # under the lines, as in a full draw: its grid, ticks and labels for this limit
        scale = template.scales[limit] = canvas.copy_from_bbox(template.axes.figure.bbox)
        while len(template.scales) > KEEP_SCALES:
            template.scales.popitem(last=False)
    else:
        canvas.restore_region(scale)
        template.scales.move_to_end(limit)
    for line in template.lines:
        line.draw(renderer)
    image = _rgb(canvas).quantize(palette=template.palette, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class _Workers:
    """The processes charts are drawn in: one per core, started on first use ("spawn": a fork of a process with an
    event loop and threads running could inherit held locks), kept for the life of the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                spawn = multiprocessing.get_context("spawn")
                self._pool = ProcessPoolExecutor(
                    max_workers=os.cpu_count() or 1,
                    mp_context=spawn,
                    initializer=watch_parent,
                    initargs=(os.getpid(),),
                )
            return self._pool

    def drop(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is broken:
                self._pool = None
        broken.shutdown(wait=False, cancel_futures=True)


_workers = _Workers()

PARENT_WATCH_SECONDS = 1.0


def watch_parent(parent: int, every: float = PARENT_WATCH_SECONDS) -> None:
    """Run in each chart worker as it starts: a daemon thread that ends the worker once its parent is gone.

    A bot process that exits normally shuts its pool down, but one killed (`kill -9`, the OOM killer) cannot, and its
    workers, blocked waiting for work that will never come, would live on, 300 MB each. Orphans are adopted by
    another process, so a parent id that changed means the bot is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(0)

    threading.Thread(target=watch, name="chart-parent-watch", daemon=True).start()


async def render_trend(title: str, days: Sequence[date], series: Sequence[Series]) -> bytes:
    """`trend_png` drawn in a worker process; should a worker die (the pool is then broken), the pool is replaced
    and this chart drawn in a thread instead."""
    pool = _workers.pool()
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(pool, _draw, title, tuple(days), tuple(series))
    except BrokenProcessPool:
        log.warning("chart worker process died: starting new ones")
        _workers.drop(pool)
        return await asyncio.to_thread(trend_png, title, days, series)


def _draw(title: str, days: tuple[date, ...], series: tuple[Series, ...]) -> bytes:
    return trend_png(title, days, series)
