"""Tier 2: the 7-day start around the engine: sign-up enters it, the `playbooks:tick` sweep with a moved clock sends
each day's step, nudges and rewards through the outbox; /start7, the /me line; admins' /playbooks with pause and
resume for everyone or one partner."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import func, select

from bot.domain.events import EventSource, EventType
from bot.scheduling import running_with
from bot.scheduling.jobs import tick_playbooks
from bot.services.playbooks import load_playbooks
from playbooks.loader import media_problems
from storage.models import AuditEntry, Event, Partner, PartnerBadge, PlaybookProgress, PlaybookSwitch
from storage.uow import UnitOfWork
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

ALL = tg_user(301, "Ann", lang="en")
NONE = tg_user(302, "Ned", lang="en")
HALF = tg_user(303, "Hal", lang="en")
ZHANG = tg_user(304, "Zhang", lang="zh")
ADMIN = tg_user(ADMIN_ID, "Boss", lang="en")

PB = "onboarding_7day"


def enable(h: BotHarness) -> None:
    h.ctx.playbooks = load_playbooks()


async def partner_id(h: BotHarness, tg_id: int) -> int:
    async with h.sessionmaker() as s:
        return int((await s.execute(select(Partner.id).where(Partner.tg_user_id == tg_id))).scalar_one())


async def invite_code(h: BotHarness, tg_id: int) -> str:
    async with h.sessionmaker() as s:
        return str((await s.execute(select(Partner.invite_code).where(Partner.tg_user_id == tg_id))).scalar_one())


async def record(h: BotHarness, tg_id: int, type: str, **payload: object) -> None:
    pid = await partner_id(h, tg_id)
    async with UnitOfWork(h.sessionmaker) as uow:
        uow.events.add(partner_id=pid, type=type, occurred_at=h.clock.now(), source=EventSource.BOT, payload=payload)


class Inbox:
    """What each chat received from the outbox (the sender's calls), in order."""

    def __init__(self, h: BotHarness) -> None:
        self.h = h
        self.got: dict[int, list[str]] = {}

    async def drain(self) -> None:
        before = len(self.h.calls)
        await self.h.drain_outbox()
        for call in self.h.calls[before:]:
            if call.method == "sendMessage" and call.chat_id is not None:
                self.got.setdefault(call.chat_id, []).append(call.text)


async def hours(h: BotHarness, inbox: Inbox, count: int) -> None:
    """Move the clock hour by hour, running the sweep and the sender each time."""
    for _ in range(count):
        h.clock.advance(timedelta(hours=1))
        with running_with(h.job_runtime()):
            await tick_playbooks()
        await inbox.drain()


async def do_day0(h: BotHarness, user: Any) -> None:
    contact = {"phone_number": "+8613800138000", "first_name": user.first_name, "user_id": user.id}
    await h.send_media(user, contact=contact)
    await h.send(user, h.t("en", "playbooks.buttons.accept_terms"))


def en(h: BotHarness, key: str, day: int, **params: object) -> str:
    return h.t("en", f"playbooks.onboarding.{key}", day=day, total=7, **params)


async def completed_steps(h: BotHarness, tg_id: int) -> set[str]:
    pid = await partner_id(h, tg_id)
    async with h.sessionmaker() as s:
        row = (await s.execute(select(PlaybookProgress).where(PlaybookProgress.partner_id == pid))).scalar_one()
    return {k for k, v in row.state["steps"].items() if v["status"] == "done"}


async def test_seven_days_for_three_partners(harness: BotHarness) -> None:
    """Ann does every step, Ned nothing, Hal the first half. Joined at 09:00 local (01:00 UTC)."""
    h = harness
    enable(h)
    inbox = Inbox(h)
    for user in (ALL, NONE, HALF):
        await h.send(user, "/start")
    await inbox.drain()
    for user in (ALL, NONE, HALF):
        assert inbox.got[user.id] == [en(h, "welcome", 0)]

    await hours(h, inbox, 1)  # 10:00 day 0: Ann and Hal finish the profile and accept the terms
    for user in (ALL, HALF):
        await do_day0(h, user)
        assert h.session.texts(user.id)[-1].endswith(h.t("en", "playbooks.day0.all_set"))
    await hours(h, inbox, 23)  # to 09:00 day 1
    actions = {1: EventType.SHARED, 2: EventType.LEAD_ADDED, 3: EventType.FOLLOWED_UP, 4: EventType.POSTER_MADE}
    for day in range(1, 8):
        await hours(h, inbox, 1)  # 10:00: the day's action
        if day in actions:
            await record(h, ALL.id, actions[day])
            if day <= 2:
                await record(h, HALF.id, actions[day])
        if day == 5:
            await record(h, ALL.id, EventType.COURSE_COMPLETED, course="basics")
        await hours(h, inbox, 23)

    nudged = [
        "first_followup",
        "first_followup_nudge1",
        "first_followup_nudge2",
        "poster_or_invite",
        "poster_or_invite_nudge1",
        "poster_or_invite_nudge2",
        "basics_course",
        "basics_course_nudge1",
        "basics_course_nudge2",
    ]
    day_of = {"first_share": 1, "first_lead": 2, "first_followup": 3, "poster_or_invite": 4, "basics_course": 5}

    def days(keys: list[str]) -> list[str]:
        return [en(h, k, day_of[k.split("_nudge")[0]]) for k in keys]

    assert inbox.got[ALL.id] == [
        en(h, "welcome", 0),
        *days(["first_share", "first_lead", "first_followup", "poster_or_invite", "basics_course"]),
        en(h, "review", 6, shares=1, clicks=0, leads=1),
        en(h, "celebration", 7),
    ]
    assert inbox.got[NONE.id] == [
        en(h, "welcome", 0),
        en(h, "welcome_nudge", 0),
        *days(["first_share", "first_share_nudge1", "first_share_nudge2"]),
        *days(["first_lead", "first_lead_nudge1", "first_lead_nudge2"]),
        *days(nudged),
        en(h, "review", 6, shares=0, clicks=0, leads=0),
    ]
    assert inbox.got[HALF.id] == [
        en(h, "welcome", 0),
        *days(["first_share", "first_lead", *nudged]),
        en(h, "review", 6, shares=1, clicks=0, leads=1),
        en(h, "celebration", 7),
    ]
    every = {"welcome", "first_share", "first_lead", "first_followup", "poster_or_invite", "basics_course"}
    assert await completed_steps(h, ALL.id) == every | {"review", "celebration"}
    assert await completed_steps(h, NONE.id) == {"review"}
    assert await completed_steps(h, HALF.id) == {"welcome", "first_share", "first_lead", "review", "celebration"}
    async with h.sessionmaker() as s:
        statuses = (await s.execute(select(PlaybookProgress.status))).scalars().all()
        badges = (await s.execute(select(PartnerBadge.partner_id, PartnerBadge.badge))).all()
        points = (
            await s.execute(
                select(Event.partner_id, func.sum(Event.payload["points"].as_integer()))
                .where(Event.type == EventType.POINTS_EARNED)
                .group_by(Event.partner_id)
            )
        ).all()
    assert set(statuses) == {"finished"}
    assert sorted(tuple(b) for b in badges) == sorted(
        [(await partner_id(h, ALL.id), "starter_7day"), (await partner_id(h, HALF.id), "starter_7day")]
    )
    # ten per day step, 20 for the course, 30 for the celebration
    assert {int(p): int(n) for p, n in points} == {
        await partner_id(h, ALL.id): 10 * 5 + 20 + 30,
        await partner_id(h, HALF.id): 10 * 3 + 30,
    }
    # nothing more once finished
    await hours(h, inbox, 48)
    assert sum(len(v) for v in inbox.got.values()) == 8 + 18 + 14


async def test_welcome_buttons_and_reply_keyboard(harness: BotHarness) -> None:
    h = harness
    enable(h)
    await h.send(ALL, "/start")
    await h.drain_outbox()
    welcome = h.session.of("sendMessage", ALL.id)[-1]
    keyboard = welcome.params["reply_markup"]
    keyboard = keyboard if isinstance(keyboard, dict) else keyboard.model_dump(exclude_none=True)
    assert keyboard["keyboard"][0][0]["request_contact"] is True
    assert [row[0]["text"] for row in keyboard["keyboard"]] == [
        h.t("en", "playbooks.buttons.share_phone"),
        h.t("en", "playbooks.buttons.skip_phone"),
        h.t("en", "playbooks.buttons.accept_terms"),
    ]
    await h.send(ALL, h.t("en", "playbooks.buttons.skip_phone"))
    assert h.session.texts(ALL.id)[-1] == h.t("en", "playbooks.day0.profile_skipped")
    await h.press(ALL, "pbk:terms_accept:")
    assert h.session.texts(ALL.id)[-1] == "\n".join(
        [h.t("en", "playbooks.day0.terms_accepted"), h.t("en", "playbooks.day0.all_set")]
    )
    async with h.sessionmaker() as s:
        events = (await s.execute(select(Event.type, Event.payload).order_by(Event.id))).all()
    assert (EventType.PROFILE_COMPLETED.value, {"phone": False}) in [tuple(e) for e in events]
    assert await completed_steps(h, ALL.id) == {"welcome"}
    # once done, "Skip" is free text again: nothing more is recorded
    await h.send(ALL, h.t("en", "playbooks.buttons.skip_phone"))
    async with h.sessionmaker() as s:
        count = (await s.execute(select(func.count()).where(Event.type == EventType.PROFILE_COMPLETED))).scalar_one()
    assert count == 1


async def test_start7_and_me_line_in_the_partners_language(harness: BotHarness) -> None:
    h = harness
    enable(h)
    await h.send(ZHANG, "/start")
    await h.send(ZHANG, "/start7")
    text = h.session.texts(ZHANG.id)[-1]
    assert text.startswith("<b>新人7天启动</b> · 第0/7天 · 已完成 0/8")
    assert "⬜ 完善资料并同意条款" in text
    await do_day0(h, ZHANG)
    h.clock.advance(timedelta(days=1))
    await h.send(ZHANG, "/start7")
    text = h.session.texts(ZHANG.id)[-1]
    assert text.startswith("<b>新人7天启动</b> · 第1/7天 · 已完成 1/8")
    assert "✅ 完善资料并同意条款" in text
    await h.send(ZHANG, "/me")
    assert h.session.texts(ZHANG.id)[-1].endswith("新人7天启动：第1/7天，已完成 1/8（/start7）")
    h.ctx.playbooks = {}  # no playbook loaded: a partner who joins now is in none
    await h.send(NONE, "/start")
    await h.send(NONE, "/start7")
    assert h.session.texts(NONE.id)[-1] == h.t("en", "playbooks.start7.none")
    await h.send(NONE, "/me")
    assert "7-day start" not in h.session.texts(NONE.id)[-1]


async def test_admin_stats_and_pause_for_everyone_and_one_partner(harness: BotHarness) -> None:
    h = harness
    enable(h)
    inbox = Inbox(h)
    await h.send(ADMIN, "/start")
    for user in (ALL, NONE, HALF):
        await h.send(user, "/start")
    await do_day0(h, ALL)
    await inbox.drain()

    await h.send(ADMIN, "/playbooks")
    text = h.session.texts(ADMIN_ID)[-1]
    assert h.t("en", "playbooks.admin.step", step=h.t("en", "playbooks.steps.welcome"), done=1) in text
    assert "Active 4 · paused 0 · finished 0" in text

    # Ned is paused by invite code, Hal with the global switch; then Hal's playbook resumes for everyone
    await h.send(ADMIN, f"/playbooks pause {PB} {await invite_code(h, NONE.id)}")
    assert h.session.texts(ADMIN_ID)[-1] == h.t(
        "en", "playbooks.admin.paused_one", playbook=PB, who=await invite_code(h, NONE.id)
    )
    await h.press(ADMIN, f"pba:pause:{PB}")
    assert h.session.texts(ADMIN_ID)[-1] == h.t("en", "playbooks.admin.paused_all", playbook=PB)
    before = {k: len(v) for k, v in inbox.got.items()}
    await hours(h, inbox, 30)  # day 1 passes while paused for everyone
    assert {k: len(v) for k, v in inbox.got.items()} == before
    await h.send(ADMIN, f"/playbooks resume {PB}")
    await hours(h, inbox, 1)
    # Ann's and Hal's day 1 came (Hal's open welcome was skipped); Ned stays paused
    assert inbox.got[ALL.id][-1] == en(h, "first_share", 1)
    assert inbox.got[HALF.id][-1] == en(h, "first_share", 1)
    assert len(inbox.got[NONE.id]) == before[NONE.id]
    await h.send(ADMIN, "/playbooks")
    assert "Active 3 · paused 1 · finished 0" in h.session.texts(ADMIN_ID)[-1]
    await h.send(ADMIN, f"/playbooks resume {PB} {await invite_code(h, NONE.id)}")
    await hours(h, inbox, 1)
    assert inbox.got[NONE.id][-1] == en(h, "first_share", 1)
    async with h.sessionmaker() as s:
        actions = (await s.execute(select(AuditEntry.action).order_by(AuditEntry.id))).scalars().all()
    assert [a for a in actions if a.startswith("playbook.")] == [
        "playbook.pause",
        "playbook.pause",
        "playbook.resume",
        "playbook.resume",
    ]


async def test_partner_is_denied_and_bad_input_writes_nothing(harness: BotHarness) -> None:
    h = harness
    enable(h)
    await h.send(ADMIN, "/start")
    await h.send(ALL, "/start")
    await h.send(ALL, "/playbooks")
    assert h.session.texts(ALL.id)[-1] == h.t("en", "denied.admin")
    await h.send(ALL, f"/playbooks pause {PB}")
    assert h.session.texts(ALL.id)[-1] == h.t("en", "denied.admin")
    usage = h.t("en", "playbooks.admin.usage")
    for bad in ("/playbooks stop", f"/playbooks pause {PB} a b", "/playbooks pause nosuch", "/playbooks pause"):
        await h.send(ADMIN, bad)
        assert h.session.texts(ADMIN_ID)[-1] == usage, bad
    await h.send(ADMIN, f"/playbooks pause {PB} @nobody")
    assert h.session.texts(ADMIN_ID)[-1] == h.t("en", "playbooks.admin.not_in_playbook", who="@nobody")
    async with h.sessionmaker() as s:
        switches = (await s.execute(select(func.count()).select_from(PlaybookSwitch))).scalar_one()
        statuses = (await s.execute(select(PlaybookProgress.status))).scalars().all()
        audit = (
            await s.execute(select(func.count()).select_from(AuditEntry).where(AuditEntry.action.like("playbook.%")))
        ).scalar_one()
    assert (switches, set(statuses), audit) == (0, {"active"}, 0)


async def test_a_step_with_media_sends_the_picture_with_its_text_as_caption(
    harness: BotHarness, tmp_path: Path
) -> None:
    h = harness
    Image.new("RGB", (64, 64), (200, 30, 30)).save(tmp_path / "share.png")
    playbook = load_playbooks()[PB]
    steps = tuple(
        s.model_copy(update={"message": s.message.model_copy(update={"media": "share.png"})})
        if s.key == "first_share"
        else s
        for s in playbook.steps
    )
    h.ctx.playbooks = {PB: playbook.model_copy(update={"steps": steps})}
    h.ctx.playbook_media = tmp_path
    inbox = Inbox(h)
    await h.send(ALL, "/start")
    await hours(h, inbox, 24)  # 09:00 on day 1
    [photo] = h.session.of("sendPhoto", ALL.id)
    assert photo.params["caption"] == en(h, "first_share", 1)
    [[button]] = photo.params["reply_markup"]["inline_keyboard"]
    assert button["text"] == h.t("en", "playbooks.buttons.today")
    assert en(h, "first_share", 1) not in inbox.got[ALL.id]  # not sent twice as text


def test_step_media_is_checked_at_start_up(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "ok.png")
    (tmp_path / "big.jpg").write_bytes(b"\0" * (10 * 1024 * 1024 + 1))
    assert media_problems({"a": "ok.png"}, tmp_path) == []
    assert media_problems({"b": "gone.png", "c": "notes.txt", "d": "big.jpg"}, tmp_path) == [
        f"b: media gone.png is not in {tmp_path}",
        "c: media notes.txt must be a .jpg, .png or .webp picture",
        "d: media big.jpg is over 10 MB",
    ]
