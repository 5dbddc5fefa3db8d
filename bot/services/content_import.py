"""Bulk content import (`run_bot.py content import FILE.yaml`): an admin's YAML file of content items, and
optionally products, stored in one transaction.

Every valid entry is imported; every invalid one is reported with its position and reason and skipped.
An item with a `key:` that is already in the database is updated in place (its revision bumped when
anything changed) rather than added again, so importing the same file twice is safe. Pictures are checked
in a worker thread and copied into CONTENT_DIR under a name derived from their bytes, so the file's folder
may go away afterwards and importing the same picture again stores nothing new.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.domain.content import MAX_MEDIA_BYTES
from bot.domain.content_import import (
    Checked,
    ItemSpec,
    Problem,
    ProductSpec,
    check_items,
    check_products,
)
from bot.domain.errors import UsageError
from bot.domain.events import EventSource, EventType
from bot.i18n import Raw, Texts
from storage.models import ContentItem, Product
from storage.uow import UnitOfWork

PICTURE_FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
"""Pillow's format name → the suffix a stored copy gets."""
PHOTO_SIDES_LIMIT = 10_000
"""Telegram's sendPhoto: width + height at most 10000…"""
PHOTO_RATIO_LIMIT = 20
"""…and one side at most 20 times the other."""
TOP_LEVEL_KEYS = ("items", "products")


class ImportFileError(Exception):
    """The file as a whole can't be imported (missing, unreadable, not YAML, not a list of items)."""


class _TextDates(yaml.SafeLoader):
    """YAML without implicit timestamps: `publish_on: 2026-02-30` stays text and becomes that item's problem,
    instead of PyYAML failing the whole file."""


_TextDates.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True, slots=True)
class ImportFile:
    """A parsed import file: its entries as YAML gave them, not yet checked."""

    path: Path
    items: Sequence[object]
    products: Sequence[object] = ()
    has_products: bool = False
    """The file has a `products:` list (even an empty one), so the summary mentions products."""

    @property
    def folder(self) -> Path:
        """Relative picture paths are read from here."""
        return self.path.parent


def read_text_file(path: Path, encoding: str = "utf-8") -> str:
    """The file's text; ImportFileError saying plainly why it can't be read. Blocking IO."""
    try:
        return path.read_text(encoding=encoding)
    except FileNotFoundError:
        raise ImportFileError("no such file") from None
    except IsADirectoryError:
        raise ImportFileError("that is a folder, not a file") from None
    except UnicodeDecodeError:
        raise ImportFileError("the file is not UTF-8 text") from None
    except OSError as exc:
        raise ImportFileError(f"can't read it ({exc.strerror or exc})") from None


def read_import_file(path: Path) -> ImportFile:
    """Parse the file: a list of items, or a mapping with `items:` and/or `products:` lists. Blocking IO."""
    source = read_text_file(path)
    try:
        data = yaml.load(source, Loader=_TextDates)  # noqa: S506 - a SafeLoader without timestamps
    except yaml.YAMLError as exc:
        raise ImportFileError(f"not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:  # PyYAML's parser recurses once per level of nesting
        raise ImportFileError("not valid YAML: nested too deeply") from None
    if data is None:
        raise ImportFileError("the file is empty; it needs a list of items (see the README's Content import)")
    if isinstance(data, list):
        return ImportFile(path, data)
    if not isinstance(data, dict):
        raise ImportFileError("expected a list of items, or `items:` and `products:` lists")
    unknown = [str(key) for key in data if key not in TOP_LEVEL_KEYS]
    if unknown:
        raise ImportFileError(f"unknown top-level key {unknown[0]!r}; use items: and products:")
    if not data:
        raise ImportFileError("expected `items:` and/or `products:` lists")
    lists: dict[str, list[object]] = {}
    for name in TOP_LEVEL_KEYS:
        value = data.get(name)
        if value is not None and not isinstance(value, list):
            raise ImportFileError(f"`{name}:` must be a list, each entry starting with '- '")
        lists[name] = value or []
    return ImportFile(path, lists["items"], lists["products"], has_products="products" in data)


async def load_import_file(path: Path) -> ImportFile:
    return await asyncio.to_thread(read_import_file, path)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem or exc.context or 'syntax error'} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())


# ------------------------------------------------------------------------------------------------- pictures


@dataclass(frozen=True, slots=True)
class StoredPicture:
    path: Path
    """Where the copy is, as CONTENT_DIR/<name> (stored in content_items.media_path)."""


def take_picture(written: str, folder: Path, content_dir: Path) -> StoredPicture:
    """Check a picture (exists, at most 10 MB, a JPEG/PNG/WebP Pillow can open, a shape Telegram sends as a
    photo) and copy it into `content_dir` under a name derived from its bytes. Blocking: run in a thread.
    `written` is the path as the file gives it: relative to the file's `folder`, or absolute (`~` works).
    Raises UsageError with the reason."""
    source = folder / Path(written).expanduser()  # an absolute path replaces the folder
    if not source.is_file():
        raise UsageError("content.import.image_missing", path=str(source))
    size = source.stat().st_size
    if size > MAX_MEDIA_BYTES:
        raise UsageError("content.error.too_big", size_mb=f"{size / (1024 * 1024):.1f}")
    data = source.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind, (width, height) = image.format, image.size
            image.verify()
    except Exception:  # Pillow raises many kinds (UnidentifiedImageError, OSError, SyntaxError, bombs…)
        raise UsageError("content.error.image_unreadable") from None
    suffix = PICTURE_FORMATS.get(kind or "")
    if suffix is None:
        raise UsageError("content.error.image_unreadable")
    if width + height > PHOTO_SIDES_LIMIT or max(width, height) > PHOTO_RATIO_LIMIT * min(width, height):
        raise UsageError("content.import.image_size", width=width, height=height)
    target = content_dir / f"{hashlib.sha256(data).hexdigest()[:32]}{suffix}"
    if not target.is_file():
        content_dir.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.part")
        partial.write_bytes(data)
        partial.replace(target)  # atomic: no reader ever sees half a picture
    return StoredPicture(target)


# --------------------------------------------------------------------------------------------------- report


@dataclass(frozen=True, slots=True)
class ImportIssue:
    """One skipped entry's problem, printed as `item 3 (Spring sale): url: That is not a web link…`."""

    entry: str
    """item | product"""
    number: int
    label: str | None
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.entry} {self.number}" + (f" ({self.label})" if self.label else "")
        return f"{where}: {self.field}: {self.reason}" if self.field else f"{where}: {self.reason}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


@dataclass(slots=True)
class ImportReport:
    issues: list[ImportIssue] = field(default_factory=list)
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    """Items whose key was known and whose every field was already as in the file."""
    products: int = 0
    skipped_items: int = 0
    skipped_products: int = 0
    has_products: bool = False
    content_ids: list[int] = field(default_factory=list)
    """Ids of the imported items, in the file's order."""

    @property
    def imported(self) -> int:
        return self.new + self.updated + self.unchanged

    @property
    def exit_code(self) -> int:
        """0 when everything was imported, 1 when some entries were skipped."""
        return 1 if self.skipped_items or self.skipped_products else 0

    def summary(self) -> str:
        """`Imported 5 items (2 new, 3 updated), 1 product; 1 item skipped.`"""
        text = f"Imported {_count(self.imported, 'item')}"
        if self.imported:
            parts = [f"{self.new} new", f"{self.updated} updated"]
            parts += [f"{self.unchanged} unchanged"] if self.unchanged else []
            text += f" ({', '.join(parts)})"
        if self.has_products:
            text += f", {_count(self.products, 'product')}"
        skipped = [_count(self.skipped_items, "item")] if self.skipped_items else []
        skipped += [_count(self.skipped_products, "product")] if self.skipped_products else []
        if skipped:
            text += f"; {' and '.join(skipped)} skipped"
        return text + "."

    def lines(self) -> list[str]:
        """What the command prints: one line per problem, then the summary."""
        return [*map(str, self.issues), self.summary()]


# ------------------------------------------------------------------------------------------------- use case


class ImportContent:
    """Import a parsed file in the caller's unit of work (one transaction: commit once, when it returns)."""

    def __init__(self, uow: UnitOfWork, *, content_dir: Path, clock: Clock, texts: Texts) -> None:
        self._uow = uow
        self._content_dir = content_dir
        self._clock = clock
        self._t = texts

    async def __call__(self, source: ImportFile) -> ImportReport:
        report = ImportReport(has_products=source.has_products)
        items = await self._with_pictures(source, check_items(source.items), report)
        products = self._valid(check_products(source.products), "product", report)
        report.skipped_products = len(source.products) - len(products)
        report.skipped_items = len(source.items) - len(items)
        now = self._clock.now()
        for spec, picture in items:
            await self._store_item(spec, picture, now, report)
        for product in products:
            await self._store_product(product, now)
        report.products = len(products)
        await self._uow.flush()
        return report

    def _reason(self, problem: Problem) -> str:
        return self._t(problem.key, **{name: Raw(str(value)) for name, value in problem.params.items()})

    def _issue(self, entry: str, checked: Checked[Any], problem: Problem) -> ImportIssue:
        return ImportIssue(entry, checked.number, checked.label, problem.field, self._reason(problem))

    def _valid(self, checked: list[Checked[Any]], entry: str, report: ImportReport) -> list[Any]:
        valid = []
        for one in checked:
            report.issues += [self._issue(entry, one, problem) for problem in one.problems]
            if one.spec is not None:
                valid.append(one.spec)
        return valid

    async def _with_pictures(
        self, source: ImportFile, checked: list[Checked[ItemSpec]], report: ImportReport
    ) -> list[tuple[ItemSpec, StoredPicture | None]]:
        """The valid items with their pictures copied in; an item whose picture is unusable is skipped.
        Pictures of items that are invalid anyway are not looked at, let alone copied."""
        ready: list[tuple[ItemSpec, StoredPicture | None]] = []
        for one in checked:
            report.issues += [self._issue("item", one, problem) for problem in one.problems]
            spec = one.spec
            if spec is None:
                continue
            picture = None
            if spec.image is not None:
                try:
                    picture = await asyncio.to_thread(take_picture, spec.image, source.folder, self._content_dir)
                except UsageError as exc:
                    report.issues.append(self._issue("item", one, Problem("image", exc.key, exc.params)))
                    continue
            ready.append((spec, picture))
        return ready

    async def _store_item(
        self, spec: ItemSpec, picture: StoredPicture | None, now: datetime, report: ImportReport
    ) -> None:
        uow = self._uow
        publish_on, weekdays = spec.schedule.stored()
        columns: dict[str, Any] = {
            "title": spec.title,
            "text": spec.text,
            "url": spec.url,
            "tags": list(spec.tags),
            "levels": list(spec.audience.levels),
            "segments": list(spec.audience.segments),
            "publish_on": publish_on,
            "weekdays": weekdays,
            "media_kind": "photo" if picture else None,
            "media_path": str(picture.path) if picture else None,
        }
        existing = await uow.content.by_external_key(spec.key) if spec.key else None
        if existing is None:
            item = uow.content.add(
                ContentItem(
                    external_key=spec.key,
                    **columns,
                    media_file_id=None,
                    status="active",
                    revision=1,
                    created_by=None,
                    created_at=now,
                    updated_at=now,
                )
            )
            await uow.flush()
            uow.events.add(
                partner_id=None,
                type=EventType.CONTENT_ADDED,
                occurred_at=now,
                source=EventSource.ADMIN,
                payload={"content_id": item.id, "via": "import"},
            )
            report.new += 1
            report.content_ids.append(item.id)
            return
        changed = {name: value for name, value in columns.items() if getattr(existing, name) != value}
        if changed:
            for name, value in changed.items():
                setattr(existing, name, value)
            if "media_path" in changed or "media_kind" in changed:
                existing.media_file_id = None  # Telegram's copy is of the old picture
            existing.revision += 1  # posters and uploads of the old revision are not reused
            existing.updated_at = now
            report.updated += 1
        else:
            report.unchanged += 1
        report.content_ids.append(existing.id)

    async def _store_product(self, spec: ProductSpec, now: datetime) -> None:
        columns: Mapping[str, Any] = {"name": spec.name, "url": spec.url, "category": spec.category}
        existing = await self._uow.products.by_sku(spec.sku)
        if existing is None:
            self._uow.products.add(Product(sku=spec.sku, **columns, active=spec.active, created_at=now, updated_at=now))
            return
        values = {**columns, "active": spec.active}
        changed = {name: value for name, value in values.items() if getattr(existing, name) != value}
        for name, value in changed.items():
            setattr(existing, name, value)
        if changed:
            existing.updated_at = now


async def import_content_file(
    path: Path,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    content_dir: Path,
    clock: Clock,
    texts: Texts,
) -> ImportReport:
    """Read `path` and import it in one transaction. Raises ImportFileError when the file can't be read."""
    source = await load_import_file(path)
    async with UnitOfWork(sessionmaker) as uow:
        return await ImportContent(uow, content_dir=content_dir, clock=clock, texts=texts)(source)
