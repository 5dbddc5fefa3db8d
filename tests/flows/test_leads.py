"""Tier 2: prospects — /lead (one line, form, forward, contact card), duplicates, /leads with filters and paging,
the card's buttons, /followup and the follow-up form, revisits, the team lead's masked view, /mydata, /deletelead."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage
from aiogram.types import BufferedInputFile, User
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.callbacks import LeadCallback, LeadListCallback
from bot.domain.events import EventType
from bot.services.leads import PAGE_SIZE
from bot.services.registry import UseCases
from storage.models import AuditEntry, Event, Lead, LeadFollowup, LeadReminder, Partner
from storage.uow import UnitOfWork
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

ALICE = tg_user(201, "Alice", username="alice_w", lang="en")
BOB = tg_user(202, "Bob", username="bob_b", lang="en")
CAROL = tg_user(203, "Carol", lang="zh")
ADMIN = tg_user(ADMIN_ID, "Admin", lang="en")


async def partner(h: BotHarness, tg_id: int) -> Partner:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner).where(Partner.tg_user_id == tg_id))).scalar_one()


async def leads_of(h: BotHarness, tg_id: int) -> list[Lead]:
    owner = await partner(h, tg_id)
    async with h.sessionmaker() as s:
        stmt = select(Lead).where(Lead.partner_id == owner.id).order_by(Lead.number)
        return list((await s.execute(stmt)).scalars())


async def rows(h: BotHarness, model: Any) -> list[Any]:
    async with h.sessionmaker() as s:
        return list((await s.execute(select(model).order_by(model.id))).scalars())


async def events(h: BotHarness, type: str) -> list[Event]:
    async with h.sessionmaker() as s:
        return list((await s.execute(select(Event).where(Event.type == type).order_by(Event.id))).scalars())


async def count(h: BotHarness, model: Any) -> int:
    async with h.sessionmaker() as s:
        return int((await s.execute(select(func.count()).select_from(model))).scalar_one())


async def said(h: BotHarness, user: User, text: str) -> str:
    """What the bot answered `user` to `text` (the last message)."""
    h.session.clear()
    await h.send(user, text)
    return h.session.of("sendMessage", user.id)[-1].text


async def pressed(h: BotHarness, user: User, data: str) -> list[str]:
    h.session.clear()
    await h.press(user, data)
    return [c.text for c in h.session.of("sendMessage", user.id)]


def alert(h: BotHarness) -> str | None:
    answers = h.session.of("answerCallbackQuery")
    return answers[-1].params.get("text") if answers else None


async def test_one_line_lead_with_phone_handle_or_wechat(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    text = await said(harness, ALICE, "/lead Wang Li +86 138-0013-8000 met at the fair")
    assert harness.t("en", "leads.added", number=1) in text
    assert "#1 Wang Li" in text
    assert "+8613800138000" in text
    [call] = harness.session.of("sendMessage", ALICE.id)
    datas = [b.get("callback_data") for b in call.buttons()]
    assert LeadCallback(action="fu", id=(await leads_of(harness, ALICE.id))[0].id).pack() in datas
    texts = [b["text"] for b in call.buttons()]
    for key in ("followup", "remind", "stage", "quote", "invite", "won", "lost"):
        assert harness.t("en", f"leads.button.{key}") in texts

    await harness.send(ALICE, "/lead Zhao @Zhao_Q wants a demo")
    await harness.send(ALICE, "/lead Qian wx:qian_888")
    await harness.send(ALICE, "/lead Sun")
    first, second, third, fourth = await leads_of(harness, ALICE.id)
    assert (first.name, first.phone, first.note, first.stage, first.source) == (
        "Wang Li",
        "+8613800138000",
        "met at the fair",
        "new",
        "command",
    )
    assert (second.number, second.telegram, second.note) == (2, "zhao_q", "wants a demo")
    assert (third.number, third.wechat) == (3, "qian_888")
    assert (fourth.number, fourth.phone, fourth.note) == (4, None, None)
    assert [e.payload["source"] for e in await events(harness, EventType.LEAD_ADDED)] == ["command"] * 4


async def test_duplicate_contact_offers_the_existing_lead(harness: BotHarness) -> None:
    await harness.send(ALICE, "/lead Wang 13800138000")
    text = await said(harness, ALICE, "/lead Wang Again 138 0013 8000")
    assert text == harness.t("en", "leads.duplicate", number=1, name="Wang")
    [call] = harness.session.of("sendMessage", ALICE.id)
    [open_button, anyway] = call.buttons()
    assert len(await leads_of(harness, ALICE.id)) == 1

    texts = await pressed(harness, ALICE, open_button["callback_data"])
    assert "#1 Wang" in texts[0]
    texts = await pressed(harness, ALICE, anyway["callback_data"])
    assert harness.t("en", "leads.added", number=2) in texts[0]
    assert [lead.name for lead in await leads_of(harness, ALICE.id)] == ["Wang", "Wang Again"]


async def test_guided_form_with_skip_and_cancel(harness: BotHarness) -> None:
    assert await said(harness, ALICE, "/lead") == harness.t("en", "leads.form.ask_name")
    assert await said(harness, ALICE, "Zhou <b>Min</b>") == harness.t(
        "en", "leads.form.ask_contact", name="Zhou <b>Min</b>"
    )
    bad = await said(harness, ALICE, "not a contact")
    assert bad == harness.t("en", "leads.form.bad_contact", part="not a contact")
    assert await said(harness, ALICE, "@zhou_min") == harness.t("en", "leads.form.ask_note")
    await harness.press(ALICE, LeadCallback(action="skip", value="note").pack())
    [lead] = await leads_of(harness, ALICE.id)
    assert (lead.name, lead.telegram, lead.note, lead.source) == ("Zhou <b>Min</b>", "zhou_min", None, "form")
    card = harness.session.of("sendMessage", ALICE.id)[-1].text
    assert "Zhou &lt;b&gt;Min&lt;/b&gt;" in card

    await harness.send(ALICE, "/lead")
    await harness.send(ALICE, "Wu")
    await harness.press(ALICE, LeadCallback(action="skip", value="contact").pack())
    assert await said(harness, ALICE, "/cancel") == harness.t("en", "leads.form.cancelled")
    assert len(await leads_of(harness, ALICE.id)) == 1
    # an old [Skip] after the form ended does nothing
    await harness.press(ALICE, LeadCallback(action="skip", value="note").pack())
    assert alert(harness) == harness.t("en", "leads.gone")
    assert len(await leads_of(harness, ALICE.id)) == 1


async def test_forwarded_message_and_contact_card_prefill_the_form(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    origin = {
        "type": "user",
        "date": 1764000000,
        "sender_user": {"id": 777, "is_bot": False, "first_name": "Kai", "last_name": "Lin", "username": "KaiLin"},
    }
    harness.session.clear()
    await harness.send_media(ALICE, text="hi, is the tea still on sale?", forward_origin=origin)
    texts = harness.session.texts(ALICE.id)
    assert texts[-2] == harness.t("en", "leads.form.prefilled", name="Kai Lin")
    assert texts[-1] == harness.t("en", "leads.form.ask_note")
    await harness.send(ALICE, "asked about the tea sale")
    [lead] = await leads_of(harness, ALICE.id)
    assert (lead.name, lead.telegram, lead.tg_user_id, lead.note, lead.source) == (
        "Kai Lin",
        "kailin",
        777,
        "asked about the tea sale",
        "forward",
    )

    contact = {"phone_number": "+1 (212) 555-0100", "first_name": "Ann", "user_id": 888}
    await harness.send_media(ALICE, contact=contact)
    await harness.press(ALICE, LeadCallback(action="skip", value="note").pack())
    ann = (await leads_of(harness, ALICE.id))[-1]
    assert (ann.name, ann.phone, ann.tg_user_id, ann.source) == ("Ann", "+12125550100", 888, "contact")

    # a sender who hides their account gives the name only; a channel's post is not a person
    hidden = {"type": "hidden_user", "date": 1764000000, "sender_user_name": "Mo <Hidden>"}
    await harness.send_media(ALICE, text="hello", forward_origin=hidden)
    await harness.press(ALICE, LeadCallback(action="skip", value="note").pack())
    mo = (await leads_of(harness, ALICE.id))[-1]
    assert (mo.name, mo.telegram, mo.tg_user_id, mo.source) == ("Mo <Hidden>", None, None, "forward")
    channel = {
        "type": "channel",
        "date": 1764000000,
        "chat": {"id": -100123, "type": "channel", "title": "News"},
        "message_id": 5,
    }
    harness.session.clear()
    await harness.send_media(ALICE, text="news", forward_origin=channel)
    assert harness.t("en", "leads.form.ask_note") not in harness.session.texts(ALICE.id)
    assert len(await leads_of(harness, ALICE.id)) == 3

    # forwarding the same person again is a duplicate
    await harness.send_media(ALICE, text="again", forward_origin=origin)
    text = await said(harness, ALICE, "second note")
    assert text == harness.t("en", "leads.duplicate", number=1, name="Kai Lin")
    assert len(await leads_of(harness, ALICE.id)) == 3


async def test_bad_input_answers_usage_and_writes_nothing(harness: BotHarness) -> None:
    await harness.send(ALICE, "/lead Wang")
    before = (await count(harness, Lead), await count(harness, LeadFollowup), await count(harness, LeadReminder))
    cases = [
        ("/lead /x", harness.t("en", "leads.usage.add_name")),
        ("/lead " + "x" * 200, harness.t("en", "leads.usage.add_name")),
        ("/followup", harness.t("en", "leads.usage.followup")),
        ("/followup 1", harness.t("en", "leads.usage.followup")),
        ("/followup 9 called", harness.t("en", "leads.unknown", ref="9")),
        ("/followup zz called", harness.t("en", "leads.unknown", ref="zz")),
        ("/followup 1 called 2020-01-01 10:00", harness.t("en", "leads.when.past", part="2020-01-01 10:00")),
        ("/deletelead", harness.t("en", "leads.usage.delete")),
        ("/deletelead 42", harness.t("en", "leads.unknown", ref="42")),
        ("/leads " + "y" * 80, harness.t("en", "leads.usage.list")),
    ]
    for command, expected in cases:
        assert await said(harness, ALICE, command) == expected, command
    assert (
        await count(harness, Lead),
        await count(harness, LeadFollowup),
        await count(harness, LeadReminder),
    ) == before
    assert len(await events(harness, EventType.FOLLOWED_UP)) == 0
    # Chinese usage for a Chinese speaker
    await harness.send(CAROL, "/start")
    assert await said(harness, CAROL, "/followup") == harness.t("zh", "leads.usage.followup")


async def test_leads_lists_pages_and_filters(harness: BotHarness) -> None:
    for i in range(1, PAGE_SIZE + 3):
        await harness.send(ALICE, f"/lead Lead{i:02d}")
    await harness.send(ALICE, "/lead Wang 13800138000 loves oolong")
    text = await said(harness, ALICE, "/leads")
    total = PAGE_SIZE + 3
    assert harness.t("en", "leads.list.title", count=total, page=1, pages=2) in text
    assert f"#{total} Wang" in text
    [call] = harness.session.of("sendMessage", ALICE.id)
    datas = [b.get("callback_data") for b in call.buttons()]
    next_page = LeadListCallback(kind="all", page=1).pack()
    assert next_page in datas
    assert LeadListCallback(kind="overdue").pack() in datas
    harness.session.clear()
    await harness.press(ALICE, next_page)
    [edit] = harness.session.of("editMessageText")
    assert harness.t("en", "leads.list.title", count=total, page=2, pages=2) in edit.text
    assert "#1 Lead01" in edit.text
    harness.session.clear()
    await harness.press(ALICE, LeadListCallback(kind="all", page=7).pack())  # out of date: the last page
    [edit] = harness.session.of("editMessageText")
    assert harness.t("en", "leads.list.title", count=total, page=2, pages=2) in edit.text

    text = await said(harness, ALICE, "/leads oolong")
    assert f"#{total} Wang" in text
    assert "Lead01" not in text
    text = await said(harness, ALICE, "/leads contacted")
    assert text == harness.t(
        "en", "leads.list.empty_filtered", filter=harness.t("en", "leads.list.filter_stage", stage="Contacted")
    )
    await harness.send(ALICE, "/followup 3 called")
    text = await said(harness, ALICE, "/leads contacted")
    assert "#3 Lead03" in text
    assert "Lead01" not in text
    # the other partner sees none of these
    text = await said(harness, BOB, "/leads")
    assert text == harness.t("en", "leads.list.empty")
    assert await said(harness, BOB, "/leads Wang") == harness.t(
        "en", "leads.list.empty_filtered", filter=harness.t("en", "leads.list.filter_search", query="Wang")
    )


async def test_another_partner_cannot_resolve_or_press_my_leads(harness: BotHarness) -> None:
    await harness.send(ALICE, "/lead Wang 13800138000")
    [lead] = await leads_of(harness, ALICE.id)
    await harness.send(BOB, "/start")
    assert await said(harness, BOB, "/followup 1 hello") == harness.t("en", "leads.unknown", ref="1")
    assert await said(harness, BOB, "/followup Wang hello") == harness.t("en", "leads.unknown", ref="Wang")
    assert await said(harness, BOB, "/deletelead 1") == harness.t("en", "leads.unknown", ref="1")
    for action in ("open", "fu", "remind", "won", "done", "del", "quote"):
        harness.session.clear()
        await harness.press(BOB, LeadCallback(action=action, id=lead.id).pack())
        assert alert(harness) == harness.t("en", "leads.gone"), action
        assert "13800138000" not in " ".join(harness.session.texts(BOB.id))
    await harness.press(BOB, LeadCallback(action="snooze", id=lead.id, value="1d").pack())
    await harness.press(BOB, LeadCallback(action="set", id=lead.id, value="won").pack())
    [same] = await leads_of(harness, ALICE.id)
    assert same.stage == "new"
    assert await count(harness, LeadReminder) == 0
    assert await count(harness, Lead) == 1


async def test_card_buttons_stage_won_lost_and_hints(harness: BotHarness) -> None:
    await harness.send(ALICE, "/lead Wang")
    [lead] = await leads_of(harness, ALICE.id)
    harness.session.clear()
    await harness.press(ALICE, LeadCallback(action="stage", id=lead.id).pack())
    [menu] = harness.session.of("sendMessage", ALICE.id)
    labels = [b["text"] for b in menu.buttons()]
    assert labels == ["Contacted", "Interested", "Quoted", "Won", "Lost"]
    await harness.press(ALICE, LeadCallback(action="set", id=lead.id, value="interested").pack())
    assert alert(harness) == harness.t("en", "leads.stage.changed", number=1, stage="Interested")
    await harness.press(ALICE, LeadCallback(action="won", id=lead.id).pack())
    [won] = await leads_of(harness, ALICE.id)
    assert won.stage == "won"
    assert won.won_at == harness.clock.now()
    await harness.press(ALICE, LeadCallback(action="set", id=lead.id, value="nonsense").pack())
    assert alert(harness) == harness.t("en", "leads.usage.stage")
    assert (await leads_of(harness, ALICE.id))[0].stage == "won"

    texts = await pressed(harness, ALICE, LeadCallback(action="quote", id=lead.id).pack())
    assert texts == [harness.t("en", "leads.hint.quote", number=1)]
    assert "/quote 1 &lt;sku&gt;" in texts[0]
    texts = await pressed(harness, ALICE, LeadCallback(action="invite", id=lead.id).pack())
    assert "/invite 1 &lt;event&gt;" in texts[0]

    # Chinese labels come from the stage file
    await harness.send(CAROL, "/lead 王丽")
    text = await said(harness, CAROL, "/leads")
    assert "#1 王丽 · 新客户" in text


async def test_followup_command_moves_new_to_contacted_and_sets_reminder(harness: BotHarness) -> None:
    await harness.send(ALICE, "/lead Wang")
    text = await said(harness, ALICE, "/followup wa called, sending <brochure> in 1d")
    assert harness.t("en", "leads.followup.saved", number=1) in text
    # Asia/Shanghai: 09:00 now, so tomorrow 09:00
    assert harness.t("en", "leads.remind.set", when="2026-11-26 09:00") in text
    assert "called, sending &lt;brochure&gt;" in text
    [lead] = await leads_of(harness, ALICE.id)
    assert lead.stage == "contacted"
    assert lead.last_followup_at == harness.clock.now()
    [followup] = await rows(harness, LeadFollowup)
    assert (followup.channel, followup.note, followup.revisit) == ("chat", "called, sending <brochure>", False)
    [reminder] = await rows(harness, LeadReminder)
    assert (reminder.status, reminder.due_at) == ("pending", datetime(2026, 11, 26, 1, 0, tzinfo=UTC))
    [event] = await events(harness, EventType.FOLLOWED_UP)
    assert event.payload == {"lead_id": lead.id, "followup_id": followup.id, "channel": "chat", "revisit": False}
    assert await events(harness, EventType.REVISITED) == []


async def test_followup_form_with_channel_outcome_note_and_next_step(harness: BotHarness) -> None:
    await harness.send(ALICE, "/lead Wang")
    [lead] = await leads_of(harness, ALICE.id)
    texts = await pressed(harness, ALICE, LeadCallback(action="fu", id=lead.id).pack())
    assert texts == [harness.t("en", "leads.followup.ask_channel", number=1, name="Wang")]
    [ask] = harness.session.of("sendMessage", ALICE.id)
    assert [b["text"] for b in ask.buttons()] == ["📞 Call", "💬 Chat", "🚶 Visit"]
    texts = await pressed(harness, ALICE, LeadCallback(action="ch", id=lead.id, value="visit").pack())
    assert texts == [harness.t("en", "leads.followup.ask_outcome")]
    assert await said(harness, ALICE, "interested") == harness.t("en", "leads.followup.ask_note")
    assert await said(harness, ALICE, "tasted three teas") == harness.t("en", "leads.followup.ask_next")
    bad = await said(harness, ALICE, "send price list 明天25点")
    assert bad == harness.t("en", "leads.when.unknown", part="25点")
    text = await said(harness, ALICE, "send price list 明天10点")
    assert harness.t("en", "leads.remind.set", when="2026-11-26 10:00") in text
    followups = await rows(harness, LeadFollowup)
    last = followups[-1]
    assert (last.channel, last.outcome, last.note, last.next_step) == (
        "visit",
        "interested",
        "tasted three teas",
        "send price list",
    )
    [reminder] = [r for r in await rows(harness, LeadReminder) if r.status == "pending"]
    assert reminder.due_at == datetime(2026, 11, 26, 2, 0, tzinfo=UTC)


async def test_remind_me_presets_and_typed_time_replace_the_open_reminder(harness: BotHarness) -> None:
    await harness.send(ALICE, "/lead Wang")
    [lead] = await leads_of(harness, ALICE.id)
    harness.session.clear()
    await harness.press(ALICE, LeadCallback(action="remind", id=lead.id).pack())
    [ask] = harness.session.of("sendMessage", ALICE.id)
    assert [b["text"] for b in ask.buttons()] == ["Tomorrow 09:00", "In 3 days", "In a week"]
    await harness.press(ALICE, LeadCallback(action="at", id=lead.id, value="3d").pack())
    [first] = await rows(harness, LeadReminder)
    assert first.due_at == datetime(2026, 11, 28, 1, 0, tzinfo=UTC)

    await harness.press(ALICE, LeadCallback(action="remind", id=lead.id).pack())
    assert await said(harness, ALICE, "yesterday") == harness.t("en", "leads.when.unknown", part="yesterday")
    assert await said(harness, ALICE, "2026-11-20 10:00") == harness.t("en", "leads.when.past", part="2026-11-20 10:00")
    text = await said(harness, ALICE, "2026-12-01 15:00")
    assert harness.t("en", "leads.remind.set", when="2026-12-01 15:00") in text
    old, new = await rows(harness, LeadReminder)
    assert (old.status, new.status) == ("snoozed", "pending")
    assert new.due_at == datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


async def test_revisit_on_a_won_deal_counts_in_metrics(harness: BotHarness) -> None:
    await harness.send(ALICE, "/lead Wang")
    [lead] = await leads_of(harness, ALICE.id)
    await harness.send(ALICE, "/followup 1 first call")
    await harness.press(ALICE, LeadCallback(action="won", id=lead.id).pack())
    text = await said(harness, ALICE, "/followup 1 how is the tea?")
    assert harness.t("en", "leads.followup.saved_revisit", number=1) in text
    first, second = await rows(harness, LeadFollowup)
    assert (first.revisit, second.revisit) == (False, True)
    [revisit] = await events(harness, EventType.REVISITED)
    assert revisit.payload == {"lead_id": lead.id, "followup_id": second.id, "reason": "won"}
    assert [e.payload["revisit"] for e in await events(harness, EventType.FOLLOWED_UP)] == [False, True]
    alice = await partner(harness, ALICE.id)
    async with UnitOfWork(harness.sessionmaker) as uow:
        metrics = await UseCases(uow, harness.ctx).metrics.for_partners([alice.id], harness.clock.now())
    assert metrics[alice.id]["revisits_30d"] == 1


async def test_overdue_after_n_days_in_leads_overdue(harness: BotHarness) -> None:
    await harness.send(ALICE, "/lead Old")
    await harness.send(ALICE, "/lead Lost")
    harness.clock.advance(timedelta(days=5))
    await harness.send(ALICE, "/lead Fresh")
    old, lost, _fresh = await leads_of(harness, ALICE.id)
    await harness.press(ALICE, LeadCallback(action="lost", id=lost.id).pack())
    harness.clock.advance(timedelta(days=2, minutes=1))
    text = await said(harness, ALICE, "/leads overdue")
    assert harness.t("en", "leads.list.item_overdue", number=1, name="Old", stage="New") in text
    assert "Lost" not in text
    assert "Fresh" not in text
    card = (await pressed(harness, ALICE, LeadCallback(action="open", id=old.id).pack()))[0]
    assert harness.t("en", "leads.card.overdue") in card
    # /today shows them first too, as the pushed pack does (here there is no content to follow)
    harness.session.clear()
    await harness.send(ALICE, "/today")
    digest, empty = harness.session.texts(ALICE.id)
    assert digest.startswith(harness.t("en", "leads.digest.title", count=1)) and "#1 Old" in digest
    assert empty == harness.t("en", "content.today.empty")
    # a follow-up clears it
    await harness.send(ALICE, "/followup 1 called")
    assert await said(harness, ALICE, "/leads overdue") == harness.t(
        "en", "leads.list.empty_filtered", filter=harness.t("en", "leads.list.filter_overdue")
    )


async def test_team_lead_sees_member_leads_masked_and_overdue_counts(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    alice = await partner(harness, ALICE.id)
    await harness.send(BOB, f"/start {alice.invite_code}")
    await harness.send(ADMIN, "/start")
    await harness.send(ADMIN, "/grant @alice_w lead")
    await harness.send(BOB, "/lead Wang 13800135678 wx:wang_secret_id <i>vip</i>")
    await harness.send(BOB, "/lead Li @li_tg")
    bob = await partner(harness, BOB.id)

    text = await said(harness, ALICE, f"/team {bob.invite_code}")
    assert "138****5678" in text
    assert "13800135678" not in text
    for secret in ("wang_secret_id", "li_tg", "vip"):
        assert secret not in text
    assert "#1 Wang · New · added 2026-11-25" in text
    text = await said(harness, ALICE, "/team @bob_b")
    assert "138****5678" in text

    # Bob is not Alice's lead: Bob (a partner) cannot use /team at all; Carol outside the team is refused to Alice
    await harness.send(CAROL, "/start")
    carol = await partner(harness, CAROL.id)
    assert await said(harness, ALICE, f"/team {carol.invite_code}") == harness.t(
        "en", "leads.team.not_member", handle=carol.invite_code
    )
    text = await said(harness, BOB, f"/team {alice.invite_code}")
    assert "Wang" not in text

    # an admin sees anyone's prospects with their contacts (never the notes)
    text = await said(harness, ADMIN, f"/team {bob.invite_code}")
    assert "13800135678" in text
    assert "wang_secret_id" in text
    assert "li_tg" in text
    assert "vip" not in text

    harness.clock.advance(timedelta(days=8))
    await said(harness, ALICE, "/team")
    [summary, digest] = [m.text for m in harness.session.of("sendMessage", ALICE.id)]
    assert harness.t("en", "leads.team.overdue_title") in summary
    assert harness.t("en", "leads.team.overdue_item", name="Bob", count=2) in summary
    assert harness.t("en", "digests.overdue_item", name="Bob", count=2) in digest


async def test_mydata_exports_own_data_only(harness: BotHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    uploads: list[bytes] = []
    original = harness.session.make_request

    async def spy(bot: Any, method: Any, timeout: int | None = None) -> Any:
        document = getattr(method, "document", None)
        if isinstance(document, BufferedInputFile):
            uploads.append(document.data)
        return await original(bot, method, timeout)

    monkeypatch.setattr(harness.session, "make_request", spy)
    await harness.send(ALICE, "/lead Wang 13800138000 <b>note</b>")
    await harness.send(ALICE, "/followup 1 called in 2d")
    await harness.send(BOB, "/lead Secret 13900000000")
    harness.session.clear()
    await harness.send(ALICE, "/mydata")
    [doc] = harness.session.of("sendDocument", ALICE.id)
    assert doc.params["caption"] == harness.t("en", "leads.mydata.caption", leads=1)
    assert str(doc.params["document"]) == "<upload:mydata-20261125.json>"
    [upload] = uploads
    data = json.loads(upload)
    assert data["profile"]["first_name"] == "Alice"
    assert [lead["name"] for lead in data["leads"]] == ["Wang"]
    assert data["leads"][0]["note"] == "<b>note</b>"
    assert data["followups"][0]["note"] == "called"
    assert data["reminders"][0]["status"] == "pending"
    assert data["earnings"] == []
    assert "Secret" not in json.dumps(data)


async def test_deletelead_confirms_deletes_and_audits_without_contacts(harness: BotHarness) -> None:
    await harness.send(ALICE, "/lead Wang 13800138000")
    await harness.send(ALICE, "/lead Li")
    await harness.send(ALICE, "/followup 1 called in 2d")
    wang = (await leads_of(harness, ALICE.id))[0]
    text = await said(harness, ALICE, "/deletelead wang")
    assert text == harness.t("en", "leads.delete.confirm", number=1, name="Wang")
    await harness.press(ALICE, LeadCallback(action="keep", id=wang.id).pack())
    assert len(await leads_of(harness, ALICE.id)) == 2

    harness.session.clear()
    await harness.press(ALICE, LeadCallback(action="del", id=wang.id).pack())
    [edit] = harness.session.of("editMessageText")
    assert edit.text == harness.t("en", "leads.delete.done", number=1)
    assert [lead.name for lead in await leads_of(harness, ALICE.id)] == ["Li"]
    assert await count(harness, LeadFollowup) == 0
    assert await count(harness, LeadReminder) == 0
    [audit] = [a for a in await rows(harness, AuditEntry) if a.action == "lead.delete"]
    assert audit.details == {"lead_id": wang.id, "number": 1}
    assert "Wang" not in json.dumps(audit.details) + (audit.target or "")
    assert "13800138000" not in json.dumps(audit.details) + (audit.target or "")
    # numbers are never reused
    await harness.send(ALICE, "/lead Zhao")
    assert [lead.number for lead in await leads_of(harness, ALICE.id)] == [2, 3]
    await harness.press(ALICE, LeadCallback(action="del", id=wang.id).pack())
    assert alert(harness) == harness.t("en", "leads.gone")


async def test_forms_work_with_redis_fsm_storage(engine: AsyncEngine, redis_url: str) -> None:
    """Form answers and a pending duplicate survive JSON in Redis (several processes share form state)."""
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    h = BotHarness(engine, storage=RedisStorage(redis), events_isolation=RedisEventIsolation(redis))
    try:
        await h.send(ALICE, "/lead Wang 13800138000")
        await h.send(ALICE, "/lead")
        await h.send(ALICE, "Wang Two")
        await h.send(ALICE, "138 0013 8000")
        await h.send(ALICE, "met again")
        assert h.session.texts(ALICE.id)[-1] == h.t("en", "leads.duplicate", number=1, name="Wang")
        h.session.clear()
        await h.press(ALICE, LeadCallback(action="dup").pack())
        assert h.t("en", "leads.added", number=2) in h.session.texts(ALICE.id)[0]
        second = (await leads_of(h, ALICE.id))[1]
        assert (second.name, second.phone, second.note, second.source) == (
            "Wang Two",
            "13800138000",
            "met again",
            "form",
        )

        await h.press(ALICE, LeadCallback(action="fu", id=second.id).pack())
        await h.press(ALICE, LeadCallback(action="ch", id=second.id, value="call").pack())
        await h.send(ALICE, "keen")
        await h.send(ALICE, "talked prices")
        await h.send(ALICE, "send samples in 2d")
        [followup] = await rows(h, LeadFollowup)
        assert (followup.channel, followup.outcome, followup.next_step) == ("call", "keen", "send samples")
    finally:
        await h.close()
        await redis.flushdb()
        await redis.aclose()
