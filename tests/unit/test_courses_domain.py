"""Tier 1: the shipped course validates; broken course files fail naming the file, the lesson and the field; the
quiz rules (which answer is right, when a lesson is passed, course progress) as tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.domain.courses import (
    Answer,
    Course,
    CourseError,
    answer,
    check_catalog,
    html_problem,
    parse_course,
    progress,
)
from bot.i18n import Translator
from bot.services.courses import COURSES_DIR, load_courses

SHIPPED = (COURSES_DIR / "basics.yaml").read_text(encoding="utf-8")


def test_shipped_course_is_valid() -> None:
    courses = load_courses()
    assert list(courses) == ["basics"]
    basics = courses["basics"]
    assert basics.title.en == "Basics: how to share, follow up and close"
    assert basics.title.zh
    assert [lesson.key for lesson in basics.lessons] == ["share", "posters", "followup", "close", "events"]
    for lesson in basics.lessons:
        assert lesson.text is not None
        assert lesson.text.zh and lesson.text.en
        assert 1 <= len(lesson.quiz) <= 3
        for question in lesson.quiz:
            assert 2 <= len(question.answers) <= 4
            assert question.explanation.zh and question.explanation.en


def test_shipped_texts_mention_the_commands_they_teach() -> None:
    basics = load_courses()["basics"]
    taught = {"share": "/today", "posters": "/poster", "followup": "/followup", "close": "/order", "events": "/coupon"}
    for lesson in basics.lessons:
        assert lesson.text is not None
        assert taught[lesson.key] in lesson.text.en
        assert taught[lesson.key] in lesson.text.zh


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "        correct: 2\n        explanation:\n          zh: 逾期",
            "        correct: 5\n        explanation:\n          zh: 逾期",
            "basics.yaml: lessons[2] (followup): quiz[1].correct: there is no answer 5 (3 answers)",
        ),
        (
            "        correct: 2\n        explanation:\n          zh: 逾期",
            '        correct: "2"\n        explanation:\n          zh: 逾期',
            "basics.yaml: lessons[2] (followup): quiz[1].correct: Input should be a valid integer",
        ),
        (
            "  - key: posters\n",
            "  - key: posters\n    colour: red\n",
            "basics.yaml: lessons[1] (posters): colour: unknown field",
        ),
        (
            "  - key: close\n",
            "  - key: share\n",
            "basics.yaml: lessons[3] (share): key: lesson key 'share' is used twice",
        ),
        (
            "<b>图片比文字更容易被转发。</b>",
            "<h1>图片比文字更容易被转发。</h1>",
            "basics.yaml: lessons[1] (posters): text.zh: tag '<h1>' is not allowed",
        ),
        (
            "<b>Pictures travel further than text.</b>",
            "<b>Pictures travel further than text.",
            "basics.yaml: lessons[1] (posters): text.en: <b> is not closed",
        ),
        (
            "          - {zh: 用 /followup 趁热跟进, en: Follow up with /followup while it is fresh}\n",
            "",
            "basics.yaml: lessons[4] (events): quiz[1].answers: Tuple should have at least 2 items",
        ),
        (
            "          - {zh: 最新添加的, en: The newest ones}\n",
            "          - {zh: 最新添加的}\n",
            "basics.yaml: lessons[2] (followup): quiz[1].answers[0].en: required, but missing",
        ),
        (
            "    quiz:\n      - question:\n          zh: 用 /order",
            "    quiz: []\n    old_quiz:\n      - question:\n          zh: 用 /order",
            "basics.yaml: lessons[3] (close): quiz: Tuple should have at least 1 item",
        ),
        (
            "  - key: events\n",
            "  - key: events_and_coupons_2026\n",
            "basics.yaml: lessons[4] (events_and_coupons_2026): key: String should have at most 16 characters",
        ),
    ],
    ids=[
        "correct-out-of-range",
        "strict-int",
        "unknown-field",
        "duplicate-lesson",
        "html-tag",
        "html-unclosed",
        "one-answer",
        "answer-language",
        "empty-quiz",
        "long-key",
    ],
)
def test_broken_course_names_file_lesson_and_field(old: str, new: str, expected: str) -> None:
    assert SHIPPED.count(old) == 1, old
    with pytest.raises(CourseError) as raised:
        parse_course(SHIPPED.replace(old, new), "basics.yaml")
    assert any(issue.startswith(expected) for issue in raised.value.issues), raised.value.issues


def test_a_lesson_may_use_a_locale_text_key_but_only_a_known_one() -> None:
    text = SHIPPED.replace(
        "    text:\n      zh: |-\n        <b>图片比文字",
        "    text_key: courses.take_quiz\n    old_text:\n      zh: |-\n        <b>图片",
    )
    with pytest.raises(CourseError) as raised:
        parse_course(text, "basics.yaml")
    assert "basics.yaml: lessons[1] (posters): text_key: unknown text key 'courses.take_quiz'" in "\n".join(
        raised.value.issues
    )
    assert "basics.yaml: lessons[1] (posters): old_text: unknown field" in raised.value.issues
    start = text.index("    old_text:")
    end = text.index("    quiz:", start)
    keys = frozenset(Translator.load("en").catalogs["en"])
    course = parse_course(text[:start] + text[end:], "basics.yaml", keys)
    assert course.lessons[1].text is None
    assert course.lessons[1].text_key == "courses.take_quiz"
    with pytest.raises(CourseError, match=r"lessons\[1\] \(posters\): text: a lesson has exactly one of"):
        parse_course(
            text[:start] + text[end:].replace("    quiz:", "    text: {zh: 文, en: t}\n    quiz:", 1), "b", keys
        )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a list", "x.yaml: a course file is a mapping"),
        ("key: [", "x.yaml: not valid YAML"),
        ("key: basics\ntitle: {zh: 基础, en: Basics}", "x.yaml: lessons: required, but missing"),
    ],
)
def test_not_a_course(text: str, expected: str) -> None:
    with pytest.raises(CourseError) as raised:
        parse_course(text, "x.yaml")
    assert raised.value.issues[0].startswith(expected)


def test_loader_reports_every_file_and_duplicate_keys(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(SHIPPED, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(SHIPPED, encoding="utf-8")
    with pytest.raises(CourseError) as raised:
        load_courses(tmp_path)
    assert raised.value.issues == ["b.yaml: key: 'basics' is used by another file"]
    (tmp_path / "b.yaml").write_text(SHIPPED.replace("correct: 2", "correct: 9"), encoding="utf-8")
    (tmp_path / "c.yaml").write_text("key: [", encoding="utf-8")
    with pytest.raises(CourseError) as raised:
        load_courses(tmp_path)
    assert raised.value.issues[0].startswith("b.yaml: lessons[2] (followup): quiz[1].correct: there is no answer 9")
    assert raised.value.issues[-1].startswith("c.yaml: not valid YAML")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("plain text", None),
        ("<b>bold</b> and <i>it</i> <code>/lead &lt;name&gt;</code> &amp; &#127881;", None),
        ("<b><i>nested</i></b>", None),
        ("a < b", "a bare < or > must be written &lt; or &gt;"),
        ("Tom & Jerry", "a bare & must be written &amp;"),
        ("<a href='x'>link</a>", "tag '</a>' is not allowed (only b, code, i, s, u; write &lt; for <)"),
        ("<a href='x'>link", "a bare < or > must be written &lt; or &gt;"),
        ("<script>", "tag '<script>' is not allowed (only b, code, i, s, u; write &lt; for <)"),
        ("<b>open", "<b> is not closed"),
        ("<b><i>crossed</b></i>", "'</b>' closes a tag that is not open"),
        ("</i>", "'</i>' closes a tag that is not open"),
    ],
)
def test_html_safety(text: str, problem: str | None) -> None:
    assert html_problem(text) == problem


# --- the quiz -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def basics() -> Course:
    return parse_course(SHIPPED, "basics.yaml")


@pytest.mark.parametrize(
    ("lesson", "question", "choice", "expected"),
    [
        ("share", 0, 0, Answer("next", 1)),  # right, another question follows
        ("share", 0, 1, Answer("wrong")),
        ("share", 0, 2, Answer("wrong")),
        ("share", 1, 0, Answer("passed")),  # the last question, right
        ("share", 1, 2, Answer("wrong")),
        ("posters", 0, 0, Answer("passed")),  # a one-question quiz
        ("posters", 0, 1, Answer("wrong")),
        ("followup", 1, 1, Answer("passed")),  # correct: 2 is the second answer (choice 1)
        ("followup", 1, 0, Answer("wrong")),
        ("close", 0, 1, Answer("passed")),
        ("events", 1, 1, Answer("passed")),
        ("events", 1, 0, Answer("wrong")),
    ],
)
def test_answers(basics: Course, lesson: str, question: int, choice: int, expected: Answer) -> None:
    found = basics.lesson(lesson)
    assert found is not None
    assert answer(found, question, choice) == expected


@pytest.mark.parametrize(("question", "choice"), [(2, 0), (-1, 0), (0, 3), (0, -1), (1, 9)])
def test_answers_the_lesson_does_not_have(basics: Course, question: int, choice: int) -> None:
    found = basics.lesson("share")
    assert found is not None
    with pytest.raises(IndexError):
        answer(found, question, choice)


@pytest.mark.parametrize(
    ("passed", "done", "next_lesson", "completed", "open_lessons"),
    [
        (set(), 0, "share", False, {"share"}),
        ({"share"}, 1, "posters", False, {"share", "posters"}),
        ({"share", "posters"}, 2, "followup", False, {"share", "posters", "followup"}),
        ({"posters"}, 1, "share", False, {"share"}),  # out of order (a course edited since): earlier ones first
        (
            {"share", "posters", "followup", "close"},
            4,
            "events",
            False,
            {"share", "posters", "followup", "close", "events"},
        ),
        (
            {"share", "posters", "followup", "close", "events"},
            5,
            None,
            True,
            {"share", "posters", "followup", "close", "events"},
        ),
        ({"share", "gone_lesson"}, 1, "posters", False, {"share", "posters"}),  # unknown keys are ignored
    ],
)
def test_course_progress(
    basics: Course, passed: set[str], done: int, next_lesson: str | None, completed: bool, open_lessons: set[str]
) -> None:
    p = progress(basics, passed)
    assert (p.done, p.total, p.completed) == (done, 5, completed)
    assert (p.next_lesson.key if p.next_lesson else None) == next_lesson
    assert {lesson.key for lesson in basics.lessons if p.is_open(lesson.key)} == open_lessons
    assert not p.is_open("nope")


def test_passing_the_last_lesson_completes_the_course(basics: Course) -> None:
    p = progress(basics, {"share", "posters", "followup", "close"})
    assert not p.completed
    after = p.with_passed("events")
    assert after.completed and after.done == 5
    assert after.with_passed("events") == after  # passing again changes nothing


def test_catalogue_refuses_a_key_twice(basics: Course) -> None:
    assert list(check_catalog([("a.yaml", basics)])) == ["basics"]
    with pytest.raises(CourseError, match=r"^b.yaml: key: 'basics' is used by another file$"):
        check_catalog([("a.yaml", basics), ("b.yaml", basics)])
