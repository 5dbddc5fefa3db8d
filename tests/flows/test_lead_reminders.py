"""Tier 2: prospect reminders fire through the scheduled job at the partner's local time (a DST-free and a DST
zone, with a moved clock), with [Done] [Snooze 1d] [Snooze 1w]; a follow-up on a due lead is a revisit; overdue
leads top the daily pack."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiogram.types import User
from sqlalchemy import select

from bot.callbacks import LeadCallback
from bot.domain.events import EventType
from bot.scheduling import running_with
from bot.scheduling.jobs import fire_lead_reminders
from bot.services.registry import UseCases
from storage.models import Event, Lead, LeadFollowup, LeadReminder, OutboxMessage, Partner
from storage.uow import UnitOfWork
from tests.flows.test_content_partner import add_item
from tests.support.harness import BotHarness, tg_user

ALICE = tg_user(301, "Alice", lang="en")
BOB = tg_user(302, "Bob", lang="zh")


async def run_job(h: BotHarness) -> list[str]:
    """One run of the reminder job as the scheduler would start it; what the partners then receive."""
    runtime = h.job_runtime()
    h.session.clear()
    with running_with(runtime):
        await fire_lead_reminders()
    await h.drain_outbox()
    await h.pass_time(2)
    await h.drain_outbox()
    return [c.text for c in h.session.of("sendMessage")]


async def reminders(h: BotHarness) -> list[LeadReminder]:
    async with h.sessionmaker() as s:
        return list((await s.execute(select(LeadReminder).order_by(LeadReminder.id))).scalars())


async def lead_id(h: BotHarness, user: User, number: int = 1) -> int:
    async with h.sessionmaker() as s:
        owner = (await s.execute(select(Partner).where(Partner.tg_user_id == user.id))).scalar_one()
        stmt = select(Lead.id).where(Lead.partner_id == owner.id, Lead.number == number)
        return int((await s.execute(stmt)).scalar_one())


async def events(h: BotHarness, type: str) -> list[Event]:
    async with h.sessionmaker() as s:
        return list((await s.execute(select(Event).where(Event.type == type).order_by(Event.id))).scalars())


async def test_reminder_fires_at_local_time_in_shanghai_once(harness: BotHarness) -> None:
    await harness.send(ALICE, "/lead Wang 13800138000")
    await harness.send(ALICE, "/followup 1 called, sending brochure tomorrow 10:00")
    [reminder] = await reminders(harness)
    assert reminder.due_at == datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai (UTC+8, no DST)

    harness.clock.set(datetime(2026, 11, 26, 1, 59, tzinfo=UTC))
    assert await run_job(harness) == []
    harness.clock.set(datetime(2026, 11, 26, 2, 0, 30, tzinfo=UTC))
    [text] = await run_job(harness)
    assert text.startswith(harness.t("en", "leads.remind.fired"))
    assert "#1 Wang" in text
    assert "13800138000" in text
    [call] = harness.session.of("sendMessage", ALICE.id)
    wang = await lead_id(harness, ALICE)
    assert [b["callback_data"] for b in call.buttons()] == [
        LeadCallback(action="done", id=wang).pack(),
        LeadCallback(action="snooze", id=wang, value="1d").pack(),
        LeadCallback(action="snooze", id=wang, value="1w").pack(),
        LeadCallback(action="fu", id=wang).pack(),
    ]
    [fired] = await reminders(harness)
    assert (fired.status, fired.fired_at) == ("sent", datetime(2026, 11, 26, 2, 0, 30, tzinfo=UTC))
    async with harness.sessionmaker() as s:
        keys = list((await s.execute(select(OutboxMessage.dedupe_key))).scalars())
    assert f"remind:lead:{wang}:2026-11-26T02:00" in keys
    # a later run sends nothing again
    harness.clock.advance(timedelta(minutes=5))
    assert await run_job(harness) == []

    # [Done] closes it
    await harness.press(ALICE, LeadCallback(action="done", id=wang).pack())
    [done] = await reminders(harness)
    assert done.status == "done"
    # an old [Done] pressed again leaves a reminder set since alone
    await harness.send(ALICE, "/followup 1 emailed in 3d")
    await harness.press(ALICE, LeadCallback(action="done", id=wang).pack())
    assert [r.status for r in await reminders(harness)] == ["done", "pending"]


async def test_reminder_across_new_york_dst_change_keeps_the_wall_clock(harness: BotHarness) -> None:
    # Saturday 2026-10-31 08:00 EDT (UTC-4); DST ends Sunday 2026-11-01 02:00 (then EST, UTC-5)
    harness.clock.set(datetime(2026, 10, 31, 12, 0, tzinfo=UTC))
    await harness.send(ALICE, "/start")
    await harness.send(ALICE, "/settings tz America/New_York")
    await harness.send(ALICE, "/lead Wang")
    wang = await lead_id(harness, ALICE)
    await harness.press(ALICE, LeadCallback(action="remind", id=wang).pack())
    await harness.send(ALICE, "tomorrow 10:00")
    [reminder] = await reminders(harness)
    assert reminder.due_at == datetime(2026, 11, 1, 15, 0, tzinfo=UTC)  # 10:00 EST, not 14:00 UTC

    harness.clock.set(datetime(2026, 11, 1, 14, 0, tzinfo=UTC))  # 09:00 EST: a wall clock off by the DST hour
    assert await run_job(harness) == []
    harness.clock.set(datetime(2026, 11, 1, 15, 0, tzinfo=UTC))
    [text] = await run_job(harness)
    assert "#1 Wang" in text

    # 'in 1d' from Saturday 08:00 EDT is Sunday 08:00 EST: a day on the wall clock (25 hours)
    harness.clock.set(datetime(2026, 10, 31, 12, 0, tzinfo=UTC))
    await harness.send(ALICE, "/followup 1 called in 1d")
    latest = (await reminders(harness))[-1]
    assert latest.due_at == datetime(2026, 11, 1, 13, 0, tzinfo=UTC)


async def test_snooze_moves_the_reminder_and_it_fires_again(harness: BotHarness) -> None:
    await harness.send(BOB, "/lead 王丽 13800138000")
    wang = await lead_id(harness, BOB)
    await harness.send(BOB, "/followup 1 已联系 2小时后")
    harness.clock.advance(timedelta(hours=2))
    [text] = await run_job(harness)
    assert text.startswith(harness.t("zh", "leads.remind.fired"))

    harness.session.clear()
    await harness.press(BOB, LeadCallback(action="snooze", id=wang, value="1d").pack())
    [answer] = harness.session.texts(BOB.id)
    assert answer == harness.t("zh", "leads.remind.snoozed", number=1, when="2026-11-26 11:00")
    first, second = await reminders(harness)
    assert (first.status, second.status) == ("snoozed", "pending")
    assert second.due_at == harness.clock.now() + timedelta(days=1)

    harness.clock.advance(timedelta(hours=23, minutes=59))
    assert await run_job(harness) == []
    harness.clock.advance(timedelta(minutes=1))
    assert len(await run_job(harness)) == 1

    await harness.press(BOB, LeadCallback(action="snooze", id=wang, value="1w").pack())
    assert (await reminders(harness))[-1].due_at == harness.clock.now() + timedelta(weeks=1)
    assert [r.status for r in await reminders(harness)] == ["snoozed", "snoozed", "pending"]


async def test_followup_on_a_due_lead_is_a_revisit(harness: BotHarness) -> None:
    await harness.send(ALICE, "/lead Wang")
    wang = await lead_id(harness, ALICE)
    await harness.send(ALICE, "/followup 1 called in 1d")
    # not yet due: an ordinary follow-up, the reminder stays
    await harness.send(ALICE, "/followup 1 sent a message")
    harness.clock.advance(timedelta(days=1))
    # due (pending, time passed) even before the job ran
    harness.session.clear()
    await harness.send(ALICE, "/followup wang visited, tasted teas")
    assert harness.t("en", "leads.followup.saved_revisit", number=1) in harness.session.texts(ALICE.id)[-1]
    [reminder] = await reminders(harness)
    assert reminder.status == "done"
    async with harness.sessionmaker() as s:
        followups = list((await s.execute(select(LeadFollowup).order_by(LeadFollowup.id))).scalars())
    assert [f.revisit for f in followups] == [False, False, True]
    assert [e.payload["revisit"] for e in await events(harness, EventType.FOLLOWED_UP)] == [False, False, True]
    [revisited] = await events(harness, EventType.REVISITED)
    assert revisited.payload == {"lead_id": wang, "followup_id": followups[-1].id, "reason": "due"}
    # a sent reminder counts too, through the [Log follow-up] form
    await harness.send(ALICE, "/followup 1 next call in 2h")
    harness.clock.advance(timedelta(hours=2))
    await run_job(harness)
    await harness.press(ALICE, LeadCallback(action="fu", id=wang).pack())
    await harness.press(ALICE, LeadCallback(action="ch", id=wang, value="call").pack())
    await harness.press(ALICE, LeadCallback(action="skip", value="outcome").pack())
    await harness.send(ALICE, "called back")
    await harness.press(ALICE, LeadCallback(action="skip", value="next").pack())
    assert len(await events(harness, EventType.REVISITED)) == 2
    assert [r.status for r in await reminders(harness)] == ["done", "done"]
    alice_id = (await events(harness, EventType.REVISITED))[0].partner_id
    assert alice_id is not None
    async with UnitOfWork(harness.sessionmaker) as uow:
        metrics = await UseCases(uow, harness.ctx).metrics.for_partners([alice_id], harness.clock.now())
    assert metrics[alice_id]["revisits_30d"] == 2


async def test_overdue_leads_top_the_daily_pack(harness: BotHarness) -> None:
    await add_item(harness, "Morning tip")
    await harness.send(ALICE, "/start")
    await harness.send(ALICE, "/settings push off")  # the pack is pushed explicitly below
    await harness.send(ALICE, "/lead Wang")
    await harness.send(ALICE, "/lead Li")
    await harness.send(ALICE, "/followup 2 called in 2h")
    harness.clock.advance(timedelta(hours=3))  # Li's reminder has passed; Wang is fresh
    async with UnitOfWork(harness.sessionmaker) as uow:
        alice = await uow.partners.by_tg_id(ALICE.id)
        assert alice is not None
        assert await UseCases(uow, harness.ctx).content.push_pack(alice, harness.clock.now()) == 1
    harness.session.clear()
    for _ in range(3):
        await harness.drain_outbox()
        await harness.pass_time(2)
    texts = harness.session.texts(ALICE.id)
    assert texts[0] == "\n".join(
        [
            harness.t("en", "leads.digest.title", count=1),
            harness.t("en", "leads.digest.item", number=2, name="Li", stage="Contacted"),
        ]
    )
    assert texts[1] == harness.t("en", "content.pack.header_evergreen", day="2026-11-25", count=1)
    assert texts[2].startswith("<b>Morning tip</b>")
