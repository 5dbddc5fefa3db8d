"""Tier 2: /me, /link, the profile card photo, /lang with its buttons, and help texts."""

from __future__ import annotations

from sqlalchemy import select

from bot.callbacks import LanguageCallback, ProfileCallback
from bot.sandbox.recording import BOT_USERNAME
from storage.models import Partner
from tests.support.harness import BotHarness, tg_user

ALICE = tg_user(101, "Alice", lang="en")
BOB = tg_user(102, "Bob", lang="en")
LI = tg_user(104, "李雷", lang="zh-hans")


async def code_of(h: BotHarness, tg_id: int) -> str:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner.invite_code).where(Partner.tg_user_id == tg_id))).scalar_one()


async def test_me_shows_profile_tree_counts_and_buttons(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    code = await code_of(harness, ALICE.id)
    await harness.send(BOB, f"/start {code}")
    await harness.send(tg_user(105, "Dan"), f"/start {await code_of(harness, BOB.id)}")
    harness.session.clear()
    await harness.send(ALICE, "/me")
    [call] = harness.session.of("sendMessage", ALICE.id)
    link = f"https://t.me/{BOT_USERNAME}?start={code}"
    assert "Alice" in call.text and code in call.text and link in call.text
    assert "Role: Partner" in call.text and "Upline: none" in call.text
    assert "1 direct (L1) · 1 second level (L2)" in call.text
    assert "Joined: 2026-11-25" in call.text
    buttons = call.buttons()
    assert buttons[0]["callback_data"] == ProfileCallback(action="card").pack()
    assert buttons[1]["url"].startswith("https://t.me/share/url?url=")
    harness.session.clear()
    await harness.send(BOB, "/me")
    [call] = harness.session.of("sendMessage", BOB.id)
    assert "Upline: Alice" in call.text and "1 direct (L1) · 0 second level (L2)" in call.text


async def test_link_has_deep_link_and_one_tap_share(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    code = await code_of(harness, ALICE.id)
    harness.session.clear()
    await harness.send(ALICE, "/link")
    [call] = harness.session.of("sendMessage", ALICE.id)
    assert f"https://t.me/{BOT_USERNAME}?start={code}" in call.text
    share = call.buttons()[0]["url"]
    assert f"start%3D{code}" in share


async def test_card_button_sends_a_png_photo(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    harness.session.clear()
    await harness.press(ALICE, ProfileCallback(action="card").pack())
    assert harness.session.of("answerCallbackQuery")
    [photo] = harness.session.of("sendPhoto", ALICE.id)
    assert photo.text == harness.t("en", "card.caption")
    assert harness.session.uploads[-1].startswith(b"\x89PNG")


async def test_chinese_user_gets_chinese_and_can_switch(harness: BotHarness) -> None:
    await harness.send(LI, "/start")
    [welcome] = harness.session.of("sendMessage", LI.id)
    assert welcome.text.startswith("👋 欢迎加入伙伴助手")
    harness.session.clear()
    await harness.send(LI, "/lang")
    [choose] = harness.session.of("sendMessage", LI.id)
    assert choose.text == harness.t("zh", "lang.choose")
    assert [b["callback_data"] for b in choose.buttons()] == [
        LanguageCallback(language="zh").pack(),
        LanguageCallback(language="en").pack(),
    ]
    harness.session.clear()
    await harness.press(LI, LanguageCallback(language="en").pack(), message_id=77)
    [answer] = harness.session.of("answerCallbackQuery")
    assert answer.params["text"] == harness.t("en", "lang.set")
    [edit] = harness.session.of("editMessageText", LI.id)
    assert edit.params["message_id"] == 77 and edit.text == harness.t("en", "lang.set")
    harness.session.clear()
    await harness.send(LI, "/help")
    [help_text] = harness.session.of("sendMessage", LI.id)
    assert help_text.text == harness.t("en", "help.partner")


async def test_lang_with_argument_and_bad_argument(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    harness.session.clear()
    await harness.send(ALICE, "/lang fr")
    [usage] = harness.session.of("sendMessage", ALICE.id)
    assert usage.text == harness.t("en", "lang.usage")
    harness.session.clear()
    await harness.send(ALICE, "/lang zh")
    [done] = harness.session.of("sendMessage", ALICE.id)
    assert done.text == harness.t("zh", "lang.set")
    async with harness.sessionmaker() as s:
        assert (await s.execute(select(Partner.language).where(Partner.tg_user_id == ALICE.id))).scalar_one() == "zh"


async def test_default_language_applies_to_unsupported_telegram_language(harness: BotHarness) -> None:
    await harness.send(tg_user(106, "Olga", lang="ru"), "/start")
    [welcome] = harness.session.of("sendMessage", 106)
    assert welcome.text.startswith("👋 欢迎加入伙伴助手")  # DEFAULT_LANGUAGE is zh in the harness
