"""Locale texts, looked up by key. Every key exists in every language (a test checks it)."""

from __future__ import annotations

import html
import string
from collections.abc import Mapping
from pathlib import Path

import yaml

LOCALES_DIR = Path(__file__).parent / "locales"
SUPPORTED = ("zh", "en")


class Raw(str):
    """A parameter that is already safe HTML and must not be escaped again."""

    __slots__ = ()


def _flatten(tree: Mapping[str, object], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in tree.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{full}."))
        else:
            flat[full] = str(value)
    return flat


def placeholders(template: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)


class Translator:
    """All languages' texts, loaded once by the app factory."""

    def __init__(self, catalogs: Mapping[str, Mapping[str, str]], default_language: str) -> None:
        self.catalogs = {lang: dict(cat) for lang, cat in catalogs.items()}
        self.default_language = default_language

    @classmethod
    def load(cls, default_language: str, directory: Path = LOCALES_DIR) -> Translator:
        """Each language is `<lang>.yaml` plus any `<lang>.<area>.yaml` beside it (one file per feature area)."""
        catalogs: dict[str, dict[str, str]] = {}
        for lang in SUPPORTED:
            merged: dict[str, str] = {}
            for path in [directory / f"{lang}.yaml", *sorted(directory.glob(f"{lang}.*.yaml"))]:
                with path.open(encoding="utf-8") as fh:
                    flat = _flatten(yaml.safe_load(fh) or {})
                clash = sorted(merged.keys() & flat.keys())
                if clash:
                    raise ValueError(f"{path.name}: text keys defined twice: {', '.join(clash[:5])}")
                merged.update(flat)
            catalogs[lang] = merged
        return cls(catalogs, default_language)

    def resolve_language(self, chosen: str | None, telegram_code: str | None) -> str:
        """The user's own choice, else Telegram's language_code, else the configured default."""
        if chosen in self.catalogs:
            return chosen
        if telegram_code:
            base = telegram_code.lower().split("-")[0]
            if base in self.catalogs:
                return base
        return self.default_language

    def texts(self, language: str) -> Texts:
        return Texts(self, language if language in self.catalogs else self.default_language)


class Texts:
    """Texts in one language: `t("me.title", name=...)`. Parameters are HTML-escaped."""

    __slots__ = ("_catalog", "_fallback", "language")

    def __init__(self, translator: Translator, language: str) -> None:
        self.language = language
        self._catalog = translator.catalogs[language]
        self._fallback = translator.catalogs[translator.default_language]

    def __call__(self, key: str, /, **params: object) -> str:
        template = self._catalog.get(key) or self._fallback.get(key)
        if template is None:
            raise KeyError(f"missing text key {key!r}")
        if not params:
            return template
        safe = {k: v if isinstance(v, Raw) else html.escape(str(v), quote=False) for k, v in params.items()}
        return template.format(**safe)

    def has(self, key: str) -> bool:
        return key in self._catalog
