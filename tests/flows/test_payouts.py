"""Tier 2: withdrawals — /withdraw, /payouts with approve / reject / mark paid, notices, the CSV export, and
the ledger invariants (paid never exceeds approved; concurrent requests never overdraw)."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram.types import FSInputFile
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from bot.callbacks import PayoutCallback
from bot.domain.errors import UsageError
from bot.domain.orders_api import parse_order, parse_refund
from bot.services.payouts import PayoutService
from bot.services.registry import UseCases
from bot.services.views import PartnerView
from storage.models import AuditEntry, LedgerEntry, OutboxMessage, Partner, Withdrawal
from storage.repositories.ledger import LedgerRepository
from storage.uow import UnitOfWork
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

ADMIN = tg_user(ADMIN_ID, "Root", lang="en")
BOB = tg_user(102, "Bob", lang="en")
CAROL = tg_user(103, "Carol", lang="zh")


# -- helpers -------------------------------------------------------------------------------------------


async def partner(h: BotHarness, tg_id: int) -> Partner:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner).where(Partner.tg_user_id == tg_id))).scalar_one()


async def sell(h: BotHarness, code: str, order_id: str = "A1", amount: str = "600.00") -> None:
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


async def refund(h: BotHarness, refund_id: str, order_id: str, amount: str) -> None:
    body = {"refund_id": refund_id, "order_id": order_id, "amount": amount, "currency": "CNY"}
    async with UnitOfWork(h.sessionmaker) as uow:
        await UseCases(uow, h.ctx).settlement.ingest_refund(parse_refund(json.dumps(body).encode()))


async def earn(h: BotHarness, code: str, order_id: str = "A1", amount: str = "600.00") -> None:
    """An order whose 10% commission is released after the 14-day hold."""
    await sell(h, code, order_id, amount)
    h.clock.advance(timedelta(days=14, hours=1))
    async with UnitOfWork(h.sessionmaker) as uow:
        await UseCases(uow, h.ctx).settlement.release_matured()


async def setup(h: BotHarness, user: Any = BOB, amount: str = "600.00") -> Partner:
    """The admin and a partner with 10% of `amount` available (¥60.00 by default)."""
    await h.send(ADMIN, "/start")
    await h.send(user, "/start")
    seller = await partner(h, user.id)
    await earn(h, seller.invite_code, amount=amount)
    h.session.clear()
    return seller


async def balances(h: BotHarness, partner_id: int) -> dict[str, int]:
    async with UnitOfWork(h.sessionmaker) as uow:
        totals = await uow.ledger.balances(partner_id)
    return {bucket: total for (bucket, _), total in totals.items()}


async def withdrawals(h: BotHarness) -> list[Withdrawal]:
    async with h.sessionmaker() as s:
        return list((await s.execute(select(Withdrawal).order_by(Withdrawal.id))).scalars())


async def last_id(h: BotHarness) -> int:
    """The newest withdrawal's id (PostgreSQL sequences are not reset between tests)."""
    return (await withdrawals(h))[-1].id


async def notice(h: BotHarness, dedupe_key: str) -> str:
    async with h.sessionmaker() as s:
        row = (await s.execute(select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key))).scalar_one()
    return str(row.payload["text"])


async def audit(h: BotHarness) -> list[tuple[str, str | None, str]]:
    async with h.sessionmaker() as s:
        rows = (await s.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars()
        return [(r.action, r.target, r.outcome) for r in rows]


async def reply(h: BotHarness, user: Any, text: str) -> list[str]:
    h.session.clear()
    await h.send(user, text)
    return h.session.texts(user.id)


async def press(h: BotHarness, user: Any, action: str, withdrawal_id: int) -> None:
    h.session.clear()
    await h.press(user, PayoutCallback(action=action, id=withdrawal_id).pack())


def alert(h: BotHarness) -> str | None:
    [answer] = h.session.of("answerCallbackQuery")
    return answer.params.get("text")


async def view_of(h: BotHarness, tg_id: int) -> PartnerView:
    async with UnitOfWork(h.sessionmaker) as uow:
        row = await uow.partners.by_tg_id(tg_id)
        assert row is not None
        return UseCases(uow, h.ctx).partners.view(row)


async def in_uow(h: BotHarness, action: Callable[[PayoutService], Awaitable[Any]]) -> Any:
    async with UnitOfWork(h.sessionmaker) as uow:
        return await action(UseCases(uow, h.ctx).payouts)


# -- the partner's side --------------------------------------------------------------------------------


async def test_withdraw_without_amount_shows_available_minimum_and_usage(harness: BotHarness) -> None:
    await setup(harness)
    assert await reply(harness, BOB, "/withdraw") == [
        harness.t("en", "payouts.overview", available="¥60.00", minimum="¥50.00")
    ]


async def test_bad_amounts_are_refused_and_nothing_is_written(harness: BotHarness) -> None:
    bob = await setup(harness)
    before = await balances(harness, bob.id)
    cases = [
        ("/withdraw 40", "payouts.below_minimum", {"amount": "¥40.00", "minimum": "¥50.00"}),
        ("/withdraw 70", "payouts.over_available", {"amount": "¥70.00", "available": "¥60.00"}),
        ("/withdraw 60.01", "payouts.over_available", {"amount": "¥60.01", "available": "¥60.00"}),
        ("/withdraw abc", "payouts.bad_amount", {"value": "abc"}),
        ("/withdraw ¥55", "payouts.bad_amount", {"value": "¥55"}),
        ("/withdraw 55.123", "payouts.bad_amount", {"value": "55.123"}),
        ("/withdraw -55", "payouts.bad_amount", {"value": "-55"}),
        ("/withdraw 55 60", "payouts.bad_amount", {"value": "55 60"}),
    ]
    for text, key, params in cases:
        assert await reply(harness, BOB, text) == [harness.t("en", key, **params)], text
    assert await withdrawals(harness) == []
    assert await balances(harness, bob.id) == before == {"pending": 0, "available": 6000}


async def test_request_in_chinese(harness: BotHarness) -> None:
    await setup(harness, CAROL)
    [text] = await reply(harness, CAROL, "/withdraw 50.5")
    wid = await last_id(harness)
    assert text == harness.t("zh", "payouts.requested", id=wid, amount="¥50.50", available="¥9.50", requested="¥50.50")
    assert "¥50.50" in text and "提现申请" in text


# -- the whole path ------------------------------------------------------------------------------------


async def test_request_approve_and_pay_with_notices_at_each_step(harness: BotHarness) -> None:
    bob = await setup(harness)
    texts = await reply(harness, BOB, "/withdraw 55")
    [row] = await withdrawals(harness)
    wid = row.id
    assert texts == [
        harness.t("en", "payouts.requested", id=wid, amount="¥55.00", available="¥5.00", requested="¥55.00")
    ]
    assert (row.partner_id, row.amount_minor, row.currency, row.status) == (bob.id, 5500, "CNY", "requested")
    assert await balances(harness, bob.id) == {"pending": 0, "available": 500, "requested": 5500}
    admin = await partner(harness, ADMIN_ID)
    assert await notice(harness, f"withdrawal:{wid}:new:{admin.id}") == harness.t(
        "en", "payouts.notice.new_request", id=wid, name="Bob", code=bob.invite_code, amount="¥55.00"
    )

    # /payouts lists it with [Approve] [Reject]
    harness.session.clear()
    await harness.send(ADMIN, "/payouts")
    [listing] = harness.session.of("sendMessage", ADMIN_ID)
    assert listing.text.split("\n")[0] == harness.t("en", "payouts.list_title", count=1)
    assert f"#{wid} · Bob" in listing.text and "¥55.00" in listing.text
    assert [b["callback_data"] for b in listing.buttons()] == [
        PayoutCallback(action="approve", id=wid).pack(),
        PayoutCallback(action="reject", id=wid).pack(),
    ]

    await press(harness, ADMIN, "approve", wid)
    assert harness.t("en", "payouts.approved_done", id=wid, amount="¥55.00", name="Bob") in harness.session.texts(
        ADMIN_ID
    )
    [edited] = harness.session.of("editMessageText")
    assert [b["callback_data"] for b in edited.buttons()] == [
        PayoutCallback(action="pay", id=wid).pack(),
        PayoutCallback(action="reject", id=wid).pack(),
    ]
    assert (await withdrawals(harness))[0].status == "approved"
    assert await balances(harness, bob.id) == {"pending": 0, "available": 500, "requested": 5500}
    approved = await notice(harness, f"withdrawal:{wid}:approved")
    assert approved == harness.t("en", "payouts.notice.approved", id=wid, amount="¥55.00")

    # approving twice is a no-op with a clear message
    await press(harness, ADMIN, "approve", wid)
    assert harness.t("en", "payouts.noop.approved", id=wid) in harness.session.texts(ADMIN_ID)
    assert (await withdrawals(harness))[0].status == "approved"

    # [Mark paid] asks for the reference
    await press(harness, ADMIN, "pay", wid)
    assert harness.session.texts(ADMIN_ID) == [
        harness.t("en", "payouts.ask_reference", id=wid, amount="¥55.00", name="Bob")
    ]
    assert await reply(harness, ADMIN, "  ") == [harness.t("en", "payouts.bad_reference", limit=128)]
    assert await reply(harness, ADMIN, "BANK-2026-0001") == [
        harness.t("en", "payouts.paid_done", id=wid, amount="¥55.00", name="Bob", reference="BANK-2026-0001")
    ]
    row = (await withdrawals(harness))[0]
    assert (row.status, row.reference, row.paid_at) == ("paid", "BANK-2026-0001", harness.clock.now())
    assert row.decided_by == admin.id
    assert await balances(harness, bob.id) == {"pending": 0, "available": 500, "requested": 0, "paid": 5500}
    assert await notice(harness, f"withdrawal:{wid}:paid") == harness.t(
        "en", "payouts.notice.paid", id=wid, amount="¥55.00", reference="BANK-2026-0001"
    )

    # paying twice: the ledger's once-only transaction and the state machine both refuse
    await press(harness, ADMIN, "pay", wid)
    assert alert(harness) == harness.t("en", "payouts.noop.paid", id=wid)
    await press(harness, ADMIN, "reject", wid)
    assert alert(harness) == harness.t("en", "payouts.refused.paid", id=wid)
    assert await balances(harness, bob.id) == {"pending": 0, "available": 500, "requested": 0, "paid": 5500}
    assert await reply(harness, ADMIN, "/payouts") == [harness.t("en", "payouts.empty")]

    wallet = "\n".join(await reply(harness, BOB, "/wallet"))
    assert harness.t("en", "wallet.bucket.paid", amount="¥55.00") in wallet
    assert harness.t("en", "wallet.bucket.available", amount="¥5.00") in wallet
    assert [a for a in await audit(harness) if a[0].startswith("payout_")] == [
        ("payout_approve", f"withdrawal:{wid}", "ok"),
        ("payout_approve", f"withdrawal:{wid}", "noop"),
        ("payout_pay", f"withdrawal:{wid}", "ok"),
    ]
    async with harness.sessionmaker() as s:
        lines = (await s.execute(select(LedgerEntry).where(LedgerEntry.txn.like("withdrawal:%")))).scalars().all()
    assert sorted((e.txn, e.bucket, e.amount_minor) for e in lines) == [
        (f"withdrawal:{wid}:paid", "paid", 5500),
        (f"withdrawal:{wid}:paid", "requested", -5500),
        (f"withdrawal:{wid}:request", "available", -5500),
        (f"withdrawal:{wid}:request", "requested", 5500),
    ]


async def test_reject_returns_the_money_with_the_reason_in_the_notice(harness: BotHarness) -> None:
    bob = await setup(harness)
    await reply(harness, BOB, "/withdraw 60")
    wid = await last_id(harness)
    assert await balances(harness, bob.id) == {"pending": 0, "available": 0, "requested": 6000}
    await press(harness, ADMIN, "reject", wid)
    assert harness.session.texts(ADMIN_ID) == [
        harness.t("en", "payouts.ask_reason", id=wid, amount="¥60.00", name="Bob")
    ]
    assert await reply(harness, ADMIN, "/cancel") == [harness.t("en", "payouts.cancelled")]
    assert (await withdrawals(harness))[0].status == "requested"

    await press(harness, ADMIN, "reject", wid)
    assert await reply(harness, ADMIN, "Bank account <name> does not match") == [
        harness.t("en", "payouts.rejected_done", id=wid, amount="¥60.00", name="Bob")
    ]
    row = (await withdrawals(harness))[0]
    assert (row.status, row.reason) == ("rejected", "Bank account <name> does not match")
    assert await balances(harness, bob.id) == {"pending": 0, "available": 6000, "requested": 0}
    text = await notice(harness, f"withdrawal:{wid}:rejected")
    assert text == harness.t(
        "en", "payouts.notice.rejected", id=wid, amount="¥60.00", reason="Bank account <name> does not match"
    )
    assert "&lt;name&gt;" in text

    # a rejected request cannot be approved or paid any more
    await press(harness, ADMIN, "approve", wid)
    assert alert(harness) == harness.t("en", "payouts.refused.rejected", id=wid)
    await press(harness, ADMIN, "pay", wid)
    assert alert(harness) == harness.t("en", "payouts.refused.rejected", id=wid)
    assert await balances(harness, bob.id) == {"pending": 0, "available": 6000, "requested": 0}
    # the money is available again
    assert await reply(harness, BOB, "/withdraw 60") == [
        harness.t("en", "payouts.requested", id=wid + 1, amount="¥60.00", available="¥0.00", requested="¥60.00")
    ]


async def test_an_unapproved_request_cannot_be_paid(harness: BotHarness) -> None:
    bob = await setup(harness)
    await reply(harness, BOB, "/withdraw 50")
    wid = await last_id(harness)
    await press(harness, ADMIN, "pay", wid)
    assert alert(harness) == harness.t("en", "payouts.refused.requested", id=wid)
    assert harness.session.of("sendMessage", ADMIN_ID) == []
    # no form was opened: free text is not taken as a reference
    await reply(harness, ADMIN, "REF-1")
    assert (await withdrawals(harness))[0].status == "requested"
    assert await balances(harness, bob.id) == {"pending": 0, "available": 1000, "requested": 5000}
    await press(harness, ADMIN, "approve", wid + 99)
    assert alert(harness) == harness.t("en", "payouts.not_found", id=wid + 99)


async def test_partners_cannot_use_the_admin_side(harness: BotHarness) -> None:
    bob = await setup(harness)
    await reply(harness, BOB, "/withdraw 55")
    wid = await last_id(harness)
    assert await reply(harness, BOB, "/payouts") == [harness.t("en", "denied.admin")]
    assert await reply(harness, BOB, "/export payouts") == [harness.t("en", "denied.admin")]
    await press(harness, BOB, "approve", wid)
    await press(harness, BOB, "pay", wid)
    assert (await withdrawals(harness))[0].status == "requested"
    assert await balances(harness, bob.id) == {"pending": 0, "available": 500, "requested": 5500}
    assert [a for a in await audit(harness) if a[2] == "denied"] == [
        ("payouts", None, "denied"),
        ("export", None, "denied"),
    ]
    # the service checks the power too, whoever calls it
    bob_view = await view_of(harness, BOB.id)
    with pytest.raises(UsageError) as refused:
        await in_uow(harness, lambda s: s.approve(bob_view, wid))
    assert refused.value.key == "denied.admin"


# -- finance -------------------------------------------------------------------------------------------


async def test_export_payouts_csv(harness: BotHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    bob = await setup(harness)
    await harness.send(CAROL, "/start")
    carol = await partner(harness, CAROL.id)
    await earn(harness, carol.invite_code, "C1", "1000.00")
    await reply(harness, BOB, "/withdraw 55")
    first_id = await last_id(harness)
    await reply(harness, CAROL, "/withdraw 100")
    second_id = await last_id(harness)
    await press(harness, ADMIN, "approve", first_id)
    await press(harness, ADMIN, "pay", first_id)
    await reply(harness, ADMIN, "TX-9")
    await press(harness, ADMIN, "reject", second_id)
    await reply(harness, ADMIN, "=HYPERLINK(bad)")

    uploads: list[bytes] = []
    original = harness.session.make_request

    async def spy(bot: Any, method: Any, timeout: int | None = None) -> Any:
        document = getattr(method, "document", None)
        if isinstance(document, FSInputFile):  # the export is streamed from a temporary file
            uploads.append(await asyncio.to_thread(Path(document.path).read_bytes))
        return await original(bot, method, timeout)

    monkeypatch.setattr(harness.session, "make_request", spy)
    assert await reply(harness, ADMIN, "/export") == [harness.t("en", "exports.usage")]
    harness.session.clear()
    await harness.send(ADMIN, "/export payouts")
    [sent] = harness.session.of("sendDocument", ADMIN_ID)
    today = harness.clock.now().astimezone(harness.ctx.timezone).date()  # the default period: the last 30 days
    period = harness.t("en", "exports.period_days", first=str(today - timedelta(days=29)), last=str(today))
    kind = harness.t("en", "exports.kind.payouts")
    caption = harness.t("en", "exports.caption", kind=kind, count=2, period=period, zone="Asia/Shanghai")
    assert sent.params["caption"] == caption
    assert str(sent.params["document"]).startswith("<upload:payouts-") and sent.params["document"].endswith(".csv>")

    [data] = uploads
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == [
        "id",
        "partner",
        "invite code",
        "amount",
        "currency",
        "status",
        "requested at",
        "decided at",
        "paid at",
        "reference",
        "reason",
    ]
    first, second = rows[1:]
    assert first[:6] == [str(first_id), "Bob", bob.invite_code, "55.00", "CNY", "paid"]
    assert first[9:] == ["TX-9", ""]
    assert first[6].endswith("+08:00") and first[7] and first[8]
    assert second[:6] == [str(second_id), "Carol", carol.invite_code, "100.00", "CNY", "rejected"]
    assert second[8:] == ["", "", "'=HYPERLINK(bad)"]
    assert ("payouts_export", None, "ok") in await audit(harness)


# -- the ledger's invariants ---------------------------------------------------------------------------


async def test_refund_after_payout_is_deducted_from_the_next_withdrawal(harness: BotHarness) -> None:
    bob = await setup(harness)
    await reply(harness, BOB, "/withdraw 55")
    wid = await last_id(harness)
    await press(harness, ADMIN, "approve", wid)
    await press(harness, ADMIN, "pay", wid)
    await reply(harness, ADMIN, "TX-1")
    await refund(harness, "R1", "A1", "600.00")  # the whole order comes back after the commission was paid
    assert await balances(harness, bob.id) == {"pending": 0, "available": -5500, "requested": 0, "paid": 5500}
    assert await reply(harness, BOB, "/withdraw") == [
        harness.t("en", "payouts.overview", available="-¥55.00", minimum="¥50.00")
    ]
    assert await reply(harness, BOB, "/withdraw 50") == [
        harness.t("en", "payouts.over_available", amount="¥50.00", available="-¥55.00")
    ]
    await earn(harness, bob.invite_code, "A2", "1200.00")  # ¥120.00 more: ¥65.00 net
    assert await reply(harness, BOB, "/withdraw 70") == [
        harness.t("en", "payouts.over_available", amount="¥70.00", available="¥65.00")
    ]
    assert await reply(harness, BOB, "/withdraw 65") == [
        harness.t("en", "payouts.requested", id=wid + 1, amount="¥65.00", available="¥0.00", requested="¥65.00")
    ]


async def test_concurrent_requests_do_not_overdraw(harness: BotHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two requests at once, each of which alone fits: the second must see the first."""
    bob = await setup(harness)
    bob_view = await view_of(harness, BOB.id)
    # Each request waits (briefly) after reading the balance until the other has read it too, so without
    # the partner lock both would read ¥60.00. With it, the second cannot read before the first commits.
    original = LedgerRepository.balances
    readers: set[int] = set()
    both_read = asyncio.Event()

    async def gated(self: LedgerRepository, partner_id: int) -> dict[tuple[str, str], int]:
        result = await original(self, partner_id)
        if id(self) not in readers:
            readers.add(id(self))
            if len(readers) == 2:
                both_read.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(both_read.wait(), 0.5)
        return result

    monkeypatch.setattr(LedgerRepository, "balances", gated)

    async def ask() -> object:
        try:
            return await in_uow(harness, lambda s: s.request(bob_view, "55"))
        except (UsageError, DBAPIError) as exc:
            return exc

    results = await asyncio.gather(ask(), ask())
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 1, results
    if isinstance(refused[0], UsageError):
        assert refused[0].key == "payouts.over_available"
    assert await balances(harness, bob.id) == {"pending": 0, "available": 500, "requested": 5500}
    assert [w.status for w in await withdrawals(harness)] == ["requested"]


@pytest.mark.parametrize("seed", [7, 2026])
async def test_paid_never_exceeds_approved(harness: BotHarness, seed: int) -> None:
    """Random requests and decisions, in any order: the ledger always agrees with the requests' states."""
    rng = random.Random(seed)
    bob = await setup(harness, amount="6000.00")  # ¥600.00 available
    bob_view, admin_view = await view_of(harness, BOB.id), await view_of(harness, ADMIN_ID)
    ever_approved: set[int] = set()

    async def apply(service: PayoutService, op: str, target: int, amount: int, step: int) -> bool:
        """Whether the step changed anything."""
        if op == "request":
            await service.request(bob_view, str(amount))
            return True
        if op == "approve":
            return (await service.approve(admin_view, target)).changed
        if op == "reject":
            return (await service.reject(admin_view, target, "no")).changed
        return (await service.mark_paid(admin_view, target, f"REF-{step}")).changed

    for step in range(40):
        ids = [w.id for w in await withdrawals(harness)] or [0]
        target, amount = rng.choice(ids), rng.randint(40, 260)
        op = rng.choice(["request", "approve", "approve", "reject", "pay", "pay"])
        try:
            async with UnitOfWork(harness.sessionmaker) as uow:
                changed = await apply(UseCases(uow, harness.ctx).payouts, op, target, amount, step)
        except UsageError:
            changed = False
        if op == "approve" and changed:
            ever_approved.add(target)
        rows = await withdrawals(harness)
        buckets = await balances(harness, bob.id)
        paid = sum(w.amount_minor for w in rows if w.status == "paid")
        assert buckets.get("paid", 0) == paid
        assert buckets.get("requested", 0) == sum(w.amount_minor for w in rows if w.status in ("requested", "approved"))
        assert buckets["available"] + buckets.get("requested", 0) + paid == 60000
        assert buckets["available"] >= 0
        assert {w.id for w in rows if w.status == "paid"} <= ever_approved
        assert paid <= sum(w.amount_minor for w in rows if w.id in ever_approved)
    assert {w.status for w in await withdrawals(harness)} >= {"paid"}
