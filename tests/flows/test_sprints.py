"""Tier 2: monthly sprints — an admin creates one, participants get the kickoff, /sprint shows progress and rank
with ties and the gap to the next rank, the mid-sprint nudge and the 48-hour push arrive at the right (moved-clock)
times exactly once, the end records the standings and `sprint_won` events, announces the winners to every
participant and sums up for admins; partners cannot create sprints; bad input is refused with nothing changed;
admins end or cancel a sprint; team and GMV sprints count the right partners and money."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from aiogram.types import User
from sqlalchemy import func, select

from bot.domain.events import EventSource, EventType
from bot.scheduling import running_with
from bot.scheduling.jobs import tick_sprints
from bot.services.registry import UseCases
from storage.models import AuditEntry, Event, Order, OutboxMessage, Partner, Sprint, SprintResult
from storage.uow import UnitOfWork
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

ADMIN = tg_user(ADMIN_ID, "Ada", lang="en")
ALICE = tg_user(401, "Alice", lang="en")
BOB = tg_user(402, "Bob", lang="en")
CAROL = tg_user(403, "Carol", lang="en")
DAN = tg_user(404, "Dan", lang="en")
ZOE = tg_user(405, "Zoe", lang="zh")
EVERYONE = [ADMIN, ALICE, BOB, CAROL, DAN, ZOE]

# The harness starts at 2026-11-25 09:00 in Shanghai (the deployment's zone, nobody set their own).
NOVEMBER = "November push | shares | 5 | 2026-11-26 | 2026-11-30 | Top 3: a tea set; target: a ¥50 voucher"
KICKOFF_AT = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)  # 2026-11-26 00:00 local
MID_AT = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)  # halfway: 2026-11-28 12:00 local
FINAL_AT = datetime(2026, 11, 28, 16, 0, tzinfo=UTC)  # 48 h before the end: 2026-11-29 00:00 local
END_AT = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)  # 2026-12-01 00:00 local


@contextmanager
def job_runtime(h: BotHarness) -> Iterator[None]:
    runtime = h.job_runtime()
    with running_with(runtime):
        yield


async def tick(h: BotHarness) -> None:
    with job_runtime(h):
        await tick_sprints()


async def said(h: BotHarness, user: User, text: str) -> str:
    h.session.clear()
    await h.send(user, text)
    return str(h.session.of("sendMessage", user.id)[-1].text)


async def delivered(h: BotHarness, at: datetime | None = None) -> dict[int, list[str]]:
    """Move the clock (when given), send what is due, and return the texts each chat got."""
    if at is not None:
        h.clock.set(at)
    h.session.clear()
    while await h.drain_outbox():  # one message per chat per round
        h.clock.advance(timedelta(seconds=2))
    got: dict[int, list[str]] = {}
    for call in h.session.of("sendMessage"):
        got.setdefault(int(call.chat_id or 0), []).append(call.text)
    return got


async def ids(h: BotHarness) -> dict[int, int]:
    async with h.sessionmaker() as s:
        return {int(tg): int(p) for tg, p in (await s.execute(select(Partner.tg_user_id, Partner.id))).all()}


async def shares(h: BotHarness, user: User, at: datetime, count: int = 1, type: str = EventType.SHARED) -> None:
    pid = (await ids(h))[user.id]
    async with UnitOfWork(h.sessionmaker) as uow:
        for n in range(count):
            uow.events.add(
                partner_id=pid, type=type, occurred_at=at + timedelta(minutes=n), source=EventSource.BOT, payload={}
            )


async def count(h: BotHarness, model: Any, *where: Any) -> int:
    async with h.sessionmaker() as s:
        return int((await s.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


async def outbox_keys(h: BotHarness) -> list[str]:
    async with h.sessionmaker() as s:
        return sorted((await s.execute(select(OutboxMessage.dedupe_key))).scalars())


async def start_everyone(h: BotHarness, users: list[User] = EVERYONE) -> None:
    for user in users:
        await h.send(user, "/start")
    await h.drain_outbox()


async def test_a_sprint_from_kickoff_to_winners(harness: BotHarness) -> None:
    h = harness
    await start_everyone(h)
    created = await said(h, ADMIN, f"/sprint new {NOVEMBER}")
    assert created.startswith("✅ Sprint #")
    assert "shares, target 5 shares each, from 2026-11-26 00:00 to 2026-11-30 23:59, for everyone" in created
    async with h.sessionmaker() as s:
        sprint = (await s.execute(select(Sprint))).scalar_one()
        audit = (await s.execute(select(AuditEntry).where(AuditEntry.action == "sprint_add"))).scalar_one()
    assert (sprint.starts_at, sprint.ends_at, sprint.audience) == (KICKOFF_AT, END_AT, "everyone")
    assert (audit.outcome, audit.target, audit.actor_tg_id) == ("ok", f"sprint:{sprint.id}", ADMIN_ID)

    # Nothing before the start; /sprint lists it as coming up.
    await tick(h)
    assert await outbox_keys(h) == []
    upcoming = await said(h, ALICE, "/sprint")
    assert "No sprint is running for you right now" in upcoming
    assert "• <b>November push</b> · shares · from 2026-11-26 00:00 to 2026-11-30 23:59" in upcoming

    # The kickoff at the start, held until the quiet hours end (08:00 local), to all six participants, once.
    h.clock.set(KICKOFF_AT)
    await tick(h)
    await tick(h)
    p = await ids(h)
    assert await outbox_keys(h) == sorted(f"sprint:{sprint.id}:kickoff:{pid}" for pid in p.values())
    assert await delivered(h) == {}
    got = await delivered(h, KICKOFF_AT + timedelta(hours=8))
    assert sorted(got) == sorted(u.id for u in EVERYONE)
    assert got[ALICE.id] == [
        "🚀 <b>The sprint “November push” starts!</b>\nMetric: shares · goal: 5 shares each, from 2026-11-26 00:00 "
        "to 2026-11-30 23:59.\n🎁 Prizes: Top 3: a tea set; target: a ¥50 voucher\nThe top 3 and everyone who "
        "reaches the goal win. Send /sprint any time to see your progress and rank."
    ]
    assert got[ZOE.id][0].startswith("🚀 <b>冲刺「November push」开始啦！</b>\n指标：分享 · 每人目标：5 次分享，")

    # Progress and rank with ties: Alice 3, Bob 3, Carol 1; a share before the start and a lead do not count.
    day1 = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    await shares(h, ALICE, day1, 3)
    await shares(h, BOB, day1, 3)
    await shares(h, CAROL, day1, 1)
    await shares(h, DAN, KICKOFF_AT - timedelta(minutes=1))
    await shares(h, DAN, day1, type=EventType.LEAD_ADDED)
    h.clock.set(day1 + timedelta(hours=1))  # 2026-11-26 11:00 local
    card = await said(h, CAROL, "/sprint")
    assert card == (
        "🏁 <b>November push</b> · shares\n🎯 Target: 5 shares\n▓▓░░░░░░░░ 20%\nYou: <b>1 share</b> · rank 3 of 6\n"
        "📈 2 shares behind #1\n🎁 Prizes: Top 3: a tea set; target: a ¥50 voucher\n"
        "⏳ Ends 2026-11-30 23:59 (4 d 13 h left)"
    )
    assert "You: <b>3 shares</b> · rank 1 of 6\n🥇 You are in the lead. Keep going!" in await said(h, ALICE, "/sprint")
    assert "You: <b>3 shares</b> · rank 1 of 6\n🥇" in await said(h, BOB, "/sprint")
    assert "You: <b>0 shares</b> · rank 4 of 6\n📈 1 share behind #3" in await said(h, DAN, "/sprint")
    assert "你：<b>0 次分享</b> · 第 4 名 / 共 6 人\n📈 距第 3 名还差 1 次分享" in await said(h, ZOE, "/sprint")

    # The mid-sprint nudge at the midpoint, not a minute before, once.
    h.clock.set(MID_AT - timedelta(minutes=1))
    await tick(h)
    assert len(await outbox_keys(h)) == 6
    h.clock.set(MID_AT)
    await tick(h)
    await tick(h)
    assert len(await outbox_keys(h)) == 12
    got = await delivered(h)
    assert sorted(got) == sorted(u.id for u in EVERYONE)
    assert got[CAROL.id][0].startswith("⏱ <b>Halfway through “November push”!</b> Here is where you stand:\n\n🏁")
    assert "rank 3 of 6\n📈 2 shares behind #1" in got[CAROL.id][0]
    assert "⏳ Ends 2026-11-30 23:59 (2 d 12 h left)" in got[CAROL.id][0]

    # The final push 48 hours before the end, once (it waits for the morning: 00:00 local is in quiet hours).
    await shares(h, DAN, MID_AT + timedelta(hours=1), 5)
    await shares(h, CAROL, MID_AT + timedelta(hours=1), 2)
    h.clock.set(FINAL_AT)
    await tick(h)
    await tick(h)
    assert len(await outbox_keys(h)) == 18
    got = await delivered(h, FINAL_AT + timedelta(hours=8))
    assert sorted(got) == sorted(u.id for u in EVERYONE)
    assert got[DAN.id][0].startswith("🔥 <b>48 hours left in “November push”!</b> One last push:")
    assert "You: <b>5 shares</b> · rank 1 of 6" in got[DAN.id][0]
    assert "⏳ Ends 2026-11-30 23:59 (1 d 16 h left)" in got[DAN.id][0]

    # The end: Alice 6, Dan 5, Bob 3, Carol 3 (tied at rank 3), Ada and Zoe 0. Winners: ranks 1, 2, 3, 3; Alice and
    # Dan reached the target too. A share after the end does not count.
    await shares(h, ALICE, FINAL_AT + timedelta(hours=10), 3)
    await shares(h, BOB, END_AT, 4)
    h.clock.set(END_AT - timedelta(minutes=1))
    await tick(h)
    assert await count(h, SprintResult) == 0
    h.clock.set(END_AT)
    await tick(h)
    await tick(h)
    async with h.sessionmaker() as s:
        results = {
            int(r.partner_id): (r.value, r.rank, r.winner)
            for r in (await s.execute(select(SprintResult).where(SprintResult.sprint_id == sprint.id))).scalars()
        }
        won = await s.execute(select(Event).where(Event.type == EventType.SPRINT_WON).order_by(Event.partner_id))
        won_events = [(int(e.partner_id or 0), e.payload) for e in won.scalars()]
        status = (await s.execute(select(Sprint.status))).scalar_one()
    assert results == {
        p[ALICE.id]: (6, 1, True),
        p[DAN.id]: (5, 2, True),
        p[BOB.id]: (3, 3, True),
        p[CAROL.id]: (3, 3, True),
        p[ADMIN_ID]: (0, 5, False),
        p[ZOE.id]: (0, 5, False),
    }
    assert sorted(won_events, key=lambda e: e[0]) == sorted(
        [
            (p[ALICE.id], {"sprint_id": sprint.id, "rank": 1, "metric": "shares", "value": 6}),
            (p[DAN.id], {"sprint_id": sprint.id, "rank": 2, "metric": "shares", "value": 5}),
            (p[BOB.id], {"sprint_id": sprint.id, "rank": 3, "metric": "shares", "value": 3}),
            (p[CAROL.id], {"sprint_id": sprint.id, "rank": 3, "metric": "shares", "value": 3}),
        ],
        key=lambda e: e[0],
    )
    assert status == "ended"
    assert len(await outbox_keys(h)) == 18 + 6 + 1  # results to everyone, the summary to the admin

    got = await delivered(h, END_AT + timedelta(hours=8))
    winners = "Winners:\n#1 Alice · 6 shares\n#2 Dan · 5 shares\n#3 Bob · 3 shares\n#3 Carol · 3 shares\n"
    assert got[ALICE.id] == [
        "🏆 <b>The sprint “November push” is over.</b>\n" + winners + "🎉 You are among the winners with 6 shares "
        "(rank 1 of 6)! Prizes: Top 3: a tea set; target: a ¥50 voucher. An admin will be in touch."
    ]
    assert got[ZOE.id][0].endswith("你：0 次分享，第 5 名 / 共 6 人。感谢参与！")
    assert "第 3 名 Carol · 3 次分享" in got[ZOE.id][0]
    announcement, summary = sorted(got[ADMIN_ID], key=lambda text: text.startswith("📊"))
    assert summary.startswith(
        f"📊 Sprint #{sprint.id} “November push” ended: 6 participants, 4 winners, 2 reached the target; "
        "17 shares in all."
    )
    assert announcement.endswith("You: 0 shares, rank 5 of 6. Thank you for taking part!")

    # Nothing more is ever sent for it; /sprint no longer shows it.
    await tick(h)
    h.clock.advance(timedelta(days=3))
    await tick(h)
    assert len(await outbox_keys(h)) == 25
    assert (await said(h, ALICE, "/sprint")).startswith("🏁 No sprint is running for you right now.")
    listing = await said(h, ADMIN, "/sprint list")
    assert f"#{sprint.id} <b>November push</b> · shares · target 5 shares" in listing
    assert "· everyone · 🏆 ended\n   winners: 4" in listing


async def test_a_partner_cannot_create_end_or_list_sprints(harness: BotHarness) -> None:
    h = harness
    await start_everyone(h, [ADMIN, ALICE])
    refusal = h.t("en", "denied.admin")
    assert await said(h, ALICE, f"/sprint new {NOVEMBER}") == refusal
    assert await said(h, ALICE, "/sprint list") == refusal
    assert await said(h, ALICE, "/sprint end 1") == refusal
    assert await count(h, Sprint) == 0
    async with h.sessionmaker() as s:
        refused = [
            (a.action, a.outcome) for a in (await s.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars()
        ]
    assert refused == [("sprint new", "denied"), ("sprint list", "denied"), ("sprint end", "denied")]
    assert await said(h, ALICE, "/sprint please") == h.t("en", "sprints.partner_usage")


async def test_bad_input_is_refused_with_nothing_changed(harness: BotHarness) -> None:
    h = harness
    await start_everyone(h, [ADMIN])
    t = h.translator.texts("en")
    cases = {
        "/sprint new": t("sprints.usage"),
        "/sprint help": t("sprints.usage"),
        "/sprint start": t("sprints.usage"),
        "/sprint new X | likes | 5 | 2026-11-26 | 2026-11-30 | p": t("sprints.error.metric", value="likes"),
        "/sprint new X | shares | 0 | 2026-11-26 | 2026-11-30 | p": t("sprints.error.target", value="0"),
        "/sprint new X | shares | five | 2026-11-26 | 2026-11-30 | p": t("sprints.error.target", value="five"),
        "/sprint new X | gmv | 1.234 | 2026-11-26 | 2026-11-30 | p": t("sprints.error.target_money", value="1.234"),
        "/sprint new X | shares | 5 | 2026-11-31 | 2026-12-30 | p": t("sprints.error.date", value="2026-11-31"),
        "/sprint new X | shares | 5 | 2026-11-24 | 2026-11-30 | p": t("sprints.error.past", value="2026-11-24"),
        "/sprint new X | shares | 5 | 2026-11-30 | 2026-11-26 | p": t(
            "sprints.error.order", first="2026-11-30", last="2026-11-26"
        ),
        "/sprint new X | shares | 5 | 2026-11-26 | 2026-11-30 | p | team:NOBODY99": t(
            "sprints.error.team", value="NOBODY99"
        ),
        "/sprint end 77": t("sprints.not_found", id=77),
        "/sprint end soon": t("sprints.usage"),
    }
    for command, answer in cases.items():
        assert await said(h, ADMIN, command) == answer, command
    assert await count(h, Sprint) == 0
    assert await count(h, AuditEntry, AuditEntry.action.like("sprint%")) == 0
    assert await outbox_keys(h) == []
    assert await said(h, ADMIN, "/sprint list") == t("sprints.list_empty")


async def test_admins_end_a_running_sprint_early_and_cancel_an_upcoming_one(harness: BotHarness) -> None:
    h = harness
    await start_everyone(h, [ADMIN, ALICE, BOB])
    await said(h, ADMIN, "/sprint new Today | shares | 2 | 2026-11-25 | 2026-11-30 | a cup")
    await said(h, ADMIN, "/sprint new Later | shares | 2 | 2026-12-01 | 2026-12-31 | a mug")
    async with h.sessionmaker() as s:
        today, later = (await s.execute(select(Sprint).order_by(Sprint.id))).scalars().all()
    await tick(h)  # the first started at 00:00 today: its kickoff goes now
    assert len(await outbox_keys(h)) == 3
    await shares(h, ALICE, h.clock.now(), 2)
    h.clock.advance(timedelta(hours=1))
    await shares(h, BOB, h.clock.now() + timedelta(minutes=5))  # after the early end: not counted

    ended = await said(h, ADMIN, f"/sprint end {today.id}")
    assert ended == h.t("en", "sprints.ended", id=today.id, title="Today")
    cancelled = await said(h, ADMIN, f"/sprint end #{later.id}")
    assert cancelled == h.t("en", "sprints.cancelled", id=later.id, title="Later")
    assert await said(h, ADMIN, f"/sprint end {later.id}") == h.t(
        "en", "sprints.already_over", id=later.id, title="Later"
    )
    h.clock.advance(timedelta(minutes=10))
    await tick(h)
    async with h.sessionmaker() as s:
        results = [(r.value, r.rank, r.winner) for r in (await s.execute(select(SprintResult))).scalars()]
        actions = list((await s.execute(select(AuditEntry.action).order_by(AuditEntry.id))).scalars())
    assert sorted(results, reverse=True) == [(2, 1, True), (0, 2, False), (0, 2, False)]
    assert actions == ["sprint_add", "sprint_add", "sprint_end", "sprint_cancel"]
    keys = await outbox_keys(h)
    assert sum(":results:" in k for k in keys) == 3
    assert not any(k.startswith(f"sprint:{later.id}:") for k in keys)
    # The cancelled one never starts.
    h.clock.set(datetime(2026, 12, 2, 0, 0, tzinfo=UTC))
    await tick(h)
    assert not any(k.startswith(f"sprint:{later.id}:") for k in await outbox_keys(h))


async def test_a_team_sprint_on_gmv_counts_the_team_and_money_net_of_refunds(harness: BotHarness) -> None:
    h = harness
    await start_everyone(h, [ADMIN, ALICE])
    p = await ids(h)
    async with h.sessionmaker() as s:
        code = (await s.execute(select(Partner.invite_code).where(Partner.id == p[ALICE.id]))).scalar_one()
    await h.send(BOB, f"/start {code}")  # Bob is in Alice's team; Carol is not
    await h.send(CAROL, "/start")
    p = await ids(h)
    created = await said(
        h, ADMIN, f"/sprint new Team GMV | gmv | 1000 | 2026-11-25 | 2026-11-30 | dinner | team:{code}"
    )
    assert f"target ¥1,000.00 each, from 2026-11-25 00:00 to 2026-11-30 23:59, for the team of {code}." in created
    await tick(h)
    keys = await outbox_keys(h)
    assert sorted(k.rsplit(":", 1)[1] for k in keys if ":kickoff:" in k) == sorted([str(p[ALICE.id]), str(p[BOB.id])])

    async with UnitOfWork(h.sessionmaker) as uow:
        for n, (who, amount, refunded, status) in enumerate(
            [
                (BOB, 80000, 0, "settled"),
                (BOB, 50000, 20000, "settled"),
                (BOB, 90000, 0, "held"),
                (CAROL, 99000, 0, "settled"),
            ]
        ):
            uow.session.add(
                Order(
                    source="api",
                    external_id=f"O{n}",
                    fingerprint="x",
                    customer_id="c",
                    partner_id=p[who.id],
                    attribution="partner_code",
                    currency="CNY",
                    amount_minor=amount,
                    refunded_minor=refunded,
                    items=[],
                    paid_at=h.clock.now(),
                    status=status,
                    created_at=h.clock.now(),
                )
            )
    card = await said(h, BOB, "/sprint")
    assert "🎯 Target: ¥1,000.00\n▓▓▓▓▓▓▓▓▓▓ 110%\nYou: <b>¥1,100.00</b> · rank 1 of 2" in card
    assert "📈 ¥1,100.00 behind #1" in await said(h, ALICE, "/sprint")
    assert (await said(h, CAROL, "/sprint")).startswith("🏁 No sprint is running for you right now.")

    async with UnitOfWork(h.sessionmaker) as uow:
        window = await UseCases(uow, h.ctx).sprints.current_window(h.clock.now())
        sprint_id = (await uow.session.execute(select(Sprint.id))).scalar_one()
    assert window == (sprint_id, datetime(2026, 11, 24, 16, 0, tzinfo=UTC), datetime(2026, 11, 30, 16, 0, tzinfo=UTC))
    async with UnitOfWork(h.sessionmaker) as uow:
        assert await UseCases(uow, h.ctx).sprints.current_window(datetime(2026, 12, 1, tzinfo=UTC)) is None


async def test_stages_go_out_in_batches_each_partner_once(harness: BotHarness) -> None:
    """Batches of 2 over 6 participants: every stage reaches everyone once, the results are computed once, and a
    batch that stopped halfway is finished before the next stage starts."""
    h = harness
    await start_everyone(h)
    await said(h, ADMIN, f"/sprint new {NOVEMBER}")
    p = await ids(h)

    async def batch() -> int:
        async with UnitOfWork(h.sessionmaker) as uow:
            return await UseCases(uow, h.ctx).sprints.tick(limit=2)

    h.clock.set(KICKOFF_AT)
    assert [await batch() for _ in range(4)] == [2, 2, 2, 0]
    await shares(h, ALICE, KICKOFF_AT + timedelta(hours=1), 2)
    h.clock.set(MID_AT)
    assert await batch() == 2  # the mid nudge is half-way when the end comes (an admin ends it early)
    h.clock.set(MID_AT + timedelta(hours=1))
    async with UnitOfWork(h.sessionmaker) as uow:
        sprint = (await uow.session.execute(select(Sprint))).scalar_one()
        sprint.ends_at = h.clock.now()
    assert [await batch() for _ in range(6)] == [2, 2, 2, 2, 2, 0]  # mid finished (4 more), then the results
    keys = await outbox_keys(h)
    for stage in ("kickoff", "mid", "results"):
        assert sorted(k for k in keys if f":{stage}:" in k) == sorted(
            f"sprint:{sprint.id}:{stage}:{n}" for n in p.values()
        )
    assert not any(":final:" in k for k in keys)  # the shortened sprint has no final push
    assert await count(h, SprintResult) == 6
    assert await count(h, Event, Event.type == EventType.SPRINT_WON) == 1
    async with h.sessionmaker() as s:
        done = (await s.execute(select(Sprint.stages_done, Sprint.status, Sprint.stage_cursor))).one()
    assert (sorted(done[0]), done[1], done[2]) == (["kickoff", "mid", "results"], "ended", 0)
