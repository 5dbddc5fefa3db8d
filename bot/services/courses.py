"""Courses (/learn): reading the shipped course files, and a partner's progress through lessons and quizzes.

Progress is behaviour events, not a table of its own: `lesson_passed` (course, lesson) once per partner and
lesson, and `course_completed` (course) once per partner and course, both recorded with a dedupe key, so passing
a lesson again changes nothing. The question being asked is the handler's (FSM data); it hands it in so a press
on an old question's button is refused instead of skipping questions.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bot.domain.courses import (
    Course,
    CourseError,
    CourseProgress,
    Lesson,
    Question,
    answer,
    check_catalog,
    parse_course,
    progress,
)
from bot.domain.errors import UserFacingError
from bot.domain.events import EventSource, EventType
from bot.i18n import LOCALES_DIR, Translator
from bot.services.context import ServiceContext
from storage.uow import UnitOfWork

COURSES_DIR = Path(__file__).resolve().parent.parent / "courses"


def load_courses(directory: Path = COURSES_DIR, text_keys: Collection[str] | None = None) -> dict[str, Course]:
    """Every `*.yaml` of `directory` (by file name), validated; all files' problems are reported together in one
    `CourseError`. `text_keys` default to the keys every language's locale files have."""
    if text_keys is None:
        catalogs = Translator.load("zh", LOCALES_DIR).catalogs
        text_keys = frozenset.intersection(*(frozenset(catalog) for catalog in catalogs.values()))
    parsed: list[tuple[str, Course]] = []
    issues: list[str] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            parsed.append((path.name, parse_course(path.read_text(encoding="utf-8"), path.name, text_keys)))
        except CourseError as exc:
            issues += exc.issues
    if issues:
        raise CourseError(issues)
    return check_catalog(parsed)


@functools.cache
def shipped_courses() -> Mapping[str, Course]:
    """The courses of bot/courses/, read once (the app calls this at start-up, so a bad file stops it)."""
    return load_courses()


class StaleCourseButton(UserFacingError):
    """A button for a course, lesson, question or answer that does not exist (any more)."""

    def __init__(self) -> None:
        super().__init__("courses.stale")


class LessonLocked(UserFacingError):
    def __init__(self) -> None:
        super().__init__("courses.locked")


class QuizMovedOn(UserFacingError):
    """An answer to a question other than the one being asked (an old message's button)."""

    def __init__(self) -> None:
        super().__init__("courses.quiz_expired")


@dataclass(frozen=True, slots=True)
class LessonView:
    progress: CourseProgress
    lesson: Lesson
    number: int
    """From 1."""


@dataclass(frozen=True, slots=True)
class QuestionView:
    course: Course
    lesson: Lesson
    index: int
    """From 0."""

    @property
    def question(self) -> Question:
        return self.lesson.quiz[self.index]


@dataclass(frozen=True, slots=True)
class AnswerResult:
    outcome: Literal["wrong", "next", "passed", "completed"]
    """completed: this answer passed the course's last open lesson, for the first time."""
    asked: QuestionView
    progress: CourseProgress

    @property
    def next_question(self) -> QuestionView:
        return QuestionView(self.asked.course, self.asked.lesson, self.asked.index + 1)


class CourseService:
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext, courses: Mapping[str, Course] | None = None) -> None:
        self._uow = uow
        self._ctx = ctx
        self._courses = courses

    @property
    def courses(self) -> Mapping[str, Course]:
        return self._courses if self._courses is not None else shipped_courses()

    async def _passed(self, partner_id: int) -> dict[str, set[str]]:
        passed: dict[str, set[str]] = {}
        for payload in await self._uow.events.payloads(partner_id=partner_id, type=EventType.LESSON_PASSED):
            course, lesson = payload.get("course"), payload.get("lesson")
            if isinstance(course, str) and isinstance(lesson, str):
                passed.setdefault(course, set()).add(lesson)
        return passed

    async def overview(self, partner_id: int) -> list[CourseProgress]:
        """Every course with the partner's progress, in catalogue order."""
        passed = await self._passed(partner_id)
        return [progress(course, passed.get(key, set())) for key, course in self.courses.items()]

    async def course(self, partner_id: int, course_key: str) -> CourseProgress:
        course = self.courses.get(course_key)
        if course is None:
            raise StaleCourseButton
        return progress(course, (await self._passed(partner_id)).get(course_key, set()))

    async def lesson(self, partner_id: int, course_key: str, lesson_key: str) -> LessonView:
        """A lesson to read: it must exist and be open (earlier lessons passed)."""
        state = await self.course(partner_id, course_key)
        lesson = state.course.lesson(lesson_key)
        if lesson is None:
            raise StaleCourseButton
        if not state.is_open(lesson_key):
            raise LessonLocked
        return LessonView(state, lesson, state.course.lessons.index(lesson) + 1)

    async def start_quiz(self, partner_id: int, course_key: str, lesson_key: str) -> QuestionView:
        view = await self.lesson(partner_id, course_key, lesson_key)
        return QuestionView(view.progress.course, view.lesson, 0)

    async def answer(
        self, partner_id: int, course_key: str, lesson_key: str, question: int, choice: int, *, asked: int | None
    ) -> AnswerResult:
        """Answer `question` (from 0) with `choice` (from 0). `asked` is the question the quiz is at for this
        lesson (None when no quiz of it is running); another question's button is refused, nothing written."""
        view = await self.lesson(partner_id, course_key, lesson_key)
        try:
            result = answer(view.lesson, question, choice)
        except IndexError:
            raise StaleCourseButton from None
        if asked != question:
            raise QuizMovedOn
        shown = QuestionView(view.progress.course, view.lesson, question)
        if result.outcome != "passed":
            return AnswerResult(result.outcome, shown, view.progress)
        now = self._ctx.clock.now()
        await self._uow.events.add_once(
            dedupe_key=f"lesson:{partner_id}:{course_key}:{lesson_key}",
            partner_id=partner_id,
            type=EventType.LESSON_PASSED,
            occurred_at=now,
            source=EventSource.BOT,
            payload={"course": course_key, "lesson": lesson_key},
        )
        after = view.progress.with_passed(lesson_key)
        if after.completed and await self._uow.events.add_once(
            dedupe_key=f"course:{partner_id}:{course_key}",
            partner_id=partner_id,
            type=EventType.COURSE_COMPLETED,
            occurred_at=now,
            source=EventSource.BOT,
            payload={"course": course_key},
        ):
            return AnswerResult("completed", shown, after)
        return AnswerResult("passed", shown, after)
