"""Tier 2: the partner side of content reach — /today, the daily push, the item buttons, inline sharing, /link."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from aiogram.types import ChosenInlineResult, InlineQuery, Update, User
from sqlalchemy import func, select

from bot.callbacks import ContentCallback
from bot.domain.events import EventType
from bot.services.registry import UseCases
from storage.models import ContentItem, DailyPack, Event, Partner, TrackedLink
from storage.uow import UnitOfWork
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

ALICE = tg_user(101, "Alice", lang="en")
BOB = tg_user(102, "Bob", lang="zh")
LINK_RE = re.compile(r"http://127\.0\.0\.1:8080/r/([A-Za-z0-9]{8})")


async def add_item(h: BotHarness, title: str, *, minutes_ago: int = 0, **fields: Any) -> int:
    now = h.clock.now() - timedelta(minutes=minutes_ago)
    values: dict[str, Any] = {
        "title": title,
        "text": f"{title}: great offer",
        "url": "https://shop.example.com/p?x=1",
        "tags": [],
        "levels": [],
        "segments": [],
        "publish_on": [],
        "weekdays": [],
        "status": "active",
        "revision": 1,
        "created_at": now,
        "updated_at": now,
        **fields,
    }
    async with h.sessionmaker() as s, s.begin():
        item = ContentItem(**values)
        s.add(item)
        await s.flush()
        return item.id


async def events(h: BotHarness, type: str) -> list[Event]:
    async with h.sessionmaker() as s:
        return list((await s.execute(select(Event).where(Event.type == type).order_by(Event.id))).scalars())


async def partner(h: BotHarness, tg_id: int) -> Partner:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner).where(Partner.tg_user_id == tg_id))).scalar_one()


async def push_due(h: BotHarness) -> int:
    async with UnitOfWork(h.sessionmaker) as uow:
        return await UseCases(uow, h.ctx).content.push_due(h.clock.now())


async def feed(h: BotHarness, **update: Any) -> None:
    await h.dp.feed_update(h.bot, Update(update_id=next(h._update_ids), **update))


async def test_today_without_material_says_so(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    harness.session.clear()
    await harness.send(ALICE, "/today")
    assert harness.session.texts(ALICE.id) == [harness.t("en", "content.today.empty")]


async def test_today_gives_the_newest_evergreen_items_with_personal_links_and_buttons(harness: BotHarness) -> None:
    ids = [await add_item(harness, f"Item {n}", minutes_ago=10 - n) for n in range(4)]
    await harness.send(ALICE, "/start")
    harness.session.clear()
    await harness.send(ALICE, "/today")
    calls = harness.session.of("sendMessage", ALICE.id)
    assert calls[0].text == harness.t("en", "content.pack.header_evergreen", day="2026-11-25", count=3)
    items = calls[1:]
    assert [c.text.split("\n")[0] for c in items] == ["<b>Item 3</b>", "<b>Item 2</b>", "<b>Item 1</b>"]
    slugs = [LINK_RE.search(c.text).group(1) for c in items]  # type: ignore[union-attr]
    assert len(set(slugs)) == 3
    buttons = items[0].buttons()
    assert [b["text"] for b in buttons] == ["🖼 Poster", "📤 Share", "📋 Copy text", "✅ Shared"]
    assert buttons[0]["callback_data"] == ContentCallback(action="poster", id=ids[3]).pack()
    assert buttons[1]["switch_inline_query_chosen_chat"]["query"] == f"#{ids[3]}"
    assert buttons[2]["copy_text"]["text"] == f"Item 3: great offer\n\nhttp://127.0.0.1:8080/r/{slugs[0]}"
    assert buttons[3]["callback_data"] == ContentCallback(action="shared", id=ids[3]).pack()

    # Asked again the same day: the same items and links, and content_sent stays once per item per day.
    harness.session.clear()
    await harness.send(ALICE, "/today")
    again = [LINK_RE.search(c.text).group(1) for c in harness.session.of("sendMessage", ALICE.id)[1:]]  # type: ignore[union-attr]
    assert again == slugs
    sent = await events(harness, EventType.CONTENT_SENT)
    assert sorted(e.payload["content_id"] for e in sent) == sorted(ids[1:])
    assert {e.payload["channel"] for e in sent} == {"today"}


async def test_pack_prefers_todays_schedule_and_respects_levels(harness: BotHarness) -> None:
    # 2026-11-25 is a Wednesday (ISO weekday 3).
    await add_item(harness, "Evergreen", minutes_ago=1)
    dated = await add_item(harness, "Dated", minutes_ago=5, publish_on=["2026-11-25"])
    weekly = await add_item(harness, "Wednesdays", minutes_ago=3, weekdays=[3])
    await add_item(harness, "Gold only", publish_on=["2026-11-25"], levels=["gold"])
    await add_item(harness, "Tomorrow", publish_on=["2026-11-26"])
    await harness.send(ALICE, "/start")
    harness.session.clear()
    await harness.send(ALICE, "/today")
    calls = harness.session.of("sendMessage", ALICE.id)
    assert calls[0].text == harness.t("en", "content.pack.header", day="2026-11-25", count=2)
    assert [c.text.split("\n")[0] for c in calls[1:]] == ["<b>Dated</b>", "<b>Wednesdays</b>"]
    async with harness.sessionmaker() as s:
        pack = (await s.execute(select(DailyPack))).scalar_one()
    assert pack.content_ids == [dated, weekly]


async def test_daily_push_at_each_partners_local_hour_once(harness: BotHarness) -> None:
    await add_item(harness, "Morning tip")
    await harness.send(ALICE, "/start")  # default push 09:00 Shanghai = now
    await harness.send(BOB, "/start")
    await harness.send(BOB, "/settings push 10")
    carol = tg_user(103, "Carol")
    await harness.send(carol, "/start")
    await harness.send(carol, "/settings push off")
    dave = tg_user(104, "Dave")
    await harness.send(dave, "/start")
    await harness.send(dave, "/settings tz Europe/London")  # 01:00 there
    harness.session.clear()

    assert await push_due(harness) == 1
    assert await push_due(harness) == 0  # a re-run queues nothing twice
    await harness.drain_outbox()
    await harness.pass_time(2)
    await harness.drain_outbox()
    texts = harness.session.texts(ALICE.id)
    assert texts[0] == harness.t("en", "content.pack.header_evergreen", day="2026-11-25", count=1)
    assert texts[1].startswith("<b>Morning tip</b>")
    assert harness.session.texts(BOB.id) == []
    assert harness.session.texts(carol.id) == []
    assert harness.session.texts(dave.id) == []

    harness.clock.advance(timedelta(hours=1))  # 10:00 in Shanghai: Bob's hour
    assert await push_due(harness) == 1
    await harness.drain_outbox()
    await harness.pass_time(2)
    await harness.drain_outbox()
    assert harness.session.texts(BOB.id)[0] == harness.t(
        "zh", "content.pack.header_evergreen", day="2026-11-25", count=1
    )
    sent = await events(harness, EventType.CONTENT_SENT)
    assert [e.payload["channel"] for e in sent] == ["push", "push"]

    harness.clock.advance(timedelta(hours=7))  # 09:00 in London
    assert await push_due(harness) == 1
    assert await push_due(harness) == 0


async def test_shared_button_counts_once_per_item_per_day(harness: BotHarness) -> None:
    first = await add_item(harness, "One")
    second = await add_item(harness, "Two")
    await harness.send(ALICE, "/start")
    harness.session.clear()
    await harness.press(ALICE, ContentCallback(action="shared", id=first).pack())
    await harness.press(ALICE, ContentCallback(action="shared", id=first).pack())
    await harness.press(ALICE, ContentCallback(action="shared", id=second).pack())
    answers = [c.params.get("text") for c in harness.session.of("answerCallbackQuery")]
    assert answers == [
        harness.t("en", "content.shared.thanks", count=1),
        harness.t("en", "content.shared.already", count=1),
        harness.t("en", "content.shared.thanks", count=2),
    ]
    shared = await events(harness, EventType.SHARED)
    assert [(e.payload["content_id"], e.payload["channel"]) for e in shared] == [(first, "manual"), (second, "manual")]
    harness.clock.advance(timedelta(days=1))
    await harness.press(ALICE, ContentCallback(action="shared", id=first).pack())
    assert harness.session.of("answerCallbackQuery")[-1].params["text"] == harness.t(
        "en", "content.shared.thanks", count=1
    )


async def test_buttons_on_archived_or_unknown_items_explain(harness: BotHarness) -> None:
    gone = await add_item(harness, "Old", status="archived")
    await harness.send(ALICE, "/start")
    for item_id in (gone, 999_999):
        harness.session.clear()
        await harness.press(ALICE, ContentCallback(action="shared", id=item_id).pack())
        [answer] = harness.session.of("answerCallbackQuery")
        assert answer.params["text"] == harness.t("en", "content.gone")
    assert await events(harness, EventType.SHARED) == []


async def test_copy_button_sends_long_texts_as_plain_messages(harness: BotHarness) -> None:
    long_text = "Winter <sale> " * 30
    item = await add_item(harness, "Long", text=long_text)
    await harness.send(ALICE, "/start")
    harness.session.clear()
    await harness.send(ALICE, "/today")
    [_, card] = harness.session.of("sendMessage", ALICE.id)
    copy = card.buttons()[2]
    assert copy["callback_data"] == ContentCallback(action="copy", id=item).pack()
    harness.session.clear()
    await harness.press(ALICE, copy["callback_data"])
    hint, text = harness.session.of("sendMessage", ALICE.id)
    assert hint.text == harness.t("en", "content.copy_hint")
    assert text.params.get("parse_mode") is None
    assert text.text.startswith(long_text.strip())
    assert LINK_RE.search(text.text)


async def test_inline_mode_lists_items_with_the_partners_link_and_counts_chosen_results(harness: BotHarness) -> None:
    first = await add_item(harness, "Spring sale", minutes_ago=2)
    await add_item(harness, "Autumn tips", minutes_ago=1)
    await harness.send(ALICE, "/start")
    harness.session.clear()
    user = User(id=ALICE.id, is_bot=False, first_name="Alice", language_code="en")
    await feed(harness, inline_query=InlineQuery(id="q1", from_user=user, query="", offset=""))
    [answer] = harness.session.of("answerInlineQuery")
    results = answer.params["results"]
    assert [r["id"] for r in results] == [f"t:{first + 1}", f"t:{first}"]
    message = results[1]["input_message_content"]["message_text"]
    slug = LINK_RE.search(message).group(1)  # type: ignore[union-attr]
    async with harness.sessionmaker() as s:
        link = (await s.execute(select(TrackedLink).where(TrackedLink.slug == slug))).scalar_one()
    assert link.content_id == first
    assert answer.params["is_personal"] is True

    harness.session.clear()
    await feed(harness, inline_query=InlineQuery(id="q2", from_user=user, query=f"#{first}", offset=""))
    [answer] = harness.session.of("answerInlineQuery")
    assert [r["id"] for r in answer.params["results"]] == [f"t:{first}"]

    await feed(
        harness,
        chosen_inline_result=ChosenInlineResult(
            result_id=f"t:{first}", from_user=user, query=f"#{first}", inline_message_id="im1"
        ),
    )
    await feed(  # Telegram may deliver the same feedback twice: one share
        harness,
        chosen_inline_result=ChosenInlineResult(
            result_id=f"t:{first}", from_user=user, query=f"#{first}", inline_message_id="im1"
        ),
    )
    shared = await events(harness, EventType.SHARED)
    assert [(e.payload["content_id"], e.payload["channel"], e.payload["result"]) for e in shared] == [
        (first, "inline", "text")
    ]


async def test_link_lists_recruit_link_and_tracked_links_with_clicks(harness: BotHarness) -> None:
    await add_item(harness, "Spring sale")
    await add_item(harness, "Hidden", status="archived")
    await harness.send(ALICE, "/start")
    harness.session.clear()
    await harness.send(ALICE, "/link")
    [message] = harness.session.of("sendMessage", ALICE.id)
    assert "https://t.me/partner_assistant_bot?start=" in message.text
    assert "Spring sale · 0 clicks" in message.text
    assert "Hidden" not in message.text
    assert LINK_RE.search(message.text)


async def test_poster_renders_once_then_resends_telegrams_copy(harness: BotHarness, tmp_path: Any) -> None:
    import io

    import zxingcpp
    from PIL import Image

    picture = tmp_path / "item.jpg"
    Image.new("RGB", (1600, 1200), (200, 120, 40)).save(picture)
    item = await add_item(harness, "春季新品 Spring", media_kind="photo", media_path=str(picture))
    await harness.send(ALICE, "/start")
    renderer = harness.dp["posters"]
    before = renderer.renders
    harness.session.clear()
    await harness.press(ALICE, ContentCallback(action="poster", id=item).pack())
    [photo] = harness.session.of("sendPhoto", ALICE.id)
    image = Image.open(io.BytesIO(harness.session.uploads[-1]))
    assert image.size == (1080, 1920)
    [code] = zxingcpp.read_barcodes(image)
    slug = LINK_RE.search(photo.text).group(1)  # type: ignore[union-attr]
    assert code.text == f"http://127.0.0.1:8080/r/{slug}"
    assert renderer.renders == before + 1

    harness.session.clear()
    await harness.send(ALICE, f"/poster {item}")
    [again] = harness.session.of("sendPhoto", ALICE.id)
    assert not str(again.params["photo"]).startswith("<upload:")
    assert renderer.renders == before + 1  # Telegram's stored copy, no render
    made = await events(harness, EventType.POSTER_MADE)
    assert [e.payload["cached"] for e in made] == [False, True]

    async with harness.sessionmaker() as s, s.begin():  # an admin edits the item: its revision goes up
        (await s.get(ContentItem, item)).revision = 2  # type: ignore[union-attr]
    await harness.send(ALICE, f"/poster {item}")
    assert renderer.renders == before + 2


async def test_poster_command_bad_reference(harness: BotHarness) -> None:
    await add_item(harness, "Spring sale")
    await harness.send(ALICE, "/start")
    harness.session.clear()
    await harness.send(ALICE, "/poster nothing-like-this")
    assert harness.session.texts(ALICE.id) == [harness.t("en", "content.not_found", ref="nothing-like-this")]
    harness.session.clear()
    await harness.send(ALICE, "/poster 424242")
    assert harness.session.texts(ALICE.id) == [harness.t("en", "content.gone")]


async def test_items_for_other_levels_are_not_offered(harness: BotHarness) -> None:
    await add_item(harness, "For everyone")
    gold = await add_item(harness, "Gold launch", levels=["gold"])
    await harness.send(ALICE, "/start")
    harness.session.clear()
    await harness.send(ALICE, "/link")
    [message] = harness.session.of("sendMessage", ALICE.id)
    assert "For everyone" in message.text and "Gold launch" not in message.text
    user = User(id=ALICE.id, is_bot=False, first_name="Alice", language_code="en")
    await feed(harness, inline_query=InlineQuery(id="q9", from_user=user, query=f"#{gold}", offset=""))
    [answer] = harness.session.of("answerInlineQuery")
    assert [r["id"] for r in answer.params["results"]] == ["none"]
    harness.session.clear()
    await harness.send(ALICE, "/poster gold")
    assert harness.session.texts(ALICE.id) == [harness.t("en", "content.not_found", ref="gold")]
    # nor opened by its number, through a command or crafted buttons: it answers as an item that is gone
    gone = harness.t("en", "content.gone")
    harness.session.clear()
    await harness.send(ALICE, f"/poster {gold}")
    assert harness.session.texts(ALICE.id) == [gone]
    assert not harness.session.of("sendPhoto", ALICE.id)
    for action in ("poster", "copy", "shared"):
        harness.session.clear()
        await harness.press(ALICE, ContentCallback(action=action, id=gold).pack())
        answers = harness.session.of("answerCallbackQuery")
        assert [a.params.get("text") for a in answers] == [gone], action
        assert not harness.session.of("sendPhoto", ALICE.id) and not harness.session.of("sendMessage", ALICE.id)
    chosen = ChosenInlineResult(result_id=f"t:{gold}", from_user=user, query="", inline_message_id="im-9")
    await feed(harness, chosen_inline_result=chosen)
    async with harness.sessionmaker() as s:
        shares = (await s.execute(select(func.count()).select_from(Event).where(Event.type == "shared"))).scalar_one()
    assert shares == 0
    # an admin may open any item by its number (to check another audience's material)
    admin = tg_user(ADMIN_ID, "Boss", lang="en")
    await harness.send(admin, "/start")
    harness.session.clear()
    await harness.send(admin, f"/poster {gold}")
    assert len(harness.session.of("sendPhoto", ADMIN_ID)) == 1

    async with harness.sessionmaker() as s, s.begin():
        alice = (await s.execute(select(Partner).where(Partner.tg_user_id == ALICE.id))).scalar_one()
        alice.level = "gold"
    harness.session.clear()
    await harness.send(ALICE, "/link")
    assert "Gold launch" in harness.session.of("sendMessage", ALICE.id)[0].text
