"""Tier 2: streaks (tonight's at-risk reminder, freezes), badges with icons (awarded a minute after the event that
earns them) and level changes told to the upline, through the real jobs, handlers and outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update

from bot.domain.events import EventSource, EventType
from bot.scheduling import running_with
from bot.scheduling.jobs import evaluate_recent_levels, sweep_streaks
from bot.services.ledger import DEFAULT_PLAN, SHIPPED_PLANS, SettlementService, checksum
from storage.models import Event, Order, OutboxMessage, Partner, PartnerBadge, RuleVersion
from storage.uow import UnitOfWork
from tests.support.harness import BotHarness, tg_user

SHANGHAI = ZoneInfo("Asia/Shanghai")
LONDON = ZoneInfo("Europe/London")
ALICE = tg_user(501, "Alice", lang="en")
BOB = tg_user(502, "Bob", lang="en")
CAROL = tg_user(503, "Carol", lang="en")
DAN = tg_user(504, "Dan", lang="en")
EVE = tg_user(505, "Eve", lang="en")
LI = tg_user(506, "Li", lang="zh")


async def sweep(h: BotHarness) -> None:
    with running_with(h.job_runtime()):
        await sweep_streaks()


async def evaluate_recent(h: BotHarness) -> None:
    with running_with(h.job_runtime()):
        await evaluate_recent_levels()


def at(zone: ZoneInfo, day: int, hour: int, minute: int = 0) -> datetime:
    """A local time in November 2026, in UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=zone).astimezone(UTC)


async def join(h: BotHarness, user: Any, code: str | None = None) -> int:
    await h.send(user, f"/start {code}" if code else "/start")
    async with h.sessionmaker() as s:
        return int((await s.execute(select(Partner.id).where(Partner.tg_user_id == user.id))).scalar_one())


async def code_of(h: BotHarness, partner_id: int) -> str:
    async with h.sessionmaker() as s:
        return str((await s.execute(select(Partner.invite_code).where(Partner.id == partner_id))).scalar_one())


async def add_events(h: BotHarness, partner_id: int, type: str, times: list[datetime], **payload: Any) -> None:
    async with UnitOfWork(h.sessionmaker) as uow:
        for when in times:
            uow.events.add(partner_id=partner_id, type=type, occurred_at=when, source=EventSource.BOT, payload=payload)


async def texts_to(h: BotHarness, partner_id: int, prefix: str = "") -> list[str]:
    """Texts queued in the outbox for the partner (by dedupe key prefix)."""
    async with h.sessionmaker() as s:
        rows = (
            await s.execute(
                select(OutboxMessage.payload)
                .where(OutboxMessage.partner_id == partner_id, OutboxMessage.dedupe_key.startswith(prefix))
                .order_by(OutboxMessage.id)
            )
        ).scalars()
        return [str(p.get("text", "")) for p in rows]


async def freeze_days(h: BotHarness, partner_id: int) -> list[str]:
    async with h.sessionmaker() as s:
        rows = await s.execute(
            select(Event.payload)
            .where(Event.partner_id == partner_id, Event.type == EventType.STREAK_FREEZE_USED)
            .order_by(Event.id)
        )
        return [str(p["day"]) for p in rows.scalars()]


async def streak_of(h: BotHarness, partner_id: int) -> int:
    async with UnitOfWork(h.sessionmaker) as uow:
        from bot.services.registry import UseCases

        metrics = await UseCases(uow, h.ctx).metrics.for_partners([partner_id], h.clock.now())
    return int(metrics[partner_id]["streak_days"])


def risk_text(h: BotHarness, language: str, days: int, left: int) -> str:
    return f"{h.t(language, 'streaks.risk', days=days)}\n{h.t(language, 'streaks.risk_freezes', left=left)}"


# --- tonight's reminder ----------------------------------------------------------------------------------------


async def test_at_risk_reminder_once_a_day_at_the_local_hour_in_two_time_zones(harness: BotHarness) -> None:
    h = harness
    alice = await join(h, ALICE)  # Asia/Shanghai, the deployment's zone
    bob = await join(h, BOB)
    await h.send(BOB, "/settings tz Europe/London")
    await add_events(h, alice, EventType.SHARED, [at(SHANGHAI, 23, 10), at(SHANGHAI, 24, 9)])
    await add_events(h, bob, EventType.FOLLOWED_UP, [at(LONDON, 24, 18)])
    h.session.clear()

    h.clock.set(at(SHANGHAI, 25, 19, 50))  # 11:50 in London
    await sweep(h)
    assert await texts_to(h, alice, "streak-risk:") == []

    h.clock.set(at(SHANGHAI, 25, 20, 0))
    await sweep(h)
    assert await texts_to(h, alice, "streak-risk:") == [risk_text(h, "en", days=2, left=2)]
    assert await texts_to(h, bob, "streak-risk:") == []  # 12:00 in London
    await h.drain_outbox()
    [call] = h.session.of("sendMessage", ALICE.id)
    assert call.text == risk_text(h, "en", days=2, left=2)

    for minutes in (10, 20, 90):  # later runs the same evening send nothing more
        h.clock.set(at(SHANGHAI, 25, 20, 0) + timedelta(minutes=minutes))
        await sweep(h)
    assert len(await texts_to(h, alice, "streak-risk:")) == 1

    h.clock.set(at(LONDON, 25, 20, 0))  # 04:00 on the 26th in Shanghai
    await sweep(h)
    assert await texts_to(h, bob, "streak-risk:") == [risk_text(h, "en", days=1, left=2)]
    assert len(await texts_to(h, alice, "streak-risk:")) == 1
    await sweep(h)
    assert len(await texts_to(h, bob, "streak-risk:")) == 1

    # the next evening Alice's streak is kept by a freeze (she missed the 25th) and at risk again: one more reminder
    h.clock.set(at(SHANGHAI, 26, 20, 5))
    await sweep(h)
    assert await freeze_days(h, alice) == ["2026-11-25"]
    assert (await texts_to(h, alice, "streak-risk:"))[1:] == [risk_text(h, "en", days=2, left=1)]


async def test_no_reminder_in_quiet_hours_when_active_today_or_without_a_streak(harness: BotHarness) -> None:
    h = harness
    carol = await join(h, CAROL)
    dan = await join(h, DAN)
    eve = await join(h, EVE)
    await h.send(CAROL, "/settings quiet 19:00-23:00")
    await add_events(h, carol, EventType.SHARED, [at(SHANGHAI, 24, 12)])
    await add_events(h, dan, EventType.SHARED, [at(SHANGHAI, 24, 12)])
    await add_events(h, eve, EventType.CONTENT_SENT, [at(SHANGHAI, 24, 12)])  # receiving content is no action
    await h.send(DAN, "/lead Wang")
    await h.send(DAN, "/followup 1 called, sending the brochure")  # a follow-up today keeps the streak

    for hour, minute in ((20, 0), (21, 30), (22, 50)):
        h.clock.set(at(SHANGHAI, 25, hour, minute))
        await sweep(h)
    assert await texts_to(h, carol, "streak-risk:") == []  # her quiet hours, 19:00-23:00
    assert await texts_to(h, dan, "streak-risk:") == []
    assert await texts_to(h, eve, "streak-risk:") == []

    h.clock.set(at(SHANGHAI, 25, 23, 0))  # her quiet hours are over and it is still today
    await sweep(h)
    assert await texts_to(h, carol, "streak-risk:") == [risk_text(h, "en", days=1, left=2)]
    assert await texts_to(h, dan, "streak-risk:") == []
    assert await streak_of(h, dan) == 2


async def test_no_reminder_when_freezes_are_off_and_the_text_says_nothing_of_them(harness: BotHarness) -> None:
    h = harness
    h.ctx.streak_freezes_per_month = 0
    h.ctx.streak_reminder_hour = 18
    li = await join(h, LI)
    await add_events(h, li, EventType.SHARED, [at(SHANGHAI, 24, 12)])
    h.clock.set(at(SHANGHAI, 25, 18, 0))
    await sweep(h)
    assert await texts_to(h, li, "streak-risk:") == [h.t("zh", "streaks.risk", days=1)]
    h.clock.set(at(SHANGHAI, 26, 0, 10))  # the 25th was missed: no freeze, the streak is over
    await sweep(h)
    assert await freeze_days(h, li) == []
    assert await streak_of(h, li) == 0


# --- freezes ---------------------------------------------------------------------------------------------------


async def test_a_freeze_covers_a_missed_day_and_none_left_resets_the_streak(harness: BotHarness) -> None:
    h = harness
    alice = await join(h, ALICE)
    await add_events(h, alice, EventType.SHARED, [at(SHANGHAI, day, 12) for day in (22, 23, 24)])
    assert await streak_of(h, alice) == 3  # the 25th, 09:00: nothing yet today, yesterday's streak lives

    h.clock.set(at(SHANGHAI, 25, 23, 59))
    await sweep(h)
    assert await freeze_days(h, alice) == []  # the day is not over yet
    h.clock.set(at(SHANGHAI, 26, 0, 10))
    await sweep(h)
    await sweep(h)  # a re-run records and sends nothing twice
    assert await freeze_days(h, alice) == ["2026-11-25"]
    assert await texts_to(h, alice, "streak-freeze:") == [h.t("en", "streaks.freeze.used", count=1, days=3, left=1)]
    assert await streak_of(h, alice) == 3  # the frozen day keeps the streak without adding to it

    h.session.clear()
    await h.send(ALICE, "/me")
    [me] = h.session.of("sendMessage", ALICE.id)
    sep = h.t("en", "levels.me.separator")
    line = sep.join(
        [
            h.t("en", "streaks.me.line", days=3),
            h.t("en", "streaks.me.open"),
            h.t("en", "streaks.me.freezes", left=1, total=2),
        ]
    )
    assert line in me.text

    h.clock.set(at(SHANGHAI, 27, 0, 10))  # the 26th missed too: the second freeze
    await sweep(h)
    assert await freeze_days(h, alice) == ["2026-11-25", "2026-11-26"]
    assert await streak_of(h, alice) == 3

    h.clock.set(at(SHANGHAI, 28, 0, 10))  # the 27th missed, no freeze left this month: the streak is over
    await sweep(h)
    assert await freeze_days(h, alice) == ["2026-11-25", "2026-11-26"]
    assert await streak_of(h, alice) == 0
    h.session.clear()
    await h.send(ALICE, "/me")
    [me] = h.session.of("sendMessage", ALICE.id)
    assert sep.join([h.t("en", "streaks.me.none"), h.t("en", "streaks.me.freezes", left=0, total=2)]) in me.text

    await add_events(h, alice, EventType.SHARED, [at(SHANGHAI, 28, 9)])  # a new streak begins
    h.clock.set(at(SHANGHAI, 28, 10))
    assert await streak_of(h, alice) == 1
    h.session.clear()
    await h.send(ALICE, "/me")
    [me] = h.session.of("sendMessage", ALICE.id)
    assert sep.join([h.t("en", "streaks.me.line", days=1), h.t("en", "streaks.me.safe")]) in me.text


async def test_a_missed_day_without_a_streak_or_after_downtime(harness: BotHarness) -> None:
    h = harness
    h.ctx.streak_freezes_per_month = 1
    alice = await join(h, ALICE)
    bob = await join(h, BOB)
    await add_events(h, alice, EventType.FOLLOWED_UP, [at(SHANGHAI, 23, 12)])
    await add_events(h, bob, EventType.SHARED, [at(SHANGHAI, 21, 12)])  # broken on the 22nd already
    h.clock.set(at(SHANGHAI, 26, 0, 10))  # the job was down on the 25th: the 24th and 25th are both missed
    await sweep(h)
    assert await freeze_days(h, alice) == []  # two missed days, one freeze: nothing is spent on a lost streak
    assert await freeze_days(h, bob) == []
    assert await streak_of(h, alice) == 0


# --- badges ----------------------------------------------------------------------------------------------------


async def test_each_new_badge_is_awarded_a_minute_after_the_event_with_its_icon(harness: BotHarness) -> None:
    h = harness
    alice = await join(h, ALICE)
    await evaluate_recent(h)  # the first run places the cursor at the newest event
    now = h.clock.now()

    async def awarded() -> set[str]:
        async with h.sessionmaker() as s:
            rows = await s.execute(select(PartnerBadge.badge).where(PartnerBadge.partner_id == alice))
            return set(rows.scalars())

    await add_events(h, alice, EventType.SHARED, [now])
    await evaluate_recent(h)
    assert await awarded() == {"first_share"}

    await h.send(ALICE, "/lead Wang 13800138000")
    for n in range(9):
        await h.send(ALICE, f"/followup 1 call {n}")
    await evaluate_recent(h)
    assert await awarded() == {"first_share", "first_lead"}
    await h.send(ALICE, "/followup 1 call 10")
    await evaluate_recent(h)
    assert "followups_10" in await awarded()

    await join(h, BOB, await code_of(h, alice))
    await add_events(h, alice, EventType.COURSE_COMPLETED, [now], course="basics")
    await add_events(h, alice, EventType.SPRINT_WON, [now], sprint_id=1, rank=1, metric="shares", value=9)
    async with UnitOfWork(h.sessionmaker) as uow:
        uow.session.add(
            Order(
                source="api", external_id="A1", fingerprint="x", customer_id="c", partner_id=alice,
                attribution="partner_code", currency="CNY", amount_minor=10000, refunded_minor=0, items=[],
                paid_at=now, status="settled", created_at=now,
            )
        )  # fmt: skip
        uow.events.add(partner_id=alice, type=EventType.ORDER_ATTRIBUTED, occurred_at=now, source=EventSource.API)
    await evaluate_recent(h)
    assert await awarded() == {
        "first_share", "first_lead", "followups_10", "first_recruit", "course_graduate", "sprint_winner", "first_sale",
    }  # fmt: skip

    await add_events(h, alice, EventType.SHARED, [now - timedelta(days=d) for d in range(1, 7)])
    await evaluate_recent(h)
    assert "on_fire" in await awarded()  # seven days in a row, today included

    notices = await texts_to(h, alice, "badge:")
    assert h.t("en", "levels.badge", icon="📣", title="First share") in notices
    assert h.t("en", "levels.badge", icon="🔥", title="7-day share streak") in notices
    assert h.t("en", "levels.badge", icon="🏆", title="Sprint winner") in notices
    assert len(notices) == 8

    h.session.clear()
    await h.send(ALICE, "/me")
    [me] = h.session.of("sendMessage", ALICE.id)
    shown = " · ".join(
        [
            "📣 First share", "🔥 7-day share streak", "🎯 First lead", "📞 10 follow-ups", "💰 First deal",
            "🤝 First recruit", "🎓 Course graduate", "🏆 Sprint winner",
        ]
    )  # fmt: skip
    assert h.t("en", "levels.me.badges", badges=shown) in me.text  # the plan's order, each with its icon


async def test_badges_in_chinese_in_me(harness: BotHarness) -> None:
    h = harness
    li = await join(h, LI)
    async with UnitOfWork(h.sessionmaker) as uow:
        await uow.metrics.award_badge(li, "course_graduate", h.clock.now())
        await uow.metrics.award_badge(li, "first_share", h.clock.now())
        await uow.metrics.award_badge(li, "starter_7day", h.clock.now())  # the 7-day start's reward
    h.session.clear()
    await h.send(LI, "/me")
    [me] = h.session.of("sendMessage", LI.id)
    assert h.t("zh", "levels.me.badges", badges="📣 首次分享 · 🎓 课程毕业 · 🚀 新人7天启动") in me.text
    assert h.t("zh", "streaks.me.none") in me.text


# --- level changes told to the upline --------------------------------------------------------------------------


async def test_the_upline_is_told_of_a_promotion_and_a_demotion_in_their_language(harness: BotHarness) -> None:
    h = harness
    li = await join(h, LI)  # the upline writes Chinese
    bob = await join(h, BOB, await code_of(h, li))
    carol = await join(h, CAROL, await code_of(h, bob))
    dan = await join(h, DAN, await code_of(h, bob))
    await evaluate_recent(h)
    now = h.clock.now()
    for recruit in (carol, dan):
        await add_events(h, recruit, EventType.SHARED, [now])
    async with UnitOfWork(h.sessionmaker) as uow:
        for n in range(5):
            uow.session.add(
                Order(
                    source="api", external_id=f"B{n}", fingerprint="x", customer_id="c", partner_id=bob,
                    attribution="partner_code", currency="CNY", amount_minor=10000, refunded_minor=0, items=[],
                    paid_at=now, status="settled", created_at=now,
                )
            )  # fmt: skip
            uow.events.add(partner_id=bob, type=EventType.ORDER_ATTRIBUTED, occurred_at=now, source=EventSource.API)
    await evaluate_recent(h)  # the orders promote Bob within a minute, not at the nightly review
    async with h.sessionmaker() as s:
        assert (await s.get(Partner, bob)).level == "silver"  # type: ignore[union-attr]
    assert await texts_to(h, li, "level-upline:") == [h.t("zh", "streaks.upline.up", name="Bob", level="白银")]
    assert h.t("en", "levels.up", level="Silver", l1="12%", l2="4%") in await texts_to(h, bob, "level:")
    h.session.clear()
    while await h.drain_outbox():  # about one message a second per chat
        h.clock.advance(timedelta(seconds=2))
    assert h.t("zh", "streaks.upline.up", name="Bob", level="白银") in h.session.texts(LI.id)

    await evaluate_recent(h)  # nothing new: told once
    assert len(await texts_to(h, li, "level-upline:")) == 1

    h.clock.advance(timedelta(days=31))  # the sales leave the window
    await add_events(h, bob, EventType.SHARED, [h.clock.now()])
    await evaluate_recent(h)
    assert (await texts_to(h, li, "level-upline:"))[1:] == [
        h.t("zh", "streaks.upline.down", name="Bob", previous="白银", level="会员")
    ]


# --- the shipped plan ------------------------------------------------------------------------------------------


async def store_plan(h: BotHarness, text: str, version: int = 1, status: str = "published") -> None:
    async with UnitOfWork(h.sessionmaker) as uow:
        uow.session.add(
            RuleVersion(
                version=version, plan_text=text, checksum=checksum(text), status=status,
                created_at=h.clock.now(), published_at=h.clock.now() if status == "published" else None,
            )
        )  # fmt: skip


async def versions(h: BotHarness) -> list[tuple[int, str]]:
    async with h.sessionmaker() as s:
        rows = await s.execute(select(RuleVersion.version, RuleVersion.status).order_by(RuleVersion.version))
        return [(int(v), str(st)) for v, st in rows.all()]


async def test_a_deployment_on_the_old_shipped_plan_gets_the_new_badges(harness: BotHarness) -> None:
    h = harness
    old = sorted(SHIPPED_PLANS.glob("*.yaml"))[-1].read_text(encoding="utf-8")
    await store_plan(h, old)
    h.clock.advance(timedelta(hours=1))
    async with UnitOfWork(h.sessionmaker) as uow:
        row = await SettlementService(uow, h.ctx).ensure_plan()
    assert (row.version, row.checksum) == (2, checksum(DEFAULT_PLAN.read_text(encoding="utf-8")))
    assert await versions(h) == [(1, "superseded"), (2, "published")]
    async with UnitOfWork(h.sessionmaker) as uow:
        version, plan = await SettlementService(uow, h.ctx).plan_for(h.clock.now())
        again = await SettlementService(uow, h.ctx).ensure_plan()
    assert version == again.version == 2
    assert plan.badges["sprint_winner"].icon == "🏆"
    assert await versions(h) == [(1, "superseded"), (2, "published")]
    async with UnitOfWork(h.sessionmaker) as uow:  # orders paid before keep the plan then in force
        before, _ = await SettlementService(uow, h.ctx).plan_for(h.clock.now() - timedelta(minutes=30))
    assert before == 1


async def test_an_admins_own_plan_or_a_waiting_draft_is_left_alone(harness: BotHarness) -> None:
    h = harness
    old = sorted(SHIPPED_PLANS.glob("*.yaml"))[0].read_text(encoding="utf-8")
    own = old.replace('l1: "10%"', 'l1: "11%"', 1)
    await store_plan(h, own)
    async with UnitOfWork(h.sessionmaker) as uow:
        assert (await SettlementService(uow, h.ctx).ensure_plan()).version == 1
    assert await versions(h) == [(1, "published")]

    async with h.sessionmaker() as s, s.begin():
        await s.execute(update(RuleVersion).values(plan_text=old, checksum=checksum(old)))
    await store_plan(h, own, version=2, status="draft")
    async with UnitOfWork(h.sessionmaker) as uow:
        assert (await SettlementService(uow, h.ctx).ensure_plan()).version == 1
    assert await versions(h) == [(1, "published"), (2, "draft")]
    async with h.sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(RuleVersion))).scalar_one() == 2
