"""Bulk content import, the pure part: each item and product of an import file, as YAML gives it, checked
field by field into a spec ready to store, or into every reason it can't be stored.

Reasons are `Problem`s carrying a text key and its parameters (the same keys the /content form uses where
the rule is the same), so whoever reports them picks the language. Reading the file, the pictures and the
database is the service's job (bot/services/content_import.py).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Generic, TypeVar

from bot.domain.content import (
    EVERYONE_WORDS,
    LEVELS,
    NONE_WORDS,
    SEGMENTS,
    Audience,
    Schedule,
    parse_audience,
    parse_schedule,
    parse_tags,
    tokens,
    validate_share_text,
    validate_title,
    validate_url,
)
from bot.domain.errors import UsageError

ITEM_FIELDS = ("key", "title", "text", "url", "image", "tags", "publish_on", "weekdays", "levels", "segments")
PRODUCT_FIELDS = ("sku", "name", "url", "category", "active")
KEY_LIMIT = 64
"""An item's key and a product's SKU fit their columns (64 characters)."""
PRODUCT_NAME_LIMIT = 200
CATEGORY_LIMIT = 64
TAG_COUNT_LIMIT = 20
"""As many tags as the /content form keeps."""
LABEL_LIMIT = 40
"""Reports name an entry by its title (or key, SKU) cut to this length."""

SpecT = TypeVar("SpecT")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Problem:
    """Why one field of an entry can't be imported; `field` is empty when the entry as a whole is wrong."""

    field: str
    key: str
    params: Mapping[str, object] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ItemSpec:
    """A content item as the file describes it, every field valid."""

    title: str
    text: str
    url: str
    key: str | None = None
    image: str | None = None
    """The picture's path as written in the file; the service resolves, checks and copies it."""
    tags: tuple[str, ...] = ()
    audience: Audience = field(default_factory=Audience)
    schedule: Schedule = field(default_factory=Schedule)


@dataclass(frozen=True, slots=True)
class ProductSpec:
    sku: str
    name: str
    url: str
    category: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class Checked(Generic[SpecT]):
    """One entry of the file: its spec when valid, else the problems found (all of them, field by field)."""

    number: int
    """1-based position in the file's list, as the admin counts."""
    label: str | None
    spec: SpecT | None
    problems: tuple[Problem, ...] = ()


# ---------------------------------------------------------------------------------------------- field parsers
# Each takes the value as YAML gave it and returns the stored form, or raises UsageError(key, **params).


def plain_text(value: object) -> str:
    """Text as YAML gives it; a bare number (title: 2026) is text too, true/false is not."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise UsageError("content.import.not_text")


def _words(value: object) -> list[str]:
    """A list of words or one comma/space-separated string, as tokens."""
    if isinstance(value, list | tuple):
        return [word for element in value for word in tokens(plain_text(element))]
    return tokens(plain_text(value))


def bounded_text(value: object, limit: int) -> str:
    text = " ".join(plain_text(value).split())
    if not text:
        raise UsageError("content.import.required")
    if len(text) > limit:
        raise UsageError("content.import.too_long", length=len(text), limit=limit)
    return text


def parse_key(value: object) -> str | None:
    """The file's own id for an item; blank means none."""
    text = plain_text(value).strip()
    if not text:
        return None
    if len(text) > KEY_LIMIT:
        raise UsageError("content.import.too_long", length=len(text), limit=KEY_LIMIT)
    return text


def parse_image(value: object) -> str | None:
    path = plain_text(value).strip()
    return path or None


def parse_tag_list(value: object) -> tuple[str, ...]:
    """[spring, sale] or 'spring, sale #new'; as text, '-' means none. In a list every word is a tag, even
    one that spells "none" in text (`[evergreen]` is the tag evergreen), hence the '#' added to each."""
    if not isinstance(value, list | tuple):
        return tuple(parse_tags(plain_text(value)))
    tags = [tag for element in value for tag in parse_tags(f"#{plain_text(element)}")]
    return tuple(dict.fromkeys(tags))[:TAG_COUNT_LIMIT]


def parse_dates(value: object) -> tuple[date, ...]:
    """One date or a list of them: 2026-12-01, '2026-12-01, 2026-12-05', [2026-12-01, 2026-12-05]."""
    elements = value if isinstance(value, list | tuple) else [value]
    days: set[date] = set()
    for element in elements:
        if isinstance(element, datetime):
            days.add(element.date())
            continue
        if isinstance(element, date):
            days.add(element)
            continue
        for word in tokens(plain_text(element)):
            if word.lower() in NONE_WORDS:
                continue
            try:
                parsed = parse_schedule(word)
            except UsageError:
                parsed = Schedule()
            if not parsed.dates:  # weekdays belong under weekdays:, and anything else is not a date
                raise UsageError("content.error.date", value=word)
            days.update(parsed.dates)
    return tuple(sorted(days))


def parse_weekdays(value: object) -> tuple[int, ...]:
    """[mon, wed], [1, 3], 'weekdays', 周一 周三, daily…; 1 = Monday."""
    days: set[int] = set()
    for word in _words(value):
        try:
            parsed = parse_schedule(word)
        except UsageError:
            parsed = None
        if parsed is None or parsed.dates:
            raise UsageError("content.import.weekday", value=word)
        days.update(parsed.weekdays)
    return tuple(sorted(days))


def parse_levels(value: object) -> tuple[str, ...]:
    """member / silver / gold (or 会员, 白银, 黄金…); 'all' or nothing means every level."""
    levels: list[str] = []
    for word in _words(value):
        if word.lower() in EVERYONE_WORDS:
            return ()
        try:
            audience = parse_audience(word)
        except UsageError:
            audience = Audience()
        if not audience.levels:
            raise UsageError("content.import.level", value=word, levels=", ".join(LEVELS))
        levels += [level for level in audience.levels if level not in levels]
    return tuple(levels)


def parse_segments(value: object) -> tuple[str, ...]:
    """high / mid / low (or 高活跃…); 'all' or nothing means every segment."""
    segments: list[str] = []
    for word in _words(value):
        if word.lower() in EVERYONE_WORDS:
            return ()
        try:
            audience = parse_audience(word)
        except UsageError:
            audience = Audience()
        if not audience.segments:
            raise UsageError("content.import.segment", value=word, segments=", ".join(SEGMENTS))
        segments += [segment for segment in audience.segments if segment not in segments]
    return tuple(segments)


def parse_active(value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise UsageError("content.import.not_bool")


# ------------------------------------------------------------------------------------------------- entries


def _unknown_fields(raw: Mapping[object, object], known: Sequence[str]) -> list[Problem]:
    """Typos are errors, not silently ignored: `titel:` would otherwise import an item without its title."""
    problems = []
    for name in raw:
        if str(name) in known:
            continue
        near = difflib.get_close_matches(str(name).lower(), known, n=1, cutoff=0.6)
        if near:
            problems.append(Problem(str(name), "content.import.unknown_field_near", {"suggestion": near[0]}))
        else:
            problems.append(Problem(str(name), "content.import.unknown_field", {"fields": ", ".join(known)}))
    return problems


class Fields:
    """Runs one parser per field of a raw entry, collecting every problem rather than stopping at the first."""

    def __init__(self, raw: Mapping[object, object], known: Sequence[str]) -> None:
        self.raw = raw
        self.problems = _unknown_fields(raw, known)

    def read(self, name: str, parse: Callable[[object], T], *, required: bool = False) -> T | None:
        value = self.raw.get(name)
        if value is None:  # absent, or `name:` with nothing after it
            if required:
                self.problems.append(Problem(name, "content.import.required"))
            return None
        try:
            return parse(value)
        except UsageError as exc:
            self.problems.append(Problem(name, exc.key, exc.params))
            return None


def _label(raw: object, *names: str) -> str | None:
    if not isinstance(raw, Mapping):
        return None
    for name in names:
        value = raw.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            text = " ".join(str(value).split())
            return text if len(text) <= LABEL_LIMIT else text[: LABEL_LIMIT - 1] + "…"
    return None


def check_item(raw: object) -> tuple[ItemSpec | None, list[Problem]]:
    """One item of the file: its spec, or every problem with it. With a picture the share text is a
    caption, so its limit is lower than a message's."""
    if not isinstance(raw, Mapping):
        return None, [Problem("", "content.import.not_entry")]
    has_media = raw.get("image") not in (None, "")
    fields = Fields(raw, ITEM_FIELDS)
    key = fields.read("key", parse_key)
    title = fields.read("title", lambda v: validate_title(plain_text(v)), required=True)
    text = fields.read("text", lambda v: validate_share_text(plain_text(v), has_media=has_media), required=True)
    url = fields.read("url", lambda v: validate_url(plain_text(v)), required=True)
    image = fields.read("image", parse_image)
    tags = fields.read("tags", parse_tag_list)
    dates = fields.read("publish_on", parse_dates)
    weekdays = fields.read("weekdays", parse_weekdays)
    levels = fields.read("levels", parse_levels)
    segments = fields.read("segments", parse_segments)
    if fields.problems or title is None or text is None or url is None:
        return None, fields.problems
    spec = ItemSpec(
        title=title,
        text=text,
        url=url,
        key=key,
        image=image,
        tags=tags or (),
        audience=Audience(levels or (), segments or ()),
        schedule=Schedule(dates or (), weekdays or ()),
    )
    return spec, []


def check_product(raw: object) -> tuple[ProductSpec | None, list[Problem]]:
    """One product: sku, name and url required; category optional; active unless `active: false`."""
    if not isinstance(raw, Mapping):
        return None, [Problem("", "content.import.not_product")]
    fields = Fields(raw, PRODUCT_FIELDS)
    sku = fields.read("sku", lambda v: bounded_text(v, KEY_LIMIT), required=True)
    name = fields.read("name", lambda v: bounded_text(v, PRODUCT_NAME_LIMIT), required=True)
    url = fields.read("url", lambda v: validate_url(plain_text(v)), required=True)
    category = fields.read("category", lambda v: bounded_text(v, CATEGORY_LIMIT) if plain_text(v).strip() else None)
    active = fields.read("active", parse_active)
    if fields.problems or sku is None or name is None or url is None:
        return None, fields.problems
    return ProductSpec(sku=sku, name=name, url=url, category=category, active=active is not False), []


def check_items(raws: Sequence[object]) -> list[Checked[ItemSpec]]:
    """Every item of the file; a key used twice in one file is a problem of the later item."""
    return check_all(raws, check_item, "key", "content.import.duplicate_key", ("title", "key"))


def check_products(raws: Sequence[object]) -> list[Checked[ProductSpec]]:
    """Every product of the file; a SKU listed twice is a problem of the later product."""
    return check_all(raws, check_product, "sku", "content.import.duplicate_sku", ("name", "sku"))


def check_all(
    raws: Sequence[object],
    check: Callable[[object], tuple[SpecT | None, list[Problem]]],
    identity: str,
    duplicate_key: str,
    label_fields: tuple[str, ...],
) -> list[Checked[SpecT]]:
    seen: dict[str, int] = {}
    checked: list[Checked[SpecT]] = []
    for number, raw in enumerate(raws, start=1):
        spec, problems = check(raw)
        ident = _identity(raw, identity)
        if ident is not None:
            if ident in seen:
                problems.append(Problem(identity, duplicate_key, {"value": ident, "other": seen[ident]}))
                spec = None
            else:
                seen[ident] = number
        checked.append(Checked(number, _label(raw, *label_fields), spec, tuple(problems)))
    return checked


def _identity(raw: object, name: str) -> str | None:
    if not isinstance(raw, Mapping) or raw.get(name) is None:
        return None
    try:
        return parse_key(raw[name])
    except UsageError:
        return None
