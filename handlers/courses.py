"""/learn: courses with progress, a course's next lesson, and its quiz one question at a time.

The question being asked lives in FSM data (`course_quiz`: "<course>:<lesson>:<question>") only while the quiz
runs; what the partner passed is recorded by the service as events.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.callbacks import CourseCallback
from bot.domain.courses import CourseProgress
from bot.i18n import Raw, Texts
from bot.services.courses import AnswerResult, LessonView, QuestionView
from bot.services.registry import UseCases
from bot.services.views import PartnerView

QUIZ_KEY = "course_quiz"


def _button(text: str, action: str, course: str = "", lesson: str = "", q: int = 0, a: int = 0) -> InlineKeyboardButton:
    data = CourseCallback(action=action, course=course, lesson=lesson, q=q, a=a).pack()
    return InlineKeyboardButton(text=text, callback_data=data)


def _keyboard(*rows: list[InlineKeyboardButton]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=list(rows))


def render_list(courses: list[CourseProgress], t: Texts) -> tuple[str, InlineKeyboardMarkup | None]:
    if not courses:
        return t("courses.empty"), None
    lang = t.language
    lines = [t("courses.title"), ""]
    rows = []
    for p in courses:
        title = p.course.title.get(lang)
        mark = t("courses.mark_done" if p.completed else "courses.mark_todo")
        lines.append(t("courses.item", mark=mark, title=title, done=p.done, total=p.total))
        rows.append([_button(t("courses.button", title=title, done=p.done, total=p.total), "open", p.course.key)])
    return "\n".join(lines), _keyboard(*rows)


def render_lesson(view: LessonView, t: Texts) -> tuple[str, InlineKeyboardMarkup]:
    course, lesson = view.progress.course, view.lesson
    body = lesson.text.get(t.language) if lesson.text is not None else t(lesson.text_key or "")
    text = t(
        "courses.lesson",
        course=course.title.get(t.language),
        number=view.number,
        total=view.progress.total,
        title=lesson.title.get(t.language),
        text=Raw(body),
    )
    return text, _keyboard([_button(t("courses.take_quiz"), "quiz", course.key, lesson.key)])


def render_review(p: CourseProgress, t: Texts) -> tuple[str, InlineKeyboardMarkup]:
    text = t("courses.review", course=p.course.title.get(t.language), total=p.total)
    rows = [[_button(lesson.title.get(t.language), "read", p.course.key, lesson.key)] for lesson in p.course.lessons]
    return text, _keyboard(*rows, [_button(t("courses.all_courses"), "list")])


def render_question(view: QuestionView, t: Texts) -> tuple[str, InlineKeyboardMarkup]:
    lang, question = t.language, view.question
    text = t(
        "courses.question",
        title=view.lesson.title.get(lang),
        number=view.index + 1,
        count=len(view.lesson.quiz),
        question=Raw(question.question.get(lang)),
    )
    rows = [
        [_button(answer.get(lang), "ans", view.course.key, view.lesson.key, view.index, n)]
        for n, answer in enumerate(question.answers)
    ]
    return text, _keyboard(*rows)


def render_passed(result: AnswerResult, t: Texts) -> tuple[str, InlineKeyboardMarkup]:
    lang, p = t.language, result.progress
    course = p.course.title.get(lang)
    if result.outcome == "completed":
        text = t("courses.completed", course=course, total=p.total)
        return text, _keyboard([_button(t("courses.all_courses"), "list")])
    text = t("courses.passed", title=result.asked.lesson.title.get(lang), course=course, done=p.done, total=p.total)
    rows = [[_button(t("courses.next_lesson"), "open", p.course.key)]] if p.next_lesson is not None else []
    return text, _keyboard(*rows, [_button(t("courses.all_courses"), "list")])


def _position(course: str, lesson: str, question: int) -> str:
    return f"{course}:{lesson}:{question}"


async def _asked(state: FSMContext, course: str, lesson: str) -> int | None:
    """The question the running quiz of this lesson is at, or None."""
    position = str((await state.get_data()).get(QUIZ_KEY) or "")
    prefix, _, number = position.rpartition(":")
    return int(number) if prefix == f"{course}:{lesson}" and number.isdigit() else None


async def learn(message: Message, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    text, keyboard = render_list(await uc.courses.overview(partner.id), t)
    await message.answer(text, reply_markup=keyboard)


async def list_button(callback: CallbackQuery, bot: Bot, partner: PartnerView, uc: UseCases, t: Texts) -> None:
    text, keyboard = render_list(await uc.courses.overview(partner.id), t)
    await callback.answer()
    await bot.send_message(callback.from_user.id, text, reply_markup=keyboard)


async def open_course(
    callback: CallbackQuery, bot: Bot, callback_data: CourseCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    p = await uc.courses.course(partner.id, callback_data.course)
    lesson = p.next_lesson
    if lesson is None:
        text, keyboard = render_review(p, t)
    else:
        text, keyboard = render_lesson(await uc.courses.lesson(partner.id, p.course.key, lesson.key), t)
    await callback.answer()
    await bot.send_message(callback.from_user.id, text, reply_markup=keyboard)


async def read_lesson(
    callback: CallbackQuery, bot: Bot, callback_data: CourseCallback, partner: PartnerView, uc: UseCases, t: Texts
) -> None:
    view = await uc.courses.lesson(partner.id, callback_data.course, callback_data.lesson)
    text, keyboard = render_lesson(view, t)
    await callback.answer()
    await bot.send_message(callback.from_user.id, text, reply_markup=keyboard)


async def start_quiz(
    callback: CallbackQuery,
    bot: Bot,
    callback_data: CourseCallback,
    partner: PartnerView,
    uc: UseCases,
    t: Texts,
    state: FSMContext,
) -> None:
    view = await uc.courses.start_quiz(partner.id, callback_data.course, callback_data.lesson)
    await state.update_data({QUIZ_KEY: _position(view.course.key, view.lesson.key, 0)})
    text, keyboard = render_question(view, t)
    await callback.answer()
    await bot.send_message(callback.from_user.id, text, reply_markup=keyboard)


async def answer_button(
    callback: CallbackQuery,
    bot: Bot,
    callback_data: CourseCallback,
    partner: PartnerView,
    uc: UseCases,
    t: Texts,
    state: FSMContext,
) -> None:
    course, lesson = callback_data.course, callback_data.lesson
    asked = await _asked(state, course, lesson)
    result = await uc.courses.answer(partner.id, course, lesson, callback_data.q, callback_data.a, asked=asked)
    if result.outcome == "wrong":
        explanation = Raw(result.asked.question.explanation.get(t.language))
        question, keyboard = render_question(result.asked, t)
        text = t("courses.wrong", explanation=explanation) + "\n\n" + question
    elif result.outcome == "next":
        await state.update_data({QUIZ_KEY: _position(course, lesson, result.next_question.index)})
        question, keyboard = render_question(result.next_question, t)
        text = t("courses.right") + "\n\n" + question
    else:
        await state.update_data({QUIZ_KEY: None})
        text, keyboard = render_passed(result, t)
    await callback.answer()
    await bot.send_message(callback.from_user.id, text, reply_markup=keyboard)


def build_router() -> Router:
    """A fresh router with this module's handlers (a router can belong to one dispatcher only)."""
    router = Router(name=__name__)
    router.message.register(learn, Command("learn"))
    router.callback_query.register(list_button, CourseCallback.filter(F.action == "list"))
    router.callback_query.register(open_course, CourseCallback.filter(F.action == "open"))
    router.callback_query.register(read_lesson, CourseCallback.filter(F.action == "read"))
    router.callback_query.register(start_quiz, CourseCallback.filter(F.action == "quiz"))
    router.callback_query.register(answer_button, CourseCallback.filter(F.action == "ans"))
    return router
