"""Tier 2: team-lead digests. The `digests:send` sweep at the lead's local morning sends yesterday's team digest
(the four behaviour metrics, dormant members, overdue revisits, top performers, new members' 7-day start) with the
14-day chart, once; on Monday the weekly one too. [Nudge dormant members] reminds each dormant member at most once a
week; /team shows the same view live and drills into a member's funnel."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import select

from bot.callbacks import DigestCallback
from bot.domain.behaviour import DayCounts
from bot.domain.events import EventType
from bot.scheduling import jobs, running_with
from bot.scheduling.jobs import refresh_rollups, send_team_digests
from bot.services import digests
from bot.services.behaviour import BehaviourService, trend_chart
from bot.services.digests import DigestService, PreparedDigests, ReadDigests
from bot.services.playbooks import load_playbooks
from storage.models import DigestSent, Partner
from storage.uow import UnitOfWork
from tests.flows.test_behaviour import add_events, ids
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

ADMIN = tg_user(ADMIN_ID, "Boss", lang="en")
ALICE = tg_user(201, "Alice", username="alice_w", lang="en")
BOB = tg_user(202, "Bob", lang="en")
CAROL = tg_user(203, "Carol", lang="en")
DAN = tg_user(204, "Dan", lang="en")
EVE = tg_user(205, "Eve", lang="en")
DIGEST = DigestCallback(action="nudge").pack()


async def team(h: BotHarness) -> dict[str, int]:
    """Wednesday 2026-11-25 09:00 local: Alice (a lead) recruits Bob, Carol and Dan. Carol shares that day. Four days
    later (Sunday 29th, 09:00) Eve joins through Alice; Bob shared twice and followed up on Saturday."""
    h.ctx.playbooks = load_playbooks()
    await h.send(ADMIN, "/start")
    await h.send(ALICE, "/start")
    await h.send(ADMIN, "/grant @alice_w lead")
    async with h.sessionmaker() as s:
        code = (await s.execute(select(Partner.invite_code).where(Partner.tg_user_id == ALICE.id))).scalar_one()
    for user in (BOB, CAROL, DAN):
        await h.send(user, f"/start {code}")
    who = await ids(h)
    await add_events(h, who["Carol"], EventType.SHARED, h.clock.now())
    h.clock.advance(timedelta(days=4))
    await h.send(EVE, f"/start {code}")
    saturday = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)  # 12:00 local
    await add_events(h, who["Bob"], EventType.SHARED, saturday, 2)
    await add_events(h, who["Bob"], EventType.FOLLOWED_UP, saturday)
    with running_with(h.job_runtime()):
        await refresh_rollups()
    async with UnitOfWork(h.sessionmaker) as uow:
        await BehaviourService(uow, h.ctx).recompute(datetime(2026, 11, 25).date())
    await drain(h)
    h.session.clear()
    return await ids(h)


async def drain(h: BotHarness) -> None:
    """Send everything due: the sender sends one message per chat per round (a second apart)."""
    for _ in range(6):
        h.clock.advance(timedelta(seconds=1.1))
        await h.drain_outbox()


async def digest_run(h: BotHarness) -> None:
    h.session.clear()
    with running_with(h.job_runtime()):
        await send_team_digests()
    await drain(h)


async def test_daily_digest_once_with_chart_and_nudge_button(harness: BotHarness) -> None:
    h = harness
    await team(h)
    t = partial(h.t, "en")
    await digest_run(h)
    [digest] = h.session.of("sendMessage", ALICE.id)
    assert digest.text.split("\n") == [
        t("digests.daily_title", day="2026-11-28", members=4),
        t("behaviour.shared", now=1, partners=4, arrow="↑", before=0),
        t("behaviour.average", all="0.5", active="2.0", arrow="↑", before="0.0"),
        t("behaviour.followed_up", now=1, arrow="↑", before=0, week=1),
        t("behaviour.revisits", rate7="–", revisits7=0, due7=0, rate30="–", revisits30=0, due30=0),
        "",
        t("digests.dormant_title", count=2, days=3),
        t("digests.dormant_item", name="Carol", last="2026-11-25"),
        t("digests.dormant_never", name="Dan"),
        t("digests.top_title"),
        t("digests.top_item", rank=1, name="Bob", actions=3, shares=2, followups=1, orders=0),
        t("digests.new_title"),  # everyone who joined in the last 7 days
        *(t("digests.new_item", name=name, day=4, total=7, done=0, steps=8) for name in ("Bob", "Carol", "Dan")),
        t("digests.new_item", name="Eve", day=0, total=7, done=0, steps=8),
    ]
    [[button]] = digest.params["reply_markup"]["inline_keyboard"]
    assert (button["text"], button["callback_data"]) == (t("digests.nudge_button", count=2), DIGEST)
    [chart] = h.session.of("sendPhoto", ALICE.id)
    assert chart.params["caption"] == t("digests.chart_caption")

    # the next sweeps the same day send nothing more
    h.clock.advance(timedelta(hours=2))
    await digest_run(h)
    assert h.session.of("sendMessage", ALICE.id) == []
    async with h.sessionmaker() as s:
        assert [(d.kind, d.period) for d in (await s.execute(select(DigestSent))).scalars()] == [
            ("daily", "2026-11-29")
        ]


async def test_nothing_before_the_digest_time_then_monday_brings_the_weekly_one(harness: BotHarness) -> None:
    h = harness
    await team(h)
    h.clock.advance(timedelta(hours=23))  # Monday 08:00 local: Sunday's digest was never sent, Monday's not yet due
    h.clock.set(datetime(2026, 11, 30, 0, 0, tzinfo=UTC))  # 08:00 in Shanghai
    await digest_run(h)
    assert h.session.of("sendMessage", ALICE.id) == []
    h.clock.set(datetime(2026, 11, 30, 0, 31, tzinfo=UTC))  # 08:31
    await digest_run(h)
    texts = [m.text.split("\n")[0] for m in h.session.of("sendMessage", ALICE.id)]
    assert texts == [
        h.t("en", "digests.daily_title", day="2026-11-29", members=4),
        h.t("en", "digests.weekly_title", first="2026-11-23", last="2026-11-29", members=4),
    ]
    assert len(h.session.of("sendPhoto", ALICE.id)) == 2


async def test_nudge_dormant_members_once_a_week_and_only_by_leads(harness: BotHarness) -> None:
    h = harness
    who = await team(h)
    await h.press(ALICE, DIGEST)
    assert h.session.texts(ALICE.id) == [h.t("en", "digests.nudged", count=2)]
    await drain(h)
    for user, name in ((CAROL, "Carol"), (DAN, "Dan")):
        assert h.session.texts(user.id) == [h.t("en", "digests.nudge_message", name=name, lead="Alice")]
    assert h.session.texts(BOB.id) == [] and h.session.texts(EVE.id) == []

    h.session.clear()
    h.clock.advance(timedelta(days=3))  # still within the week: Carol and Dan are not nudged twice
    await h.press(ALICE, DIGEST)  # Bob (last action Saturday) and Eve (joined Sunday) are dormant by now
    assert h.session.texts(ALICE.id) == [
        h.t("en", "digests.nudged", count=2) + "\n" + h.t("en", "digests.nudged_skipped", count=2)
    ]
    await drain(h)
    assert h.session.texts(CAROL.id) == [] and h.session.texts(DAN.id) == []
    assert h.session.texts(EVE.id) == [h.t("en", "digests.nudge_message", name="Eve", lead="Alice")]

    h.session.clear()
    await h.press(BOB, DIGEST)  # a partner pressing a forwarded digest
    [refused] = h.session.of("answerCallbackQuery")
    assert (refused.params["text"], refused.params["show_alert"]) == (h.t("en", "denied.lead"), True)
    await drain(h)
    assert h.session.texts(CAROL.id) == [] and who["Carol"] > 0


async def test_team_on_demand_and_a_members_funnel(harness: BotHarness) -> None:
    h = harness
    await team(h)
    await h.send(ALICE, "/team")
    [summary, digest] = [m.text for m in h.session.of("sendMessage", ALICE.id)]
    assert summary.startswith("👥 <b>Your team</b>")
    assert digest.split("\n")[0] == h.t("en", "digests.live_title", members=4)
    assert h.t("en", "digests.dormant_never", name="Dan") in digest
    assert len(h.session.of("sendPhoto", ALICE.id)) == 1

    h.session.clear()
    async with h.sessionmaker() as s:
        code = (await s.execute(select(Partner.invite_code).where(Partner.tg_user_id == BOB.id))).scalar_one()
    await h.send(ALICE, f"/team {code}")
    [text] = h.session.texts(ALICE.id)
    lines = text.split("\n")
    assert lines[0] == h.t("en", "digests.member_title", name="Bob")
    assert h.t("en", "digests.member_line", label=h.t("en", "digests.behaviours.shares"), week=2, month=2) in lines
    assert h.t("en", "leads.team.empty", name="Bob") in lines


async def test_leads_set_their_digest_time_and_weekly_digest_partners_cannot(harness: BotHarness) -> None:
    h = harness
    await team(h)
    await h.send(ALICE, "/settings digest 10:15")
    [saved] = h.session.texts(ALICE.id)
    assert h.t("en", "digests.settings_line", time="10:15", weekly=h.t("en", "digests.on")) in saved
    await h.send(ALICE, "/settings weekly off")
    h.session.clear()
    await h.send(BOB, "/settings digest 07:00")
    assert h.session.texts(BOB.id) == [h.t("en", "digests.leads_only")]
    await h.send(BOB, "/settings")
    assert "digest" not in h.session.texts(BOB.id)[-1].lower()

    h.clock.set(datetime(2026, 11, 30, 2, 0, tzinfo=UTC))  # Monday 10:00 local: not yet 10:15
    await digest_run(h)
    assert h.session.of("sendMessage", ALICE.id) == []
    h.clock.set(datetime(2026, 11, 30, 2, 16, tzinfo=UTC))  # 10:16: the daily one only, weekly is off
    await digest_run(h)
    texts = [m.text.split("\n")[0] for m in h.session.of("sendMessage", ALICE.id)]
    assert texts == [h.t("en", "digests.daily_title", day="2026-11-29", members=4)]

    await h.send(ALICE, "/settings digest off")
    h.clock.set(datetime(2026, 12, 1, 2, 16, tzinfo=UTC))
    await digest_run(h)
    assert h.session.of("sendMessage", ALICE.id) == []
    await h.send(ALICE, "/settings digest 25:00")
    assert h.session.texts(ALICE.id)[-1] == h.t("en", "settings.bad_time", value="25:00")


FRANK = tg_user(206, "Frank", lang="en")


async def test_nested_teams_each_lead_gets_their_own_subtree(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bob, in Alice's team, becomes a lead and recruits Frank: one sweep builds both digests together (a page of
    leads is read in one go), Alice's counting Frank among her five, Bob's holding Frank alone. Each chart is its
    own team's 14 days (summed by the database per team): Bob's shares and follow-up count in both teams, Carol's
    only in Alice's."""
    h = harness
    trends: list[dict[date, DayCounts]] = []

    async def recorded(trend: dict[date, DayCounts], title: str, labels: tuple[str, str, str]) -> bytes:
        trends.append(trend)
        return await trend_chart(trend, title, labels)

    monkeypatch.setattr(digests, "trend_chart", recorded)
    await team(h)
    async with h.sessionmaker() as s:
        bob_code = (await s.execute(select(Partner.invite_code).where(Partner.tg_user_id == BOB.id))).scalar_one()
    await h.send(ADMIN, f"/grant {bob_code} lead")
    await h.send(FRANK, f"/start {bob_code}")
    await digest_run(h)
    title = partial(h.t, "en", "digests.daily_title", day="2026-11-28")
    [alice] = h.session.of("sendMessage", ALICE.id)
    # Bob also hears that Frank joined his team
    [bob] = [m for m in h.session.of("sendMessage", BOB.id) if m.text.startswith(title(members=1))]
    alice_lines, bob_lines = alice.text.split("\n"), bob.text.split("\n")
    assert alice_lines[0] == title(members=5)
    assert h.t("en", "digests.new_item", name="Frank", day=0, total=7, done=0, steps=8) in alice_lines
    assert bob_lines[0] == title(members=1)
    assert h.t("en", "digests.new_item", name="Frank", day=0, total=7, done=0, steps=8) in bob_lines
    for other in ("Carol", "Dan", "Eve", "Alice"):
        assert other not in bob.text
    assert len(h.session.of("sendPhoto", ALICE.id)) == 1 and len(h.session.of("sendPhoto", BOB.id)) == 1
    days = [date(2026, 11, 15) + timedelta(days=i) for i in range(14)]  # the 14 days up to yesterday, Saturday
    alice_trend, bob_trend = trends  # leads by id: Alice's page comes first
    assert list(alice_trend) == days and list(bob_trend) == days

    def series(trend: dict[date, DayCounts]) -> dict[date, tuple[int, int, int]]:
        return {d: (c.shares, c.followups, c.orders) for d, c in trend.items() if c != DayCounts()}

    saturday, wednesday = date(2026, 11, 28), date(2026, 11, 25)
    assert series(alice_trend) == {wednesday: (1, 0, 0), saturday: (2, 1, 0)}
    assert series(bob_trend) == {saturday: (2, 1, 0)}


async def five_leads(h: BotHarness) -> list[int]:
    """Five team leads (Telegram ids 301-305), each with one member; it is Wednesday 09:00 local, digests are due."""
    await h.send(ADMIN, "/start")
    leads = [tg_user(301 + i, f"Lead{i}", username=f"lead_{i}", lang="en") for i in range(5)]
    for at, lead in enumerate(leads):
        await h.send(lead, "/start")
        await h.send(ADMIN, f"/grant @lead_{at} lead")
        async with h.sessionmaker() as s:
            code = (await s.execute(select(Partner.invite_code).where(Partner.tg_user_id == lead.id))).scalar_one()
        await h.send(tg_user(401 + at, f"Member{at}", lang="en"), f"/start {code}")
    h.clock.advance(timedelta(days=1))
    await drain(h)
    h.session.clear()
    return [lead.id for lead in leads]


async def test_digests_of_many_pages_each_once_and_a_failed_page_leaves_nothing_half_done(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep reads a page while it composes the one before: with pages of two, five leads are three pages, each
    lead gets one digest. When composing a page fails, the pages queued before it stay queued, nothing of the
    failed page (or of the one read ahead) is, and the next sweep sends the rest, none twice."""
    h = harness
    leads = await five_leads(h)
    monkeypatch.setattr(jobs, "DIGEST_BATCH", 2)
    compose = DigestService.compose
    calls = 0

    async def failing_on_the_third_page(self: DigestService, read: ReadDigests) -> PreparedDigests:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("composing failed")
        return await compose(self, read)

    monkeypatch.setattr(DigestService, "compose", failing_on_the_third_page)
    with running_with(h.job_runtime()), pytest.raises(RuntimeError, match="composing failed"):
        await send_team_digests()
    await drain(h)
    # page 1 was queued when page 2 was composed; page 2 waited for page 3, which failed
    assert sorted(c.chat_id or 0 for c in h.session.of("sendMessage")) == leads[:2]
    async with h.sessionmaker() as s:
        marked = await s.execute(select(Partner.tg_user_id).join(DigestSent, DigestSent.partner_id == Partner.id))
        assert sorted(marked.scalars()) == leads[:2]

    monkeypatch.setattr(DigestService, "compose", compose)
    await digest_run(h)
    assert sorted(c.chat_id or 0 for c in h.session.of("sendMessage")) == leads[2:]
    assert sorted(c.chat_id or 0 for c in h.session.of("sendPhoto")) == leads[2:]
    h.session.clear()
    await digest_run(h)
    assert h.session.of("sendMessage") == [] and h.session.of("sendPhoto") == []
