"""Tier 2: points and leaderboards — the sync folding events (caps, idempotence, a late-committing event), /rank's
top 10 and the partner's own place outside it, ties, team scope, bad arguments, identical answers from SQL and
Redis, the Monday and 1st-of-month pushes, rank-change notices once a day, and the /settings opt-out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiogram.types import User
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.callbacks import RankCallback, SettingsCallback
from bot.domain.events import EventType
from bot.domain.leaderboards import Metric, Period, RankArgs, Scope, board_key
from bot.scheduling import running_with
from bot.scheduling.jobs import notify_rank_changes, push_leaderboards, sync_leaderboards
from bot.services.leaderboards import LeaderboardService
from storage.leaderboards import PREFIX, RedisBoards, SqlBoards
from storage.models import Event, LeaderboardScore, OutboxMessage, Partner
from storage.uow import UnitOfWork
from tests.support.harness import BotHarness, tg_user
from tests.support.services import REDIS_HOST, REDIS_PORT, require_service

ALICE = tg_user(401, "Alice", lang="en")
CAROL = tg_user(402, "Carol", lang="zh")
OTHERS = [tg_user(410 + n, f"P{n:02d}", lang="en") for n in range(12)]
WEEK = board_key(Metric.SHARES, Period.WEEK, datetime(2026, 11, 23).date())
POINTS_WEEK = board_key(Metric.POINTS, Period.WEEK, datetime(2026, 11, 23).date())


async def run(h: BotHarness, job: Any) -> None:
    with running_with(h.job_runtime()):
        await job()


async def join(h: BotHarness, user: User, upline: User | None = None) -> int:
    code = ""
    if upline is not None:
        code = " " + (await partner(h, upline)).invite_code
    await h.send(user, "/start" + code)
    return (await partner(h, user)).id


async def partner(h: BotHarness, user: User) -> Partner:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner).where(Partner.tg_user_id == user.id))).scalar_one()


async def act(
    h: BotHarness, partner_id: int, type: str, n: int = 1, payload: dict[str, Any] | None = None, **fields: Any
) -> None:
    async with UnitOfWork(h.sessionmaker) as uow:
        for _ in range(n):
            uow.session.add(
                Event(
                    partner_id=partner_id,
                    type=type,
                    payload=payload or {},
                    occurred_at=fields.get("at", h.clock.now()),
                    source="bot",
                    **({"id": fields["id"]} if "id" in fields else {}),
                )
            )


async def rank(h: BotHarness, user: User, args: str = "") -> str:
    h.session.clear()
    await h.send(user, f"/rank {args}".strip())
    return str(h.session.of("sendMessage", user.id)[-1].text)


async def outbox(h: BotHarness, prefix: str) -> list[OutboxMessage]:
    async with h.sessionmaker() as s:
        rows = (await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        return [r for r in rows if r.dedupe_key.startswith(prefix)]


async def scores(h: BotHarness, board: str) -> dict[int, int]:
    async with h.sessionmaker() as s:
        rows = (await s.execute(select(LeaderboardScore).where(LeaderboardScore.board == board))).scalars()
        return {r.partner_id: r.score for r in rows}


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    """Db 11, and only this feature's keys are removed (other suites use db 15)."""
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    client = Redis.from_url(f"redis://{REDIS_HOST}:{REDIS_PORT}/11")
    await wipe_boards(client)
    yield client
    await wipe_boards(client)
    await client.aclose()


async def wipe_boards(client: Redis) -> None:
    keys = [key async for key in client.scan_iter(match=PREFIX + "*")]
    if keys:
        await client.delete(*keys)


async def network(h: BotHarness) -> list[int]:
    """Alice, Carol and twelve others; P00…P11 share 12…1 times, Alice twice, Carol never."""
    ids = [await join(h, ALICE), await join(h, CAROL)]
    for n, user in enumerate(OTHERS):
        ids.append(await join(h, user))
        await act(h, ids[-1], EventType.SHARED, 12 - n)
    await act(h, ids[0], EventType.SHARED, 2)
    await run(h, sync_leaderboards)
    return ids


async def test_rank_shows_top_ten_and_own_place_outside_it(harness: BotHarness) -> None:
    await network(harness)
    text = await rank(harness, ALICE, "shares")
    t = harness.translator.texts("en")
    lines = text.split("\n")
    assert lines[0] == t("leaderboards.title", metric="Shares", period="This week", scope="Whole network")
    assert t("leaderboards.line", rank=1, name="P00", value="12 shares") in lines
    assert t("leaderboards.line", rank=10, name="P09", value="3 shares") in lines
    assert not any("P10" in line for line in lines)
    # Alice ties with P10 (2 shares): both are #11; the next better place is #10 with 3 shares.
    assert lines[-1] == "You: #11 · 2 shares · 1 share behind #10"
    assert harness.session.of("sendMessage", ALICE.id)[-1].params["reply_markup"]["inline_keyboard"][0][1]["text"] == (
        "• Week"
    )
    # Carol has nothing yet: not on the board, in Chinese.
    assert (await rank(harness, CAROL, "week shares")).endswith("你：还未上榜 · 再得 1 次分享 即可到第13名")


async def test_ties_share_a_rank_and_list_by_partner_id(harness: BotHarness) -> None:
    ids = [await join(harness, ALICE), await join(harness, CAROL), await join(harness, OTHERS[0])]
    for pid in ids:
        await act(harness, pid, EventType.SHARED, 3)
    await run(harness, sync_leaderboards)
    text = await rank(harness, OTHERS[0], "shares today")
    assert "#1 Alice · 3 shares" in text
    assert text.index("Alice") < text.index("Carol") < text.index("P00")
    assert "#1 Carol · 3 shares" in text
    assert text.endswith("You: #1 · 3 shares · nobody is ahead of you 🎉")


async def test_points_follow_the_yaml_rules_and_daily_caps(harness: BotHarness) -> None:
    alice = await join(harness, ALICE)
    await act(harness, alice, EventType.SHARED, 15)  # 15 shares: 10 points at most a day
    await act(harness, alice, EventType.LEAD_ADDED)  # 3
    await act(harness, alice, EventType.POINTS_EARNED, payload={"points": 7, "reason": "playbook:x"})  # 7
    await act(
        harness, alice, EventType.ORDER_ATTRIBUTED, payload={"order_id": "A1", "amount_minor": 12345, "currency": "CNY"}
    )
    await act(harness, alice, EventType.LINK_CLICKED)  # no points
    await run(harness, sync_leaderboards)
    assert (await scores(harness, WEEK))[alice] == 15
    assert (await scores(harness, POINTS_WEEK))[alice] == 10 + 3 + 7 + 10
    # The cap holds across runs, and resets the next day.
    await act(harness, alice, EventType.SHARED, 2)
    await run(harness, sync_leaderboards)
    assert (await scores(harness, POINTS_WEEK))[alice] == 30
    harness.clock.advance(timedelta(days=1))
    await act(harness, alice, EventType.SHARED, 2)
    await run(harness, sync_leaderboards)
    assert (await scores(harness, POINTS_WEEK))[alice] == 32
    assert "#1 Alice · ¥123.45" in await rank(harness, ALICE, "gmv month")
    assert "#1 Alice · 1 order" in await rank(harness, ALICE, "orders week")


async def test_sync_is_idempotent_and_folds_an_event_that_commits_late(harness: BotHarness) -> None:
    alice = await join(harness, ALICE)
    await act(harness, alice, EventType.SHARED, id=10_000)
    await act(harness, alice, EventType.SHARED, id=10_002)
    await run(harness, sync_leaderboards)
    await run(harness, sync_leaderboards)
    assert (await scores(harness, WEEK))[alice] == 2
    # An event whose transaction took id 10 001 before 10 002 but committed after the first fold.
    await act(harness, alice, EventType.SHARED, id=10_001)
    await run(harness, sync_leaderboards)
    assert (await scores(harness, WEEK))[alice] == 3
    harness.clock.advance(timedelta(minutes=6))  # past the settle time: the mark moves up, markers are forgotten
    await run(harness, sync_leaderboards)
    await run(harness, sync_leaderboards)
    assert (await scores(harness, WEEK))[alice] == 3


async def test_team_board_is_the_nearest_leads_subtree(harness: BotHarness) -> None:
    ann, ben, cy, dan = (tg_user(430 + n, name, lang="en") for n, name in enumerate(["Ann", "Ben", "Cy", "Dan"]))
    ids = {"Ann": await join(harness, ann)}
    ids["Ben"] = await join(harness, ben, ann)
    ids["Cy"] = await join(harness, cy, ben)
    ids["Dan"] = await join(harness, dan)
    for n, name in enumerate(["Ann", "Ben", "Cy", "Dan"]):
        await act(harness, ids[name], EventType.SHARED, n + 1)
    await run(harness, sync_leaderboards)
    assert await rank(harness, cy, "team") == harness.t("en", "leaderboards.no_team")
    async with harness.sessionmaker.begin() as s:
        await s.execute(update(Partner).where(Partner.id == ids["Ann"]).values(role="lead"))
    text = await rank(harness, cy, "shares team")
    assert "Team of Ann" in text
    assert "Dan" not in text
    assert text.split("\n")[3:6] == ["<b>#1 Cy · 3 shares</b> ← you", "#2 Ben · 2 shares", "#3 Ann · 1 share"]
    assert await rank(harness, dan, "team") == harness.t("en", "leaderboards.no_team")


@pytest.mark.parametrize("args", ["yesterday", "week week", "team network", "shares 5", "sprint"])
async def test_bad_arguments_get_the_usage_and_change_nothing(harness: BotHarness, args: str) -> None:
    await join(harness, ALICE)
    if args == "sprint":  # a real period, but no sprint runs
        assert await rank(harness, ALICE, args) == harness.t("en", "leaderboards.no_sprint")
        return
    assert await rank(harness, ALICE, args) == harness.t("en", "leaderboards.usage")


async def test_buttons_switch_the_board(harness: BotHarness) -> None:
    await network(harness)
    harness.session.clear()
    await harness.press(ALICE, RankCallback(period="month", scope="network", metric="shares").pack())
    edited = harness.session.of("editMessageText", ALICE.id)[-1]
    assert edited.text is not None
    assert edited.text.startswith("🏆 <b>Shares</b> · This month")
    harness.session.clear()
    await harness.press(ALICE, RankCallback(period="decade", scope="network", metric="shares").pack())
    assert harness.session.of("answerCallbackQuery")[-1].params["text"] == harness.t("en", "leaderboards.usage")[:200]


async def test_sql_and_redis_give_identical_results(harness: BotHarness, redis: Redis) -> None:
    """The same events through the sync with Redis on: every board read from Redis equals the SQL answer, and a
    Redis that lost its keys is rebuilt to the same."""
    harness.ctx.redis = redis
    ids = await network(harness)
    for n, pid in enumerate(ids):
        await act(harness, pid, EventType.FOLLOWED_UP, n % 4)
        await act(
            harness,
            pid,
            EventType.ORDER_ATTRIBUTED,
            n % 3,
            {"order_id": f"o{n}", "amount_minor": 100 * (n % 5), "currency": "CNY"},
        )
    await run(harness, sync_leaderboards)
    boards = [board_key(m, Period.WEEK, datetime(2026, 11, 23).date()) for m in Metric]
    boards += [board_key(m, Period.TODAY, datetime(2026, 11, 25).date()) for m in Metric]

    async def answers(lost: bool) -> list[Any]:
        out: list[Any] = []
        async with UnitOfWork(harness.sessionmaker) as uow:
            sql, red = SqlBoards(uow.leaderboards), RedisBoards(redis, uow.leaderboards, harness.ctx.timezone)
            if lost:
                await wipe_boards(redis)
            for board in boards:
                assert await red.top(board, 10) == await sql.top(board, 10)
                out.append(await sql.top(board, 10))
                for pid in [*ids, 999_999]:
                    assert await red.standing(board, pid) == await sql.standing(board, pid), (board, pid)
                assert await red.scores_of(board, ids) == await sql.scores_of(board, ids)
        return out

    assert await answers(lost=False) == await answers(lost=True)
    # /rank reads Redis now; it shows what SQL shows.
    with_redis = await rank(harness, ALICE, "points")
    harness.ctx.redis = None
    assert await rank(harness, ALICE, "points") == with_redis


async def test_weekly_push_on_monday_and_monthly_on_the_first(harness: BotHarness) -> None:
    await network(harness)
    # Monday 2026-11-30, 09:00 in Shanghai (the default push hour in the deployment's zone).
    harness.clock.set(datetime(2026, 11, 30, 1, 0, tzinfo=UTC))
    await run(harness, push_leaderboards)
    await run(harness, push_leaderboards)
    pushes = await outbox(harness, "rank-push:")
    assert len(pushes) == len(OTHERS) + 2
    alice = (await partner(harness, ALICE)).id
    mine = next(p for p in pushes if p.partner_id == alice)
    assert mine.dedupe_key == f"rank-push:{alice}:w:2026-11-23"
    text = mine.payload["text"]
    assert text.startswith("🏆 <b>Points</b> · Last week · Whole network\n<i>2026-11-23 – 2026-11-29</i>")
    assert "#1 P00 · 10 points" in text
    assert text.endswith("You: #11 · 2 points · 1 point behind #10")
    harness.session.clear()
    await harness.drain_outbox()
    assert harness.session.texts(ALICE.id) == [text]
    # Tuesday 1 December: last month's board, once.
    harness.clock.set(datetime(2026, 12, 1, 1, 30, tzinfo=UTC))
    await run(harness, push_leaderboards)
    await run(harness, push_leaderboards)
    monthly = await outbox(harness, f"rank-push:{alice}:m:")
    assert [m.dedupe_key for m in monthly] == [f"rank-push:{alice}:m:2026-11-01"]
    assert "Last month" in monthly[0].payload["text"]


async def test_rank_change_notices_at_most_once_a_day_and_opt_out(harness: BotHarness) -> None:
    ids = await network(harness)
    alice, carol = ids[0], ids[1]
    await run(harness, notify_rank_changes)
    # P00…P09 entered the top 10; Alice (#11) did not.
    entered = await outbox(harness, "rank-change:")
    assert sorted(m.partner_id for m in entered if m.partner_id is not None) == sorted(ids[2:12])
    assert entered[0].payload["text"].startswith("🎉 You are in this week's top 10 for points")
    await run(harness, notify_rank_changes)
    assert len(await outbox(harness, "rank-change:")) == 10
    # Carol turns them off; then she and Alice reach 10 points: Alice enters the top 10; P03…P09 are overtaken but
    # were told something today already; P10 and P11 are told they were overtaken; Carol hears nothing.
    await harness.send(CAROL, "/settings ranks off")
    await act(harness, alice, EventType.SHARED, 8)
    await act(harness, carol, EventType.SHARED, 10)
    await run(harness, sync_leaderboards)
    await run(harness, notify_rank_changes)
    told = [m for m in await outbox(harness, "rank-change:") if m.partner_id in (alice, carol, ids[12], ids[13])]
    assert {(m.partner_id, m.payload["text"][0]) for m in told} == {(alice, "🎉"), (ids[12], "📉"), (ids[13], "📉")}
    # The next day P11 shoots to the top (1 → 11 points) and overtakes P08 again: P08 is told, once that day.
    harness.clock.advance(timedelta(days=1))
    await act(harness, ids[13], EventType.SHARED, 10)
    await run(harness, sync_leaderboards)
    await run(harness, notify_rank_changes)
    await run(harness, notify_rank_changes)
    p08 = [m.dedupe_key for m in await outbox(harness, f"rank-change:{ids[10]}:")]
    assert p08 == [f"rank-change:{ids[10]}:2026-11-25", f"rank-change:{ids[10]}:2026-11-26"]
    # Opted out: no Monday push for Carol, but /rank still answers.
    harness.clock.set(datetime(2026, 11, 30, 1, 0, tzinfo=UTC))
    await run(harness, push_leaderboards)
    assert not await outbox(harness, f"rank-push:{carol}:")
    assert not await outbox(harness, f"rank-change:{carol}:")
    assert "你：" in await rank(harness, CAROL)


async def test_settings_toggle_turns_pushes_off_and_on(harness: BotHarness) -> None:
    await join(harness, ALICE)
    harness.session.clear()
    await harness.send(ALICE, "/settings")
    shown = harness.session.of("sendMessage", ALICE.id)[-1]
    assert shown.text is not None and shown.text.endswith("Leaderboard pushes and rank notices: on")
    toggle = shown.params["reply_markup"]["inline_keyboard"][1][0]
    assert toggle["callback_data"] == SettingsCallback(action="set", field="ranks", value="off").pack()
    harness.session.clear()
    await harness.press(ALICE, toggle["callback_data"])
    edited = harness.session.of("editMessageText", ALICE.id)[-1]
    assert edited.text is not None and edited.text.endswith("Leaderboard pushes and rank notices: off")
    async with UnitOfWork(harness.sessionmaker) as uow:
        assert not await LeaderboardService(uow, harness.ctx).pushes_on((await partner(harness, ALICE)).id)
    await harness.send(ALICE, "/settings ranks on")
    assert harness.session.texts(ALICE.id)[-1].endswith("Leaderboard pushes and rank notices: on")


async def test_board_view_of_the_service(engine: AsyncEngine) -> None:
    """The service answers the default board for a partner with nothing (rank 1 of an empty board)."""
    h = BotHarness(engine)
    try:
        pid = await join(h, ALICE)
        async with UnitOfWork(h.sessionmaker) as uow:
            view = await LeaderboardService(uow, h.ctx).board(pid, RankArgs(Period.WEEK, Scope.NETWORK, Metric.POINTS))
        assert view.top == [] and view.me.rank == 1 and view.me.score == 0
    finally:
        await h.close()


async def test_sprint_period_sums_the_days_of_the_running_sprint(harness: BotHarness) -> None:
    admin = tg_user(9000, "Boss", lang="en")
    await join(harness, admin)
    alice, carol = await join(harness, ALICE), await join(harness, CAROL)
    await act(harness, alice, EventType.SHARED, 2, at=datetime(2026, 11, 24, 2, 0, tzinfo=UTC))  # before the sprint
    await act(harness, alice, EventType.SHARED, 1)
    await act(harness, carol, EventType.SHARED, 3)
    await run(harness, sync_leaderboards)
    harness.session.clear()
    await harness.send(admin, "/sprint new November push | shares | 10 | 2026-11-25 | 2026-12-05 | A mug")
    harness.clock.advance(timedelta(days=1))
    await act(harness, alice, EventType.SHARED, 1)
    await run(harness, sync_leaderboards)
    text = await rank(harness, ALICE, "sprint shares")
    assert text.startswith("🏆 <b>Shares</b> · Current sprint · Whole network\n<i>2026-11-25 – 2026-12-05</i>")
    assert "#1 Carol · 3 shares" in text
    assert "<b>#2 Alice · 2 shares</b> ← you" in text
    assert text.endswith("You: #2 · 2 shares · 1 share behind #1")
    # Team scope of the sprint: Carol leads a team of one; Alice has no lead above her.
    async with harness.sessionmaker.begin() as s:
        await s.execute(update(Partner).where(Partner.id == carol).values(role="lead"))
    team = await rank(harness, CAROL, "sprint team shares")
    assert "<b>第1名 Carol · 3 次分享</b> ← 你" in team
    assert "Alice" not in team
    assert await rank(harness, ALICE, "sprint team") == harness.t("en", "leaderboards.no_team")
