"""Tier 2: dividend pools — /pools, the preview, posting once to the ledger, the wallet explanation."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select, update

from bot.callbacks import PoolCallback
from bot.domain.orders_api import parse_order
from bot.services.ledger import DEFAULT_PLAN, checksum
from bot.services.registry import UseCases
from storage.models import LedgerEntry, OutboxMessage, Partner, RuleVersion
from storage.uow import UnitOfWork
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

ADMIN = tg_user(ADMIN_ID, "Root", lang="en")
BOB = tg_user(102, "Bob", lang="en")
CAROL = tg_user(103, "Carol", lang="en")
DAN = tg_user(104, "Dan", lang="en")

POOL = """pools:
  gold_monthly:
    title: {zh: 黄金月度分红, en: Gold monthly}
    share: "1%"
    period: monthly
    qualify: "level == 'gold' and sales_30d >= 1"
    split: equal
    cap: "5.00"
"""


async def partner(h: BotHarness, tg_id: int) -> Partner:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner).where(Partner.tg_user_id == tg_id))).scalar_one()


async def sell(h: BotHarness, code: str, order_id: str, amount: str) -> None:
    body = {
        "order_id": order_id,
        "partner_code": code,
        "customer_id": f"c-{order_id}",
        "currency": "CNY",
        "amount": amount,
        "items": [{"sku": "TEA-1", "category": "tea", "quantity": 1, "unit_price": amount}],
        "paid_at": h.clock.now().isoformat().replace("+00:00", "Z"),
    }
    async with UnitOfWork(h.sessionmaker) as uow:
        await UseCases(uow, h.ctx).settlement.ingest_order(parse_order(json.dumps(body).encode()))


async def setup(h: BotHarness) -> tuple[Partner, Partner]:
    """Plan v2 with a monthly gold pool; Bob and Carol are gold and sold in November; Dan sold nothing."""
    for user in (ADMIN, BOB, CAROL, DAN):
        await h.send(user, "/start")
    text = DEFAULT_PLAN.read_text(encoding="utf-8").replace("pools: {}", POOL)
    async with UnitOfWork(h.sessionmaker) as uow:
        await UseCases(uow, h.ctx).settlement.ensure_plan()
        uow.ledger.add_rules(
            RuleVersion(
                version=2, plan_text=text, checksum=checksum(text), status="published",
                created_at=h.clock.now(), published_at=h.clock.now() - timedelta(hours=1),
            )
        )  # fmt: skip
    async with h.sessionmaker() as s, s.begin():
        await s.execute(update(Partner).where(Partner.tg_user_id.in_([BOB.id, CAROL.id])).values(level="gold"))
    bob, carol = await partner(h, BOB.id), await partner(h, CAROL.id)
    await sell(h, bob.invite_code, "N1", "1000.00")
    await sell(h, carol.invite_code, "N2", "1.00")
    h.clock.advance(timedelta(days=7))  # 2 December: November is closed
    h.session.clear()
    return bob, carol


async def dividend_lines(h: BotHarness) -> list[LedgerEntry]:
    async with h.sessionmaker() as s:
        rows = await s.execute(select(LedgerEntry).where(LedgerEntry.kind == "dividend").order_by(LedgerEntry.line))
        return list(rows.scalars())


async def test_preview_post_wallet_and_repost(harness: BotHarness) -> None:
    bob, carol = await setup(harness)
    await harness.send(ADMIN, "/pools")
    [listing] = harness.session.of("sendMessage", ADMIN_ID)
    assert harness.t("en", "pools.item_open", pool="Gold monthly", period="2026-11") in listing.text
    assert [b["callback_data"] for b in listing.buttons()] == [
        PoolCallback(action="preview", pool="gold_monthly", period="2026-11").pack()
    ]

    harness.session.clear()
    await harness.press(ADMIN, PoolCallback(action="preview", pool="gold_monthly", period="2026-11").pack())
    [preview] = harness.session.of("sendMessage", ADMIN_ID)
    lines = preview.text.split("\n")
    # GMV ¥1,001.00 × 1% = ¥10.01; equal split ¥5.01 + ¥5.00; the cap ¥5.00 cuts ¥0.01, kept as the remainder
    assert "¥1,001.00" in lines[1] and "¥10.01" in lines[1]
    assert lines[2] == harness.t("en", "pools.preview.capped", name="Bob", weight=1, amount="¥5.00")
    assert lines[3] == harness.t("en", "pools.preview.line", name="Carol", weight=1, amount="¥5.00")
    assert lines[4] == harness.t("en", "pools.preview.remainder", amount="¥0.01")
    assert lines[5] == harness.t("en", "pools.preview.cap", cap="¥5.00", cut="¥0.01")
    assert "Dan" not in preview.text and "Root" not in preview.text

    harness.session.clear()
    await harness.press(ADMIN, PoolCallback(action="post", pool="gold_monthly", period="2026-11").pack())
    [done] = harness.session.of("sendMessage", ADMIN_ID)
    assert done.text == harness.t("en", "pools.posted", pool="gold_monthly", period="2026-11", amount="¥10.00", count=2)
    rows = await dividend_lines(harness)
    assert [(r.partner_id, r.bucket, r.amount_minor) for r in rows] == [
        (bob.id, "available", 500),
        (carol.id, "available", 500),
        (None, "dividends", -1000),
    ]
    assert {r.txn for r in rows} == {"pool:gold_monthly:2026-11"}
    assert (rows[0].rule, rows[0].rate, rows[0].base_minor) == ("pools.gold_monthly:2026-11", "0.01", 100100)

    harness.session.clear()
    await harness.send(BOB, "/wallet")
    [wallet] = harness.session.of("sendMessage", BOB.id)
    # both got the cap (Bob's ¥5.01 was cut), so the line says "capped", not "1/2"
    share = harness.t(
        "en", "wallet.line.dividend_share", amount="+¥5.00", split="equal shares", period="November 2026",
        pool="Gold monthly", count=2, rate="1%", gmv="¥1,001.00", total="¥10.01",
    )  # fmt: skip
    assert share + harness.t("en", "wallet.line.dividend_capped", cap="¥5.00") in wallet.text
    async with harness.sessionmaker() as s:
        keys = set((await s.execute(select(OutboxMessage.dedupe_key))).scalars())
    assert f"pool:gold_monthly:2026-11:{bob.id}" in keys

    # posting again writes nothing and says so
    harness.session.clear()
    await harness.press(ADMIN, PoolCallback(action="post", pool="gold_monthly", period="2026-11").pack())
    [again] = harness.session.of("sendMessage", ADMIN_ID)
    assert again.text == harness.t("en", "pools.already_posted", pool="gold_monthly", period="2026-11")
    assert len(await dividend_lines(harness)) == 3

    # a period without GMV has nothing to pay: nothing is posted, and the admin is told so (not "posted before")
    harness.session.clear()
    await harness.press(ADMIN, PoolCallback(action="post", pool="gold_monthly", period="2026-10").pack())
    [empty] = harness.session.of("sendMessage", ADMIN_ID)
    assert empty.text == harness.t("en", "pools.nothing_to_pay", pool="gold_monthly", period="2026-10")
    assert len(await dividend_lines(harness)) == 3

    # the period-end job finds nothing left to announce
    async with UnitOfWork(harness.sessionmaker) as uow:
        assert await UseCases(uow, harness.ctx).pools.announce_closed() == 0


async def test_period_end_job_sends_admins_the_preview_once(harness: BotHarness) -> None:
    await setup(harness)
    async with UnitOfWork(harness.sessionmaker) as uow:
        assert await UseCases(uow, harness.ctx).pools.announce_closed() == 1
    async with UnitOfWork(harness.sessionmaker) as uow:
        assert await UseCases(uow, harness.ctx).pools.announce_closed() == 0
    admin = await partner(harness, ADMIN_ID)
    async with harness.sessionmaker() as s:
        row = (
            await s.execute(
                select(OutboxMessage).where(OutboxMessage.dedupe_key == f"pool:gold_monthly:2026-11:preview:{admin.id}")
            )
        ).scalar_one()
    assert "¥10.01" in row.payload["text"]


async def test_non_admin_is_refused(harness: BotHarness) -> None:
    await setup(harness)
    await harness.send(BOB, "/pools")
    assert harness.session.texts(BOB.id) == [harness.t("en", "denied.admin")]
    harness.session.clear()
    await harness.press(BOB, PoolCallback(action="post", pool="gold_monthly", period="2026-11").pack())
    assert await dividend_lines(harness) == []
