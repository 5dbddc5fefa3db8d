"""Tier 1: trend charts are PNGs whose Chinese labels are drawn in a CJK font (matplotlib warns about every missing
glyph, and the suite turns warnings into errors)."""

from __future__ import annotations

import io
import warnings
from datetime import date, timedelta

from PIL import Image

from bot.media.charts import Series, _font_family, trend_png
from bot.media.fonts import cjk_font_path


def test_a_chinese_chart_draws_every_glyph() -> None:
    days = [date(2026, 11, 12) + timedelta(days=i) for i in range(14)]
    series = [Series("分享", tuple(range(14))), Series("跟进", (1,) * 14), Series("订单", (0,) * 14)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph 20998 missing from font(s) DejaVu Sans" would fail here
        png = trend_png("近14天趋势", days, series)
    image = Image.open(io.BytesIO(png))
    assert (image.format, image.size) == ("PNG", (960, 540))
    assert cjk_font_path() is not None and _font_family() is not None
