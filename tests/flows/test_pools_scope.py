"""Tier 2: team pools, by_points, the plan's eligibility in pools, and /wallet's explanation of a dividend line."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.callbacks import PoolCallback
from bot.services.ledger import DEFAULT_PLAN, checksum
from bot.services.registry import UseCases
from storage.models import LedgerEntry, Partner, RuleVersion
from storage.uow import UnitOfWork
from tests.flows.test_pools import partner, sell
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

ADMIN = tg_user(ADMIN_ID, "Root", lang="en")
ANN = tg_user(401, "Ann", lang="en")
BEN = tg_user(402, "Ben", lang="en")
CY = tg_user(403, "Cy", lang="zh")
DEE = tg_user(404, "Dee", lang="en")


async def publish(h: BotHarness, pools: str, eligibility: str = "null") -> None:
    text = (
        DEFAULT_PLAN.read_text(encoding="utf-8")
        .replace("pools: {}", pools)
        .replace("eligibility: null", f"eligibility: {eligibility}")
    )
    async with UnitOfWork(h.sessionmaker) as uow:
        await UseCases(uow, h.ctx).settlement.ensure_plan()
        uow.ledger.add_rules(
            RuleVersion(
                version=2, plan_text=text, checksum=checksum(text), status="published",
                created_at=h.clock.now(), published_at=h.clock.now() - timedelta(hours=1),
            )
        )  # fmt: skip


async def team(h: BotHarness) -> dict[str, Partner]:
    """Ann recruits Ben, Ben recruits Cy; Dee and the admin are outside Ann's team."""
    await h.send(ADMIN, "/start")
    await h.send(ANN, "/start")
    await h.send(BEN, f"/start {(await partner(h, ANN.id)).invite_code}")
    await h.send(CY, f"/start {(await partner(h, BEN.id)).invite_code}")
    await h.send(DEE, "/start")
    return {u.first_name: await partner(h, u.id) for u in (ANN, BEN, CY, DEE)}


async def november_sales(h: BotHarness, people: dict[str, Partner]) -> None:
    """Team GMV ¥600.00 in four orders (Ann 1, Ben 2, Cy 1); Dee ¥1,000.00 outside the team."""
    await sell(h, people["Ann"].invite_code, "A1", "100.00")
    await sell(h, people["Ben"].invite_code, "B1", "100.00")
    await sell(h, people["Ben"].invite_code, "B2", "100.00")
    await sell(h, people["Cy"].invite_code, "C1", "300.00")
    await sell(h, people["Dee"].invite_code, "D1", "1000.00")
    h.clock.advance(timedelta(days=7))  # 2 December: November is closed
    h.session.clear()


async def post(h: BotHarness, pool: str) -> str:
    h.session.clear()
    await h.press(ADMIN, PoolCallback(action="post", pool=pool, period="2026-11").pack())
    [done] = h.session.of("sendMessage", ADMIN_ID)
    return done.text


def alerts(h: BotHarness) -> list[str]:
    """What refused callback presses showed (bot.handlers.errors answers them with an alert)."""
    return [c.text for c in h.session.calls if c.method == "answerCallbackQuery" and c.text]


async def paid(h: BotHarness, pool: str) -> dict[int | None, int]:
    async with h.sessionmaker() as s:
        rows = await s.execute(select(LedgerEntry).where(LedgerEntry.txn == f"pool:{pool}:2026-11"))
        return {r.partner_id: r.amount_minor for r in rows.scalars()}


async def test_team_pool_by_points_and_a_network_pool_explained_in_the_wallet(harness: BotHarness) -> None:
    people = await team(harness)
    await publish(
        harness,
        f"""pools:
  ann_team:
    title: {{zh: 安团队分红, en: Ann team}}
    share: "10%"
    period: monthly
    team: "{people["Ann"].invite_code}"
    split: by_points
  network:
    title: {{zh: 全网分红, en: Network}}
    share: "1%"
    period: monthly
    split: equal
""",
    )
    await november_sales(harness, people)

    await harness.press(ADMIN, PoolCallback(action="preview", pool="ann_team", period="2026-11").pack())
    [preview] = harness.session.of("sendMessage", ADMIN_ID)
    lines = preview.text.split("\n")
    assert "¥600.00" in lines[1] and "¥60.00" in lines[1]  # the team's GMV only: Dee's ¥1,000.00 is not in it
    assert lines[2] == harness.t("en", "pools.preview.team", name="Ann")
    assert lines[3:6] == [
        harness.t("en", "pools.preview.line", name="Ann", weight=1, amount="¥15.00"),
        harness.t("en", "pools.preview.line", name="Ben", weight=2, amount="¥30.00"),
        harness.t("en", "pools.preview.line", name="Cy", weight=1, amount="¥15.00"),
    ]
    assert "Dee" not in preview.text and "Root" not in preview.text

    await post(harness, "ann_team")
    await post(harness, "network")
    ann, ben, cy, dee = (people[n].id for n in ("Ann", "Ben", "Cy", "Dee"))
    admin = (await partner(harness, ADMIN_ID)).id
    assert await paid(harness, "ann_team") == {ann: 1500, ben: 3000, cy: 1500, None: -6000}
    assert await paid(harness, "network") == {admin: 320, ann: 320, ben: 320, cy: 320, dee: 320, None: -1600}

    harness.session.clear()
    await harness.send(BEN, "/wallet")
    [wallet] = harness.session.of("sendMessage", BEN.id)
    t = harness.t
    assert t(
        "en", "wallet.line.dividend", amount="+¥3.20", count=5, period="November 2026", pool="Network", rate="1%",
        gmv="¥1,600.00",
    ) in wallet.text  # fmt: skip
    assert t(
        "en", "wallet.line.dividend_share", amount="+¥30.00", split="by points", period="November 2026",
        pool="Ann team", count=3, rate="10%", gmv="¥600.00", total="¥60.00",
    ) in wallet.text  # fmt: skip

    harness.session.clear()
    await harness.send(CY, "/wallet")
    [wallet] = harness.session.of("sendMessage", CY.id)
    assert t(
        "zh", "wallet.line.dividend", amount="+¥3.20", count=5, period="2026年11月", pool="全网分红", rate="1%",
        gmv="¥1,600.00",
    ) in wallet.text  # fmt: skip
    assert "1/5" in wallet.text and "安团队分红" in wallet.text


async def test_plan_eligibility_applies_to_pools_and_an_unknown_team_is_explained(harness: BotHarness) -> None:
    people = await team(harness)
    await publish(
        harness,
        """pools:
  recruiters:
    share: "1%"
    period: monthly
    split: by_gmv
  lost_team:
    share: "1%"
    period: monthly
    team: "nobody-has-this"
""",
        eligibility='"recruits_total >= 1"',
    )
    await november_sales(harness, people)
    await post(harness, "recruiters")
    # only Ann and Ben recruited someone; by GMV ¥100.00 : ¥200.00 of a ¥16.00 pool
    assert await paid(harness, "recruiters") == {people["Ann"].id: 533, people["Ben"].id: 1067, None: -1600}

    harness.session.clear()
    await harness.press(ADMIN, PoolCallback(action="preview", pool="lost_team", period="2026-11").pack())
    message = "team: no partner has the invite code 'nobody-has-this'"
    assert alerts(harness) == [harness.t("en", "pools.error", message=message)[:200]]


async def test_a_pool_condition_on_a_metric_pools_cannot_fix_is_refused(harness: BotHarness) -> None:
    people = await team(harness)
    await publish(
        harness,
        """pools:
  streaky:
    share: "1%"
    period: monthly
    qualify: "streak_days >= 3"
""",
    )
    await november_sales(harness, people)
    await harness.press(ADMIN, PoolCallback(action="preview", pool="streaky", period="2026-11").pack())
    [text] = alerts(harness)
    assert "streak_days" in text and "pools cannot use" in text
