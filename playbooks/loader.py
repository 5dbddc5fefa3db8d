"""Reading the shipped playbook files and the locale keys they may use (the only file IO of `playbooks`).

The app calls `load_all()` at start-up; a `PlaybookError` there stops it with every problem listed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.i18n import LOCALES_DIR, Translator
from playbooks.schema import Playbook, PlaybookError, Rhythm, Vocabulary, parse_playbook_file

PLAYBOOKS_DIR = Path(__file__).parent
MEDIA_DIR = PLAYBOOKS_DIR / "media"
"""Where a step's or touch's `media:` picture lives (the path in the YAML is relative to it)."""
MEDIA_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
MAX_MEDIA_BYTES = 10 * 1024 * 1024
"""Telegram's limit for a photo sent by a bot."""


@dataclass(frozen=True, slots=True)
class Catalog:
    playbooks: dict[str, Playbook]
    rhythms: dict[str, Rhythm]


def media_problems(media: dict[str, str], folder: Path = MEDIA_DIR) -> list[str]:
    """`media` maps where (e.g. `onboarding_7day:first_share`) to a step's media path: what is wrong with each
    file (missing, not a picture Telegram takes as a photo, over 10 MB); empty when all are fine."""
    problems = []
    for where, name in media.items():
        path = folder / name
        if path.suffix.lower() not in MEDIA_SUFFIXES:
            problems.append(f"{where}: media {name} must be a .jpg, .png or .webp picture")
        elif not path.is_file():
            problems.append(f"{where}: media {name} is not in {folder}")
        elif path.stat().st_size > MAX_MEDIA_BYTES:
            problems.append(f"{where}: media {name} is over 10 MB")
    return problems


def locale_text_keys(directory: Path = LOCALES_DIR) -> frozenset[str]:
    """Text keys present in every language's locale files."""
    catalogs = Translator.load("zh", directory).catalogs
    return frozenset.intersection(*(frozenset(catalog) for catalog in catalogs.values()))


def load_all(directory: Path = PLAYBOOKS_DIR, *, vocabulary: Vocabulary) -> Catalog:
    """Every `*.yaml` of `directory`, validated; all files' problems are reported together."""
    playbooks: dict[str, Playbook] = {}
    rhythms: dict[str, Rhythm] = {}
    issues: list[str] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            loaded = parse_playbook_file(path.read_text(encoding="utf-8"), path.name, vocabulary)
        except PlaybookError as exc:
            issues += exc.issues
            continue
        into: dict[str, Playbook] | dict[str, Rhythm]
        into = playbooks if isinstance(loaded, Playbook) else rhythms
        if loaded.key in playbooks or loaded.key in rhythms:
            issues.append(f"{path.name}: key: {loaded.key!r} is used by another file")
            continue
        into[loaded.key] = loaded  # type: ignore[assignment]
    if issues:
        raise PlaybookError(issues)
    return Catalog(playbooks, rhythms)
