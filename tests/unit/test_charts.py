"""Tier 1: trend charts are PNGs whose Chinese labels are drawn in a CJK font (matplotlib warns about every missing
glyph, and the suite turns warnings into errors)."""

from __future__ import annotations

import io
import math
import warnings
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from bot.media.charts import HEADROOM, NICE_STEPS, Series, _font_family, _templates, axis_limit, trend_png
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


@pytest.mark.parametrize(
    ("top", "limit"),
    [(0, 1.2), (1, 1.2), (2, 2.5), (3, 4.0), (9, 10.0), (10, 12.0), (37, 40.0), (100, 120.0), (999, 1200.0)],
)
def test_the_y_axis_goes_up_to_the_next_nice_limit(top: int, limit: float) -> None:
    assert axis_limit(top) == limit


@given(st.integers(min_value=0, max_value=10**9))
def test_the_y_axis_has_headroom_and_few_limits_per_decade(top: int) -> None:
    """Every value fits with 8% headroom; beyond it, the limit is at most a third higher (the widest step, 1.5 to 2);
    and the limit is one of the nice steps of its decade: charts of every size share a dozen axes."""
    limit = axis_limit(top)
    wanted = max(top, 1) * HEADROOM
    assert wanted <= limit <= wanted * 4 / 3 + 1e-9
    mantissa = limit / 10 ** math.floor(math.log10(limit) + 1e-9)
    assert any(math.isclose(mantissa, step) for step in NICE_STEPS)


def test_charts_of_teams_with_close_maxima_share_an_axis_drawing() -> None:
    """Two charts whose largest values round to the same limit reuse the first one's y axis (drawn once and kept)."""
    days = [date(2026, 11, 12) + timedelta(days=i) for i in range(14)]
    first = trend_png("axis", days, [Series("a", (0,) * 13 + (33,))])
    trend_png("axis", days, [Series("a", (0,) * 13 + (35,))])  # 35 → 40 as well
    [template] = [t for key, t in _templates().items() if key[0] == "axis"]
    assert list(template.scales) == [40.0]
    assert Image.open(io.BytesIO(first)).size == (960, 540)
