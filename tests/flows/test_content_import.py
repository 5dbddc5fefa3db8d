"""Tier 2: `run_bot.py content import FILE.yaml` on SQLite and PostgreSQL: the example file, skipped items,
re-imports, pictures, malformed files, and the command itself as a process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.clock import ManualClock
from bot.domain.events import EventType
from bot.i18n import Translator
from bot.services.content_import import ImportFileError, ImportReport, import_content_file, read_import_file
from storage.db import create_sessionmaker
from storage.models import ContentItem, Event, Product

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "content.yaml"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TEXTS = Translator.load("en").texts("en")


async def run_import(
    engine: AsyncEngine, path: Path, content_dir: Path, clock: ManualClock | None = None
) -> ImportReport:
    return await import_content_file(
        path,
        sessionmaker=create_sessionmaker(engine),
        content_dir=content_dir,
        clock=clock or ManualClock(START),
        texts=TEXTS,
    )


async def items_in(engine: AsyncEngine) -> list[ContentItem]:
    async with create_sessionmaker(engine)() as session:
        return list((await session.execute(select(ContentItem).order_by(ContentItem.id))).scalars())


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def same_bytes(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes()


def picture(path: Path, size: tuple[int, int] = (64, 48), color: str = "pink", fmt: str = "JPEG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, fmt)
    return path


async def test_the_readme_example_imports_cleanly(engine: AsyncEngine, tmp_path: Path) -> None:
    # The example's folder may go away after the import: the picture is copied into CONTENT_DIR.
    shutil.copytree(EXAMPLE.parent, tmp_path / "examples")
    content_dir = tmp_path / "content"
    report = await run_import(engine, tmp_path / "examples" / "content.yaml", content_dir)
    shutil.rmtree(tmp_path / "examples")

    assert report.issues == [] and report.exit_code == 0
    assert report.summary() == "Imported 4 items (4 new, 0 updated), 2 products."
    items = await items_in(engine)
    assert [i.external_key for i in items] == ["spring-sale-2026", "monday-tip", "gold-launch", "why-us"]
    spring, tip, launch, why = items
    assert spring.title == "Spring sale" and spring.text.endswith("Order through my link: {link}")
    assert spring.url == "https://shop.example.com/spring"
    assert spring.tags == ["spring", "sale"] and spring.levels == ["member", "silver", "gold"]
    assert spring.publish_on == ["2026-03-20", "2026-03-27"] and spring.weekdays == []
    assert spring.media_kind == "photo" and spring.media_file_id is None
    stored = Path(str(spring.media_path))
    assert stored.parent == content_dir and stored.suffix == ".jpg"
    assert same_bytes(stored, EXAMPLE.parent / "media" / "spring.jpg")
    assert tip.weekdays == [1] and tip.segments == ["low", "mid"] and tip.tags == ["tips", "training"]
    assert tip.media_kind is None and tip.media_path is None
    assert launch.title == "新品首发(金牌专享)" and launch.publish_on == ["2026-04-01"] and launch.weekdays == [5]
    assert why.publish_on == [] and why.weekdays == [] and why.levels == [] and why.tags == ["evergreen"]
    assert all(
        i.status == "active" and i.revision == 1 and i.created_by is None and i.created_at == START for i in items
    )

    async with create_sessionmaker(engine)() as session:
        events = (await session.execute(select(Event).order_by(Event.id))).scalars().all()
        products = (await session.execute(select(Product).order_by(Product.sku))).scalars().all()
    assert [(e.type, e.partner_id, e.source, e.payload) for e in events] == [
        (EventType.CONTENT_ADDED, None, "admin", {"content_id": i.id, "via": "import"}) for i in items
    ]
    assert [(p.sku, p.name, p.category, p.active) for p in products] == [
        ("CUP-002", "Porcelain cup", "tableware", False),
        ("TEA-001", "Spring green tea, 250 g", "tea", True),
    ]


async def test_the_readme_snippet_imports_cleanly(engine: AsyncEngine, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Content import") :]
    snippet = section[section.index("```yaml\n") + len("```yaml\n") : section.index("```\n", section.index("```yaml"))]
    shutil.copytree(EXAMPLE.parent / "media", tmp_path / "media")
    report = await run_import(engine, write(tmp_path / "snippet.yaml", snippet), tmp_path / "content")
    assert report.issues == [] and report.summary() == "Imported 2 items (2 new, 0 updated), 1 product."


async def test_invalid_items_are_reported_and_skipped_valid_ones_imported(engine: AsyncEngine, tmp_path: Path) -> None:
    file = write(
        tmp_path / "mixed.yaml",
        """\
        - title: One
          text: first
          url: https://example.com/1
        - title: Spring sale
          text: second
          url: ftp://example.com/2
        - title: Three
          text: third
          url: https://example.com/3
          weekdays: [mon, funday]
          publish_on: 2026-02-30
        - title: Four
          text: fourth
          url: https://example.com/4
          publish_on: 2026-03-04
        - title: Five
          text: fifth
          url: https://example.com/5
          levels: gold
        """,
    )
    report = await run_import(engine, file, tmp_path / "content")

    assert [str(issue) for issue in report.issues] == [
        "item 2 (Spring sale): url: That is not a web link. Send a full address starting with http:// or https://.",
        'item 3 (Three): publish_on: "2026-02-30" is not a real date. Use YYYY-MM-DD, e.g. 2026-12-01.',
        'item 3 (Three): weekdays: "funday" is not a weekday. Use mon … sun or 1–7 (1 = Monday), weekdays, weekend, '
        "daily, or 周一 … 周日.",
    ]
    assert report.summary() == "Imported 3 items (3 new, 0 updated); 2 items skipped."
    assert report.exit_code == 1
    assert report.lines()[-1] == report.summary()
    items = await items_in(engine)
    assert [i.title for i in items] == ["One", "Four", "Five"]
    assert items[1].publish_on == ["2026-03-04"] and items[2].levels == ["gold"]
    assert report.content_ids == [i.id for i in items]


async def test_reimporting_with_keys_updates_instead_of_duplicating(engine: AsyncEngine, tmp_path: Path) -> None:
    picture(tmp_path / "a.jpg", color="pink")
    picture(tmp_path / "b.png", color="green", fmt="PNG")
    body = """\
    items:
      - key: spring
        title: Spring sale
        text: {text}
        url: https://example.com/spring
        image: {image}
      - key: tip
        title: Tip
        text: Ask one question.
        url: https://example.com/tip
      - title: No key
        text: Added every time
        url: https://example.com/nokey
    products:
      - sku: TEA-1
        name: {product}
        url: https://example.com/tea
    """
    file = tmp_path / "content.yaml"
    write(file, body.format(text="Twenty percent off", image="a.jpg", product="Tea"))
    clock = ManualClock(START)
    first = await run_import(engine, file, tmp_path / "content", clock)
    assert first.summary() == "Imported 3 items (3 new, 0 updated), 1 product."
    spring_id = first.content_ids[0]
    async with create_sessionmaker(engine)() as session, session.begin():
        item = await session.get(ContentItem, spring_id)
        assert item is not None
        item.media_file_id = "telegram-file-id-of-a"  # as if the bot had sent it once

    clock.set(datetime(2026, 3, 2, tzinfo=UTC))
    write(file, body.format(text="Thirty percent off", image="b.png", product="Green tea"))
    second = await run_import(engine, file, tmp_path / "content", clock)
    assert second.summary() == "Imported 3 items (1 new, 1 updated, 1 unchanged), 1 product."
    assert second.exit_code == 0

    items = await items_in(engine)
    assert [(i.external_key, i.title, i.revision) for i in items] == [
        ("spring", "Spring sale", 2),
        ("tip", "Tip", 1),
        (None, "No key", 1),
        (None, "No key", 1),
    ]
    spring = items[0]
    assert spring.id == spring_id and spring.text == "Thirty percent off"
    assert str(spring.media_path).endswith(".png") and spring.media_file_id is None  # Telegram's copy is stale
    assert spring.created_at == START and spring.updated_at == datetime(2026, 3, 2, tzinfo=UTC)
    assert items[1].updated_at == START
    assert sorted(p.suffix for p in (tmp_path / "content").iterdir()) == [".jpg", ".png"]
    async with create_sessionmaker(engine)() as session:
        added = (await session.execute(select(Event).where(Event.type == EventType.CONTENT_ADDED))).scalars().all()
        products = (await session.execute(select(Product))).scalars().all()
    assert len(added) == 4  # three new items, then the keyless one again; updates add no event
    assert [(p.sku, p.name) for p in products] == [("TEA-1", "Green tea")]


async def test_unusable_pictures_skip_their_item_and_are_not_copied(engine: AsyncEngine, tmp_path: Path) -> None:
    big = tmp_path / "media" / "huge.jpg"
    picture(big, size=(32, 32))
    with big.open("ab") as fh:
        fh.write(b"\0" * (11 * 1024 * 1024))
    (tmp_path / "media" / "notes.png").write_text("not a picture at all")
    picture(tmp_path / "media" / "banner.png", size=(2100, 100), fmt="PNG")
    picture(tmp_path / "media" / "ok.jpg")
    picture(tmp_path / "elsewhere" / "abs.jpg", color="blue")
    (tmp_path / "media" / "anim.gif").write_bytes(b"")
    Image.new("P", (8, 8)).save(tmp_path / "media" / "anim.gif", "GIF")
    items = [
        ("Huge", "media/huge.jpg"),
        ("Notes", "media/notes.png"),
        ("Banner", "media/banner.png"),
        ("Missing", "media/nowhere.jpg"),
        ("Gif", "media/anim.gif"),
        ("Fine", "media/ok.jpg"),
        ("Absolute", str(tmp_path / "elsewhere" / "abs.jpg")),
        ("Invalid anyway", "media/ok.jpg"),
    ]
    lines = ["items:"]
    for title, image in items:
        url = "ftp://nope" if title == "Invalid anyway" else "https://example.com"
        lines += [f"  - title: {title}", "    text: Look", f"    url: {url}", f"    image: '{image}'"]
    file = write(tmp_path / "pictures.yaml", "\n".join(lines) + "\n")
    content_dir = tmp_path / "content"

    report = await run_import(engine, file, content_dir)

    reasons = {(issue.label, issue.field): issue.reason for issue in report.issues}
    assert reasons[("Huge", "image")] == "That file is 11.0 MB; the limit is 10 MB. Please send a smaller one."
    unreadable = "I couldn't read that picture. Send a JPEG, PNG or WebP image."
    assert reasons[("Notes", "image")] == unreadable
    assert reasons[("Gif", "image")] == unreadable
    assert reasons[("Banner", "image")].startswith("The picture is 2100×100 pixels")
    assert reasons[("Missing", "image")] == f"There is no picture at {tmp_path / 'media' / 'nowhere.jpg'}."
    assert ("Invalid anyway", "url") in reasons and ("Invalid anyway", "image") not in reasons
    assert report.summary() == "Imported 2 items (2 new, 0 updated); 6 items skipped."
    assert [i.title for i in await items_in(engine)] == ["Fine", "Absolute"]
    assert len(list(content_dir.iterdir())) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("items:\n  - title: [unclosed\n", "not valid YAML: "),
        ("", "the file is empty"),
        ("just some words\n", "expected a list of items"),
        ("items:\n  title: One\n", "`items:` must be a list"),
        ("item:\n  - title: One\n", "unknown top-level key 'item'"),
        ("{}\n", "expected `items:` and/or `products:` lists"),
    ],
)
def test_malformed_files_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ImportFileError) as info:
        read_import_file(file)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="no such file"):
        read_import_file(tmp_path / "missing.yaml")
    with pytest.raises(ImportFileError, match="folder"):
        read_import_file(tmp_path)
    (tmp_path / "latin1.yaml").write_bytes("- title: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ImportFileError, match="UTF-8"):
        read_import_file(tmp_path / "latin1.yaml")


def test_yaml_error_names_the_line(tmp_path: Path) -> None:
    file = write(tmp_path / "bad.yaml", "items:\n  - title: One\n    text: [\n")
    with pytest.raises(ImportFileError, match=r"line \d+, column \d+"):
        read_import_file(file)


def test_dates_stay_text_so_one_bad_date_does_not_sink_the_file(tmp_path: Path) -> None:
    file = write(tmp_path / "dates.yaml", "- publish_on: 2026-02-30\n- publish_on: 2026-03-01\n")
    assert read_import_file(file).items == [{"publish_on": "2026-02-30"}, {"publish_on": "2026-03-01"}]


# ------------------------------------------------------------------------------------------ the command itself

CLEAN_ENV = {
    k: v
    for k, v in os.environ.items()
    if k not in {"BOT_TOKEN", "DATABASE_URL", "REDIS_URL", "ADMIN_IDS", "CONTENT_DIR", "MEDIA_DIR"}
}


def run_bot(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "run_bot.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_run_bot_content_import(tmp_path: Path) -> None:
    env = {
        **CLEAN_ENV,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/db/x.db",
        "CONTENT_DIR": str(tmp_path / "content"),
    }
    ok = run_bot(tmp_path, env, "content", "import", str(EXAMPLE))
    assert (ok.returncode, ok.stderr) == (0, "")
    assert ok.stdout == "Imported 4 items (4 new, 0 updated), 2 products.\n"
    assert len(list((tmp_path / "content").iterdir())) == 1

    again = run_bot(tmp_path, env, "content", "import", str(EXAMPLE))
    assert again.returncode == 0
    assert again.stdout == "Imported 4 items (0 new, 0 updated, 4 unchanged), 2 products.\n"

    write(
        tmp_path / "some-bad.yaml",
        """\
        - {title: Good, text: Fine, url: "https://example.com"}
        - {title: Bad, text: Fine, url: "example.com"}
        """,
    )
    partly = run_bot(tmp_path, env, "content", "import", "some-bad.yaml")
    assert partly.returncode == 1 and partly.stderr == ""
    assert partly.stdout.splitlines() == [
        "item 2 (Bad): url: That is not a web link. Send a full address starting with http:// or https://.",
        "Imported 1 item (1 new, 0 updated); 1 item skipped.",
    ]

    (tmp_path / "broken.yaml").write_text("items: [\n")
    broken = run_bot(tmp_path, env, "content", "import", "broken.yaml")
    assert broken.returncode == 2 and broken.stdout == ""
    lines = broken.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Cannot import broken.yaml: not valid YAML")
    assert "Traceback" not in broken.stderr

    missing = run_bot(tmp_path, env, "content", "import", "nope.yaml")
    assert missing.returncode == 2 and missing.stderr.strip() == "Cannot import nope.yaml: no such file"

    usage = run_bot(tmp_path, env, "content", "export", "x.yaml")
    assert usage.returncode == 2 and "content import FILE.yaml" in usage.stderr

    bad_config = run_bot(tmp_path, {**env, "DATABASE_URL": "mysql://x"}, "content", "import", str(EXAMPLE))
    assert bad_config.returncode == 2 and bad_config.stderr.startswith("Configuration error: DATABASE_URL")
