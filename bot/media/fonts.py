"""Finding a font that can draw Chinese; Pillow's built-in font is the last resort.

Order: a font file the operator configured (FONT_PATH), then WenQuanYi Micro Hei shipped by the
`paperang-p2-fonts-cjk` dependency (so a fresh install draws Chinese without system packages), then the usual
system CJK fonts, then Pillow's own font (Latin only). Nothing is ever downloaded.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from importlib import resources
from pathlib import Path

from PIL import ImageFont

BUNDLED_FONT = ("paperang_p2_fonts_cjk", "fonts/wqy-microhei.ttc")
CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
_MISSING_PROBE = "\U0010fffd"  # a private-use code point no font maps: it draws the font's "missing glyph" box

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@lru_cache(maxsize=1)
def bundled_font_path() -> Path | None:
    """The CJK font installed with the project's Python dependencies, if that package is present."""
    package, name = BUNDLED_FONT
    try:
        path = Path(str(resources.files(package).joinpath(name)))
    except ModuleNotFoundError:
        return None
    return path if path.is_file() else None


@lru_cache(maxsize=1)
def cjk_font_path() -> Path | None:
    """The first CJK font found: the bundled one, then the system candidates; None when there is none."""
    bundled = bundled_font_path()
    if bundled is not None:
        return bundled
    for candidate in CJK_FONT_CANDIDATES:
        path = Path(candidate)
        if path.is_file():
            return path
    return None


def resolve_font_path(configured: Path | None) -> Path | None:
    """The font file to draw with: the configured one (which must exist), else the first CJK font found."""
    if configured is None:
        return cjk_font_path()
    if not configured.is_file():
        raise FileNotFoundError(f"FONT_PATH {configured} is not a font file")
    return configured


@lru_cache(maxsize=64)
def font(size: int, path: Path | None = None) -> Font:
    """A font of `size` pixels from `path` (default: the first CJK font found). Cached: fonts are shared."""
    chosen = path if path is not None else cjk_font_path()
    if chosen is not None:
        return ImageFont.truetype(str(chosen), size)
    return ImageFont.load_default(size)


def drawable(text: str, face: Font) -> str:
    """`text` without the characters `face` has no glyph for (emoji in a CJK font), so they draw no tofu box.

    Zero-width joiners and variation selectors of removed emoji go too; spaces are kept.
    """
    return "".join(ch for ch in text if _has_glyph(face, ch))


@lru_cache(maxsize=8192)
def _has_glyph(face: Font, ch: str) -> bool:
    if ch.isspace():
        return True
    if unicodedata.category(ch) in {"Cf", "Cc", "Cs", "Co", "Cn"} or _is_variation_selector(ch):
        return False  # joiners, variation selectors, controls: meaningless once their emoji is gone
    return _bitmap(face, ch) != _missing_glyph(face)


@lru_cache(maxsize=64)
def _missing_glyph(face: Font) -> tuple[tuple[int, int], bytes]:
    return _bitmap(face, _MISSING_PROBE)


def _bitmap(face: Font, ch: str) -> tuple[tuple[int, int], bytes]:
    mask = face.getmask(ch)
    return mask.size, bytes(mask)


def _is_variation_selector(ch: str) -> bool:
    code = ord(ch)
    return 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF
