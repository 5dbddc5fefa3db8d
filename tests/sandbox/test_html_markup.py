"""Telegram's HTML parse mode as reproduced by the emulator."""

from __future__ import annotations

from typing import Any

import pytest

from bot.sandbox.html_markup import EntityParseError, parse_html, strip_html


@pytest.mark.parametrize(
    ("source", "text", "entities"),
    [
        ("plain", "plain", []),
        ("😀 <b>bold</b>", "😀 bold", [{"type": "bold", "offset": 3, "length": 4}]),
        (
            "<b><i>x</i></b>",
            "x",
            [{"type": "bold", "offset": 0, "length": 1}, {"type": "italic", "offset": 0, "length": 1}],
        ),
        ("a &lt;b&gt; &amp; &quot; &#65;&#x42; &nbsp;", 'a <b> & " AB &nbsp;', []),
        (
            '<a href="https://x.org/?a=1&amp;b=2">link</a>',
            "link",
            [{"type": "text_link", "offset": 0, "length": 4, "url": "https://x.org/?a=1&b=2"}],
        ),
        (
            '<pre><code class="language-python">x = 1</code></pre>',
            "x = 1",
            [{"type": "pre", "offset": 0, "length": 5, "language": "python"}],
        ),
        ('<span class="tg-spoiler">s</span>', "s", [{"type": "spoiler", "offset": 0, "length": 1}]),
        ("<blockquote expandable>q</blockquote>", "q", [{"type": "expandable_blockquote", "offset": 0, "length": 1}]),
        ("<B>up</B><b></b>", "up", [{"type": "bold", "offset": 0, "length": 2}]),
    ],
)
def test_parse_html(source: str, text: str, entities: list[dict[str, Any]]) -> None:
    assert parse_html(source) == (text, entities)


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ("x<br>y", 'Unsupported start tag "br" at byte offset 1'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("</b>", "Unexpected end tag at byte offset 0"),
        ("<b>open", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("<b", "Unclosed start tag at byte offset 0"),
    ],
)
def test_parse_html_rejects_what_telegram_rejects(source: str, error: str) -> None:
    with pytest.raises(EntityParseError) as raised:
        parse_html(source)
    assert str(raised.value) == error


def test_strip_html_never_raises() -> None:
    assert strip_html("<b>ok</b> &amp; fine") == "ok & fine"
    assert strip_html("1 < 2 <b>x</b>") == "1 < 2 x"
