"""Tier 1: every text exists in both languages, with the same placeholders; handlers hold no literals."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bot.i18n import SUPPORTED, Raw, Translator, placeholders
from bot.sandbox.html_markup import EntityParseError, parse_html

HANDLERS = Path(__file__).resolve().parents[2] / "handlers"
SEND_METHODS = {
    "answer",
    "reply",
    "send_message",
    "edit_text",
    "edit_message_text",
    "send_photo",
    "answer_callback_query",
}


@pytest.fixture(scope="module")
def translator() -> Translator:
    return Translator.load("zh")


def test_same_keys_in_every_language(translator: Translator) -> None:
    zh, en = (set(translator.catalogs[lang]) for lang in SUPPORTED)
    assert zh - en == set(), f"missing in en: {sorted(zh - en)}"
    assert en - zh == set(), f"missing in zh: {sorted(en - zh)}"


def test_same_placeholders_in_every_language(translator: Translator) -> None:
    for key, template in translator.catalogs["en"].items():
        assert placeholders(template) == placeholders(translator.catalogs["zh"][key]), key


def test_missing_key_fails_loudly(translator: Translator) -> None:
    with pytest.raises(KeyError):
        translator.texts("en")("no.such.key")


@pytest.mark.parametrize(
    ("chosen", "telegram", "expected"),
    [
        ("en", "zh-hans", "en"),
        (None, "zh-hans", "zh"),
        (None, "en-US", "en"),
        (None, "ru", "zh"),
        (None, None, "zh"),
        ("xx", "en", "en"),
    ],
)
def test_language_resolution(translator: Translator, chosen: str | None, telegram: str | None, expected: str) -> None:
    assert translator.resolve_language(chosen, telegram) == expected


def test_parameters_are_html_escaped_unless_raw(translator: Translator) -> None:
    t = translator.texts("en")
    assert "&lt;b&gt;" in t("me.title", name="<b>")
    assert "<i>x</i>" in t("me.title", name=Raw("<i>x</i>"))


def test_handlers_send_no_literal_strings() -> None:
    offenders = []
    for path in HANDLERS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SEND_METHODS:
                args = [*node.args, *(kw.value for kw in node.keywords if kw.arg in ("text", "caption"))]
                if any(
                    isinstance(a, ast.Constant | ast.JoinedStr) and isinstance(getattr(a, "value", ""), str)
                    for a in args
                ):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_every_text_is_valid_telegram_html(translator: Translator) -> None:
    """Texts are sent with parse_mode=HTML: a stray '<' makes Telegram reject the whole message."""
    for lang in SUPPORTED:
        for key, template in translator.catalogs[lang].items():
            sample = template.format(**dict.fromkeys(placeholders(template), "x"))
            try:
                parse_html(sample)
            except EntityParseError as exc:
                pytest.fail(f"{lang}:{key} is not valid Telegram HTML: {exc}")
