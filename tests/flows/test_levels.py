"""Tier 2: metrics computed in bulk from orders, events and the tree; levels moving with them; badges once."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event, func, select

from bot.domain.events import EventSource, EventType
from bot.domain.rules import METRICS
from bot.domain.streaks import streak_days
from bot.scheduling import running_with
from bot.scheduling.jobs import evaluate_levels
from bot.services.registry import UseCases
from storage.models import LevelChange, Order, OutboxMessage, Partner, PartnerBadge
from storage.uow import UnitOfWork
from tests.support.harness import BotHarness, tg_user

ALICE = tg_user(201, "Alice", lang="en")
BOB = tg_user(202, "Bob", lang="en")
CAROL = tg_user(203, "Carol", lang="en")
DAN = tg_user(204, "Dan", lang="en")


async def ids(h: BotHarness) -> dict[str, int]:
    async with h.sessionmaker() as s:
        rows = (await s.execute(select(Partner.first_name, Partner.id))).all()
    return {str(name): int(pid) for name, pid in rows}


async def tree(h: BotHarness) -> dict[str, int]:
    """Alice recruits Bob, Carol and Dan."""
    await h.send(ALICE, "/start")
    async with h.sessionmaker() as s:
        code = (await s.execute(select(Partner.invite_code).where(Partner.tg_user_id == ALICE.id))).scalar_one()
    for user in (BOB, CAROL, DAN):
        await h.send(user, f"/start {code}")
    return await ids(h)


async def add_orders(h: BotHarness, partner_id: int, count: int, paid_at: datetime, **extra: object) -> None:
    async with UnitOfWork(h.sessionmaker) as uow:
        for n in range(count):
            uow.session.add(
                Order(
                    source="api",
                    external_id=f"O{partner_id}-{paid_at.timestamp():.0f}-{n}",
                    fingerprint="x",
                    customer_id="cust",
                    partner_id=partner_id,
                    attribution="partner_code",
                    currency="CNY",
                    amount_minor=10000,
                    refunded_minor=extra.get("refunded_minor", 0),
                    items=[],
                    paid_at=paid_at,
                    status=extra.get("status", "settled"),
                    created_at=paid_at,
                )
            )


async def add_events(h: BotHarness, partner_id: int, type: str, times: list[datetime]) -> None:
    async with UnitOfWork(h.sessionmaker) as uow:
        for at in times:
            uow.events.add(partner_id=partner_id, type=type, occurred_at=at, source=EventSource.BOT)


async def outbox_texts(h: BotHarness, partner_id: int) -> list[str]:
    async with h.sessionmaker() as s:
        rows = (
            await s.execute(
                select(OutboxMessage.payload).where(OutboxMessage.partner_id == partner_id).order_by(OutboxMessage.id)
            )
        ).scalars()
        return [str(p.get("text", "")) for p in rows]


def test_streak_counts_consecutive_days_ending_today_or_yesterday() -> None:
    today = datetime(2026, 11, 25).date()
    days = {today, today - timedelta(days=1), today - timedelta(days=2), today - timedelta(days=4)}
    assert streak_days(days, set(), today) == 3
    assert streak_days(days - {today}, set(), today) == 2  # today is not over yet
    assert streak_days(days - {today, today - timedelta(days=1)}, set(), today) == 0


async def test_metrics_in_bulk_for_a_small_tree(harness: BotHarness) -> None:
    p = await tree(harness)
    now = harness.clock.now()
    await add_orders(harness, p["Alice"], 2, now - timedelta(days=3), refunded_minor=2500)
    await add_orders(harness, p["Alice"], 1, now - timedelta(days=40))
    await add_orders(harness, p["Alice"], 1, now - timedelta(days=2), status="refunded")
    await add_events(harness, p["Alice"], EventType.SHARED, [now - timedelta(days=d, hours=1) for d in (0, 1, 2, 10)])
    await add_events(harness, p["Alice"], EventType.FOLLOWED_UP, [now - timedelta(days=1)])
    await add_events(harness, p["Bob"], EventType.SHARED, [now - timedelta(days=5)])
    await add_events(harness, p["Carol"], EventType.CONTENT_SENT, [now - timedelta(days=5)])  # not an action
    await add_events(harness, p["Dan"], EventType.SHARED, [now - timedelta(days=45)])  # too long ago
    async with UnitOfWork(harness.sessionmaker) as uow:
        metrics = await UseCases(uow, harness.ctx).metrics.for_partners([p["Alice"], p["Bob"], 999999], now)
    assert set(metrics) == {p["Alice"], p["Bob"]}
    alice = metrics[p["Alice"]]
    assert set(alice) == set(METRICS)
    assert alice == {
        "sales_30d": 2,
        "gmv_30d_minor": 15000,
        "orders_total": 3,
        "active_recruits": 1,
        "recruits_total": 3,
        "shares_7d": 3,
        "shares_30d": 4,
        "followups_7d": 1,
        "revisits_30d": 0,
        "streak_days": 3,
        "days_since_join": 0,
        "level": "member",
        "courses_completed": 0,
        "shares_total": 4,
        "leads_total": 0,
        "followups_total": 1,
        "sprint_wins": 0,
    }
    assert metrics[p["Bob"]]["recruits_total"] == 0
    assert metrics[p["Bob"]]["shares_30d"] == 1

    # asked for a few metrics, the service reads only what they need and gives the same values
    async with UnitOfWork(harness.sessionmaker) as uow:
        rows = await uow.metrics.partners({p["Alice"]})
        statements: list[str] = []

        def record(*args: Any) -> None:
            statements.append(str(args[2]))

        sync_engine = harness.sessionmaker.kw["bind"].sync_engine
        event.listen(sync_engine, "before_cursor_execute", record)
        try:
            some = await UseCases(uow, harness.ctx).metrics.for_rows(rows, now, only=("sales_30d", "streak_days"))
        finally:
            event.remove(sync_engine, "before_cursor_execute", record)
    assert some == {p["Alice"]: {"sales_30d": 2, "streak_days": 3}}
    assert len(statements) == 3  # the order stats, the action times and the freezes, not the whole catalogue


async def test_promotion_demotion_and_badges_once(harness: BotHarness) -> None:
    p = await tree(harness)
    now = harness.clock.now()
    await add_orders(harness, p["Alice"], 5, now - timedelta(days=2))
    await add_events(harness, p["Bob"], EventType.SHARED, [now - timedelta(days=1)])
    await add_events(harness, p["Carol"], EventType.FOLLOWED_UP, [now - timedelta(days=1)])

    async with UnitOfWork(harness.sessionmaker) as uow:
        run = await UseCases(uow, harness.ctx).levels.evaluate(list(p.values()), now)
    assert run.promoted == [(p["Alice"], "member", "silver")]
    assert (p["Alice"], "first_sale") in run.badges
    async with harness.sessionmaker() as s:
        assert (await s.get(Partner, p["Alice"])).level == "silver"  # type: ignore[union-attr]
        change = (await s.execute(select(LevelChange))).scalar_one()
        assert (change.from_level, change.to_level, change.rules_version) == ("member", "silver", 1)
        assert change.metrics["sales_30d"] == 5
    texts = await outbox_texts(harness, p["Alice"])
    assert harness.t("en", "levels.up", level="Silver", l1="12%", l2="4%") in texts
    assert harness.t("en", "levels.badge", icon="💰", title="First deal") in texts

    async with UnitOfWork(harness.sessionmaker) as uow:  # the same metrics again: nothing new
        again = await UseCases(uow, harness.ctx).levels.evaluate(list(p.values()), now)
    assert again.promoted == again.demoted == []
    assert again.badges == []
    async with harness.sessionmaker() as s:
        # Alice: first deal and first recruit; Bob: first share
        assert (await s.execute(select(func.count()).select_from(PartnerBadge))).scalar_one() == 3

    harness.clock.advance(timedelta(days=31))  # the sales leave the window: sales_30d == 0
    later = harness.clock.now()
    async with UnitOfWork(harness.sessionmaker) as uow:
        down = await UseCases(uow, harness.ctx).levels.evaluate([p["Alice"]], later)
    assert down.demoted == [(p["Alice"], "silver", "member")]
    texts = await outbox_texts(harness, p["Alice"])
    assert any("sales_30d &gt;= 5" in text and "Silver" in text for text in texts), texts
    async with harness.sessionmaker() as s:
        assert (await s.get(Partner, p["Alice"])).level == "member"  # type: ignore[union-attr]
        assert (await s.execute(select(func.count()).select_from(LevelChange))).scalar_one() == 2


async def test_the_daily_job_evaluates_everybody(harness: BotHarness) -> None:
    p = await tree(harness)
    await add_orders(harness, p["Dan"], 1, harness.clock.now() - timedelta(hours=1))
    runtime = harness.job_runtime()
    with running_with(runtime):
        await evaluate_levels()
    async with harness.sessionmaker() as s:
        badges = (await s.execute(select(PartnerBadge.partner_id, PartnerBadge.badge))).all()
    assert sorted(tuple(b) for b in badges) == sorted([(p["Dan"], "first_sale"), (p["Alice"], "first_recruit")])
