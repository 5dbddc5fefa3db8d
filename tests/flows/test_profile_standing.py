"""Tier 2: /me shows the partner's level, the badges they hold and what the next level asks for (zh and en)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from bot.domain.rules import load_plan
from bot.services.ledger import DEFAULT_PLAN
from storage.models import Order, Partner
from storage.uow import UnitOfWork
from tests.support.harness import BotHarness, tg_user

ALICE = tg_user(301, "Alice", lang="en")
LI = tg_user(302, "Li", lang="zh")


async def partner_id(h: BotHarness, tg_id: int) -> int:
    async with h.sessionmaker() as s:
        return int((await s.execute(select(Partner.id).where(Partner.tg_user_id == tg_id))).scalar_one())


async def sold(h: BotHarness, pid: int, count: int) -> None:
    paid_at = h.clock.now() - timedelta(days=1)
    async with UnitOfWork(h.sessionmaker) as uow:
        for n in range(count):
            uow.session.add(
                Order(
                    source="api", external_id=f"S{pid}-{n}", fingerprint="x", customer_id="cust", partner_id=pid,
                    attribution="partner_code", currency="CNY", amount_minor=10000, refunded_minor=0, items=[],
                    paid_at=paid_at, status="settled", created_at=paid_at,
                )
            )  # fmt: skip


async def test_me_shows_level_badges_and_the_next_level(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    alice = await partner_id(harness, ALICE.id)
    await sold(harness, alice, 2)
    async with UnitOfWork(harness.sessionmaker) as uow:
        await uow.metrics.award_badge(alice, "first_sale", harness.clock.now())
        await uow.metrics.award_badge(alice, "retired_badge", harness.clock.now())  # no longer in the plan
    harness.session.clear()

    await harness.send(ALICE, "/me")
    [call] = harness.session.of("sendMessage", ALICE.id)
    t = harness.t
    silver = load_plan(DEFAULT_PLAN.read_text(encoding="utf-8")).levels["silver"].promote_when
    assert silver is not None
    assert t("en", "levels.me.level", level="Member") in call.text
    assert t("en", "levels.me.badges", badges="💰 First deal · 🏅 retired_badge") in call.text
    assert t("en", "levels.me.next", level="Silver", condition=silver.text) in call.text
    assert t("en", "levels.me.now", values="sales (30 d) 2 · active recruits 0") in call.text
    assert t("en", "levels.me.met") not in call.text
    assert "Role: Partner" in call.text  # the profile itself is still there


async def test_me_in_chinese_at_the_top_level_and_when_the_condition_is_met(harness: BotHarness) -> None:
    await harness.send(LI, "/start")
    li = await partner_id(harness, LI.id)
    harness.session.clear()
    await harness.send(LI, "/me")
    [call] = harness.session.of("sendMessage", LI.id)
    assert harness.t("zh", "levels.me.level", level="会员") in call.text
    assert harness.t("zh", "levels.me.no_badges") in call.text
    assert harness.t("zh", "levels.me.now", values="近30天成交 0 · 活跃下级 0") in call.text

    async with harness.sessionmaker() as s, s.begin():
        await s.execute(update(Partner).where(Partner.id == li).values(level="silver"))
    await sold(harness, li, 20)
    harness.session.clear()
    await harness.send(LI, "/me")
    [call] = harness.session.of("sendMessage", LI.id)
    assert harness.t("zh", "levels.me.next", level="黄金", condition="sales_30d >= 20 and active_recruits >= 5") in (
        call.text
    )
    assert harness.t("zh", "levels.me.met") not in call.text  # no active recruits yet

    async with harness.sessionmaker() as s, s.begin():
        await s.execute(update(Partner).where(Partner.id == li).values(level="gold"))
    harness.session.clear()
    await harness.send(LI, "/me")
    [call] = harness.session.of("sendMessage", LI.id)
    assert harness.t("zh", "levels.me.level", level="黄金") in call.text
    assert harness.t("zh", "levels.me.top") in call.text
