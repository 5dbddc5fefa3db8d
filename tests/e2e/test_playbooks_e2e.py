"""Tier 3: the 7-day start, a course quiz and the leaderboard through the real bot process and the Bot API emulator.

Two partners join (one in English, one in Chinese) and get Day 0 at once. The bot's clock moves to the next local
morning (TEST_CLOCK_OFFSET_FILE) and the `playbooks:tick` job sends "Day 1/7" / "第1/7天". A share through
[✅ Shared] completes the step (/start7 ticks it), the partner passes the first lesson of the basics course by
pressing the quiz's answer buttons, and /rank shows the partner with their points."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.domain.courses import Course
from bot.sandbox.client import EmulatorClient, TgUser
from bot.sandbox.emulator import BotAPIEmulator
from bot.services.courses import shipped_courses
from tests.e2e.conftest import BotProcess, bot_env
from tests.e2e.test_bot_process import buttons, plain, say
from tests.e2e.test_content_reach import import_content, write_import_file

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ANN = TgUser(id=201, first_name="Ann", language_code="en")
LI = TgUser(id=202, first_name="Li", language_code="zh")
ZONE = ZoneInfo("Asia/Shanghai")  # the deployment's default TIMEZONE, which bot_env keeps


def seconds_to_next_morning() -> int:
    """From now to 09:05 local tomorrow: the 7-day start sends each day's step at 09:00 local."""
    now = datetime.now(ZONE)
    morning = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), ZONE).replace(hour=9, minute=5)
    return int((morning - now).total_seconds())


def button(message: dict[str, Any], label: str) -> dict[str, Any]:
    return next(b for b in buttons(message) if label in b["text"])


def _asking(text: str, after: int) -> Callable[[dict[str, Any]], bool]:
    """A bot message after message `after` that contains `text` and has answer buttons."""

    def matches(message: dict[str, Any]) -> bool:
        return message["message_id"] > after and text in plain(message) and bool(buttons(message))

    return matches


async def pass_first_lesson(client: EmulatorClient, user: TgUser, course: Course) -> None:
    """Open the course, read lesson 1, answer each question wrong once (the explanation comes back with the question)
    and then right."""
    listing = await say(client, user, "/learn", "Courses")
    await client.press(user, listing["message_id"], button(listing, "Basics")["callback_data"])
    lesson = course.lessons[0]
    card = await client.wait_for_bot_message(user.id, lambda m: lesson.title.get("en") in plain(m), timeout=15)
    await client.press(user, card["message_id"], button(card, "Take the quiz")["callback_data"])
    after = card["message_id"]
    for question in lesson.quiz:
        asked = await client.wait_for_bot_message(user.id, _asking(question.question.get("en"), after), timeout=15)
        wrong = next(i for i in range(len(question.answers)) if not question.is_right(i))
        await client.press(user, asked["message_id"], buttons(asked)[wrong]["callback_data"])
        again = await client.wait_for_bot_message(user.id, _asking("Not quite", asked["message_id"]), timeout=15)
        right = next(i for i in range(len(question.answers)) if question.is_right(i))
        await client.press(user, again["message_id"], buttons(again)[right]["callback_data"])
        after = again["message_id"]
    await client.wait_for_bot_message(user.id, lambda m: "Lesson passed" in plain(m), timeout=15)


async def rank_showing(client: EmulatorClient, user: TgUser, expect: str, timeout: float = 120) -> dict[str, Any]:
    """/rank until the board shows `expect` (the sync job runs every minute)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        board = await say(client, user, "/rank", "Points")
        if expect in plain(board) or asyncio.get_running_loop().time() > deadline:
            assert expect in plain(board), plain(board)
            return board
        await asyncio.sleep(5)


async def test_day_one_share_course_quiz_and_rank(
    emulator: BotAPIEmulator, client: EmulatorClient, e2e_database_url: str, tmp_path: Path
) -> None:
    offset = tmp_path / "clock-offset"
    offset.write_text("0")
    env = bot_env(emulator, e2e_database_url, CONTENT_DIR=str(tmp_path / "content"), TEST_CLOCK_OFFSET_FILE=str(offset))
    env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{env['WEB_PORT']}"
    bot = BotProcess(env, [], tmp_path / "bot.log")
    await bot.start()
    try:
        assert "1 new" in await import_content(env, write_import_file(tmp_path))
        await say(client, ANN, "/start", "Day 0/7")
        await say(client, LI, "/start", "第0/7天")

        # the next local morning: Day 1 of 7, in each partner's language
        offset.write_text(str(seconds_to_next_morning()))
        await client.wait_for_bot_message(ANN.id, lambda m: "Day 1/7" in plain(m), timeout=120)
        await client.wait_for_bot_message(LI.id, lambda m: "第1/7天" in plain(m), timeout=120)

        # a share completes the step
        sent = await client.send_message(ANN, "/today")
        item = await client.wait_for_bot_message(
            ANN.id, lambda m: m["message_id"] > sent["message_id"] and "Spring tea" in plain(m), timeout=15
        )
        await client.press(ANN, item["message_id"], button(item, "Shared")["callback_data"])
        checklist = await say(client, ANN, "/start7", "Day 1/7")
        assert "✅ First share" in plain(checklist), plain(checklist)
        assert "⬜ First prospect" in plain(checklist), plain(checklist)

        # a course quiz: a wrong answer gets the explanation, the right ones pass the lesson
        await pass_first_lesson(client, ANN, shipped_courses()["basics"])
        listing = await say(client, ANN, "/learn", "Courses")
        assert "1/5" in plain(listing), plain(listing)

        # the leaderboard: the `leaderboards:sync` job folds her share and lesson within a minute
        board = await rank_showing(client, ANN, "#1 Ann")
        assert "← you" in plain(board), plain(board)
    finally:
        await bot.stop()
