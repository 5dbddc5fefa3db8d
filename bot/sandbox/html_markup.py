"""Telegram's HTML ``parse_mode``: turn marked-up text into plain text plus message entities.

Telegram parses HTML server side, answers with the plain text and a list of
``MessageEntity`` objects (offsets and lengths in UTF-16 code units), and rejects
malformed markup with ``Bad Request: can't parse entities: ...``.  This module
reproduces that behaviour closely enough that a bot which sends broken HTML fails
in the sandbox the way it would fail in production.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["EntityParseError", "parse_html", "strip_html", "utf16_len"]

_ENTITY_TYPES: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_NUMERIC_ENTITY = re.compile(r"&#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}));")
_NAMED_ENTITY = re.compile(r"&([a-zA-Z]{2,4});")
_NAME_TOKEN = re.compile(r"[A-Za-z0-9.\-]*")
_TAG = re.compile(r"<[^<>]*>")


class EntityParseError(ValueError):
    """Malformed HTML markup; ``str(error)`` is Telegram's description after the prefix."""


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit of Telegram entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _decode_entity(source: str, pos: int) -> tuple[str, int] | None:
    """Decode the HTML character reference at ``pos``; ``None`` when there is none."""
    numeric = _NUMERIC_ENTITY.match(source, pos)
    if numeric is not None:
        code = int(numeric.group(1), 16) if numeric.group(1) else int(numeric.group(2))
        if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
            return chr(code), numeric.end() - pos
        return None
    named = _NAMED_ENTITY.match(source, pos)
    if named is not None and named.group(1).lower() in _NAMED_ENTITIES:
        return _NAMED_ENTITIES[named.group(1).lower()], named.end() - pos
    return None


@dataclass
class _OpenTag:
    name: str
    attributes: dict[str, str]
    offset: int
    order: int


class _HtmlParser:
    """Single-pass parser modelled on TDLib's ``parse_html``."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.pos = 0
        self.out: list[str] = []
        self.offset = 0
        self.stack: list[_OpenTag] = []
        self.entities: list[tuple[int, dict[str, Any]]] = []
        self.opened = 0

    def byte_offset(self, pos: int) -> int:
        return len(self.source[:pos].encode("utf-8"))

    def emit(self, text: str) -> None:
        self.out.append(text)
        self.offset += utf16_len(text)

    def run(self) -> tuple[str, list[dict[str, Any]]]:
        source = self.source
        while self.pos < len(source):
            char = source[self.pos]
            if char == "&":
                decoded = _decode_entity(source, self.pos)
                if decoded is not None:
                    self.emit(decoded[0])
                    self.pos += decoded[1]
                    continue
            if char != "<":
                self.emit(char)
                self.pos += 1
                continue
            if self.pos + 1 < len(source) and source[self.pos + 1] == "/":
                self.end_tag()
            else:
                self.start_tag()
        if self.stack:
            raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{self.stack[-1].name}"')
        self.entities.sort(key=lambda item: (item[1]["offset"], -item[1]["length"], item[0]))
        return "".join(self.out), [entity for _, entity in self.entities]

    def start_tag(self) -> None:
        source = self.source
        begin = self.pos
        pos = begin + 1
        while pos < len(source) and not source[pos].isspace() and source[pos] not in "<>/":
            pos += 1
        name = source[begin + 1 : pos].lower()
        if name not in _ENTITY_TYPES:
            raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {self.byte_offset(begin)}')
        attributes, pos = self.attributes(name, begin, pos)
        self.pos = pos
        if name == "span" and attributes.get("class") != "tg-spoiler":
            raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {self.byte_offset(begin)}')
        self.stack.append(_OpenTag(name, attributes, self.offset, self.opened))
        self.opened += 1

    def attributes(self, name: str, begin: int, pos: int) -> tuple[dict[str, str], int]:
        """Parse ``key=value`` pairs up to and including the closing ``>``."""
        source = self.source
        attributes: dict[str, str] = {}
        while True:
            while pos < len(source) and source[pos].isspace():
                pos += 1
            if pos < len(source) and source[pos] == "/" and source[pos + 1 : pos + 2] == ">":
                pos += 1
            if pos >= len(source):
                raise EntityParseError(f"Unclosed start tag at byte offset {self.byte_offset(begin)}")
            if source[pos] == ">":
                return attributes, pos + 1
            key_start = pos
            while pos < len(source) and not source[pos].isspace() and source[pos] not in "=>":
                pos += 1
            key = source[key_start:pos].lower()
            if not key:
                raise EntityParseError(
                    f'Empty attribute name in the tag "{name}" at byte offset {self.byte_offset(begin)}'
                )
            while pos < len(source) and source[pos].isspace():
                pos += 1
            if pos >= len(source) or source[pos] != "=":
                attributes[key] = ""
                continue
            pos += 1
            while pos < len(source) and source[pos].isspace():
                pos += 1
            if pos >= len(source):
                raise EntityParseError(f"Unclosed start tag at byte offset {self.byte_offset(begin)}")
            value, pos = self.attribute_value(pos)
            attributes[key] = value

    def attribute_value(self, pos: int) -> tuple[str, int]:
        source = self.source
        quote = source[pos]
        if quote not in "'\"":
            token = _NAME_TOKEN.match(source, pos)
            end = token.end() if token is not None else pos
            if end < len(source) and not source[end].isspace() and source[end] != ">":
                raise EntityParseError(f"Unexpected end of name token at byte offset {self.byte_offset(end)}")
            return source[pos:end].lower(), end
        pos += 1
        value: list[str] = []
        while pos < len(source) and source[pos] != quote:
            if source[pos] == "&":
                decoded = _decode_entity(source, pos)
                if decoded is not None:
                    value.append(decoded[0])
                    pos += decoded[1]
                    continue
            value.append(source[pos])
            pos += 1
        return "".join(value), min(pos + 1, len(source))

    def end_tag(self) -> None:
        source = self.source
        begin = self.pos
        close = source.find(">", begin)
        if close == -1:
            raise EntityParseError(f"Unclosed end tag at byte offset {self.byte_offset(begin)}")
        name = source[begin + 2 : close].strip().lower()
        if not self.stack:
            raise EntityParseError(f"Unexpected end tag at byte offset {self.byte_offset(begin)}")
        tag = self.stack.pop()
        if name and name != tag.name:
            raise EntityParseError(
                f"Unmatched end tag at byte offset {self.byte_offset(begin)}, "
                f'expected "</{tag.name}>", found "</{name}>"'
            )
        self.pos = close + 1
        self.close_entity(tag)

    def close_entity(self, tag: _OpenTag) -> None:
        length = self.offset - tag.offset
        if length <= 0:
            return
        entity: dict[str, Any] = {"type": _ENTITY_TYPES[tag.name], "offset": tag.offset, "length": length}
        if tag.name == "a":
            href = tag.attributes.get("href", "")
            if not href:
                return
            entity["url"] = href
        elif tag.name == "tg-emoji":
            entity["custom_emoji_id"] = tag.attributes.get("emoji-id", "")
        elif tag.name == "blockquote" and "expandable" in tag.attributes:
            entity["type"] = "expandable_blockquote"
        elif tag.name == "code":
            language = tag.attributes.get("class", "")
            parent = self.stack[-1] if self.stack else None
            if language.startswith("language-") and parent is not None and parent.name == "pre":
                parent.attributes["language"] = language.removeprefix("language-")
                if parent.offset == tag.offset:
                    return
        elif tag.name == "pre" and tag.attributes.get("language"):
            entity["language"] = tag.attributes["language"]
        self.entities.append((tag.order, entity))


def parse_html(source: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram-flavoured HTML into ``(plain_text, entities)``.

    Raises ``EntityParseError`` with Telegram's wording for unsupported or
    unbalanced tags.
    """
    return _HtmlParser(source).run()


def strip_html(source: str) -> str:
    """Best-effort plain text of HTML markup for display; never raises."""
    try:
        return parse_html(source)[0]
    except EntityParseError:
        text = _TAG.sub("", source)
        for name, char in (("lt", "<"), ("gt", ">"), ("quot", '"'), ("amp", "&")):
            text = text.replace(f"&{name};", char)
        return text
