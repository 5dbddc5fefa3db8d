"""Tier 2: tiered operations (分层运营) around playbooks/rhythm.py: the daily `segments:daily` run puts partners in
segments from tables of event histories, records transitions as events, and the `rhythm:tick` sweep sends each
segment's touches through the outbox with the low segment's cadence (every 3 days, stopping after 3 unanswered
tries, resuming after an action); re-runs send nothing twice; admins see the segment mix and pause the rhythm.

The harness's clock starts at 2026-11-25 01:00 UTC, 09:00 in Asia/Shanghai (the deployment's zone here)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from bot.domain.events import EventSource, EventType
from bot.scheduling import running_with
from bot.scheduling.jobs import segment_partners, tick_rhythm
from bot.services.rhythm import load_rhythms
from storage.models import Event, Order, OutboxMessage, Partner, RhythmProgress
from storage.uow import UnitOfWork
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

ADMIN = tg_user(ADMIN_ID, "Boss", lang="en")
TIERED = "tiered_ops"


def enable(h: BotHarness) -> None:
    h.ctx.rhythms = load_rhythms()


async def segment(h: BotHarness) -> None:
    with running_with(h.job_runtime()):
        await segment_partners()


async def tick(h: BotHarness) -> None:
    with running_with(h.job_runtime()):
        await tick_rhythm()


def local(day: int, hhmm: str) -> datetime:
    """Day `day` after the start at `hhmm` Shanghai time (UTC+8), in UTC."""
    hours, minutes = (int(x) for x in hhmm.split(":"))
    return datetime(2026, 11, 25, tzinfo=UTC) + timedelta(days=day, hours=hours - 8, minutes=minutes)


async def move_to(h: BotHarness, day: int, hhmm: str) -> None:
    target = local(day, hhmm)
    assert target >= h.clock.now()
    h.clock.advance(target - h.clock.now())


async def partner_id(h: BotHarness, tg_id: int) -> int:
    async with h.sessionmaker() as s:
        return int((await s.execute(select(Partner.id).where(Partner.tg_user_id == tg_id))).scalar_one())


async def record(h: BotHarness, pid: int, type: str, at: datetime) -> None:
    async with UnitOfWork(h.sessionmaker) as uow:
        uow.events.add(partner_id=pid, type=type, occurred_at=at, source=EventSource.BOT)


async def add_orders(h: BotHarness, pid: int, paid_at: list[datetime]) -> None:
    async with UnitOfWork(h.sessionmaker) as uow:
        for n, at in enumerate(paid_at):
            uow.session.add(
                Order(
                    source="api",
                    external_id=f"R{pid}-{n}",
                    fingerprint="x",
                    customer_id="cust",
                    partner_id=pid,
                    attribution="partner_code",
                    currency="CNY",
                    amount_minor=10000,
                    refunded_minor=0,
                    items=[],
                    paid_at=at,
                    status="settled",
                    created_at=at,
                )
            )


async def segments(h: BotHarness) -> dict[int, str | None]:
    async with h.sessionmaker() as s:
        return {int(p): seg for p, seg in (await s.execute(select(Partner.id, Partner.segment))).all()}


async def changes(h: BotHarness, pid: int) -> list[tuple[str | None, str, str]]:
    """(previous, segment, source) of the partner's segment_changed events, in order."""
    async with h.sessionmaker() as s:
        rows = (
            await s.execute(
                select(Event.payload, Event.source)
                .where(Event.partner_id == pid, Event.type == EventType.SEGMENT_CHANGED)
                .order_by(Event.id)
            )
        ).all()
    return [(p["previous"], p["segment"], str(src)) for p, src in rows]


async def outbox_count(h: BotHarness) -> int:
    async with h.sessionmaker() as s:
        return len((await s.execute(select(OutboxMessage.id))).all())


class Inbox:
    """What each chat received from the outbox (the sender's calls), in order, with inline buttons."""

    def __init__(self, h: BotHarness) -> None:
        self.h = h
        self.got: dict[int, list[str]] = {}
        self.buttons: dict[int, list[list[str]]] = {}

    async def drain(self) -> None:
        before = len(self.h.calls)
        for _ in range(3):  # a chat gets one message a second (the sender's per-chat pacing)
            await self.h.drain_outbox()
            await self.h.pass_time(1.1)
        for call in self.h.calls[before:]:
            if call.method == "sendMessage" and call.chat_id is not None:
                self.got.setdefault(call.chat_id, []).append(call.text)
                self.buttons.setdefault(call.chat_id, []).append([b["callback_data"] for b in call.buttons()])


# --- segments from tables of event histories ------------------------------------------------------------------------

D = timedelta(days=1)
H = timedelta(hours=1)

HISTORIES: list[tuple[str, list[tuple[str, timedelta]], list[timedelta], str]] = [
    # (case, events as (type, how long before now), orders paid how long before now, expected segment)
    ("nothing at all", [], [], "low"),
    ("five shares in 7 days", [(EventType.SHARED, n * D + H) for n in range(5)], [], "high"),
    ("four shares in 7 days", [(EventType.SHARED, n * D + H) for n in range(4)], [], "mid"),
    ("three follow-ups in 7 days", [(EventType.FOLLOWED_UP, n * D + H) for n in range(3)], [], "high"),
    ("one share in 7 days", [(EventType.SHARED, 2 * D)], [], "mid"),
    ("one share just inside 7 days", [(EventType.SHARED, 7 * D - H)], [], "mid"),
    ("one share just outside 7 days", [(EventType.SHARED, 7 * D + H)], [], "low"),
    ("three shares 10 to 20 days ago", [(EventType.SHARED, d * D) for d in (10, 15, 20)], [], "mid"),
    ("two shares 10 to 20 days ago", [(EventType.SHARED, d * D) for d in (10, 20)], [], "low"),
    ("two orders in 30 days", [], [3 * D, 25 * D], "high"),
    ("one order in 30 days", [], [25 * D], "mid"),
    ("two orders over 30 days ago", [], [31 * D, 40 * D], "low"),
    ("clicks, leads and content only", [(EventType.LINK_CLICKED, D), (EventType.LEAD_ADDED, D)], [], "low"),
]


async def test_segments_from_tables_of_event_histories(harness: BotHarness) -> None:
    h = harness
    enable(h)
    now = h.clock.now()
    ids: dict[str, int] = {}
    for n, (case, events, orders, _) in enumerate(HISTORIES):
        await h.send(tg_user(500 + n, f"P{n}", lang="en"), "/start")
        pid = ids[case] = await partner_id(h, 500 + n)
        for type, ago in events:
            await record(h, pid, type, now - ago)
        await add_orders(h, pid, [now - ago for ago in orders])

    await segment(h)
    got = await segments(h)
    assert {case: got[ids[case]] for case, *_ in HISTORIES} == {case: want for case, *_, want in HISTORIES}
    for case, *_, want in HISTORIES:
        assert await changes(h, ids[case]) == [(None, want, EventSource.SCHEDULER)], case

    events_before = await changes(h, ids["nothing at all"])
    await segment(h)  # the same day again: nothing changes, nothing is recorded twice
    assert await segments(h) == got
    assert await changes(h, ids["nothing at all"]) == events_before


async def test_a_partner_slipping_high_mid_low_is_recorded_and_shown_to_admins(harness: BotHarness) -> None:
    h = harness
    enable(h)
    await h.send(ADMIN, "/start")
    user = tg_user(601, "Sam", lang="en")
    await h.send(user, "/start")
    pid = await partner_id(h, user.id)
    for n in range(5):
        await record(h, pid, EventType.SHARED, h.clock.now() - n * H)

    await segment(h)  # day 0: five shares this week
    await move_to(h, 8, "02:30")  # the shares are 8 days old: 5 in 30 days
    await segment(h)
    await move_to(h, 31, "02:30")  # and now over 30 days old
    await segment(h)
    assert await changes(h, pid) == [
        (None, "high", EventSource.SCHEDULER),
        ("high", "mid", EventSource.SCHEDULER),
        ("mid", "low", EventSource.SCHEDULER),
    ]
    assert (await segments(h))[pid] == "low"

    await h.send(ADMIN, "/playbooks")
    text = h.session.texts(ADMIN_ID)[-1]
    t = h.translator.texts("en")
    expected = "\n".join(
        [
            t("rhythm.admin.item", name="Tiered operations", playbook=TIERED, paused=""),
            t("rhythm.admin.segment", segment="High activity", count=0),
            t("rhythm.admin.segment", segment="Medium activity", count=0),
            t("rhythm.admin.segment", segment="Low activity", count=2),
            t("rhythm.admin.totals", moved_down=1, stopped=0, paused_partners=0),
        ]
    )
    assert text.endswith(expected), text  # Sam moved down today (mid -> low); the admin is low too


# --- touches ----------------------------------------------------------------------------------------------------------


async def test_touches_per_segment_with_exact_texts_and_no_repeats(harness: BotHarness) -> None:
    h = harness
    enable(h)
    inbox = Inbox(h)
    high, mid, zh_low = tg_user(701, "Hana", lang="en"), tg_user(702, "Mia", lang="en"), tg_user(703, "Li", lang="zh")
    for user in (high, mid, zh_low):
        await h.send(user, "/start")
    for n in range(5):
        await record(h, await partner_id(h, high.id), EventType.SHARED, h.clock.now() - n * H)
    await record(h, await partner_id(h, mid.id), EventType.FOLLOWED_UP, h.clock.now() - H)

    await segment(h)  # 09:00 local: segments set, touches wait for the rhythm's send time (10:00)
    await tick(h)
    await inbox.drain()
    assert inbox.got == {}
    await move_to(h, 0, "10:00")
    await tick(h)
    await inbox.drain()
    en, zh = h.translator.texts("en"), h.translator.texts("zh")
    assert inbox.got == {
        high.id: [en("playbooks.tiered.high.challenge"), en("playbooks.tiered.high.advanced")],
        mid.id: [en("playbooks.tiered.mid.tip"), en("playbooks.tiered.mid.goal")],
        zh_low.id: [zh("playbooks.tiered.low.reactivate")],
    }
    assert inbox.buttons[high.id] == [["pbk:cmd:today"], ["pbk:cmd:learn"]]
    assert inbox.buttons[mid.id] == [[], ["pbk:cmd:today"]]
    # the command button answers with the command to send
    await h.press(high, "pbk:cmd:today")
    assert h.session.texts(high.id)[-1] == en("playbooks.command_hint", command="/today")

    # re-running the same day sends nothing twice: a second sweep, a forced wake-up, and the daily run again
    sent = await outbox_count(h)
    await tick(h)
    async with UnitOfWork(h.sessionmaker) as uow:
        await uow.session.execute(update(RhythmProgress).values(wake_at=h.clock.now()))
    await tick(h)
    await segment(h)
    await tick(h)
    await inbox.drain()
    assert await outbox_count(h) == sent
    assert sum(len(v) for v in inbox.got.values()) == 5

    # the mid tip comes again every 3 days, the goal and the high touches weekly; on day 7 both slip
    for day in range(1, 8):
        await move_to(h, day, "02:30")
        await segment(h)
        await move_to(h, day, "10:00")
        await tick(h)
        await inbox.drain()
    tip, goal = en("playbooks.tiered.mid.tip"), en("playbooks.tiered.mid.goal")
    # Mia's follow-up is over 7 days old at the night's run of day 7: low, and the reactivation at 10:00
    assert inbox.got[mid.id][2:] == [tip, tip, en("playbooks.tiered.low.reactivate")]
    # Hana's shares (day 0, 05:00-09:00) were still in the 7 days at 02:30; at 10:00 the sweep finds her mid
    assert inbox.got[high.id][2:] == [tip, goal]
    hana, mia = await partner_id(h, high.id), await partner_id(h, mid.id)
    scheduler = EventSource.SCHEDULER
    assert await changes(h, hana) == [(None, "high", scheduler), ("high", "mid", scheduler)]
    assert await changes(h, mia) == [(None, "mid", scheduler), ("mid", "low", scheduler)]
    assert (await segments(h))[hana] == "mid"


async def test_low_segment_every_three_days_stops_after_three_unanswered_and_resumes(harness: BotHarness) -> None:
    h = harness
    enable(h)
    inbox = Inbox(h)
    await h.send(ADMIN, "/start")
    user = tg_user(801, "Lou", lang="en")
    await h.send(user, "/start")
    pid = await partner_id(h, user.id)
    reactivate = h.translator.texts("en")("playbooks.tiered.low.reactivate")

    sends: list[int] = []
    for day in range(15):
        if day > 0:
            await move_to(h, day, "02:30")
        await segment(h)
        for hhmm in ("10:00", "10:30", "12:00", "18:00"):
            await move_to(h, day, hhmm)
            if (day, hhmm) == (9, "12:00"):  # Lou adds a prospect: an answer that does not change the segment
                await record(h, pid, EventType.LEAD_ADDED, h.clock.now())
            await tick(h)
        before = len(inbox.got.get(user.id, []))
        await inbox.drain()
        sends += [day] * (len(inbox.got.get(user.id, [])) - before)
        if day in (9, 11):  # the admin (low too) never answers; Lou's touches stop on day 9 and resume
            await h.send(ADMIN, "/playbooks")
            stopped = 2 if day == 9 else 1
            totals = h.t("en", "rhythm.admin.totals", moved_down=0, stopped=stopped, paused_partners=0)
            assert h.session.texts(ADMIN_ID)[-1].endswith(totals)

    # days 0, 3, 6; day 9 stopped (3 unanswered); the prospect added on day 9 answers them: day 10, then day 13
    assert sends == [0, 3, 6, 10, 13]
    assert set(inbox.got[user.id]) == {reactivate}
    assert await changes(h, pid) == [(None, "low", EventSource.SCHEDULER)]


async def test_pause_and_resume_for_everyone_and_for_one_partner(harness: BotHarness) -> None:
    h = harness
    enable(h)
    inbox = Inbox(h)
    await h.send(ADMIN, "/start")
    ann, bob = tg_user(901, "Ann", lang="en"), tg_user(902, "Bob", lang="en")
    for user in (ann, bob):
        await h.send(user, "/start")
    await segment(h)

    await h.send(ADMIN, f"/playbooks pause {TIERED}")
    assert h.session.texts(ADMIN_ID)[-1] == h.t("en", "playbooks.admin.paused_all", playbook=TIERED)
    await move_to(h, 0, "10:00")
    await tick(h)
    await inbox.drain()
    assert inbox.got == {}
    await h.send(ADMIN, "/playbooks")
    assert h.t("en", "playbooks.admin.paused_mark") in h.session.texts(ADMIN_ID)[-1]

    async with h.sessionmaker() as s:
        code = (await s.execute(select(Partner.invite_code).where(Partner.tg_user_id == bob.id))).scalar_one()
    await h.send(ADMIN, f"/playbooks pause {TIERED} {code}")
    assert h.session.texts(ADMIN_ID)[-1] == h.t("en", "playbooks.admin.paused_one", playbook=TIERED, who=code)
    await h.press(ADMIN, f"pba:resume:{TIERED}")
    assert h.session.texts(ADMIN_ID)[-1] == h.t("en", "playbooks.admin.resumed_all", playbook=TIERED)
    await move_to(h, 0, "10:01")
    await tick(h)
    await inbox.drain()
    reactivate = h.t("en", "playbooks.tiered.low.reactivate")
    assert inbox.got == {ann.id: [reactivate], ADMIN_ID: [reactivate]}
    await h.send(ADMIN, "/playbooks")
    totals = h.t("en", "rhythm.admin.totals", moved_down=0, stopped=0, paused_partners=1)
    assert h.session.texts(ADMIN_ID)[-1].endswith(totals)

    await h.send(ADMIN, f"/playbooks resume {TIERED} {code}")
    await move_to(h, 0, "10:02")
    await tick(h)
    await inbox.drain()
    assert inbox.got[bob.id] == [reactivate]


@pytest.mark.parametrize("who", ["@nobody", "ZZZZZZ"])
async def test_bad_pause_targets_and_partners_change_nothing(harness: BotHarness, who: str) -> None:
    h = harness
    enable(h)
    await h.send(ADMIN, "/start")
    partner = tg_user(950, "Pat", lang="en")
    await h.send(partner, "/start")
    await h.send(partner, f"/playbooks pause {TIERED}")
    assert h.session.texts(partner.id)[-1] == h.t("en", "denied.admin")
    await h.send(ADMIN, "/playbooks")  # before the first daily run nobody is segmented
    assert h.t("en", "rhythm.admin.unsegmented", count=2) in h.session.texts(ADMIN_ID)[-1]
    await h.send(ADMIN, f"/playbooks pause {TIERED} {who}")
    assert h.session.texts(ADMIN_ID)[-1] == h.t("en", "playbooks.admin.not_in_playbook", who=who)
    async with h.sessionmaker() as s:
        assert (await s.execute(select(RhythmProgress.id))).all() == []
