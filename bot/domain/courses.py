"""Courses (/learn): the course file format and the quiz rules, pure.

A course is a YAML file of `bot/courses/` (reading files is `bot.services.courses`' job): a key, zh/en titles
and lessons. A lesson has zh/en text (Telegram HTML: only <b>, <i>, <u>, <s> and <code>, balanced; a literal
``<`` is written ``&lt;``) or a locale text key, and a quiz of 1–3 questions. A question has zh/en wording, 2–4
answers (zh/en, plain text: they go on buttons), `correct` (the number of the right answer, 1 = the first) and a
zh/en explanation shown after a wrong answer. Every model is strict and forbids unknown keys.

Errors are `CourseError`, one line per problem naming the file, the lesson and the field, e.g.
``basics.yaml: lessons[1] (posters): quiz[0].correct: there is no answer 5 (2 answers)``.

Quiz rules, for the record:
- Questions are asked in order; a wrong answer shows the question's explanation and the same question again.
- A lesson is passed when its last question is answered right (the earlier ones were, to get there).
- Lessons open in order: a lesson can be read and taken once every earlier lesson is passed; passed lessons
  stay open for review. A course is completed when every one of its lessons is passed.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Annotated, Literal, Self

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from bot.domain.model_files import FieldError, as_tuples, describe_errors, load_yaml

KEY_MAX = 16
"""Course and lesson keys ride in buttons' callback data (64 bytes in all), so they are short."""
ANSWER_MAX = 64
"""Answers are button labels."""
ALLOWED_TAGS = frozenset({"b", "i", "u", "s", "code"})

_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)>")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#\d{1,6});")


class CourseError(ValueError):
    """A course file that does not validate; each line names the file, the lesson and the field."""

    def __init__(self, issues: Iterable[str]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(self.issues))


def html_problem(text: str) -> str | None:
    """Why `text` is not safe Telegram HTML for a lesson, or None when it is."""
    stack: list[str] = []
    for match in _TAG.finditer(text):
        closing, name = match.group(1) == "/", match.group(2)
        if name not in ALLOWED_TAGS:
            return f"tag {match.group(0)!r} is not allowed (only {', '.join(sorted(ALLOWED_TAGS))}; write &lt; for <)"
        if not closing:
            stack.append(name)
        elif not stack or stack.pop() != name:
            return f"{match.group(0)!r} closes a tag that is not open"
    if stack:
        return f"<{stack[-1]}> is not closed"
    bare = _TAG.sub("", text)
    if "<" in bare or ">" in bare:
        return "a bare < or > must be written &lt; or &gt;"
    if "&" in _ENTITY.sub("", bare):
        return "a bare & must be written &amp;"
    return None


def _html(value: str) -> str:
    problem = html_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _known_text_key(value: str, info: ValidationInfo) -> str:
    known = info.context if isinstance(info.context, frozenset) else frozenset()
    if value not in known:
        raise ValueError(f"unknown text key {value!r} (not in the locale files)")
    return value


Key = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=KEY_MAX)]
Html = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=3000), AfterValidator(_html)]
Label = Annotated[str, StringConstraints(pattern=r"^[^\n<>&]+$", max_length=ANSWER_MAX)]
TextKey = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.]+$"), AfterValidator(_known_text_key)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Text(_Model):
    """HTML-safe text in both languages."""

    zh: Html
    en: Html

    def get(self, language: str) -> str:
        return self.zh if language == "zh" else self.en


class Title(_Model):
    """Plain text in both languages, short enough for a button."""

    zh: Label
    en: Label

    def get(self, language: str) -> str:
        return self.zh if language == "zh" else self.en


class Question(_Model):
    question: Text
    answers: tuple[Title, ...] = Field(min_length=2, max_length=4)
    correct: int = Field(ge=1)
    """The number of the right answer: 1 is the first."""
    explanation: Text
    """Shown after a wrong answer."""

    @model_validator(mode="after")
    def _correct_is_an_answer(self) -> Self:
        if self.correct > len(self.answers):
            raise FieldError(("correct",), f"there is no answer {self.correct} ({len(self.answers)} answers)")
        return self

    def is_right(self, choice: int) -> bool:
        """`choice` counts from 0, as the buttons do."""
        return choice == self.correct - 1


class Lesson(_Model):
    key: Key
    title: Title
    text: Text | None = None
    text_key: TextKey | None = None
    """A locale text key instead of `text` (for a long lesson kept with the other texts)."""
    quiz: tuple[Question, ...] = Field(min_length=1, max_length=3)

    @model_validator(mode="after")
    def _one_text(self) -> Self:
        if (self.text is None) == (self.text_key is None):
            raise FieldError(("text",), "a lesson has exactly one of text or text_key")
        return self


class Course(_Model):
    key: Key
    title: Title
    lessons: tuple[Lesson, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_lessons(self) -> Self:
        seen: set[str] = set()
        for index, lesson in enumerate(self.lessons):
            if lesson.key in seen:
                raise FieldError(("lessons", index, "key"), f"lesson key {lesson.key!r} is used twice")
            seen.add(lesson.key)
        return self

    def lesson(self, key: str) -> Lesson | None:
        return next((lesson for lesson in self.lessons if lesson.key == key), None)


# --- parsing ---------------------------------------------------------------------------------------------------


def parse_course(text: str, source: str, text_keys: Collection[str] = frozenset()) -> Course:
    """Validate one course file's YAML text (`source` is its name, for messages; `text_keys` are the locale keys
    a lesson's `text_key` may name)."""
    try:
        data = load_yaml(text)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:  # a date like 2026-02-30; too deep nesting
        raise CourseError([f"{source}: not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise CourseError([f"{source}: a course file is a mapping (key, title, lessons)"])
    try:
        return Course.model_validate(as_tuples(data), context=frozenset(text_keys))
    except ValidationError as exc:
        raise CourseError(describe_errors(exc, source, data, ("lessons",))) from None


def check_catalog(courses: Iterable[tuple[str, Course]]) -> dict[str, Course]:
    """Courses by key, in the given order, from (source, course) pairs; a key used twice is an error."""
    catalog: dict[str, Course] = {}
    issues: list[str] = []
    for source, course in courses:
        if course.key in catalog:
            issues.append(f"{source}: key: {course.key!r} is used by another file")
        else:
            catalog[course.key] = course
    if issues:
        raise CourseError(issues)
    return catalog


# --- progress and the quiz -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CourseProgress:
    course: Course
    passed: frozenset[str]
    """Keys of the course's lessons the partner passed (keys of lessons no longer in the course are left out)."""

    @property
    def done(self) -> int:
        return len(self.passed)

    @property
    def total(self) -> int:
        return len(self.course.lessons)

    @property
    def completed(self) -> bool:
        return self.done == self.total

    @property
    def next_lesson(self) -> Lesson | None:
        """The first lesson not passed yet; None once the course is completed."""
        return next((lesson for lesson in self.course.lessons if lesson.key not in self.passed), None)

    def is_open(self, lesson_key: str) -> bool:
        """A lesson of the course whose earlier lessons are all passed (passed lessons stay open)."""
        for lesson in self.course.lessons:
            if lesson.key == lesson_key:
                return True
            if lesson.key not in self.passed:
                return False
        return False

    def with_passed(self, lesson_key: str) -> CourseProgress:
        return progress(self.course, self.passed | {lesson_key})


def progress(course: Course, passed: Collection[str]) -> CourseProgress:
    keys = {lesson.key for lesson in course.lessons}
    return CourseProgress(course, frozenset(passed) & keys)


Outcome = Literal["wrong", "next", "passed"]


@dataclass(frozen=True, slots=True)
class Answer:
    outcome: Outcome
    """wrong: show the explanation and ask again · next: ask `next_question` · passed: the lesson is passed."""
    next_question: int | None = None


def answer(lesson: Lesson, question: int, choice: int) -> Answer:
    """The outcome of answering `lesson`'s question number `question` (from 0) with answer `choice` (from 0).

    Raises IndexError for a question or answer the lesson does not have (a stale or forged button)."""
    if not 0 <= question < len(lesson.quiz):
        raise IndexError(f"lesson {lesson.key!r} has no question {question}")
    asked = lesson.quiz[question]
    if not 0 <= choice < len(asked.answers):
        raise IndexError(f"question {question} of {lesson.key!r} has no answer {choice}")
    if not asked.is_right(choice):
        return Answer("wrong")
    if question + 1 < len(lesson.quiz):
        return Answer("next", question + 1)
    return Answer("passed")
