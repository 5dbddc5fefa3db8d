"""Tier 1: checking the items and products of a content import file, field by field (bot.domain.content_import)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from bot.domain.content import CAPTION_LIMIT, LINK_ALLOWANCE, MESSAGE_LIMIT, Audience, Schedule
from bot.domain.content_import import (
    ItemSpec,
    Problem,
    ProductSpec,
    check_item,
    check_items,
    check_product,
    check_products,
)
from bot.i18n import Raw, Translator

GOOD: dict[str, Any] = {"title": "Spring sale", "text": "20% off: {link}", "url": "https://shop.example.com/spring"}


def item(**fields: Any) -> dict[str, Any]:
    """The good item with some fields replaced (None removes one)."""
    merged = {**GOOD, **fields}
    return {name: value for name, value in merged.items() if value is not None}


def problems_of(raw: object) -> list[tuple[str, str]]:
    spec, problems = check_item(raw)
    assert (spec is None) == bool(problems)
    return [(p.field, p.key) for p in problems]


def spec_of(raw: object) -> ItemSpec:
    spec, problems = check_item(raw)
    assert problems == [] and spec is not None
    return spec


def test_a_minimal_item_is_an_evergreen_item_for_everyone() -> None:
    assert spec_of(GOOD) == ItemSpec(title="Spring sale", text="20% off: {link}", url="https://shop.example.com/spring")
    assert spec_of(GOOD).schedule.evergreen and spec_of(GOOD).audience.everyone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(item(title=None), [("title", "content.import.required")], id="missing title"),
        pytest.param(item(title="   "), [("title", "content.error.title_empty")], id="blank title"),
        pytest.param(item(title="x" * 121), [("title", "content.error.title_long")], id="long title"),
        pytest.param(item(title=["a"]), [("title", "content.import.not_text")], id="title as a list"),
        pytest.param(item(text=None), [("text", "content.import.required")], id="missing text"),
        pytest.param(item(url=None), [("url", "content.import.required")], id="missing url"),
        pytest.param(item(url="ftp://shop.example.com/x"), [("url", "content.error.url")], id="ftp url"),
        pytest.param(item(url="shop.example.com"), [("url", "content.error.url")], id="url without scheme"),
        pytest.param(item(publish_on="2026-02-30"), [("publish_on", "content.error.date")], id="no such date"),
        pytest.param(item(publish_on=["2026-03-01", "soon"]), [("publish_on", "content.error.date")], id="not a date"),
        pytest.param(item(publish_on="mon"), [("publish_on", "content.error.date")], id="weekday as a date"),
        pytest.param(item(weekdays=["mon", "funday"]), [("weekdays", "content.import.weekday")], id="unknown weekday"),
        pytest.param(item(weekdays=[8]), [("weekdays", "content.import.weekday")], id="weekday 8"),
        pytest.param(item(weekdays="2026-03-01"), [("weekdays", "content.import.weekday")], id="date as a weekday"),
        pytest.param(item(levels=["gold", "platinum"]), [("levels", "content.import.level")], id="unknown level"),
        pytest.param(item(levels=["high"]), [("levels", "content.import.level")], id="segment as a level"),
        pytest.param(item(segments=["busy"]), [("segments", "content.import.segment")], id="unknown segment"),
        pytest.param(item(key="k" * 65), [("key", "content.import.too_long")], id="long key"),
        pytest.param(item(titel="Spring"), [("titel", "content.import.unknown_field_near")], id="typo field"),
        pytest.param(item(colour="red"), [("colour", "content.import.unknown_field")], id="unknown field"),
        pytest.param("just a title", [("", "content.import.not_entry")], id="not a mapping"),
        pytest.param(
            {"titel": "x", "url": "ftp://x", "levels": "vip"},
            [
                ("titel", "content.import.unknown_field_near"),
                ("title", "content.import.required"),
                ("text", "content.import.required"),
                ("url", "content.error.url"),
                ("levels", "content.import.level"),
            ],
            id="every problem at once",
        ),
    ],
)
def test_invalid_items_name_each_field_and_reason(raw: object, expected: list[tuple[str, str]]) -> None:
    assert problems_of(raw) == expected


def test_share_text_limit_is_lower_with_a_picture() -> None:
    caption_max = CAPTION_LIMIT - LINK_ALLOWANCE
    message_max = MESSAGE_LIMIT - LINK_ALLOWANCE
    assert spec_of(item(text="x" * caption_max, image="a.jpg")).image == "a.jpg"
    assert problems_of(item(text="x" * (caption_max + 1), image="a.jpg")) == [("text", "content.error.text_long")]
    assert spec_of(item(text="x" * (caption_max + 1))).text == "x" * (caption_max + 1)
    assert spec_of(item(text="x" * message_max)).image is None
    assert problems_of(item(text="x" * (message_max + 1))) == [("text", "content.error.text_long")]


def test_text_long_reason_carries_the_limit_and_length() -> None:
    _, problems = check_item(item(text="x" * 1000, image="a.jpg"))
    assert problems == [
        Problem("text", "content.error.text_long", {"limit": CAPTION_LIMIT - LINK_ALLOWANCE, "length": 1000})
    ]


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ("spring, sale #new", ("spring", "sale", "new")),
        (["spring", "sale", "spring"], ("spring", "sale")),
        (["evergreen", "#new"], ("evergreen", "new")),
        ("-", ()),
        ([], ()),
        ([2026], ("2026",)),
    ],
)
def test_tags_as_text_or_list(tags: object, expected: tuple[str, ...]) -> None:
    assert spec_of(item(tags=tags)).tags == expected


@pytest.mark.parametrize(
    ("publish_on", "weekdays", "expected"),
    [
        ("2026-03-20", None, Schedule((date(2026, 3, 20),))),
        (["2026-03-27", "2026-03-20"], None, Schedule((date(2026, 3, 20), date(2026, 3, 27)))),
        ("2026-03-20, 2026-03-27", None, Schedule((date(2026, 3, 20), date(2026, 3, 27)))),
        (date(2026, 3, 20), None, Schedule((date(2026, 3, 20),))),
        (None, ["mon", "wed"], Schedule((), (1, 3))),
        (None, [1, 3], Schedule((), (1, 3))),
        (None, "周一 周三", Schedule((), (1, 3))),
        (None, ["星期五"], Schedule((), (5,))),
        (None, "weekdays", Schedule((), (1, 2, 3, 4, 5))),
        (None, "daily", Schedule((), (1, 2, 3, 4, 5, 6, 7))),
        ("2026-04-01", ["fri"], Schedule((date(2026, 4, 1),), (5,))),
        ([], [], Schedule()),
    ],
)
def test_schedule_from_dates_and_weekdays(publish_on: object, weekdays: object, expected: Schedule) -> None:
    assert spec_of(item(publish_on=publish_on, weekdays=weekdays)).schedule == expected


@pytest.mark.parametrize(
    ("levels", "segments", "expected"),
    [
        (["member", "silver"], None, Audience(("member", "silver"))),
        ("gold", None, Audience(("gold",))),
        (["黄金", "GOLD"], None, Audience(("gold",))),
        ("all", None, Audience()),
        (None, ["high", "mid"], Audience((), ("high", "mid"))),
        (["gold"], "低活跃", Audience(("gold",), ("low",))),
    ],
)
def test_audience_from_levels_and_segments(levels: object, segments: object, expected: Audience) -> None:
    assert spec_of(item(levels=levels, segments=segments)).audience == expected


def test_a_full_item() -> None:
    spec = spec_of(
        {
            "key": " spring-2026 ",
            "title": "  Spring   sale ",
            "text": "20% off: {link}\n",
            "url": "https://shop.example.com/spring",
            "image": "media/spring.jpg",
            "tags": ["spring"],
            "publish_on": "2026-03-20",
            "levels": ["gold"],
        }
    )
    assert spec == ItemSpec(
        title="Spring sale",
        text="20% off: {link}",
        url="https://shop.example.com/spring",
        key="spring-2026",
        image="media/spring.jpg",
        tags=("spring",),
        audience=Audience(("gold",)),
        schedule=Schedule((date(2026, 3, 20),)),
    )


def test_blank_optional_fields_mean_absent() -> None:
    spec = spec_of(item(key="", image="  ", tags=None))
    assert spec.key is None and spec.image is None and spec.tags == ()


def test_a_key_used_twice_in_one_file_is_a_problem_of_the_later_item() -> None:
    checked = check_items([item(key="a"), item(key="b"), "oops", item(key="a", title="Again")])
    assert [c.number for c in checked] == [1, 2, 3, 4]
    assert [c.spec is not None for c in checked] == [True, True, False, False]
    assert checked[3].label == "Again"
    assert checked[3].problems == (Problem("key", "content.import.duplicate_key", {"value": "a", "other": 1}),)
    assert checked[2].label is None


def test_labels_name_the_item_by_title_else_key() -> None:
    checked = check_items([item(title=None, key="k1"), item(title="t" * 60)])
    assert checked[0].label == "k1"
    assert checked[1].label == "t" * 39 + "…"


def test_products() -> None:
    spec, problems = check_product({"sku": "TEA-1", "name": "Tea", "url": "https://x.example/tea"})
    assert problems == [] and spec == ProductSpec("TEA-1", "Tea", "https://x.example/tea")
    spec, _ = check_product({"sku": 42, "name": "Cup", "url": "https://x.example/c", "category": "", "active": False})
    assert spec == ProductSpec("42", "Cup", "https://x.example/c", None, active=False)
    _, problems = check_product({"name": "Cup", "url": "ftp://x", "active": "no", "price": 3})
    assert [(p.field, p.key) for p in problems] == [
        ("price", "content.import.unknown_field"),
        ("sku", "content.import.required"),
        ("url", "content.error.url"),
        ("active", "content.import.not_bool"),
    ]
    checked = check_products([{"sku": "A", "name": "a", "url": "https://x.example"}] * 2)
    assert checked[1].problems == (Problem("sku", "content.import.duplicate_sku", {"value": "A", "other": 1}),)


def test_every_reason_has_a_text_in_both_languages() -> None:
    """Each problem the checks can produce renders in English and Chinese with its parameters."""
    raws: list[object] = [
        item(title=None, url="ftp://x", publish_on="2026-02-30", weekdays="x", levels="x", segments="x"),
        item(titel="x", colour="y", key="k" * 65, title=["x"], text="x" * 5000),
        item(title="", text=""),
        "not a mapping",
        item(key="a"),
        item(key="a"),
    ]
    products: list[object] = [{"sku": "A", "name": "", "url": "https://x.example", "active": 1}, 7]
    problems = [p for c in check_items(raws) for p in c.problems]
    problems += [p for c in check_products([*products, {"sku": "A"}]) for p in c.problems]
    assert len({p.key for p in problems}) >= 15
    translator = Translator.load("en")
    for language in ("en", "zh"):
        t = translator.texts(language)
        for problem in problems:
            assert t.has(problem.key), problem.key
            t(problem.key, **{k: Raw(str(v)) for k, v in problem.params.items()})
