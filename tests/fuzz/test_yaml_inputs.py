"""Fuzz: every YAML input the project reads: the commission plan (`load_plan`), the points rules, playbooks and
rhythms, courses, poster templates, the content import file and the products file. Fed random text, random data
dumped to YAML, the shipped files with a part replaced by random data, and alias bombs ("billion laughs",
self-referencing anchors).

Invariant: each either loads or raises its own documented error listing the problems (PlanError,
PointsError, PlaybookError, CourseError, TemplateError, ImportFileError; the entries of an import file are
checked into per-entry problems), never another exception, within a few seconds. The content import, run
against the database, writes nothing when it imports nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from bot.clock import ManualClock
from bot.domain.content_import import check_items, check_products
from bot.domain.courses import CourseError, parse_course
from bot.domain.deals import check_product_entry
from bot.domain.points import PointsError, parse_points
from bot.domain.rules import PlanError, load_plan
from bot.i18n import Translator
from bot.media.posters import TEMPLATE_DIR, TemplateError, load_template_file
from bot.services.content_import import ImportFileError, import_content_file, read_import_file
from bot.services.deals import read_products_file
from playbooks.loader import locale_text_keys
from playbooks.schema import PlaybookError, Vocabulary, parse_playbook_file
from tests.fuzz.dbstate import changed, row_counts
from tests.fuzz.strategies import JSON_VALUE, NASTY_TOKENS, explains, fuzz_settings
from tests.support.harness import BotHarness

ROOT = Path(__file__).resolve().parents[2]
VOCABULARY = Vocabulary(locale_text_keys())
TEXTS = Translator.load("en").texts("en")


def _plan(text: str) -> object:
    return load_plan(text, "fuzz.yaml")


def _points(text: str) -> object:
    return parse_points(text, "fuzz.yaml")


def _playbook(text: str) -> object:
    return parse_playbook_file(text, "fuzz.yaml", VOCABULARY)


def _course(text: str) -> object:
    return parse_course(text, "fuzz.yaml", VOCABULARY.text_keys)


LOADERS: list[tuple[str, Callable[[str], object], type[Exception], Path]] = [
    ("plan", _plan, PlanError, ROOT / "bot" / "plans" / "default.yaml"),
    ("points", _points, PointsError, ROOT / "bot" / "plans" / "points.yaml"),
    ("playbook", _playbook, PlaybookError, ROOT / "playbooks" / "onboarding_7day.yaml"),
    ("rhythm", _playbook, PlaybookError, ROOT / "playbooks" / "tiered_ops.yaml"),
    ("course", _course, CourseError, ROOT / "bot" / "courses" / "basics.yaml"),
]

BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)]
    + ["kind: playbook", "key: *i", "steps: *i", "levels: *i", "lessons: *i", "rules: *i"]
)
ENTRY_BOMB = (
    "- sku: S1\n  title: t\n  text: 'hi {link}'\n  url: https://shop.example.com/x\n  "
    + "\n  ".join(line.replace(": &", "x: &", 1) for line in BILLION_LAUGHS.splitlines()[:9])
    + "\n  tags: *i\n  levels: *i\n  level_prices: *i\n"
)
"""One import entry whose fields are a billion-laughs list (checked field by field, never expanded)."""
SELF_REFERENCE = "&a [*a]\n"
SELF_MAPPING = "&a {kind: playbook, key: x, steps: [*a], levels: *a, lessons: [*a], rules: [*a]}\n"
DEEP = "[" * 2000 + "]" * 2000
HOSTILE_YAML = st.sampled_from(
    [
        BILLION_LAUGHS,
        ENTRY_BOMB,
        SELF_REFERENCE,
        SELF_MAPPING,
        DEEP,
        "",
        "~",
        "- - - -",
        "!!python/object/apply:os.system ['true']",
        "a: !!binary AAAA",
        "a: 2026-02-30",
        "a: .nan\nb: -.inf",
        "? [a, b]\n: c",
        "\ufeffkey: value",
        "\x00",
        "key: 'unterminated",
        "{a: 1, a: 2}",
        "\t- x",
    ]
)


def yaml_dump(value: Any) -> str:
    return yaml.safe_dump(value, allow_unicode=True)


@st.composite
def mutated_file(draw: st.DrawFn, path: Path) -> str:
    """A shipped file with one to three values somewhere inside replaced by random data (or removed)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for _ in range(draw(st.integers(1, 3))):
        node: Any = data
        while True:
            keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            child = node[key]
            if not isinstance(child, (dict, list)) or not child or draw(st.integers(0, 3)) == 0:
                if draw(st.booleans()):
                    node[key] = draw(st.one_of(JSON_VALUE, st.sampled_from(NASTY_TOKENS)))
                elif isinstance(node, dict):
                    del node[key]
                else:
                    node.pop(key)
                break
            node = child
    return yaml_dump(data)


def yaml_inputs(path: Path) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=200),
        JSON_VALUE.map(yaml_dump),
        mutated_file(path),
        mutated_file(path),
        HOSTILE_YAML,
    )


FUZZ = fuzz_settings(40)


def _load_within(load: Callable[[str], object], error: type[Exception], text: str) -> None:
    started = time.monotonic()
    try:
        load(text)
    except error as exc:
        explains(exc)
    assert time.monotonic() - started < 5, "took too long"


@pytest.mark.parametrize(("load", "error", "path"), [pytest.param(*row[1:], id=row[0]) for row in LOADERS])
def test_each_shipped_file_loads(load: Callable[[str], object], error: type[Exception], path: Path) -> None:
    load(path.read_text(encoding="utf-8"))  # the mutations below start from valid files


@pytest.mark.parametrize(("load", "error", "path"), [pytest.param(*row[1:], id=row[0]) for row in LOADERS])
@FUZZ
@given(data=st.data())
@example(data=None)
def test_loaders_load_or_list_problems(
    load: Callable[[str], object], error: type[Exception], path: Path, data: st.DataObject | None
) -> None:
    # None: a control character, which PyYAML's reader refuses before parsing (load_plan once let it escape)
    _load_within(load, error, "\x08" if data is None else data.draw(yaml_inputs(path)))


@pytest.mark.parametrize(("load", "error"), [pytest.param(row[1], row[2], id=row[0]) for row in LOADERS])
@pytest.mark.parametrize(
    "text",
    [BILLION_LAUGHS, ENTRY_BOMB, SELF_REFERENCE, SELF_MAPPING, DEEP, "key: 2026-02-30\n", "key: x\x08\n"],
    ids=["laughs", "entry", "self", "selfmap", "deep", "impossible-date", "control-char"],
)
def test_known_hostile_yaml(load: Callable[[str], object], error: type[Exception], text: str) -> None:
    """Alias bombs, deep nesting, and what once escaped as another exception (ValueError, ReaderError)."""
    _load_within(load, error, text)


@FUZZ
@given(data=st.data())
def test_poster_templates_load_or_list_problems(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    path = tmp_path_factory.mktemp("templates") / "fuzzed.yaml"
    path.write_text(data.draw(yaml_inputs(TEMPLATE_DIR / "classic.yaml")), encoding="utf-8")
    _load_within(lambda _: load_template_file(path), TemplateError, "")


@FUZZ
@given(data=st.data())
def test_products_yaml_reads_and_checks_entry_by_entry(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    path = tmp_path_factory.mktemp("products") / "products.yaml"
    path.write_text(data.draw(yaml_inputs(ROOT / "examples" / "products.yaml")), encoding="utf-8")
    started = time.monotonic()
    try:
        source = read_products_file(path)
    except ImportFileError as exc:
        explains(exc)
    else:
        for entry in source.entries:
            spec, problems = check_product_entry(entry, levels=("bronze", "silver", "gold"), default_currency="CNY")
            assert (spec is None) == bool(problems)
            for problem in problems:
                assert TEXTS(problem.key, **{k: str(v) for k, v in problem.params.items()})
    assert time.monotonic() - started < 5


@fuzz_settings(30)
@given(text=yaml_inputs(ROOT / "examples" / "content.yaml"))
@example(text=ENTRY_BOMB)
@example(text=DEEP)  # once a RecursionError out of read_import_file
async def test_content_import_file_imports_or_reports_and_writes_nothing_when_nothing_is_valid(
    harness: BotHarness, tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    folder = tmp_path_factory.mktemp("import")
    path = folder / "content.yaml"
    path.write_text(text, encoding="utf-8")
    before = await row_counts(harness.sessionmaker)
    started = time.monotonic()
    try:
        source = read_import_file(path)
    except ImportFileError as exc:
        explains(exc)
        report = None
    else:
        check_items(source.items), check_products(source.products)  # the pure checks never raise on an entry
        report = await import_content_file(
            path,
            sessionmaker=harness.sessionmaker,
            content_dir=folder / "content",
            clock=ManualClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC)),
            texts=TEXTS,
        )
        assert report.summary()
        assert len(report.issues) >= bool(report.skipped_items or report.skipped_products)
    assert time.monotonic() - started < 10
    if report is None or (report.imported == 0 and report.products == 0):
        assert not changed(before, await row_counts(harness.sessionmaker))


@pytest.mark.parametrize("read", [read_import_file, read_products_file], ids=["content", "products"])
@pytest.mark.parametrize(
    "text", [DEEP, ENTRY_BOMB, "- sku: 2026-02-30\n", "x\x08"], ids=["deep", "bomb", "date", "ctl"]
)
def test_import_files_read_hostile_yaml_or_say_why(read: Callable[[Path], object], text: str, tmp_path: Path) -> None:
    path = tmp_path / "import.yaml"
    path.write_text(text, encoding="utf-8")
    started = time.monotonic()
    try:
        read(path)
    except ImportFileError as exc:
        explains(exc)
    assert time.monotonic() - started < 5
