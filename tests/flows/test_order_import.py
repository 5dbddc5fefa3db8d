"""Orders from an admin's CSV: the pure reader (table of files) and the chat flow (preview, import, refusals)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.callbacks import OrdersCsvCallback
from bot.domain.orders_csv import CsvFileError, read_orders_csv
from storage.models import Order, Partner
from storage.uow import UnitOfWork
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

ROOT = tg_user(ADMIN_ID, "Root", lang="en")
ALICE = tg_user(101, "Alice", lang="en")
BOB = tg_user(102, "Bob", lang="en")
HEADER = "order_id,partner_code,coupon,customer_id,currency,amount,paid_at,sku,category,quantity,unit_price\n"


def csv_file(*rows: str) -> bytes:
    return (HEADER + "".join(f"{row}\n" for row in rows)).encode()


def test_rows_of_one_order_become_its_items_and_every_problem_names_its_rows() -> None:
    result = read_orders_csv(
        csv_file(
            "A1,,,c1,CNY,150.00,2026-11-25T00:00:00Z,TEA,tea,1,100.00",
            "A1,,,c1,CNY,150.00,2026-11-25T00:00:00Z,CUP,cups,2,25.00",
            "A2,,,c2,CNY,abc,2026-11-25T00:00:00Z,TEA,tea,1,10.00",
            "A3,,,c3,CNY,10.00,2026-11-25T00:00:00Z,TEA,tea,1,10.00",
            "A3,,,c9,CNY,10.00,2026-11-25T00:00:00Z,TEA,tea,1,10.00",
            "",
        )
    )
    assert result.rows == 5
    [order] = result.orders
    assert (order.order_id, order.amount_minor, len(order.items)) == ("A1", 15000, 2)
    assert {(p.rows, p.path) for p in result.problems} == {((3,), "amount"), ((4, 5), "customer_id")}
    assert result.total_minor == {"CNY": 15000}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "no header"),
        (b"order_id,amount\n", "missing columns"),
        ((HEADER.strip() + ",secret\n").encode(), "unknown columns: secret"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_unreadable_files(data: bytes, reason: str) -> None:
    with pytest.raises(CsvFileError, match=reason):
        read_orders_csv(data)


async def test_an_admin_previews_then_imports_a_csv_of_orders(harness: BotHarness) -> None:
    await harness.send(ROOT, "/start")
    await harness.send(ALICE, "/start")
    async with harness.sessionmaker() as s:
        alice_code = (await s.execute(select(Partner.invite_code).where(Partner.tg_user_id == ALICE.id))).scalar_one()
    await harness.send(BOB, f"/start {alice_code}")
    async with harness.sessionmaker() as s:
        bob_code = (await s.execute(select(Partner.invite_code).where(Partner.tg_user_id == BOB.id))).scalar_one()
    data = csv_file(
        f"A1,{bob_code},,c1,CNY,150.00,2026-11-25T00:00:00Z,TEA,tea,1,150.00",
        "A2,,,c2,CNY,-5,2026-11-25T00:00:00Z,TEA,tea,1,10.00",
    )
    harness.session.clear()
    await harness.send_file(ROOT, "document", data, file_id="csv-1", file_name="orders.csv", mime_type="text/csv")
    [preview] = harness.session.of("sendMessage", ROOT.id)
    assert "1 valid orders in 2 rows, total ¥150.00" in preview.text
    assert "row 2 (A2): amount:" in preview.text
    assert await _orders(harness) == []  # nothing before confirming

    harness.session.clear()
    await harness.press(ROOT, OrdersCsvCallback(action="import").pack())
    [done] = harness.session.of("sendMessage", ROOT.id)
    assert done.text == harness.t("en", "orders.csv.done", created=1, replayed=0, conflicts=0)
    assert await _orders(harness) == [("A1", "csv", "partner_code")]
    async with UnitOfWork(harness.sessionmaker) as uow:
        bob = await uow.partners.by_tg_id(BOB.id)
        assert bob is not None
        assert await uow.ledger.balances(bob.id) == {("pending", "CNY"): 1500}

    # the same file again: nothing new
    await harness.send_file(ROOT, "document", data, file_id="csv-1", file_name="orders.csv", mime_type="text/csv")
    harness.session.clear()
    await harness.press(ROOT, OrdersCsvCallback(action="import").pack())
    assert harness.session.texts(ROOT.id) == [harness.t("en", "orders.csv.done", created=0, replayed=1, conflicts=0)]


async def test_unreadable_csv_and_partners_are_refused(harness: BotHarness) -> None:
    await harness.send(ROOT, "/start")
    harness.session.clear()
    await harness.send_file(ROOT, "document", b"hello,world\n1,2\n", file_id="bad", file_name="x.csv")
    [answer] = harness.session.texts(ROOT.id)
    assert answer.startswith("I can't read that file as orders: unknown columns: hello, world")
    await harness.send(ALICE, "/start")
    harness.session.clear()
    await harness.send_file(ALICE, "document", csv_file(), file_id="p", file_name="orders.csv")
    assert harness.session.texts(ALICE.id) == [harness.t("en", "fallback.free_text")]
    assert await _orders(harness) == []


async def _orders(h: BotHarness) -> list[tuple[str, str, str]]:
    async with h.sessionmaker() as s:
        rows = (await s.execute(select(Order.external_id, Order.source, Order.attribution))).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]
