"""Tier 2: /broadcast from message to audience to preview to confirm, progress, cancel and refusals."""

from __future__ import annotations

from datetime import timedelta

from aiogram.types import Chat, Message, PhotoSize, Update
from sqlalchemy import func, select, update

from bot.callbacks import BroadcastCallback
from bot.services.broadcasts import BroadcastService
from storage.models import AuditEntry, Broadcast, OutboxMessage, Partner
from storage.uow import UnitOfWork
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

ROOT = tg_user(ADMIN_ID, "Root", lang="en")


async def members(h: BotHarness, count: int, *, first_id: int = 500, code: str | None = None) -> None:
    for n in range(count):
        await h.send(tg_user(first_id + n, f"M{n}"), f"/start {code}" if code else "/start")


async def report(h: BotHarness) -> int:
    async with UnitOfWork(h.sessionmaker) as uow:
        return await BroadcastService(uow, h.ctx).report_progress()


async def outbox_rows(h: BotHarness) -> list[OutboxMessage]:
    async with h.sessionmaker() as s:
        return list((await s.execute(select(OutboxMessage).where(OutboxMessage.broadcast_id.is_not(None)))).scalars())


async def broadcast_id(h: BotHarness) -> int:
    """Ids come from sequences, which emptying the tables between tests does not reset on PostgreSQL."""
    async with h.sessionmaker() as s:
        return (await s.execute(select(func.max(Broadcast.id)))).scalar_one()


def press_data(action: str, value: str = "") -> str:
    return BroadcastCallback(action=action, value=value).pack()


async def test_broadcast_to_everyone_end_to_end(harness: BotHarness) -> None:
    await harness.send(ROOT, "/start")
    await members(harness, 5)
    async with harness.sessionmaker() as s:  # one member blocked the bot earlier
        await s.execute(update(Partner).where(Partner.tg_user_id == 504).values(unreachable=True))
        await s.commit()
    harness.session.clear()

    await harness.send(ROOT, "/broadcast")
    await harness.send(ROOT, "Hello <b>team</b>")
    audience_prompt = harness.session.of("sendMessage", ROOT.id)[-1]
    assert audience_prompt.text == harness.t("en", "broadcast.ask_audience")
    assert [b["text"] for b in audience_prompt.buttons()] == [
        "Everyone", "Partners", "Team leads", "Admins", "A lead's team…", "Invite codes…", "By level…",
        "By activity…", "✖️ Cancel",
    ]  # fmt: skip
    harness.session.clear()
    await harness.press(ROOT, press_data("everyone"))
    copy, summary = harness.session.of("sendMessage", ROOT.id)
    # the preview is the message itself; what the admin typed literally stays literal (escaped for HTML)
    assert copy.text == "Hello &lt;b&gt;team&lt;/b&gt;"
    assert "Recipients: 5 (of 6; 1 can no longer be reached)" in summary.text
    harness.session.clear()
    await harness.press(ROOT, press_data("confirm"))
    [progress] = harness.session.of("sendMessage", ROOT.id)
    bid = await broadcast_id(harness)
    assert progress.text == harness.t("en", "broadcast.progress", id=bid, sent=0, total=6, unreachable=1, waiting=5)
    assert progress.buttons()[0]["callback_data"] == press_data("stop", str(bid))

    rows = await outbox_rows(harness)
    assert len(rows) == 5 and {r.kind for r in rows} == {"text"}
    assert {r.dedupe_key for r in rows} == {f"broadcast:{bid}:partner:{r.partner_id}" for r in rows}
    harness.session.clear()
    await harness.drain_outbox()
    assert len([c for c in harness.session.of("sendMessage") if c.text == copy.text]) == 5
    assert await report(harness) == 1
    harness.clock.advance(timedelta(seconds=2))  # the admin's own chat is limited to about one message a second
    await harness.drain_outbox()
    [edit] = harness.session.of("editMessageText", ROOT.id)
    assert edit.text == harness.t("en", "broadcast.done", id=bid, sent=5, total=6, unreachable=1)
    assert "reply_markup" not in edit.params
    assert await report(harness) == 0  # finished broadcasts are not reported again
    async with harness.sessionmaker() as s:
        assert (await s.execute(select(Broadcast.status))).scalar_one() == "done"


async def test_stop_cancels_what_was_not_sent(harness: BotHarness) -> None:
    await harness.send(ROOT, "/start")
    await members(harness, 60)
    await harness.send(ROOT, "/broadcast")
    await harness.send(ROOT, "News")
    await harness.press(ROOT, press_data("role", "partner"))
    await harness.press(ROOT, press_data("confirm"))
    harness.sender._batch = 20  # one round sends 20, then the admin stops it
    await harness.drain_outbox()
    harness.session.clear()
    bid = await broadcast_id(harness)
    await harness.press(ROOT, press_data("stop", str(bid)), message_id=4242)
    [edit] = harness.session.of("editMessageText", ROOT.id)
    assert edit.params["message_id"] == 4242
    assert edit.text == harness.t("en", "broadcast.cancelled", id=bid, sent=20, total=60, not_sent=40, unreachable=0)
    assert await harness.drain_outbox() == 0
    statuses = [r.status for r in await outbox_rows(harness)]
    assert statuses.count("sent") == 20 and statuses.count("cancelled") == 40


async def test_team_and_code_audiences(harness: BotHarness) -> None:
    await harness.send(ROOT, "/start")
    lead = tg_user(300, "Lena", username="lena")
    await harness.send(lead, "/start")
    async with harness.sessionmaker() as s:
        lead_code = (await s.execute(select(Partner.invite_code).where(Partner.tg_user_id == 300))).scalar_one()
    await members(harness, 3, code=lead_code)
    await members(harness, 2, first_id=700)
    await harness.send(ROOT, "/broadcast")
    await harness.send(ROOT, "Team news")
    await harness.press(ROOT, press_data("team"))
    harness.session.clear()
    await harness.send(ROOT, "@lena")
    assert harness.session.texts(ROOT.id)[-1] == harness.t("en", "broadcast.not_a_lead", name="Lena")
    await harness.send(ROOT, "/grant @lena lead")
    await harness.send(ROOT, "/broadcast")
    await harness.send(ROOT, "Team news")
    await harness.press(ROOT, press_data("team"))
    harness.session.clear()
    await harness.send(ROOT, "@lena")
    assert "Audience: the team of Lena\nRecipients: 3 (of 3;" in harness.session.texts(ROOT.id)[-1]
    await harness.press(ROOT, press_data("abort"))
    assert harness.session.texts(ROOT.id)[-1] == harness.t("en", "broadcast.aborted")

    async with harness.sessionmaker() as s:
        codes = (await s.execute(select(Partner.invite_code).where(Partner.tg_user_id >= 700))).scalars().all()
    await harness.send(ROOT, "/broadcast")
    await harness.send(ROOT, "By code")
    await harness.press(ROOT, press_data("codes"))
    harness.session.clear()
    await harness.send(ROOT, "bad$code")
    assert harness.session.texts(ROOT.id)[-1] == harness.t("en", "broadcast.bad_codes", codes="bad$code")
    await harness.send(ROOT, f"{codes[0]}, {codes[1]}\nnosuchcode")
    assert "Recipients: 2 (of 2;" in harness.session.texts(ROOT.id)[-1]


async def test_photo_broadcast_uses_the_telegram_file_id(harness: BotHarness) -> None:
    await harness.send(ROOT, "/start")
    await members(harness, 2)
    await harness.send(ROOT, "/broadcast")
    photo = Message(
        message_id=999,
        date=harness.clock.now(),
        chat=Chat(id=ROOT.id, type="private"),
        from_user=ROOT,
        photo=[PhotoSize(file_id="small", file_unique_id="s", width=90, height=90),
               PhotoSize(file_id="big", file_unique_id="b", width=900, height=900)],
        caption="New poster",
    )  # fmt: skip
    await harness.dp.feed_update(harness.bot, Update(update_id=9999, message=photo))
    await harness.press(ROOT, press_data("everyone"))
    [preview_photo] = harness.session.of("sendPhoto", ROOT.id)
    assert preview_photo.params["photo"] == "big" and preview_photo.text == "New poster"
    await harness.press(ROOT, press_data("confirm"))
    harness.session.clear()
    await harness.drain_outbox()
    sent = harness.session.of("sendPhoto")
    assert len(sent) == 3 and all(c.params["photo"] == "big" and c.text == "New poster" for c in sent)  # admin too


async def test_form_can_be_cancelled_and_partners_are_refused(harness: BotHarness) -> None:
    await harness.send(ROOT, "/start")
    await harness.send(ROOT, "/broadcast")
    await harness.send(ROOT, "/cancel")
    assert harness.session.texts(ROOT.id)[-1] == harness.t("en", "broadcast.aborted")
    await harness.send(ROOT, "just chatting")
    assert harness.session.texts(ROOT.id)[-1] == harness.t("en", "fallback.free_text")
    alice = tg_user(101, "Alice")
    await harness.send(alice, "/broadcast")
    assert harness.session.texts(alice.id)[-1] == harness.t("en", "denied.admin")
    await harness.press(alice, press_data("stop", "1"))
    assert harness.session.of("answerCallbackQuery")[-1].params["text"] == harness.t("en", "fallback.stale_button")
    async with harness.sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(Broadcast))).scalar_one() == 0
        denied = (await s.execute(select(AuditEntry.action).where(AuditEntry.outcome == "denied"))).scalars().all()
        assert denied == ["broadcast"]


async def test_broadcast_to_a_level_and_to_an_activity_segment(harness: BotHarness) -> None:
    await harness.send(ROOT, "/start")
    await members(harness, 6)
    async with harness.sessionmaker() as s:
        await s.execute(update(Partner).where(Partner.tg_user_id.in_([500, 501])).values(level="gold"))
        await s.execute(update(Partner).where(Partner.tg_user_id.in_([501, 502, 503])).values(segment="low"))
        await s.commit()

    await harness.send(ROOT, "/broadcast")
    await harness.send(ROOT, "Gold news")
    harness.session.clear()
    await harness.press(ROOT, press_data("level"))
    [ask] = harness.session.of("sendMessage", ROOT.id)
    assert ask.text == harness.t("en", "broadcast.ask_level")
    assert [b["text"] for b in ask.buttons()] == ["Member", "Silver", "Gold", "✖️ Cancel"]
    harness.session.clear()
    await harness.press(ROOT, press_data("level", "gold"))
    _, summary = harness.session.of("sendMessage", ROOT.id)
    assert "Audience: partners at level Gold" in summary.text
    assert "Recipients: 2 (of 2;" in summary.text
    await harness.press(ROOT, press_data("confirm"))
    assert sorted(r.chat_id for r in await outbox_rows(harness)) == [500, 501]

    harness.session.clear()
    await harness.send(ROOT, "/broadcast")
    await harness.send(ROOT, "Come back")
    await harness.press(ROOT, press_data("segment"))
    harness.session.clear()
    await harness.press(ROOT, press_data("segment", "low"))
    _, summary = harness.session.of("sendMessage", ROOT.id)
    assert 'Audience: partners in the segment "Low activity"' in summary.text.replace("&quot;", '"')
    await harness.press(ROOT, press_data("confirm"))
    rows = await outbox_rows(harness)
    assert sorted(r.chat_id for r in rows if "Come back" in r.payload["text"]) == [501, 502, 503]
