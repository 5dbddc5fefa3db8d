"""Tier 2: case stories (/story, the admins' review, /stories) and the weekly spotlight, featured in the daily pack."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from aiogram.types import User
from sqlalchemy import func, select

from bot.callbacks import StoriesPageCallback, StoryCallback
from bot.domain.events import EventType
from bot.i18n import Raw
from bot.scheduling import running_with
from bot.scheduling.jobs import pick_weekly_spotlight
from bot.services.registry import UseCases
from storage.models import AuditEntry, ContentItem, Event, OutboxMessage, Partner, Spotlight, Story
from storage.uow import UnitOfWork
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

ADMIN = tg_user(ADMIN_ID, "Root", lang="en")
ALICE = tg_user(101, "Alice", username="alice_w", lang="en")
BOB = tg_user(102, "Bob", username="bob_z", lang="zh")
CAROL = tg_user(103, "Carol", username="carol_x", lang="en")
DAN = tg_user(104, "Dan", lang="en")
STORY = "I shared the spring tea poster in my building's group and three neighbours ordered the same evening."


# -- helpers -------------------------------------------------------------------------------------------


async def start(h: BotHarness, *users: User) -> None:
    for user in users:
        await h.send(user, "/start")
    await h.drain_outbox()
    h.session.clear()


async def add_item(h: BotHarness, title: str = "Spring tea") -> None:
    now = h.clock.now()
    async with h.sessionmaker() as s, s.begin():
        s.add(
            ContentItem(
                title=title,
                text=f"{title}: great offer",
                url="https://shop.example.com/p",
                tags=[],
                levels=[],
                segments=[],
                publish_on=[],
                weekdays=[],
                status="active",
                revision=1,
                created_at=now,
                updated_at=now,
            )
        )


async def partner(h: BotHarness, tg_id: int) -> Partner:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner).where(Partner.tg_user_id == tg_id))).scalar_one()


async def stories(h: BotHarness) -> list[Story]:
    async with h.sessionmaker() as s:
        return list((await s.execute(select(Story).order_by(Story.id))).scalars())


async def count(h: BotHarness, model: Any) -> int:
    async with h.sessionmaker() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


async def events(h: BotHarness, type: str) -> list[Event]:
    async with h.sessionmaker() as s:
        return list((await s.execute(select(Event).where(Event.type == type).order_by(Event.id))).scalars())


async def reply(h: BotHarness, user: User, text: str) -> list[str]:
    h.session.clear()
    await h.send(user, text)
    return h.session.texts(user.id)


async def press(h: BotHarness, user: User, action: str, story_id: int) -> None:
    h.session.clear()
    await h.press(user, StoryCallback(action=action, id=story_id).pack())


def alert(h: BotHarness) -> str:
    [answer] = h.session.of("answerCallbackQuery")
    return str(answer.params.get("text") or "")


async def deliver(h: BotHarness) -> None:
    """Send everything due, letting a few seconds pass so each chat's pace (about a message a second) allows it."""
    for _ in range(10):
        await h.drain_outbox()
        h.clock.advance(timedelta(seconds=2))


async def push_packs(h: BotHarness) -> list[str]:
    """Run the daily dispatch now and deliver it: the texts and captions each chat got, in order."""
    h.session.clear()
    async with UnitOfWork(h.sessionmaker) as uow:
        await UseCases(uow, h.ctx).content.push_due(h.clock.now())
    await deliver(h)
    return [c.text for c in h.session.calls if c.method in ("sendMessage", "sendPhoto")]


def story_line(h: BotHarness, lang: str, name: str, text: str = STORY) -> str:
    return h.t(lang, "stories.pack", name=name, text=text)


# -- submitting ----------------------------------------------------------------------------------------


async def test_one_line_story_reaches_admins_and_the_first_decision_counts(harness: BotHarness) -> None:
    h = harness
    await start(h, ADMIN, ALICE, BOB, CAROL)
    await h.send(ADMIN, "/grant @carol_x admin")
    await h.drain_outbox()
    assert await reply(h, ALICE, f"/story {STORY}") == [h.t("en", "stories.submitted", id=(await stories(h))[0].id)]
    [story] = await stories(h)
    assert (story.status, story.text, story.photo_file_id) == ("pending", STORY, None)
    [submitted] = await events(h, EventType.STORY_SUBMITTED)
    assert submitted.payload == {"story_id": story.id, "photo": False}

    h.session.clear()
    h.clock.advance(timedelta(seconds=5))  # Carol's per-chat pace after the grant notice
    await h.drain_outbox()
    for admin in (ADMIN, CAROL):
        [notice] = h.session.of("sendMessage", admin.id)
        assert notice.text == h.t(
            "en",
            "stories.notice.new",
            id=story.id,
            name="Alice",
            code=(await partner(h, ALICE.id)).invite_code,
            text=STORY,
        )
        assert [b["callback_data"] for b in notice.buttons()] == [
            StoryCallback(action="approve", id=story.id).pack(),
            StoryCallback(action="reject", id=story.id).pack(),
        ]
    assert h.session.of("sendMessage", BOB.id) == []

    # A partner pressing a forwarded notice's button is refused and audited; nothing changes.
    await press(h, BOB, "approve", story.id)
    assert alert(h) == h.t("zh", "denied.admin")
    assert (await stories(h))[0].status == "pending"
    async with h.sessionmaker() as s:
        denied = (await s.execute(select(AuditEntry).where(AuditEntry.outcome == "denied"))).scalar_one()
    assert denied.action == "story_review"

    await press(h, ADMIN, "approve", story.id)
    [approved] = await stories(h)
    assert (approved.status, approved.featured_on) == ("approved", "2026-11-26")  # tomorrow in Asia/Shanghai
    assert h.session.of("editMessageReplyMarkup", ADMIN.id)
    assert h.session.texts(ADMIN.id) == [
        h.t("en", "stories.review.approved", id=story.id, name="Alice", day="2026-11-26")
    ]
    [event] = await events(h, EventType.STORY_APPROVED)
    assert event.partner_id == story.partner_id and event.payload["featured_on"] == "2026-11-26"

    # The second admin comes too late.
    await press(h, CAROL, "approve", story.id)
    assert alert(h) == h.t("en", "stories.review.already.approved", id=story.id, name="Root")
    await press(h, CAROL, "reject", story.id)
    assert alert(h) == h.t("en", "stories.review.already.approved", id=story.id, name="Root")

    h.session.clear()
    await h.drain_outbox()
    assert h.session.texts(ALICE.id) == [h.t("en", "stories.notice.approved", id=story.id, day="2026-11-26")]
    assert len(await events(h, EventType.STORY_APPROVED)) == 1


async def test_bad_stories_are_refused_and_change_nothing(harness: BotHarness) -> None:
    h = harness
    await start(h, ADMIN, ALICE)
    assert await reply(h, ALICE, "/story too short") == [h.t("en", "stories.too_short", minimum=20, length=9)]
    long = "x" * 1001
    assert await reply(h, ALICE, f"/story {long}") == [h.t("en", "stories.too_long", maximum=1000, length=1001)]
    h.session.clear()
    await h.send_photo(ALICE, b"big", file_size=6 * 1024 * 1024, caption=f"/story {STORY}")
    assert h.session.texts(ALICE.id) == [h.t("en", "stories.photo_too_big", size_mb="6.0", limit_mb=5)]
    assert await stories(h) == []
    assert await count(h, OutboxMessage) == 0
    assert await events(h, EventType.STORY_SUBMITTED) == []

    # One story waits at a time: neither a second one-liner nor the form gets through.
    await reply(h, ALICE, f"/story {STORY}")
    assert await reply(h, ALICE, "/story Another story that is long enough.") == [h.t("en", "stories.pending_exists")]
    assert await reply(h, ALICE, "/story") == [h.t("en", "stories.pending_exists")]
    assert len(await stories(h)) == 1


async def test_story_form_takes_a_captioned_photo_and_can_be_cancelled(harness: BotHarness) -> None:
    h = harness
    await start(h, ADMIN, BOB)
    assert await reply(h, BOB, "/story") == [h.t("zh", "stories.form.ask")]
    assert await reply(h, BOB, "/cancel") == [h.t("zh", "stories.form.cancelled")]
    assert await reply(h, BOB, "no form any more, just chatting") == [h.t("zh", "fallback.free_text")]
    assert await stories(h) == []

    await reply(h, BOB, "/story")
    h.session.clear()
    await h.send_media(
        BOB,
        sticker={
            "file_id": "stk",
            "file_unique_id": "stk-u",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        },
    )
    assert h.session.texts(BOB.id) == [h.t("zh", "stories.form.expect")]
    h.session.clear()
    await h.send_photo(BOB, b"jpeg", file_id="bob-photo")
    assert h.session.texts(BOB.id) == [h.t("zh", "stories.form.caption_needed")]
    h.session.clear()
    await h.send_photo(BOB, b"jpeg", file_id="bob-photo", caption="太短")
    assert h.session.texts(BOB.id) == [h.t("zh", "stories.too_short", minimum=20, length=2)]
    assert await stories(h) == []

    h.session.clear()
    caption = "我把春茶海报发到小区群里，当晚就有三位邻居下单，第二天又来了两位回头客。"
    await h.send_photo(BOB, b"jpeg", file_id="bob-photo", caption=caption)
    [story] = await stories(h)
    assert (story.text, story.photo_file_id, story.status) == (caption, "bob-photo", "pending")
    assert h.session.texts(BOB.id) == [h.t("zh", "stories.submitted", id=story.id)]
    # The form is over: free text is not taken as a story any more.
    assert await reply(h, BOB, "/story") == [h.t("zh", "stories.pending_exists")]

    h.session.clear()
    await h.drain_outbox()
    [notice] = h.session.of("sendPhoto", ADMIN.id)
    assert notice.params["photo"] == "bob-photo"
    code = (await partner(h, BOB.id)).invite_code
    assert notice.text == h.t("en", "stories.notice.new", id=story.id, name="Bob", code=code, text=caption)
    assert [b["text"] for b in notice.buttons()] == ["✅ Approve", "❌ Reject"]


async def test_rejection_asks_the_reason_and_tells_the_author(harness: BotHarness) -> None:
    h = harness
    await start(h, ADMIN, ALICE)
    await reply(h, ALICE, f"/story {STORY}")
    [story] = await stories(h)

    await press(h, ADMIN, "reject", story.id)
    assert h.session.texts(ADMIN.id) == [h.t("en", "stories.review.ask_reason", id=story.id, name="Alice")]
    assert await reply(h, ADMIN, "/cancel") == [h.t("en", "stories.form.cancelled")]
    assert (await stories(h))[0].status == "pending"

    await press(h, ADMIN, "reject", story.id)
    long_reason = "x" * 501
    assert await reply(h, ADMIN, long_reason) == [h.t("en", "stories.bad_reason", maximum=500)]
    assert (await stories(h))[0].status == "pending"
    assert await reply(h, ADMIN, "We could not  confirm these orders.") == [
        h.t("en", "stories.review.rejected", id=story.id, name="Alice")
    ]
    [rejected] = await stories(h)
    assert (rejected.status, rejected.reason, rejected.featured_on) == (
        "rejected",
        "We could not confirm these orders.",
        None,
    )
    await press(h, ADMIN, "approve", story.id)
    assert alert(h) == h.t("en", "stories.review.already.rejected", id=story.id, name="Root")

    h.session.clear()
    await h.drain_outbox()
    assert h.session.texts(ALICE.id) == [
        h.t("en", "stories.notice.rejected", id=story.id, reason="We could not confirm these orders.")
    ]
    # A rejected story no longer blocks a new one.
    await reply(h, ALICE, f"/story {STORY} Take two.")
    assert [s.status for s in await stories(h)] == ["rejected", "pending"]


# -- featuring and listing -----------------------------------------------------------------------------


async def test_an_approved_story_is_featured_in_the_pack_for_exactly_one_day(harness: BotHarness) -> None:
    h = harness
    await add_item(h)
    await start(h, ADMIN, ALICE, BOB)
    await reply(h, ALICE, f"/story {STORY}")
    [story] = await stories(h)
    await press(h, ADMIN, "approve", story.id)

    # Today (2026-11-25): not yet, neither in the pack nor in /stories.
    sent = await push_packs(h)
    assert not any("Story of the day" in text or "今日案例" in text for text in sent)
    assert await reply(h, ALICE, "/stories") == [h.t("en", "stories.empty")]

    # Tomorrow: above the content, in everyone's pack and in /today.
    h.clock.advance(timedelta(days=1))
    await push_packs(h)
    alice = h.session.texts(ALICE.id)
    assert alice[0] == story_line(h, "en", "Alice")
    assert alice[1] == h.t("en", "content.pack.header_evergreen", day="2026-11-26", count=1)
    assert h.session.texts(BOB.id)[0] == story_line(h, "zh", "Alice")
    assert h.session.texts(ADMIN.id)[0] == story_line(h, "en", "Alice")
    today = await reply(h, BOB, "/today")
    assert today[0] == story_line(h, "zh", "Alice")
    assert today[1] == h.t("zh", "content.pack.header_evergreen", day="2026-11-26", count=1)
    assert await reply(h, ALICE, "/stories") == [
        h.t("en", "stories.item", name="Alice", day="2026-11-26", text=STORY),
        h.t("en", "stories.page", page=1, pages=1),
    ]

    # The day after: gone from the pack, still listed.
    h.clock.advance(timedelta(days=1))
    sent = await push_packs(h)
    assert sent and not any("Story of the day" in text or "今日案例" in text for text in sent)
    assert (await reply(h, ALICE, "/stories"))[0] == h.t(
        "en", "stories.item", name="Alice", day="2026-11-26", text=STORY
    )


async def test_stories_queue_one_a_day_and_page_newest_first(harness: BotHarness) -> None:
    h = harness
    authors = [ALICE, BOB, CAROL, DAN]
    await start(h, ADMIN, *authors)
    for n, author in enumerate(authors):
        if author is CAROL:
            h.session.clear()
            await h.send_photo(author, b"jpeg", file_id="carol-photo", caption=f"/story Story number {n}: {STORY}")
        else:
            await reply(h, author, f"/story Story number {n}: {STORY}")
    for story in await stories(h):
        await press(h, ADMIN, "approve", story.id)
    assert [s.featured_on for s in await stories(h)] == ["2026-11-26", "2026-11-27", "2026-11-28", "2026-11-29"]

    # On the 27th only the first two are listed.
    h.clock.advance(timedelta(days=2))
    listed = await reply(h, DAN, "/stories")
    assert [t.split("\n")[0] for t in listed] == [
        "📣 <b>Bob</b> · 2026-11-27",
        "📣 <b>Alice</b> · 2026-11-26",
        "Success stories, page 1/1",
    ]

    h.clock.advance(timedelta(days=2))  # the 29th: all four, three a page, newest first
    h.session.clear()
    await h.send(DAN, "/stories")
    calls = [c for c in h.session.calls if c.method in ("sendMessage", "sendPhoto")]
    assert [(c.method, c.text.split("\n")[0]) for c in calls] == [
        ("sendMessage", "📣 <b>Dan</b> · 2026-11-29"),
        ("sendPhoto", "📣 <b>Carol</b> · 2026-11-28"),
        ("sendMessage", "📣 <b>Bob</b> · 2026-11-27"),
        ("sendMessage", "Success stories, page 1/2"),
    ]
    assert calls[1].params["photo"] == "carol-photo"
    assert [b["callback_data"] for b in calls[-1].buttons()] == [StoriesPageCallback(page=1).pack()]

    h.session.clear()
    await h.press(DAN, StoriesPageCallback(page=1).pack())
    texts = h.session.texts(DAN.id)
    assert [t.split("\n")[0] for t in texts] == ["📣 <b>Alice</b> · 2026-11-26", "Success stories, page 2/2"]
    [nav] = [c for c in h.session.of("sendMessage", DAN.id) if c.text.startswith("Success stories")]
    assert [b["callback_data"] for b in nav.buttons()] == [StoriesPageCallback(page=0).pack()]


# -- the spotlight -------------------------------------------------------------------------------------


def spotlight_block(h: BotHarness, lang: str, name: str, level: str, blurb: str | None, **stats: int) -> str:
    profile = h.t(
        lang, "spotlight.profile", name=name, level=level, **{"shares": 0, "followups": 0, "orders": 0, **stats}
    )
    if blurb:
        profile += "\n" + h.t(lang, "spotlight.blurb", blurb=blurb)
    return h.t(lang, "spotlight.pack", profile=Raw(profile))


async def test_admin_picks_the_spotlight_and_the_pack_shows_it_that_week(harness: BotHarness) -> None:
    h = harness
    await add_item(h)
    await start(h, ADMIN, ALICE, BOB)
    assert await reply(h, ADMIN, "/spotlight") == [h.t("en", "spotlight.none", week="2026-11-23")]
    assert await reply(h, BOB, "/spotlight @alice_w") == [h.t("zh", "denied.admin")]
    assert await reply(h, ADMIN, "/spotlight @nobody") == [h.t("en", "spotlight.not_found", handle="@nobody")]
    assert await count(h, Spotlight) == 0

    async with h.sessionmaker() as s, s.begin():  # two shares in the last 7 days
        alice = (await s.execute(select(Partner).where(Partner.tg_user_id == ALICE.id))).scalar_one()
        for hours in (1, 30):
            s.add(
                Event(
                    partner_id=alice.id,
                    type="shared",
                    payload={},
                    occurred_at=h.clock.now() - timedelta(hours=hours),
                    source="bot",
                )
            )
    picked = await reply(h, ADMIN, "/spotlight @alice_w Closed three deals this month")
    profile = h.t("en", "spotlight.profile", name="Alice", level="Member", shares=2, followups=0, orders=0)
    profile += "\n" + h.t("en", "spotlight.blurb", blurb="Closed three deals this month")
    assert picked == [h.t("en", "spotlight.picked", week="2026-11-23", profile=Raw(profile))]
    assert await reply(h, ADMIN, "/spotlight") == [
        h.t("en", "spotlight.current", week="2026-11-23", by="Root", profile=Raw(profile))
    ]
    async with h.sessionmaker() as s:
        row = (await s.execute(select(Spotlight))).scalar_one()
    assert (row.week_start, row.partner_id, row.picked_by is not None) == ("2026-11-23", alice.id, True)

    sent = await push_packs(h)
    assert h.session.texts(ALICE.id)[0] == h.t("en", "spotlight.notice", week="2026-11-23")
    assert h.session.texts(BOB.id)[0] == spotlight_block(
        h, "zh", "Alice", "会员", "Closed three deals this month", shares=2
    )
    assert h.session.texts(ALICE.id)[1] == spotlight_block(
        h, "en", "Alice", "Member", "Closed three deals this month", shares=2
    )
    assert len(sent) == 3 * 3 + 1  # each of three: the spotlight, the header and the item; and Alice's notice

    # Still that week on Sunday. The next week nobody picked, so the job gives it to the top riser: Alice, whose
    # two shares fell in the week that ended; the admin's words belonged to the week before.
    h.clock.advance(timedelta(days=4))  # Sunday 2026-11-29
    await push_packs(h)
    assert h.session.texts(BOB.id)[0] == spotlight_block(
        h, "zh", "Alice", "会员", "Closed three deals this month", shares=2
    )
    h.clock.advance(timedelta(days=1))
    with running_with(h.job_runtime()):
        await pick_weekly_spotlight()
    await push_packs(h)
    assert h.session.texts(ALICE.id)[0] == h.t("en", "spotlight.notice", week="2026-11-30")
    assert h.session.texts(BOB.id)[0] == spotlight_block(h, "zh", "Alice", "会员", None, shares=2)
    by = h.t("en", "spotlight.by_riser")
    assert await reply(h, ADMIN, "/spotlight") == [
        h.t("en", "spotlight.current", week="2026-11-30", by=by, profile=Raw(spotlight_text_en(h, shares=2)))
    ]
    # A week later the shares are older than 7 days, and nobody acted since: no spotlight, no block.
    h.clock.advance(timedelta(days=7))
    with running_with(h.job_runtime()):
        await pick_weekly_spotlight()
    sent = await push_packs(h)
    assert sent and not any(text.startswith("🏅") for text in sent)
    assert await reply(h, ADMIN, "/spotlight") == [h.t("en", "spotlight.none", week="2026-12-07")]


def spotlight_text_en(h: BotHarness, **stats: int) -> str:
    return h.t("en", "spotlight.profile", name="Alice", level="Member", **{"followups": 0, "orders": 0, **stats})


async def test_the_weekly_job_picks_the_top_riser_unless_an_admin_picked(harness: BotHarness) -> None:
    h = harness
    await start(h, ADMIN, ALICE, BOB, CAROL)
    ids = {u.id: (await partner(h, u.id)).id for u in (ALICE, BOB, CAROL)}
    monday = datetime(2026, 11, 30, 0, 5, tzinfo=UTC) - timedelta(hours=8)  # 00:05 Asia/Shanghai
    last_week = monday - timedelta(days=3)  # inside 23–29 Nov
    week_before = monday - timedelta(days=10)  # inside 16–22 Nov
    plan = {  # partner: (week before last, last week)
        ALICE.id: (5, 6),  # +1
        BOB.id: (0, 4),  # +4: the top riser
        CAROL.id: (2, 6),  # +4, but more actions than Bob → Carol
    }
    async with h.sessionmaker() as s, s.begin():
        for tg_id, (before, after) in plan.items():
            for _ in range(before):
                s.add(
                    Event(partner_id=ids[tg_id], type="followed_up", payload={}, occurred_at=week_before, source="bot")
                )
            for n in range(after):
                kind = ("shared", "lead_added", "order_attributed")[n % 3]
                s.add(Event(partner_id=ids[tg_id], type=kind, payload={}, occurred_at=last_week, source="bot"))
            s.add(Event(partner_id=ids[tg_id], type="content_sent", payload={}, occurred_at=last_week, source="bot"))

    h.clock.set(monday)
    with running_with(h.job_runtime()):
        await pick_weekly_spotlight()
        await pick_weekly_spotlight()  # a repeated run changes nothing
    async with h.sessionmaker() as s:
        [row] = (await s.execute(select(Spotlight))).scalars().all()
    assert (row.week_start, row.partner_id, row.picked_by, row.blurb) == ("2026-11-30", ids[CAROL.id], None, None)
    h.session.clear()
    h.clock.advance(timedelta(hours=8))  # the notice waits for the end of Carol's quiet hours (08:00)
    await deliver(h)
    assert h.session.texts(CAROL.id) == [h.t("en", "spotlight.notice", week="2026-11-30")]
    assert await reply(h, ADMIN, "/spotlight") == [
        h.t(
            "en",
            "spotlight.current",
            week="2026-11-30",
            by=h.t("en", "spotlight.by_riser"),
            profile=Raw(h.t("en", "spotlight.profile", name="Carol", level="Member", shares=2, followups=0, orders=2)),
        )
    ]

    # An admin's pick for next week stands: the job leaves that week alone.
    assert (await reply(h, ADMIN, "/spotlight next @alice_w"))[0].startswith("✅")
    h.clock.advance(timedelta(days=7))
    with running_with(h.job_runtime()):
        await pick_weekly_spotlight()
    async with h.sessionmaker() as s:
        rows = {r.week_start: r.partner_id for r in (await s.execute(select(Spotlight))).scalars()}
    assert rows == {"2026-11-30": ids[CAROL.id], "2026-12-07": ids[ALICE.id]}


async def test_concurrent_approvals_take_different_days(harness: BotHarness) -> None:
    h = harness
    await start(h, ADMIN, ALICE, BOB)
    await reply(h, ALICE, f"/story {STORY}")
    await reply(h, BOB, f"/story {STORY} Again.")
    async with UnitOfWork(h.sessionmaker) as uow:
        admin = UseCases(uow, h.ctx).partners.view(await partner(h, ADMIN_ID))

    async def approve(story_id: int) -> None:
        async with UnitOfWork(h.sessionmaker) as uow:
            await UseCases(uow, h.ctx).stories.approve(admin, story_id)

    await asyncio.gather(*(approve(story.id) for story in await stories(h)))
    assert sorted(s.featured_on or "" for s in await stories(h)) == ["2026-11-26", "2026-11-27"]
