"""Tier 2: /wallet — balances, explained ledger lines, refunds and releases, and the rates button."""

from __future__ import annotations

import json
from datetime import timedelta

from aiogram.types import User
from sqlalchemy import select

from bot.callbacks import WalletCallback
from bot.domain.orders_api import parse_order, parse_refund
from bot.services.registry import UseCases
from storage.models import Partner
from storage.uow import UnitOfWork
from tests.support.harness import BotHarness, tg_user

ALICE = tg_user(101, "Alice", lang="en")
BOB = tg_user(102, "Bob", lang="en")
CAROL = tg_user(103, "Carol", lang="zh")

B_LINE = "+¥15.00 = 10% L1 (member) on order A1001 ¥150.00 · rules v1 · available from 2026-12-09"
A_LINE = "+¥4.50 = 3% L2 (member) on order A1001 ¥150.00 · rules v1 · available from 2026-12-09"


async def partner(h: BotHarness, tg_id: int) -> Partner:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner).where(Partner.tg_user_id == tg_id))).scalar_one()


async def team(h: BotHarness) -> str:
    """Alice, and Bob in her team; returns Bob's invite code."""
    await h.send(ALICE, "/start")
    alice = await partner(h, ALICE.id)
    await h.send(BOB, f"/start {alice.invite_code}")
    return (await partner(h, BOB.id)).invite_code


async def sell(h: BotHarness, code: str, order_id: str = "A1001", amount: str = "150.00") -> None:
    body = {
        "order_id": order_id,
        "partner_code": code,
        "customer_id": "c1",
        "currency": "CNY",
        "amount": amount,
        "items": [{"sku": "TEA-1", "category": "tea", "quantity": 1, "unit_price": amount}],
        "paid_at": "2026-11-25T00:00:00Z",
    }
    async with UnitOfWork(h.sessionmaker) as uow:
        await UseCases(uow, h.ctx).settlement.ingest_order(parse_order(json.dumps(body).encode()))


async def refund(h: BotHarness, refund_id: str, order_id: str, amount: str) -> None:
    body = {"refund_id": refund_id, "order_id": order_id, "amount": amount, "currency": "CNY"}
    async with UnitOfWork(h.sessionmaker) as uow:
        await UseCases(uow, h.ctx).settlement.ingest_refund(parse_refund(json.dumps(body).encode()))


async def release(h: BotHarness) -> int:
    async with UnitOfWork(h.sessionmaker) as uow:
        return await UseCases(uow, h.ctx).settlement.release_matured()


async def wallet_text(h: BotHarness, user: User) -> str:
    h.session.clear()
    await h.send(user, "/wallet")
    [call] = h.session.of("sendMessage", user.id)
    return call.text


async def test_wallet_explains_commission_of_seller_and_upline(harness: BotHarness) -> None:
    await sell(harness, await team(harness))

    bob = await wallet_text(harness, BOB)
    assert harness.t("en", "wallet.bucket.pending", amount="¥15.00") in bob
    assert harness.t("en", "wallet.bucket.available", amount="¥0.00") in bob
    assert harness.t("en", "wallet.bucket.requested", amount="¥0.00") in bob
    assert harness.t("en", "wallet.bucket.paid", amount="¥0.00") in bob
    assert f"2026-11-25 · {B_LINE}" in bob
    [call] = harness.session.of("sendMessage", BOB.id)
    [button] = call.buttons()
    assert button == {"text": "📈 My rates", "callback_data": WalletCallback(action="rates").pack()}

    alice = await wallet_text(harness, ALICE)
    assert harness.t("en", "wallet.bucket.pending", amount="¥4.50") in alice
    assert A_LINE in alice


async def test_rates_button_shows_current_and_next_level(harness: BotHarness) -> None:
    await team(harness)
    harness.session.clear()
    await harness.press(BOB, WalletCallback(action="rates").pack())
    [answer] = harness.session.of("answerCallbackQuery")
    assert answer.params.get("text") is None
    [call] = harness.session.of("sendMessage", BOB.id)
    lines = call.text.split("\n")
    assert lines[0] == harness.t("en", "wallet.rates.title", version=1)
    assert lines[1] == "Your level: <b>Member</b>, you earn L1 10% · L2 3%"
    assert lines[2] == "Next level: <b>Silver</b> would pay L1 12% · L2 4%"
    assert "▶️ Member: L1 10% · L2 3%" in lines
    assert "▫️ Gold: L1 15% · L2 5%" in lines
    assert "L3" not in call.text


async def test_empty_wallet_shows_zeros_and_a_hint(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    text = await wallet_text(harness, ALICE)
    assert text == "\n".join(
        [
            harness.t("en", "wallet.title"),
            harness.t("en", "wallet.bucket.pending", amount="¥0.00"),
            harness.t("en", "wallet.bucket.available", amount="¥0.00"),
            harness.t("en", "wallet.bucket.requested", amount="¥0.00"),
            harness.t("en", "wallet.bucket.paid", amount="¥0.00"),
            "",
            harness.t("en", "wallet.empty"),
        ]
    )


async def test_wallet_in_chinese(harness: BotHarness) -> None:
    await harness.send(ALICE, "/start")
    alice = await partner(harness, ALICE.id)
    await harness.send(CAROL, f"/start {alice.invite_code}")
    await sell(harness, (await partner(harness, CAROL.id)).invite_code)
    text = await wallet_text(harness, CAROL)
    assert "⏳ 冻结中（待结算）：¥15.00" in text
    assert "+¥15.00 = 10% L1（member）订单 A1001 ¥150.00 · 规则 v1 · 2026-12-09 起可提现" in text
    harness.session.clear()
    await harness.press(CAROL, WalletCallback(action="rates").pack())
    [call] = harness.session.of("sendMessage", CAROL.id)
    assert "当前等级：<b>会员</b>，可得 L1 10% · L2 3%" in call.text
    assert "下一等级：<b>白银</b>，可得 L1 12% · L2 4%" in call.text


async def test_refund_reverses_and_release_moves_the_rest_to_available(harness: BotHarness) -> None:
    code = await team(harness)
    await sell(harness, code)
    await refund(harness, "R1", "A1001", "150.00")
    bob = await wallet_text(harness, BOB)
    assert harness.t("en", "wallet.bucket.pending", amount="¥0.00") in bob
    assert "−¥15.00 refund of order A1001 · 10% L1" in bob
    assert B_LINE in bob
    alice = await wallet_text(harness, ALICE)
    assert "−¥4.50 refund of order A1001 · 3% L2" in alice

    # A second order, half refunded: after the 14-day hold what is left becomes available.
    await sell(harness, code, "A1002", "200.00")
    await refund(harness, "R2", "A1002", "100.00")
    assert await release(harness) == 0
    harness.clock.advance(timedelta(days=14, hours=1))
    assert await release(harness) == 4  # both earners, both orders (A1001's releases are empty)
    bob = await wallet_text(harness, BOB)
    assert harness.t("en", "wallet.bucket.pending", amount="¥0.00") in bob
    assert harness.t("en", "wallet.bucket.available", amount="¥10.00") in bob
    assert "¥10.00 moved to available (order A1002)" in bob
    assert "moved to available (order A1001)" not in bob
    for _ in range(5):  # the sender paces messages per chat: let its clock run
        harness.clock.advance(timedelta(seconds=30))
        await harness.drain_outbox()
    assert harness.t("en", "wallet.notice.available", amount="¥10.00") in harness.session.texts(BOB.id)
    alice = await wallet_text(harness, ALICE)
    assert harness.t("en", "wallet.bucket.available", amount="¥3.00") in alice
