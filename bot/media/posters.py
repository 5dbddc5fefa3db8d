"""Personal posters: a content item's picture, title and tagline, the partner's name and a QR code of the
partner's tracked link, drawn from a YAML template and sent as a JPEG photo.

Templates live in bot/media/poster_templates/<name>.yaml, or in an extra folder (POSTER_TEMPLATE_DIR) so a
designer adds one without code. A template names every position, font size, colour and line limit; its
`version` goes into `PosterTemplate.cache_tag` ("classic@1"), which callers put into the key under which
Telegram's copy of a poster is remembered: bump the version when a template changes.

Rendering is CPU work: call `PosterRenderer.render_async` (or `render_poster_async`) from the event loop. A
renderer caches the partner-independent layer of each item (the picture read, scaled and cropped, the title,
tagline and footer laid out), so a poster for another partner only draws the name and the QR code and encodes.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import qrcode
import yaml
from PIL import Image, ImageColor, ImageDraw, ImageOps
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from bot.media.fonts import Font, drawable, font, resolve_font_path

log = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).parent / "poster_templates"
TEMPLATE_NAME = re.compile(r"^[a-z0-9_-]{1,40}$")
PICTURE_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP"})  # MPO: JPEG from phone cameras
ELLIPSIS = "…"

Colour = tuple[int, int, int]


# ---------------------------------------------------------------------------------------------------- templates


def _colour(value: object) -> Colour:
    if isinstance(value, str):
        try:
            red, green, blue, *_ = ImageColor.getrgb(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a colour: use #rrggbb or a CSS colour name") from None
        return red, green, blue
    if isinstance(value, list | tuple) and len(value) == 3 and all(isinstance(c, int) and 0 <= c <= 255 for c in value):
        return value[0], value[1], value[2]
    raise ValueError(f"{value!r} is not a colour: use #rrggbb, a CSS colour name or [r, g, b]")


ColourField = Annotated[Colour, BeforeValidator(_colour)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rect(_Spec):
    """A rectangle in canvas pixels, from its top-left corner."""

    x: int = Field(ge=0)
    y: int = Field(ge=0)
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class Panel(Rect):
    """A plain coloured shape behind everything else: bands, cards, accent bars."""

    color: ColourField
    radius: int = Field(default=0, ge=0)


class PictureSpec(Rect):
    """Where the item's picture goes (scaled to cover the box, centre cropped); the gradient replaces a missing
    or unreadable picture."""

    placeholder_top: ColourField
    placeholder_bottom: ColourField


class TextSpec(_Spec):
    """A block of text: `y` is the top of its first line; lines wrap within `width` and stop at `max_lines`
    with an ellipsis."""

    x: int = Field(ge=0)
    y: int = Field(ge=0)
    width: int = Field(gt=0)
    size: int = Field(ge=8, le=400, description="font size in pixels")
    color: ColourField
    max_lines: int = Field(default=1, ge=1, le=20)
    line_height: float = Field(default=1.3, ge=0.8, le=4.0, description="line pitch as a multiple of size")
    align: Literal["left", "center", "right"] = "left"
    bold: bool = False

    @property
    def height(self) -> int:
        return self.line_pitch * self.max_lines

    @property
    def line_pitch(self) -> int:
        return round(self.size * self.line_height)


class QrSpec(_Spec):
    """The QR code of the partner's link. It is drawn with whole-pixel modules, centred in its square, and
    keeps a quiet zone of `border` modules so phones scan it."""

    x: int = Field(ge=0)
    y: int = Field(ge=0)
    size: int = Field(ge=160, le=2000, description="side of the square in pixels")
    error_correction: Literal["M", "Q"] = "M"
    border: int = Field(default=4, ge=2, le=8, description="quiet zone in modules")
    color: ColourField = (0, 0, 0)
    background: ColourField = (255, 255, 255)

    @property
    def width(self) -> int:
        return self.size

    @property
    def height(self) -> int:
        return self.size


class PosterTemplate(_Spec):
    """A poster design, read from YAML by `load_template`. `cache_tag` ("classic@1") identifies it in caches."""

    name: str
    version: Annotated[int, Field(ge=0)] | Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,40}$")]
    width: int = Field(default=1080, ge=320, le=4096)
    height: int = Field(default=1920, ge=320, le=4096)
    background: ColourField
    jpeg_quality: int = Field(default=88, ge=50, le=95)
    panels: tuple[Panel, ...] = ()
    picture: PictureSpec
    title: TextSpec
    tagline: TextSpec
    partner_name: TextSpec
    footer: TextSpec
    qr: QrSpec

    @property
    def cache_tag(self) -> str:
        return f"{self.name}@{self.version}"

    @model_validator(mode="after")
    def _inside_canvas(self) -> PosterTemplate:
        boxes: list[tuple[str, Rect | TextSpec | QrSpec]] = [
            *((f"panels.{i}", panel) for i, panel in enumerate(self.panels)),
            ("picture", self.picture),
            ("title", self.title),
            ("tagline", self.tagline),
            ("partner_name", self.partner_name),
            ("footer", self.footer),
            ("qr", self.qr),
        ]
        for field, box in boxes:
            across, down = ("size", "size") if isinstance(box, QrSpec) else ("width", "height")
            if box.x + box.width > self.width:
                raise ValueError(f"{field}: x + {across} = {box.x + box.width} is beyond the canvas width {self.width}")
            if box.y + box.height > self.height:
                raise ValueError(
                    f"{field}: y + {down} = {box.y + box.height} is beyond the canvas height {self.height}"
                    + (
                        " (a text block's height is size × line_height × max_lines)"
                        if isinstance(box, TextSpec)
                        else ""
                    )
                )
        return self


class TemplateError(ValueError):
    """A poster template that is missing or invalid; the message names the file and the field."""


def load_template(name: str, extra_dir: Path | None = None) -> PosterTemplate:
    """The template `name`: `extra_dir/<name>.yaml` when there is one, else the one shipped with the bot."""
    if not TEMPLATE_NAME.fullmatch(name):
        raise TemplateError(f"poster template name {name!r}: use 1-40 of a-z, 0-9, '_' and '-'")
    folders = [d for d in (extra_dir, TEMPLATE_DIR) if d is not None]
    for folder in folders:
        path = folder / f"{name}.yaml"
        if path.is_file():
            return load_template_file(path)
    known = ", ".join(available_templates(extra_dir)) or "none"
    looked = " and ".join(str(d) for d in folders)
    raise TemplateError(f"no poster template named {name!r} in {looked} (available: {known})")


def available_templates(extra_dir: Path | None = None) -> list[str]:
    """Names of every template `load_template` can find."""
    folders = [d for d in (extra_dir, TEMPLATE_DIR) if d is not None and d.is_dir()]
    return sorted({p.stem for d in folders for p in d.glob("*.yaml") if TEMPLATE_NAME.fullmatch(p.stem)})


def load_template_file(path: Path) -> PosterTemplate:
    """Read and validate one template file; its name is the file name without `.yaml`."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError, RecursionError) as exc:  # 2026-02-30; nesting
        raise TemplateError(f"poster template {path}: cannot be read: {exc}") from exc
    if not isinstance(raw, dict):
        raise TemplateError(f"poster template {path}: must be a mapping of fields")
    if "name" in raw and raw["name"] != path.stem:
        raise TemplateError(f"poster template {path}: name: {raw['name']!r} differs from the file name {path.stem!r}")
    try:
        return PosterTemplate.model_validate({**raw, "name": path.stem})
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise TemplateError(f"poster template {path}: {problems}") from None


def _describe(error: Any) -> str:
    field = ".".join(str(part) for part in error["loc"] if not str(part).startswith(("function-", "constrained-")))
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{field}: {message}" if field else message


# ---------------------------------------------------------------------------------------------------- text


_CJK = (
    r"\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3190-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    r"\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\U00020000-\U0003ffff"
)
_CJK_CHAR = re.compile(rf"[{_CJK}]")
_TOKEN = re.compile(rf"[{_CJK}]|\s+|[^\s{_CJK}]+")
_NO_LINE_START = frozenset("，。、；：！？）】》」』”’,.;:!?)]}%…～")


def wrap_text(text: str, face: Font, width: int, max_lines: int) -> list[str]:
    """`text` in at most `max_lines` lines no wider than `width` pixels; the last line ends in an ellipsis when
    text was cut. Chinese breaks between any two characters (closing punctuation never starts a line: the
    character before it moves down too), other text at spaces, and a word wider than a line between characters.
    Newlines start a new line."""
    measure: Callable[[str], float] = face.getlength
    paragraphs = text.strip().splitlines()
    lines: list[str] = []
    cut = False
    for i, paragraph in enumerate(paragraphs):
        if len(lines) >= max_lines:
            cut = any(rest.strip() for rest in paragraphs[i:])
            break
        wrapped, cut = _wrap_paragraph(paragraph, measure, width, max_lines - len(lines))
        lines.extend(wrapped)
    if cut and lines:
        lines[-1] = _with_ellipsis(lines[-1], measure, width)
    return lines


def _wrap_paragraph(text: str, measure: Callable[[str], float], width: int, max_lines: int) -> tuple[list[str], bool]:
    """Greedy line filling; returns (lines, whether text was left over)."""
    lines: list[str] = []
    current = ""
    for token in _TOKEN.findall(text):
        if token.isspace():
            current += " " if current else ""
            continue
        if measure(current + token) <= width:
            current += token
            continue
        carry = ""
        if token in _NO_LINE_START and len(current) > 1:
            if _CJK_CHAR.fullmatch(current[-1]) and current[-1] not in _NO_LINE_START:
                current, carry = current[:-1], current[-1]
            else:  # nothing sensible to move down: let the punctuation hang
                current += token
                continue
        if current.strip():
            lines.append(current.rstrip())
        rest = carry + token
        while measure(rest) > width and len(rest) > 1:
            fit = _longest_prefix(rest, measure, width)
            lines.append(rest[:fit])
            rest = rest[fit:]
        current = rest
        if len(lines) >= max_lines:
            return lines[:max_lines], True
    if current.strip():
        lines.append(current.rstrip())
    return lines[:max_lines], len(lines) > max_lines


def _longest_prefix(token: str, measure: Callable[[str], float], width: int) -> int:
    low, high = 1, len(token)
    while low < high:
        middle = (low + high + 1) // 2
        if measure(token[:middle]) <= width:
            low = middle
        else:
            high = middle - 1
    return low


def _with_ellipsis(line: str, measure: Callable[[str], float], width: int) -> str:
    line = line.rstrip()
    while line and measure(line + ELLIPSIS) > width:
        line = line[:-1].rstrip()
    return line + ELLIPSIS


# ---------------------------------------------------------------------------------------------------- rendering


@dataclass(frozen=True, slots=True)
class PosterData:
    """What one poster shows. Texts are drawn as given (already localised); `image_path` may be None for a
    text-only item, and a picture that cannot be read is drawn as the template's placeholder."""

    partner_name: str
    title: str
    tagline: str
    link: str
    footer: str
    image_path: Path | None = None


_LayerKey = tuple[str | None, int | None, int | None, str, str, str]


class PosterRenderer:
    """Draws posters of one template as JPEG bytes; safe to share between threads.

    Use one renderer per template for the life of the process: `render(data)` blocks (about 10-20 ms once the
    item's layer is cached, ~100 ms for an item's first poster), `await render_async(data)` runs it in a worker
    thread. The partner-independent layer (background, picture, title, tagline, footer) is kept in an LRU of
    `cache_size` entries (about 6 MB each at 1080x1920) keyed by the picture's path, mtime and size and the
    texts, so a replaced picture file is drawn again. Counters for tests and metrics:
    `renders` (posters encoded), `layers_built` (item layers drawn: picture read and scaled, text laid out) and
    `unreadable_pictures` (pictures that fell back to the placeholder).
    """

    def __init__(self, template: PosterTemplate, *, font_path: Path | None = None, cache_size: int = 8) -> None:
        self.template = template
        self.font_path = resolve_font_path(font_path)
        self.cache_size = cache_size
        self.renders = 0
        self.layers_built = 0
        self.unreadable_pictures = 0
        self._layers: OrderedDict[_LayerKey, Image.Image] = OrderedDict()
        self._lock = threading.Lock()
        self._ellipsis_ok = drawable(ELLIPSIS, self._font(template.title)) == ELLIPSIS

    @property
    def cache_tag(self) -> str:
        return self.template.cache_tag

    def render(self, data: PosterData) -> bytes:
        """The poster as JPEG bytes. Blocking: from the event loop use `render_async`."""
        poster = self._layer(data).copy()
        draw = ImageDraw.Draw(poster)
        self._text(draw, data.partner_name, self.template.partner_name)
        spec = self.template.qr
        poster.paste(_qr_image(data.link, spec), (spec.x, spec.y))
        buffer = io.BytesIO()
        poster.save(buffer, format="JPEG", quality=self.template.jpeg_quality)
        with self._lock:
            self.renders += 1
        return buffer.getvalue()

    async def render_async(self, data: PosterData) -> bytes:
        """`render` in a worker thread, so the event loop keeps serving other partners."""
        return await asyncio.to_thread(self.render, data)

    def _layer(self, data: PosterData) -> Image.Image:
        key = self._layer_key(data)
        with self._lock:
            layer = self._layers.get(key)
            if layer is not None:
                self._layers.move_to_end(key)
                return layer
        layer = self._draw_layer(data)
        with self._lock:
            self._layers[key] = layer
            self.layers_built += 1
            while len(self._layers) > self.cache_size:
                self._layers.popitem(last=False)
        return layer

    @staticmethod
    def _layer_key(data: PosterData) -> _LayerKey:
        if data.image_path is None:
            return None, None, None, data.title, data.tagline, data.footer
        try:
            stat = data.image_path.stat()
        except OSError:
            return str(data.image_path), None, None, data.title, data.tagline, data.footer
        return str(data.image_path), stat.st_mtime_ns, stat.st_size, data.title, data.tagline, data.footer

    def _draw_layer(self, data: PosterData) -> Image.Image:
        template = self.template
        layer = Image.new("RGB", (template.width, template.height), template.background)
        draw = ImageDraw.Draw(layer)
        for panel in template.panels:
            box = (panel.x, panel.y, panel.x + panel.width - 1, panel.y + panel.height - 1)
            draw.rounded_rectangle(box, radius=panel.radius, fill=panel.color)
        spec = template.picture
        picture = _picture(data.image_path, (spec.width, spec.height), template.background)
        if picture is None:
            if data.image_path is not None:
                with self._lock:
                    self.unreadable_pictures += 1
            picture = _gradient((spec.width, spec.height), spec.placeholder_top, spec.placeholder_bottom)
        layer.paste(picture, (spec.x, spec.y))
        self._text(draw, data.title, template.title)
        self._text(draw, data.tagline, template.tagline)
        self._text(draw, data.footer, template.footer)
        return layer

    def _font(self, spec: TextSpec) -> Font:
        return font(spec.size, self.font_path)

    def _text(self, draw: ImageDraw.ImageDraw, text: str, spec: TextSpec) -> None:
        face = self._font(spec)
        lines = wrap_text(drawable(text, face), face, spec.width, spec.max_lines)
        if not self._ellipsis_ok:
            lines = [line.replace(ELLIPSIS, "...") for line in lines]
        x, anchor = {
            "left": (spec.x, "la"),
            "center": (spec.x + spec.width / 2, "ma"),
            "right": (spec.x + spec.width, "ra"),
        }[spec.align]
        stroke = max(1, spec.size // 36) if spec.bold else 0
        for i, line in enumerate(lines):
            if line:
                y = spec.y + i * spec.line_pitch
                draw.text(
                    (x, y), line, font=face, fill=spec.color, anchor=anchor, stroke_width=stroke, stroke_fill=spec.color
                )


def _picture(path: Path | None, size: tuple[int, int], background: Colour) -> Image.Image | None:
    """The picture scaled to cover `size` and centre cropped; None when there is none or it cannot be read."""
    if path is None:
        return None
    try:
        with Image.open(path) as image:
            if image.format not in PICTURE_FORMATS:
                log.warning(
                    "poster picture %s is %s, not JPEG, PNG or WebP: drawing the placeholder", path, image.format
                )
                return None
            scale = max(size[0] / image.width, size[1] / image.height)
            image.draft("RGB", (round(image.width * scale), round(image.height * scale)))  # JPEG: decode smaller
            upright = ImageOps.exif_transpose(image)
            if upright.mode in {"RGBA", "LA", "PA"} or "transparency" in upright.info:
                rgba = upright.convert("RGBA")
                flat = Image.new("RGB", rgba.size, background)
                flat.paste(rgba, mask=rgba.getchannel("A"))
                upright = flat
            return _cover(upright.convert("RGB"), size)
    except Exception as exc:  # damaged files make Pillow's decoders raise many kinds of errors
        log.warning("poster picture %s cannot be read (%s): drawing the placeholder", path, exc)
        return None


def _cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` scaled to cover `size` exactly, cropped around its centre."""
    scale = max(size[0] / image.width, size[1] / image.height)
    crop_width, crop_height = size[0] / scale, size[1] / scale
    left, top = (image.width - crop_width) / 2, (image.height - crop_height) / 2
    box = (left, top, left + crop_width, top + crop_height)
    return image.resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)


def _gradient(size: tuple[int, int], top: Colour, bottom: Colour) -> Image.Image:
    mask = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
    return Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), mask)


_ERROR_CORRECTION = {"M": qrcode.constants.ERROR_CORRECT_M, "Q": qrcode.constants.ERROR_CORRECT_Q}


def _qr_image(link: str, spec: QrSpec) -> Image.Image:
    """The QR square: whole-pixel modules (sharp edges scan best), centred, quiet zone included."""
    code = qrcode.QRCode(error_correction=_ERROR_CORRECTION[spec.error_correction], box_size=1, border=spec.border)
    code.add_data(link)
    code.make(fit=True)
    matrix: list[list[bool]] = code.get_matrix()
    modules = len(matrix)
    module_px = spec.size // modules
    if module_px < 2:
        raise ValueError(f"a link of {len(link)} characters is too long for a {spec.size} px QR code")
    pixels = bytes(0 if dark else 255 for row in matrix for dark in row)
    bitmap = Image.frombytes("L", (modules, modules), pixels).resize(
        (modules * module_px, modules * module_px), Image.Resampling.NEAREST
    )
    square = Image.new("RGB", (spec.size, spec.size), spec.background)
    offset = (spec.size - bitmap.width) // 2
    square.paste(ImageOps.colorize(bitmap, black=spec.color, white=spec.background), (offset, offset))
    return square


# ---------------------------------------------------------------------------------------------------- shortcuts


@lru_cache(maxsize=8)
def _shared_renderer(template: PosterTemplate, font_path: Path | None) -> PosterRenderer:
    return PosterRenderer(template, font_path=font_path)


def render_poster(data: PosterData, template: PosterTemplate, *, font_path: Path | None = None) -> bytes:
    """One poster as JPEG bytes through a renderer shared per (template, font): blocking, like `render`."""
    return _shared_renderer(template, font_path).render(data)


async def render_poster_async(data: PosterData, template: PosterTemplate, *, font_path: Path | None = None) -> bytes:
    """`render_poster` in a worker thread: the way to call it from a handler."""
    return await asyncio.to_thread(render_poster, data, template, font_path=font_path)
