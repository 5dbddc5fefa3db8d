"""Tier 2: daily rollups built from a hand-built history, and /stats reading them (the four behaviour metrics, the
funnel and the 14-day chart), for admins only."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import partial

from sqlalchemy import select

from bot.domain.behaviour import DayCounts, PeriodName
from bot.domain.events import EventSource, EventType
from bot.scheduling import running_with
from bot.scheduling.jobs import refresh_rollups
from bot.services.behaviour import BehaviourService
from storage.models import DailyRollup, LedgerEntry, Order, Partner
from storage.uow import UnitOfWork
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

ADMIN = tg_user(ADMIN_ID, "Boss", lang="en")
ALICE = tg_user(201, "Alice", lang="en")
BOB = tg_user(202, "Bob", lang="en")
CAROL = tg_user(203, "Carol", lang="en")
DAN = tg_user(204, "Dan", lang="en")
TODAY = date(2026, 11, 25)  # the harness starts at 2026-11-25 09:00 in Asia/Shanghai
YESTERDAY = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 local


async def ids(h: BotHarness) -> dict[str, int]:
    async with h.sessionmaker() as s:
        return {str(n): int(i) for n, i in (await s.execute(select(Partner.first_name, Partner.id))).all()}


async def add_events(h: BotHarness, partner_id: int, type: str, at: datetime, count: int = 1) -> None:
    async with UnitOfWork(h.sessionmaker) as uow:
        for _ in range(count):
            uow.events.add(partner_id=partner_id, type=type, occurred_at=at, source=EventSource.BOT)


async def history(h: BotHarness) -> dict[str, int]:
    """Alice recruits Bob and Carol; Dan joins on his own. Today Bob adds a prospect, logs a follow-up with a
    reminder in 2 hours and, after it came due, a revisit; shares 3 times and gets 2 content items; an order of
    ¥100.00 is attributed to him with ¥10.00 commission. Alice's link is clicked once. Carol shared yesterday and
    followed up 5 days ago. Dan does nothing."""
    await h.send(ADMIN, "/start")
    await h.send(ALICE, "/start")
    async with h.sessionmaker() as s:
        code = (await s.execute(select(Partner.invite_code).where(Partner.tg_user_id == ALICE.id))).scalar_one()
    await h.send(BOB, f"/start {code}")
    await h.send(CAROL, f"/start {code}")
    await h.send(DAN, "/start")
    who = await ids(h)
    await h.send(BOB, "/lead Wang 13800138000")
    await h.send(BOB, "/followup 1 called in 2h")
    h.clock.advance(timedelta(hours=3))
    await h.send(BOB, "/followup 1 visited the shop")
    now = h.clock.now()
    await add_events(h, who["Bob"], EventType.SHARED, now, 3)
    await add_events(h, who["Bob"], EventType.CONTENT_SENT, now, 2)
    await add_events(h, who["Alice"], EventType.LINK_CLICKED, now)
    await add_events(h, who["Carol"], EventType.SHARED, YESTERDAY)
    await add_events(h, who["Carol"], EventType.FOLLOWED_UP, YESTERDAY - timedelta(days=4))
    async with UnitOfWork(h.sessionmaker) as uow:
        order = Order(
            source="api",
            external_id="A-1",
            fingerprint="x",
            customer_id="c1",
            partner_id=who["Bob"],
            attribution="partner_code",
            currency="CNY",
            amount_minor=10000,
            refunded_minor=0,
            items=[],
            paid_at=now,
            status="settled",
            created_at=now,
        )
        uow.session.add(order)
        await uow.flush()
        for line, (account, partner_id, amount) in enumerate(
            [(f"partner:{who['Bob']}", who["Bob"], 1000), ("platform:commission", None, -1000)], start=1
        ):
            uow.session.add(
                LedgerEntry(
                    txn="order:api:A-1",
                    line=line,
                    account=account,
                    partner_id=partner_id,
                    bucket="pending",
                    amount_minor=amount,
                    currency="CNY",
                    kind="commission",
                    order_id=order.id,
                    created_at=now,
                )
            )
    return who


async def test_rollups_from_a_hand_built_history(harness: BotHarness) -> None:
    h = harness
    who = await history(h)
    with running_with(h.job_runtime()):
        await refresh_rollups()
        await refresh_rollups()  # recomputing replaces: the same rows
    async with h.sessionmaker() as s:
        rows = (await s.execute(select(DailyRollup))).scalars().all()
    got = {(r.partner_id, r.day): r for r in rows}
    assert set(got) == {(who["Bob"], TODAY), (who["Alice"], TODAY), (who["Carol"], TODAY - timedelta(days=1))}
    bob = got[(who["Bob"], TODAY)]
    assert (bob.content_sent, bob.shares, bob.leads, bob.followups, bob.revisits, bob.leads_due) == (2, 3, 1, 2, 1, 1)
    assert (bob.orders, bob.gmv_minor, bob.commission_minor, bob.actions) == (1, 10000, 1000, 6)
    alice = got[(who["Alice"], TODAY)]
    assert (alice.clicks, alice.actions) == (1, 0)

    # an older day is rebuilt on demand; the team report narrows to Alice's subtree
    async with UnitOfWork(h.sessionmaker) as uow:
        behaviour = BehaviourService(uow, h.ctx)
        assert await behaviour.recompute(TODAY - timedelta(days=5)) == 1
        network = await behaviour.report(PeriodName.DAYS_7, None)
        async with h.sessionmaker() as s:
            path = (await s.execute(select(Partner.tree_path).where(Partner.id == who["Alice"]))).scalar_one()
        team = await behaviour.report(PeriodName.DAYS_7, path)
    assert (network.now.partners, team.now.partners) == (5, 3)  # the admin, Alice, Bob, Carol, Dan / Alice's team
    assert (network.last_7d.followed_up, team.last_7d.followed_up) == (2, 2)
    assert network.trend[TODAY] == DayCounts(
        content_sent=2,
        shares=3,
        clicks=1,
        leads=1,
        followups=2,
        revisits=1,
        leads_due=1,
        orders=1,
        gmv_minor=10000,
        commission_minor=1000,
        actions=6,
    )
    assert len(network.trend) == 14 and min(network.trend) == TODAY - timedelta(days=13)


async def test_stats_today_shows_the_four_metrics_funnel_and_chart(harness: BotHarness) -> None:
    h = harness
    await history(h)
    with running_with(h.job_runtime()):
        await refresh_rollups()
    async with UnitOfWork(h.sessionmaker) as uow:  # the job keeps two days; older ones are rebuilt on demand
        await BehaviourService(uow, h.ctx).recompute(TODAY - timedelta(days=5))
    h.session.clear()
    await h.send(ADMIN, "/stats")
    t = partial(h.t, "en")
    [text, caption] = h.session.texts(ADMIN.id)
    assert text.split("\n") == [
        t("behaviour.title", period=t("behaviour.period.today"), first="2026-11-25", last="2026-11-25"),
        t("behaviour.shared", now=1, partners=5, arrow="→", before=1),
        t("behaviour.average", all="0.6", active="3.0", arrow="→", before="–"),
        t("behaviour.followed_up", now=1, arrow="↑", before=0, week=2),
        t("behaviour.revisits", rate7="100%", revisits7=1, due7=1, rate30="100%", revisits30=1, due30=1),
        "",
        t("behaviour.funnel_title"),
        t(
            "behaviour.funnel",
            content_sent=2,
            shares=3,
            clicks=1,
            leads=1,
            quotes=0,
            orders=1,
            gmv="¥100.00",
        ),
        t("behaviour.commission", commission="¥10.00"),
        t("behaviour.growth", new=5, activation="0%"),
        t("behaviour.segments", high=0, mid=0, low=0, unrated=5, slipped=0, rose=0),
    ]
    assert caption == t("behaviour.chart.caption")
    [photo] = h.session.of("sendPhoto", ADMIN.id)
    assert photo.params["caption"] == caption


async def test_stats_is_for_admins_and_bad_periods_get_the_usage(harness: BotHarness) -> None:
    h = harness
    await h.send(ADMIN, "/start")
    await h.send(BOB, "/start")
    h.session.clear()
    await h.send(BOB, "/stats 7d")
    assert h.session.texts(BOB.id) == [h.t("en", "denied.admin")]
    await h.send(ADMIN, "/stats yesterday")
    assert h.session.texts(ADMIN.id) == [h.t("en", "stats.usage")]
    assert h.session.of("sendPhoto") == []
    async with h.sessionmaker() as s:
        assert (await s.execute(select(DailyRollup))).scalars().all() == []
