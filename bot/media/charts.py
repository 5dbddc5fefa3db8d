"""Trend charts as PNG pictures, drawn with matplotlib (headless Agg backend) in the CJK font posters use.

`trend_png` is CPU-bound: callers run it in a worker thread (`asyncio.to_thread`). matplotlib is imported on first
use, not when the bot starts, and its object API is used directly (no pyplot global state).

Speed: a morning's digests draw hundreds of charts that differ only in their numbers (the title, legend and dates
are the same for every team that day), so each thread keeps its last few figures, keyed by those texts, and only
changes the lines and the y axis before drawing again; the PNG is written with light compression. Building a
figure from scratch costs about 4 times as much (see README "Behaviour dashboard").
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from bot.media.fonts import cjk_font_path

COLOURS = ("#2563eb", "#16a34a", "#ea580c", "#9333ea")
KEEP_FIGURES = 8
"""Figures kept per thread (a language and a day each, typically)."""


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
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    lines = [
        axes.plot(days, [0] * len(days), marker="o", linewidth=2, color=colour, label=label)[0]
        for colour, label in zip(COLOURS, labels, strict=False)
    ]
    axes.set_title(title, fontsize=15, **style)
    axes.grid(axis="y", alpha=0.3)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    for spine in ("top", "right"):
        axes.spines[spine].set_visible(False)
    legend = axes.legend(loc="upper left", frameon=False)
    if family:
        for text in legend.get_texts():
            text.set_fontfamily(family)
    axes.tick_params(axis="x", labelrotation=45, labelsize=9)
    # fixed margins instead of tight_layout, which measures every label on each draw
    figure.subplots_adjust(left=0.08, right=0.98, top=0.9, bottom=0.14)
    return _Template(canvas, axes, lines)


def trend_png(
    title: str, days: Sequence[date], series: Sequence[Series], *, width: int = 960, height: int = 540
) -> bytes:
    """A line chart of `series` over `days` (one value per day), labelled in any language."""
    from PIL import Image

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
    template.axes.set_ylim(0, top * 1.08 + 0.2)
    template.canvas.draw()
    image = Image.frombuffer("RGBA", template.canvas.get_width_height(), template.canvas.buffer_rgba())
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
