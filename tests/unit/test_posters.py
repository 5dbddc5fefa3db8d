"""Tier 1: personal posters: size, a QR code that scans back to the link, Chinese text, wrapping, templates, the
picture fallback and the item-layer cache."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image, ImageChops

import bot.media.fonts as fonts
import bot.media.posters as posters
from bot.media.fonts import bundled_font_path, cjk_font_path, drawable, font
from bot.media.posters import (
    TEMPLATE_DIR,
    PosterData,
    PosterRenderer,
    PosterTemplate,
    TemplateError,
    available_templates,
    load_template,
    render_poster,
    render_poster_async,
    wrap_text,
)

LINK = "http://127.0.0.1:8080/r/Ab3dEf7h"
TITLE = "春季新品上市：天然草本精华面霜"


def _data(**changes: object) -> PosterData:
    fields: dict[str, object] = {
        "partner_name": "推荐人：张三",
        "title": TITLE,
        "tagline": "限时八折，转发给需要的朋友",
        "link": LINK,
        "footer": "Partner Assistant · 长按识别二维码",
        "image_path": None,
    }
    fields.update(changes)
    return PosterData(**fields)  # type: ignore[arg-type]


def _open(jpeg: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(jpeg))
    image.load()
    return image


def _photo(path: Path, size: tuple[int, int] = (1600, 1200), fmt: str = "JPEG") -> Path:
    """Three vertical bands: red and blue edges of 200 px around a green centre."""
    image = Image.new("RGB", size, (0, 160, 0))
    image.paste((220, 0, 0), (0, 0, 200, size[1]))
    image.paste((0, 0, 220), (size[0] - 200, 0, size[0], size[1]))
    extra = {"save_all": True, "append_images": [image]} if fmt == "MPO" else {}  # a second frame makes it MPO
    image.save(path, format=fmt, **extra)
    return path


@pytest.fixture(scope="module")
def classic() -> PosterTemplate:
    return load_template("classic")


def _region(image: Image.Image, spec: posters.TextSpec) -> Image.Image:
    return image.crop((spec.x, spec.y, spec.x + spec.width, spec.y + spec.height))


# ------------------------------------------------------------------------------------------------ the poster


def test_classic_poster_is_a_1080_by_1920_jpeg(classic: PosterTemplate) -> None:
    image = _open(PosterRenderer(classic).render(_data()))
    assert image.format == "JPEG"
    assert image.size == (1080, 1920)
    assert classic.cache_tag == "classic@1"


@pytest.mark.parametrize("name", available_templates())
def test_qr_code_scans_back_to_exactly_the_link(name: str, tmp_path: Path) -> None:
    template = load_template(name)
    renderer = PosterRenderer(template)
    for i, link in enumerate([LINK, "http://127.0.0.1:8080/r/Zz9yXw8v"]):
        data = _data(link=link, partner_name=f"合伙人 {i}", image_path=_photo(tmp_path / "p.jpg"))
        image = _open(renderer.render(data))
        assert image.size == (template.width, template.height)
        assert [barcode.text for barcode in zxingcpp.read_barcodes(image)] == [link]


def test_the_cjk_font_ships_with_the_dependencies() -> None:
    bundled = bundled_font_path()
    assert bundled is not None
    assert bundled.is_file()
    assert cjk_font_path() == bundled


def test_without_the_font_package_the_system_fonts_are_searched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fonts, "BUNDLED_FONT", ("no_such_font_package", "fonts/x.ttc"))
    assert fonts.bundled_font_path.__wrapped__() is None
    monkeypatch.setattr(fonts, "bundled_font_path", lambda: None)
    found = fonts.cjk_font_path.__wrapped__()
    assert found is None or str(found) in fonts.CJK_FONT_CANDIDATES


def test_chinese_glyphs_are_drawn_not_missing_boxes() -> None:
    face = font(64)
    missing = face.getmask("\U0010fffd")
    masks = [face.getmask(ch) for ch in "中新"]
    as_bytes = [(m.size, bytes(m)) for m in [missing, *masks]]
    assert as_bytes[1] != as_bytes[2]
    assert as_bytes[0] not in as_bytes[1:]
    assert drawable("中文", face) == "中文"


def test_chinese_title_appears_on_the_poster(classic: PosterTemplate) -> None:
    renderer = PosterRenderer(classic)
    first = _open(renderer.render(_data(title="中文标题")))
    second = _open(renderer.render(_data(title="新品上市")))
    blank = _open(renderer.render(_data(title="")))
    regions = [_region(image, classic.title) for image in (first, second, blank)]
    assert ImageChops.difference(regions[0], regions[1]).getbbox() is not None
    assert ImageChops.difference(regions[0], regions[2]).getbbox() is not None


@pytest.mark.parametrize("name", ["张三 🎉🔥", "👨‍👩‍👧 family", "❤️", "🏳️‍🌈" * 20])
def test_emoji_never_break_rendering(classic: PosterTemplate, name: str) -> None:
    image = _open(PosterRenderer(classic).render(_data(partner_name=name, title=f"{TITLE} 🎁✨", tagline="👍")))
    assert image.size == (1080, 1920)
    assert [barcode.text for barcode in zxingcpp.read_barcodes(image)] == [LINK]


def test_emoji_the_font_lacks_are_left_out_of_the_text() -> None:
    assert drawable("张三 🎉 好👨‍👩‍👧", font(40)) == "张三  好"


# ------------------------------------------------------------------------------------------------ wrapping


@pytest.mark.parametrize(
    "title",
    [
        "天然草本精华面霜限时八折优惠" * 22,  # 308 characters without a space
        ("Natural herbal cream on sale today " * 9)[:300],
        ("春季新品 Spring collection，限时优惠！" * 12)[:300],
    ],
)
def test_a_300_character_title_wraps_within_the_max_lines(classic: PosterTemplate, title: str) -> None:
    spec = classic.title
    face = font(spec.size)
    lines = wrap_text(title, face, spec.width, spec.max_lines)
    assert len(title) >= 300
    assert len(lines) == spec.max_lines
    assert all(face.getlength(line) <= spec.width for line in lines)
    assert lines[-1].endswith("…")
    PosterRenderer(classic).render(_data(title=title))


def test_latin_text_breaks_between_words() -> None:
    face = font(40)
    lines = wrap_text("Natural herbal cream on sale today for partners", face, 300, 5)
    assert len(lines) > 1
    assert " ".join(lines) == "Natural herbal cream on sale today for partners"


def test_chinese_breaks_between_characters_but_not_before_closing_punctuation() -> None:
    face = font(40)
    assert wrap_text("一二三四五六七八九十", face, 7 * 40, 3) == ["一二三四五六七", "八九十"]
    assert wrap_text("一二三四五六七，八九十", face, 7 * 40, 3) == ["一二三四五六", "七，八九十"]


def test_newlines_start_new_lines_and_count_against_the_limit() -> None:
    face = font(40)
    assert wrap_text("第一行\n第二行\n\n", face, 500, 2) == ["第一行", "第二行"]
    assert wrap_text("第一行\n第二行\n第三行", face, 500, 2) == ["第一行", "第二行…"]


def test_a_short_text_fits_on_one_line_and_a_word_too_long_is_split() -> None:
    face = font(40)
    assert wrap_text("新品", face, 500, 2) == ["新品"]
    assert wrap_text("", face, 500, 2) == []
    lines = wrap_text("x" * 100, face, 200, 10)
    assert len(lines) > 1
    assert all(face.getlength(line) <= 200 for line in lines)


# ------------------------------------------------------------------------------------------------ templates


def test_shipped_templates_are_valid_and_tagged_by_version() -> None:
    names = available_templates()
    assert {"classic", "bold"} <= set(names)
    for name in names:
        template = load_template(name)
        assert template.cache_tag == f"{name}@{template.version}"


def _write_template(folder: Path, name: str, replace: tuple[str, str] | None = None, extra: str = "") -> Path:
    text = (TEMPLATE_DIR / "classic.yaml").read_text(encoding="utf-8")
    if replace is not None:
        assert replace[0] in text
        text = text.replace(replace[0], replace[1], 1)
    path = folder / f"{name}.yaml"
    path.write_text(text + extra, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("replace", "extra", "field"),
    [
        (("  size: 64\n", '  size: "big"\n'), "", "title.size"),
        (("  size: 300\n", "  size: 50\n"), "", "qr.size"),
        (('background: "#F7F4EE"', 'background: "not-a-colour"'), "", "background"),
        (("  error_correction: M\n", "  error_correction: L\n"), "", "qr.error_correction"),
        (None, "shadow: true\n", "shadow"),
        (("  max_lines: 2\n  line_height: 1.3\n", "  max_lines: 12\n  line_height: 1.3\n"), "", "title:"),
        (("  x: 712\n", "  x: 900\n"), "", "qr:"),
        (("version: 1\n", ""), "", "version"),
    ],
)
def test_a_bad_template_names_the_file_and_the_field(
    tmp_path: Path, replace: tuple[str, str] | None, extra: str, field: str
) -> None:
    path = _write_template(tmp_path, "broken", replace, extra)
    with pytest.raises(TemplateError) as error:
        load_template("broken", extra_dir=tmp_path)
    assert str(path) in str(error.value)
    assert field in str(error.value)


def test_broken_yaml_and_unknown_names_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "garbled.yaml").write_text("title: [unclosed\n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"garbled\.yaml"):
        load_template("garbled", extra_dir=tmp_path)
    with pytest.raises(TemplateError, match=r"no poster template named 'nope'.*classic"):
        load_template("nope", extra_dir=tmp_path)
    with pytest.raises(TemplateError, match="name"):
        load_template("../classic")


def test_a_designer_adds_a_template_in_the_extra_folder(tmp_path: Path) -> None:
    _write_template(tmp_path, "spring", ("version: 1\n", 'version: "2026-03"\n'))
    template = load_template("spring", extra_dir=tmp_path)
    assert template.cache_tag == "spring@2026-03"
    assert "spring" in available_templates(tmp_path)
    assert _open(PosterRenderer(template).render(_data())).size == (1080, 1920)


def test_the_extra_folder_overrides_a_shipped_template(tmp_path: Path) -> None:
    _write_template(tmp_path, "classic", ("version: 1\n", "version: 5\n"))
    assert load_template("classic", extra_dir=tmp_path).cache_tag == "classic@5"
    assert load_template("classic").cache_tag == "classic@1"


def test_the_size_comes_from_the_template(tmp_path: Path) -> None:
    text = "width: 1080\nheight: 1920\n"
    _write_template(tmp_path, "tall", (text, "width: 1200\nheight: 2000\n"))
    jpeg = PosterRenderer(load_template("tall", extra_dir=tmp_path)).render(_data())
    assert _open(jpeg).size == (1200, 2000)


# ------------------------------------------------------------------------------------------------ the picture


def _picture_region(image: Image.Image, template: PosterTemplate) -> Image.Image:
    spec = template.picture
    return image.crop((spec.x, spec.y, spec.x + spec.width, spec.y + spec.height))


def test_the_picture_covers_its_box_cropped_around_the_centre(classic: PosterTemplate, tmp_path: Path) -> None:
    image = _open(PosterRenderer(classic).render(_data(image_path=_photo(tmp_path / "p.jpg"))))
    picture = _picture_region(image, classic)
    # 1600x1200 scaled to cover 1080x1080 keeps the centre 1200 px: the red and blue 200 px edges are cut off
    for x in (3, 540, 1076):
        red, green, blue = picture.getpixel((x, 540))  # type: ignore[misc]
        assert green > 120
        assert red < 40
        assert blue < 40


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "MPO"])  # MPO: what phone cameras save as JPEG
def test_png_webp_and_camera_pictures_are_drawn(classic: PosterTemplate, tmp_path: Path, fmt: str) -> None:
    path = _photo(tmp_path / f"p.{fmt.lower()}", fmt=fmt)
    with Image.open(path) as saved:
        assert saved.format == fmt
    renderer = PosterRenderer(classic)
    image = _open(renderer.render(_data(image_path=path)))
    assert renderer.unreadable_pictures == 0
    red, green, _ = _picture_region(image, classic).getpixel((540, 540))  # type: ignore[misc]
    assert green > 120
    assert red < 40


def test_a_transparent_png_is_flattened_onto_the_background(classic: PosterTemplate, tmp_path: Path) -> None:
    path = tmp_path / "logo.png"
    Image.new("RGBA", (800, 800), (0, 0, 0, 0)).save(path)
    image = _open(PosterRenderer(classic).render(_data(image_path=path)))
    pixel = _picture_region(image, classic).getpixel((540, 540))
    assert all(abs(a - b) < 8 for a, b in zip(pixel, classic.background, strict=True))  # type: ignore[arg-type]


@pytest.mark.parametrize("content", [b"not a picture at all", b"\xff\xd8\xff\xe0 truncated jpeg", b""])
def test_an_unreadable_picture_falls_back_to_the_placeholder(
    classic: PosterTemplate, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "broken.jpg"
    path.write_bytes(content)
    renderer = PosterRenderer(classic)
    with_broken = _open(renderer.render(_data(image_path=path)))
    without = _open(renderer.render(_data()))
    assert renderer.unreadable_pictures == 1
    difference = ImageChops.difference(_picture_region(with_broken, classic), _picture_region(without, classic))
    assert difference.point(lambda v: 255 if v >= 8 else 0).getbbox() is None  # JPEG noise only
    top = _picture_region(without, classic).getpixel((540, 2))
    assert all(abs(a - b) < 10 for a, b in zip(top, classic.picture.placeholder_top, strict=True))  # type: ignore[arg-type]


def test_a_missing_or_unsupported_picture_falls_back_too(classic: PosterTemplate, tmp_path: Path) -> None:
    gif = tmp_path / "anim.gif"
    Image.new("RGB", (400, 400), (0, 200, 0)).save(gif)
    renderer = PosterRenderer(classic)
    for path in (tmp_path / "gone.jpg", gif):
        assert _open(renderer.render(_data(image_path=path))).size == (1080, 1920)
    assert renderer.unreadable_pictures == 2


# ------------------------------------------------------------------------------------------------ cache and API


def test_a_second_partner_reuses_the_scaled_picture(
    classic: PosterTemplate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scaled: list[tuple[int, int]] = []
    cover = posters._cover

    def counting_cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
        scaled.append(size)
        return cover(image, size)

    monkeypatch.setattr(posters, "_cover", counting_cover)
    photo = _photo(tmp_path / "p.jpg")
    renderer = PosterRenderer(classic)
    first = renderer.render(_data(image_path=photo, partner_name="张三", link=LINK))
    second = renderer.render(_data(image_path=photo, partner_name="李四", link=LINK + "x"))
    assert (renderer.renders, renderer.layers_built, len(scaled)) == (2, 1, 1)
    assert [b.text for b in zxingcpp.read_barcodes(_open(second))] == [LINK + "x"]
    assert first != second

    stat = photo.stat()
    os.utime(photo, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # the picture file was replaced
    renderer.render(_data(image_path=photo, partner_name="王五"))
    renderer.render(_data(image_path=photo, title="另一个标题"))
    assert (renderer.renders, renderer.layers_built, len(scaled)) == (4, 3, 3)


def test_the_layer_cache_is_bounded(classic: PosterTemplate) -> None:
    renderer = PosterRenderer(classic, cache_size=2)
    for i in range(4):
        renderer.render(_data(title=f"标题 {i}"))
    renderer.render(_data(title="标题 3"))
    renderer.render(_data(title="标题 0"))
    assert renderer.layers_built == 5
    assert len(renderer._layers) == 2


def test_the_font_path_is_configurable(classic: PosterTemplate, tmp_path: Path) -> None:
    bundled = bundled_font_path()
    assert bundled is not None
    copy = tmp_path / "brand.ttc"
    shutil.copy(bundled, copy)
    assert PosterRenderer(classic, font_path=copy).font_path == copy
    assert _open(render_poster(_data(), classic, font_path=copy)).size == (1080, 1920)
    with pytest.raises(FileNotFoundError, match="FONT_PATH"):
        PosterRenderer(classic, font_path=tmp_path / "missing.ttf")


async def test_posters_render_off_the_event_loop(classic: PosterTemplate) -> None:
    renderer = PosterRenderer(classic)
    assert (await renderer.render_async(_data())).startswith(b"\xff\xd8")
    assert renderer.renders == 1
    assert (await render_poster_async(_data(), classic)).startswith(b"\xff\xd8")
