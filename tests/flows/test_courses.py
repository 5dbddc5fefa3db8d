"""Tier 2: /learn — the course list with progress, reading a lesson, the quiz (a wrong answer explains, then the
same question again), lessons and the course recorded once as events, the congratulations, zh and en, the
`courses_completed` metric, and stale or forged buttons refused with nothing written."""

from __future__ import annotations

from typing import Any

from aiogram.types import User
from sqlalchemy import func, select

from bot.callbacks import CourseCallback
from bot.domain.events import EventType
from bot.domain.rules import Condition
from bot.services.courses import load_courses
from bot.services.registry import UseCases
from storage.models import Event, Partner
from storage.uow import UnitOfWork
from tests.support.harness import BotHarness, tg_user

ALICE = tg_user(301, "Alice", lang="en")
CAROL = tg_user(302, "Carol", lang="zh")

BASICS = load_courses()["basics"]
LESSONS = [lesson.key for lesson in BASICS.lessons]
RIGHT = {lesson.key: [q.correct - 1 for q in lesson.quiz] for lesson in BASICS.lessons}
"""The right answer (from 0) of each question, per lesson."""


def data(action: str, lesson: str = "", q: int = 0, a: int = 0, course: str = "basics") -> str:
    return CourseCallback(action=action, course=course, lesson=lesson, q=q, a=a).pack()


async def partner_id(h: BotHarness, user: User) -> int:
    async with h.sessionmaker() as s:
        return int((await s.execute(select(Partner.id).where(Partner.tg_user_id == user.id))).scalar_one())


async def events(h: BotHarness, type: str) -> list[Event]:
    async with h.sessionmaker() as s:
        return list((await s.execute(select(Event).where(Event.type == type).order_by(Event.id))).scalars())


async def event_count(h: BotHarness) -> int:
    async with h.sessionmaker() as s:
        return int((await s.execute(select(func.count()).select_from(Event))).scalar_one())


async def said(h: BotHarness, user: User, text: str) -> Any:
    h.session.clear()
    await h.send(user, text)
    return h.session.of("sendMessage", user.id)[-1]


async def pressed(h: BotHarness, user: User, callback: str) -> Any:
    """The message the press produced (None when it produced none)."""
    h.session.clear()
    await h.press(user, callback)
    sent = h.session.of("sendMessage", user.id)
    return sent[-1] if sent else None


def alert(h: BotHarness) -> str | None:
    answers = h.session.of("answerCallbackQuery")
    return answers[-1].params.get("text") if answers else None


async def pass_lesson(h: BotHarness, user: User, lesson: str) -> Any:
    """Open the lesson's quiz and answer every question right; the last message (passed or completed)."""
    await pressed(h, user, data("quiz", lesson))
    last = None
    for q, a in enumerate(RIGHT[lesson]):
        last = await pressed(h, user, data("ans", lesson, q, a))
    return last


async def test_learn_lists_courses_with_progress(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    shown = await said(harness, ALICE, "/learn")
    assert harness.t("en", "courses.title") in shown.text
    assert "📘 Basics: how to share, follow up and close: 0/5" in shown.text
    [button] = shown.buttons()
    assert button["text"] == "Basics: how to share, follow up and close 0/5"
    assert button["callback_data"] == data("open")

    await pass_lesson(harness, ALICE, "share")
    await pass_lesson(harness, ALICE, "posters")
    shown = await said(harness, ALICE, "/learn")
    assert "📘 Basics: how to share, follow up and close: 2/5" in shown.text
    assert shown.buttons()[0]["text"].endswith(" 2/5")
    listed = await pressed(harness, ALICE, data("list", course=""))  # [All courses]
    assert (listed.text, listed.buttons()) == (shown.text, shown.buttons())


async def test_reading_a_lesson_then_a_wrong_answer_explains_and_asks_again(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    lesson = await pressed(harness, ALICE, data("open"))
    share = BASICS.lessons[0]
    assert share.text is not None
    assert lesson.text.startswith("📘 <b>Basics: how to share, follow up and close</b> · lesson 1/5\n")
    assert share.text.en in lesson.text
    assert "<b>personal tracked link</b>" in lesson.text  # the lesson's own HTML is kept, not escaped
    assert [(b["text"], b["callback_data"]) for b in lesson.buttons()] == [("📝 Take the quiz", data("quiz", "share"))]

    question = await pressed(harness, ALICE, data("quiz", "share"))
    assert question.text.startswith("❓ <b>1. Share today's content</b> · question 1/2\n")
    assert share.quiz[0].question.en in question.text
    assert [b["text"] for b in question.buttons()] == [a.en for a in share.quiz[0].answers]
    assert [b["callback_data"] for b in question.buttons()] == [data("ans", "share", 0, n) for n in range(3)]

    wrong = await pressed(harness, ALICE, data("ans", "share", 0, 1))
    assert wrong.text.startswith("❌ Not quite. " + share.quiz[0].explanation.en + "\n\nTry again:")
    assert "question 1/2" in wrong.text
    assert wrong.buttons() == question.buttons()  # the same question again
    assert await events(harness, EventType.LESSON_PASSED) == []

    right = await pressed(harness, ALICE, data("ans", "share", 0, 0))
    assert right.text.startswith("✅ Right!\n\n❓ <b>1. Share today's content</b> · question 2/2")
    assert await events(harness, EventType.LESSON_PASSED) == []
    wrong = await pressed(harness, ALICE, data("ans", "share", 1, 2))
    assert share.quiz[1].explanation.en in wrong.text
    passed = await pressed(harness, ALICE, data("ans", "share", 1, 0))
    assert passed.text == harness.t(
        "en", "courses.passed", title="1. Share today's content", course=BASICS.title.en, done=1, total=5
    )
    assert [b["callback_data"] for b in passed.buttons()] == [data("open"), data("list", course="")]
    [event] = await events(harness, EventType.LESSON_PASSED)
    assert event.partner_id == await partner_id(harness, ALICE)
    assert event.payload == {"course": "basics", "lesson": "share"}
    assert event.dedupe_key == f"lesson:{event.partner_id}:basics:share"

    following = await pressed(harness, ALICE, data("open"))  # [Next lesson]
    assert "lesson 2/5" in following.text
    assert BASICS.lessons[1].title.en in following.text


async def test_passing_a_lesson_twice_records_it_once(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    await pass_lesson(harness, ALICE, "share")
    review = await pressed(harness, ALICE, data("read", "share"))  # a passed lesson stays open
    assert "lesson 1/5" in review.text
    again = await pass_lesson(harness, ALICE, "share")
    assert "Lesson passed" in again.text
    assert len(await events(harness, EventType.LESSON_PASSED)) == 1
    shown = await said(harness, ALICE, "/learn")
    assert ": 1/5" in shown.text


async def test_completing_the_course_congratulates_once_and_counts_as_a_metric(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    for lesson in LESSONS[:-1]:
        last = await pass_lesson(harness, ALICE, lesson)
        assert "Lesson passed" in last.text
    assert await events(harness, EventType.COURSE_COMPLETED) == []
    done = await pass_lesson(harness, ALICE, LESSONS[-1])
    assert done.text == harness.t("en", "courses.completed", course=BASICS.title.en, total=5)
    assert done.text.startswith("🎓 Congratulations!")
    [completed] = await events(harness, EventType.COURSE_COMPLETED)
    alice = await partner_id(harness, ALICE)
    assert (completed.partner_id, completed.payload) == (alice, {"course": "basics"})
    assert completed.dedupe_key == f"course:{alice}:basics"
    assert len(await events(harness, EventType.LESSON_PASSED)) == 5

    shown = await said(harness, ALICE, "/learn")
    assert "✅ Basics: how to share, follow up and close: 5/5" in shown.text
    review = await pressed(harness, ALICE, data("open"))
    assert review.text.startswith("🎓 You completed <b>Basics")
    assert [b["callback_data"] for b in review.buttons()] == [data("read", k) for k in LESSONS] + [
        data("list", course="")
    ]

    again = await pass_lesson(harness, ALICE, LESSONS[-1])  # retaking the last lesson: no second congratulation
    assert "Lesson passed" in again.text
    assert len(await events(harness, EventType.COURSE_COMPLETED)) == 1
    assert len(await events(harness, EventType.LESSON_PASSED)) == 5

    await harness.send(CAROL, "/start")
    carol = await partner_id(harness, CAROL)
    async with UnitOfWork(harness.sessionmaker) as uow:
        metrics = await UseCases(uow, harness.ctx).metrics.for_partners([alice, carol], harness.clock.now())
    assert metrics[alice]["courses_completed"] == 1
    assert metrics[carol]["courses_completed"] == 0
    silver = Condition("courses_completed >= 1")
    assert silver.evaluate(metrics[alice])
    assert not silver.evaluate(metrics[carol])


async def test_chinese_texts(harness: BotHarness) -> None:
    await harness.send(CAROL, "/start")
    shown = await said(harness, CAROL, "/learn")
    assert "📘 基础课：分享、跟进、成交：0/5" in shown.text
    assert shown.buttons()[0]["text"] == "基础课：分享、跟进、成交 0/5"
    lesson = await pressed(harness, CAROL, data("open"))
    share = BASICS.lessons[0]
    assert share.text is not None
    assert lesson.text.startswith("📘 <b>基础课：分享、跟进、成交</b> · 第1/5课\n<b>1. 分享今日素材</b>")
    assert share.text.zh in lesson.text
    assert lesson.buttons()[0]["text"] == "📝 参加测验"
    question = await pressed(harness, CAROL, data("quiz", "share"))
    assert "第1/2题" in question.text
    assert [b["text"] for b in question.buttons()] == [a.zh for a in share.quiz[0].answers]
    wrong = await pressed(harness, CAROL, data("ans", "share", 0, 2))
    assert wrong.text.startswith("❌ 不太对。" + share.quiz[0].explanation.zh)
    for lesson_key in LESSONS:
        last = await pass_lesson(harness, CAROL, lesson_key)
    assert last.text.startswith("🎓 恭喜！你已完成<b>基础课：分享、跟进、成交</b>")


async def test_stale_and_forged_buttons_write_nothing(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    before = await event_count(harness)
    stale = harness.t("en", "courses.stale")

    cases = [
        (data("open", course="nope"), stale),  # a course that does not exist (any more)
        (data("read", "nope"), stale),
        (data("quiz", "nope"), stale),
        (data("ans", "share", 5, 0), stale),  # no such question
        (data("ans", "share", 0, 7), stale),  # no such answer
        (data("quiz", "events"), harness.t("en", "courses.locked")),  # earlier lessons not passed yet
        (data("read", "posters"), harness.t("en", "courses.locked")),
        (data("ans", "share", 1, 0), harness.t("en", "courses.quiz_expired")),  # no quiz running
    ]
    for callback, expected in cases:
        assert await pressed(harness, ALICE, callback) is None, callback
        assert alert(harness) == expected, callback

    await pressed(harness, ALICE, data("quiz", "share"))
    # skipping to the last question's right answer does not pass the lesson
    assert await pressed(harness, ALICE, data("ans", "share", 1, 0)) is None
    assert alert(harness) == harness.t("en", "courses.quiz_expired")
    await pressed(harness, ALICE, data("ans", "share", 0, 0))
    # an old button of the first question, once the quiz moved on
    assert await pressed(harness, ALICE, data("ans", "share", 0, 0)) is None
    assert alert(harness) == harness.t("en", "courses.quiz_expired")
    assert await event_count(harness) == before

    # a button of another kind of this prefix is an expired button for the fallback
    assert await pressed(harness, ALICE, "crs:zzz:basics:share:0:0") is None
    assert await event_count(harness) == before
