"""Tier 2: /settings by buttons and by arguments, and quiet hours deferring non-urgent messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.callbacks import SettingsCallback
from storage.models import OutboxMessage, Partner
from tests.support.harness import BotHarness, tg_user

ALICE = tg_user(101, "Alice", lang="en")
BOB = tg_user(102, "Bob", lang="en")


async def stored(h: BotHarness, tg_id: int) -> Partner:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner).where(Partner.tg_user_id == tg_id))).scalar_one()


async def test_settings_shows_defaults_in_local_time(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    harness.session.clear()
    await harness.send(ALICE, "/settings")
    [view] = harness.session.of("sendMessage", ALICE.id)
    # harness clock: 01:00 UTC = 09:00 in Shanghai
    assert "Time zone: Asia/Shanghai (your time now: 09:00)" in view.text
    assert "Daily content push: 09:00 your time" in view.text
    assert "Quiet hours: 22:00–08:00" in view.text
    assert "Leaderboard pushes and rank notices: on" in view.text
    buttons = ["🌍 Time zone", "⏰ Daily push", "🌙 Quiet hours", "🏆 Rank pushes: on"]
    assert [b["text"] for b in view.buttons()] == buttons


async def test_settings_by_arguments_and_bad_arguments(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    harness.session.clear()
    await harness.send(ALICE, "/settings tz Europe/London")
    await harness.send(ALICE, "/settings push off")
    await harness.send(ALICE, "/settings quiet 23:30-06:45")
    texts = harness.session.texts(ALICE.id)
    assert "Time zone: Europe/London (your time now: 01:00)" in texts[0]
    assert "Daily content push: off" in texts[1]
    assert "Quiet hours: 23:30–06:45" in texts[2]
    alice = await stored(harness, ALICE.id)
    assert (alice.timezone, alice.push_hour, alice.quiet_start_min, alice.quiet_end_min) == (
        "Europe/London",
        -1,
        1410,
        405,
    )
    harness.session.clear()
    for args, key, params in [
        ("tz Mars/Olympus", "settings.bad_timezone", {"value": "Mars/Olympus"}),
        ("push 9:30", "settings.push_whole_hour", {"value": "9:30"}),
        ("quiet 25:00-08:00", "settings.bad_time", {"value": "25:00"}),
        ("volume 11", "settings.usage", {}),
    ]:
        harness.session.clear()
        await harness.send(ALICE, f"/settings {args}")
        assert harness.session.texts(ALICE.id) == [harness.t("en", key, **params)], args
    assert (await stored(harness, ALICE.id)).timezone == "Europe/London"


async def test_settings_by_buttons_edits_the_message(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    harness.session.clear()
    await harness.press(ALICE, SettingsCallback(action="menu", field="push").pack(), message_id=55)
    [choices] = harness.session.of("editMessageText", ALICE.id)
    assert choices.text == harness.t("en", "settings.choose_push")
    labels = [b["text"] for b in choices.buttons()]
    assert labels[:3] == ["07:00", "08:00", "09:00"] and labels[-2:] == ["off", "« Back"]
    harness.session.clear()
    await harness.press(ALICE, SettingsCallback(action="set", field="push", value="7").pack(), message_id=55)
    [answer] = harness.session.of("answerCallbackQuery")
    assert answer.params["text"] == harness.t("en", "settings.saved")
    [edited] = harness.session.of("editMessageText", ALICE.id)
    assert edited.params["message_id"] == 55 and "Daily content push: 07:00 your time" in edited.text
    await harness.press(ALICE, SettingsCallback(action="set", field="quiet", value="off").pack(), message_id=55)
    assert (await stored(harness, ALICE.id)).quiet_start_min == 0
    await harness.press(ALICE, SettingsCallback(action="set", field="tz", value="Asia/Tokyo").pack(), message_id=55)
    assert (await stored(harness, ALICE.id)).timezone == "Asia/Tokyo"


async def test_non_urgent_notice_waits_for_the_end_of_quiet_hours(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    alice = await stored(harness, ALICE.id)
    harness.clock.set(datetime(2026, 11, 25, 15, 30, tzinfo=UTC))  # 23:30 in Shanghai
    await harness.send(BOB, f"/start {alice.invite_code}")
    async with harness.sessionmaker() as s:
        notice = (await s.execute(select(OutboxMessage))).scalar_one()
    assert notice.not_before == datetime(2026, 11, 26, 0, 0, tzinfo=UTC)  # 08:00 Shanghai
    assert await harness.drain_outbox() == 0
    harness.clock.set(notice.not_before - timedelta(seconds=1))
    assert await harness.drain_outbox() == 0
    harness.clock.advance(timedelta(seconds=1))
    assert await harness.drain_outbox() == 1
    assert "<b>Bob</b> just joined your team" in harness.session.texts(ALICE.id)[-1]


async def test_quiet_hours_follow_the_partners_own_zone(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    await harness.send(ALICE, "/settings tz America/New_York")
    alice = await stored(harness, ALICE.id)
    harness.clock.set(datetime(2026, 11, 25, 15, 30, tzinfo=UTC))  # 23:30 Shanghai, but 10:30 in New York
    await harness.send(BOB, f"/start {alice.invite_code}")
    assert await harness.drain_outbox() == 1
