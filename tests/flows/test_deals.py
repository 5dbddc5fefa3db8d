"""Tier 2: deal progression — the product catalogue (/product, `run_bot.py products import`), /quote with the
quote card, /order with the admins' [Confirm] [Reject], the ledger, and refusals that write nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.callbacks import ChatOrderCallback, ProductPageCallback
from bot.services.deals import DealService, read_products_file
from storage.models import (
    AuditEntry,
    ChatOrder,
    Event,
    Lead,
    LedgerEntry,
    Order,
    OutboxMessage,
    Partner,
    Product,
    Quote,
    TrackedLink,
)
from storage.uow import UnitOfWork
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

ROOT = Path(__file__).resolve().parents[2]
ADMIN = tg_user(ADMIN_ID, "Root", lang="en")
BOB = tg_user(102, "Bob", username="bob_sells", lang="en")
CAROL = tg_user(103, "Carol", lang="zh")
EVE = tg_user(104, "Eve", lang="en")
TEA_URL = "https://shop.example.com/p/tea-001"
LEVELS = "member, silver, gold"


# -- helpers -------------------------------------------------------------------------------------------


async def partner(h: BotHarness, tg_id: int) -> Partner:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner).where(Partner.tg_user_id == tg_id))).scalar_one()


async def add_lead(h: BotHarness, tg_id: int, name: str, stage: str = "new") -> Lead:
    """A lead stored directly (the /lead command belongs to another part), numbered per partner."""
    owner = await partner(h, tg_id)
    now = h.clock.now()
    async with h.sessionmaker() as s:
        number = (await s.execute(select(func.count()).where(Lead.partner_id == owner.id))).scalar_one() + 1
        lead = Lead(
            partner_id=owner.id,
            number=number,
            name=name,
            stage=stage,
            source="command",
            created_at=now,
            updated_at=now,
        )
        s.add(lead)
        await s.commit()
        await s.refresh(lead)
        return lead


async def set_level(h: BotHarness, tg_id: int, level: str) -> None:
    async with h.sessionmaker() as s:
        row = (await s.execute(select(Partner).where(Partner.tg_user_id == tg_id))).scalar_one()
        row.level = level
        await s.commit()


async def rows(h: BotHarness, model: Any) -> list[Any]:
    async with h.sessionmaker() as s:
        return list((await s.execute(select(model).order_by(model.id))).scalars())


async def lead_stage(h: BotHarness, lead_id: int) -> str:
    async with h.sessionmaker() as s:
        lead = await s.get(Lead, lead_id)
        assert lead is not None
        return lead.stage


async def balances(h: BotHarness, partner_id: int) -> dict[str, int]:
    async with UnitOfWork(h.sessionmaker) as uow:
        totals = await uow.ledger.balances(partner_id)
    return {bucket: total for (bucket, _), total in totals.items()}


async def counts(h: BotHarness) -> dict[str, int]:
    """Rows of everything the deal commands write."""
    result = {}
    async with h.sessionmaker() as s:
        for model in (Product, Quote, ChatOrder, Order, LedgerEntry, OutboxMessage, TrackedLink):
            result[model.__tablename__] = (await s.execute(select(func.count()).select_from(model))).scalar_one()
        result["events"] = (
            await s.execute(select(func.count()).where(Event.type.in_(["quote_sent", "order_registered"])))
        ).scalar_one()
    return result


async def reply(h: BotHarness, user: Any, text: str) -> list[str]:
    h.session.clear()
    await h.send(user, text)
    return h.session.texts(user.id)


async def press(h: BotHarness, user: Any, data: str) -> None:
    h.session.clear()
    await h.press(user, data)


async def outbox_text(h: BotHarness, dedupe_key: str) -> OutboxMessage:
    async with h.sessionmaker() as s:
        return (await s.execute(select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key))).scalar_one()


async def catalogue(h: BotHarness) -> None:
    """The admin and Bob have started; TEA-001 lists at ¥128.00, silver pays ¥118.00, gold 15% off."""
    await h.send(ADMIN, "/start")
    await h.send(BOB, "/start")
    await h.send(ADMIN, f"/product add TEA-001 128 {TEA_URL} Spring green tea, 250 g")
    await h.send(ADMIN, "/product category TEA-001 tea")
    await h.send(ADMIN, "/product price TEA-001 silver 118.00")
    await h.send(ADMIN, "/product price TEA-001 gold 15%")
    h.session.clear()


# -- the catalogue ---------------------------------------------------------------------------------------


async def test_admin_manages_the_catalogue_in_chat(harness: BotHarness) -> None:
    h = harness
    await h.send(ADMIN, "/start")
    assert await reply(h, ADMIN, "/product") == [h.t("en", "deals.product.empty")]
    assert await reply(h, ADMIN, f"/product add TEA-001 128 {TEA_URL} Spring <b>green</b> tea") == [
        h.t("en", "deals.product.added", sku="TEA-001", name="Spring <b>green</b> tea", price="¥128.00")
    ]
    [added] = await rows(h, Product)
    assert (added.sku, added.list_price_minor, added.currency, added.active) == ("TEA-001", 12800, "CNY", True)
    assert "Spring &lt;b&gt;green&lt;/b&gt; tea" in h.t(
        "en", "deals.product.added", sku="TEA-001", name=added.name, price="¥128.00"
    )

    await h.send(ADMIN, "/product category TEA-001 tea")
    await h.send(ADMIN, "/product price TEA-001 silver 118")
    [text] = await reply(h, ADMIN, "/product price TEA-001 gold 15%")
    assert text.startswith(h.t("en", "deals.product.changed", sku="TEA-001"))
    assert "Silver ¥118.00 · Gold -15%" in text
    [row] = await rows(h, Product)
    assert row.category == "tea"
    assert row.level_prices == {"silver": {"price_minor": 11800}, "gold": {"discount_pct": "15"}}
    assert await reply(h, ADMIN, "/product price TEA-001 gold 15%") == [
        h.t("en", "deals.product.unchanged", sku="TEA-001")
    ]
    await h.send(ADMIN, "/product price TEA-001 silver -")
    await h.send(ADMIN, "/product price TEA-001 list 130")
    [row] = await rows(h, Product)
    assert (row.list_price_minor, row.level_prices) == (13000, {"gold": {"discount_pct": "15"}})

    assert await reply(h, ADMIN, "/product archive TEA-001") == [
        h.t("en", "deals.product.archived_done", sku="TEA-001")
    ]
    assert (await rows(h, Product))[0].active is False
    assert await reply(h, ADMIN, "/product restore TEA-001") == [
        h.t("en", "deals.product.restored_done", sku="TEA-001")
    ]
    [detail] = await reply(h, ADMIN, "/product TEA-001")
    assert "¥130.00" in detail and "Gold -15%" in detail and TEA_URL in detail
    async with h.sessionmaker() as s:
        actions = [a for (a,) in await s.execute(select(AuditEntry.action).where(AuditEntry.action.like("product_%")))]
    assert actions.count("product_price") == 5 and "product_add" in actions and "product_archive" in actions


async def test_catalogue_pages(harness: BotHarness) -> None:
    h = harness
    await h.send(ADMIN, "/start")
    for n in range(12):
        await h.send(ADMIN, f"/product add SKU-{n:02d} {n + 1} https://shop.example.com/{n} Item {n}")
    h.session.clear()
    await h.send(ADMIN, "/product")
    [first] = h.session.of("sendMessage", ADMIN_ID)
    assert first.text.splitlines()[0] == h.t("en", "deals.product.title", total=12, page=1, pages=2)
    assert len(first.text.splitlines()) == 11
    assert [b["callback_data"] for b in first.buttons()] == [ProductPageCallback(page=1).pack()]
    await press(h, ADMIN, ProductPageCallback(page=1).pack())
    [edited] = h.session.of("editMessageText")
    assert "SKU-11" in edited.text and "SKU-00" not in edited.text


async def test_bad_product_commands_write_nothing(harness: BotHarness) -> None:
    h = harness
    await catalogue(h)
    before = await counts(h)
    [product_before] = await rows(h, Product)
    cases = [
        ("/product add TEA-002 12", "deals.product.usage_add", {}),
        ("/product add TEA-002 -5 https://x.example/a Tea", "deals.error.bad_price", {"value": "-5"}),
        ("/product add TEA-002 5 example.com Tea", "deals.error.bad_url", {"value": "example.com"}),
        (f"/product add TEA-001 5 {TEA_URL} Tea", "deals.error.sku_exists", {"sku": "TEA-001"}),
        ("/product price TEA-001 platinum 5", "deals.error.bad_level", {"value": "platinum", "levels": LEVELS}),
        ("/product price TEA-001 gold 120%", "deals.error.bad_discount", {"value": "120%"}),
        ("/product price NOPE-1 gold 5", "deals.error.unknown_sku", {"sku": "NOPE-1"}),
        ("/product frobnicate x y", "deals.product.usage", {}),
    ]  # fmt: skip
    for text, key, params in cases:
        assert await reply(h, ADMIN, text) == [h.t("en", key, **params)], text
    assert await counts(h) == before
    [product_after] = await rows(h, Product)
    assert product_after.level_prices == product_before.level_prices


async def test_non_admins_are_denied_and_audited(harness: BotHarness) -> None:
    h = harness
    await catalogue(h)
    lead = await add_lead(h, BOB.id, "Alice")
    await h.send(BOB, "/order 1 TEA-001")
    [order] = await rows(h, ChatOrder)
    before = await counts(h)
    assert await reply(h, BOB, "/product add X-1 5 https://x.example/a X") == [h.t("en", "denied.admin")]
    assert await reply(h, BOB, "/orders") == [h.t("en", "denied.admin")]
    await press(h, BOB, ChatOrderCallback(action="confirm", id=order.id).pack())
    [answer] = h.session.of("answerCallbackQuery")
    assert answer.params["text"] == h.t("en", "denied.admin")
    await press(h, BOB, ChatOrderCallback(action="reject", id=order.id, src="l").pack())
    assert h.session.of("answerCallbackQuery")[0].params["text"] == h.t("en", "denied.admin")
    assert await counts(h) == before
    assert (await rows(h, ChatOrder))[0].status == "pending"
    assert await lead_stage(h, lead.id) == "new"
    bob = await partner(h, BOB.id)
    async with h.sessionmaker() as s:
        denied = (
            await s.execute(
                select(AuditEntry.action).where(AuditEntry.outcome == "denied", AuditEntry.actor_partner_id == bob.id)
            )
        ).scalars()
        assert sorted(denied) == ["chat_order_button", "chat_order_button", "orders", "product"]


# -- quotes ----------------------------------------------------------------------------------------------


async def test_quote_sends_a_card_stores_it_and_moves_the_lead(harness: BotHarness) -> None:
    h = harness
    await catalogue(h)
    await set_level(h, BOB.id, "silver")
    lead = await add_lead(h, BOB.id, "Alice <script>")
    h.session.clear()
    await h.send(BOB, "/quote 1 TEA-001 2")
    [photo] = h.session.of("sendPhoto", BOB.id)
    assert h.session.uploads[-1].startswith(b"\x89PNG")
    [quote] = await rows(h, Quote)
    bob = await partner(h, BOB.id)
    assert (quote.partner_id, quote.lead_id, quote.sku, quote.quantity) == (bob.id, lead.id, "TEA-001", 2)
    assert (quote.unit_price_minor, quote.total_minor, quote.currency) == (11800, 23600, "CNY")  # silver price
    assert quote.valid_until == h.clock.now() + timedelta(days=7)
    [link] = await rows(h, TrackedLink)
    assert link.partner_id == bob.id and link.product_id == quote.product_id
    local = (h.clock.now() + timedelta(days=7)).astimezone(h.ctx.timezone)
    assert photo.text == h.t(
        "en",
        "deals.quote.caption",
        id=quote.id,
        lead="Alice <script>",
        product="Spring green tea, 250 g",
        sku="TEA-001",
        quantity=2,
        unit="¥118.00",
        total="¥236.00",
        valid=f"{local:%Y-%m-%d %H:%M}",
        level="Silver",
        link=f"{h.ctx.public_base_url}/r/{link.slug}",
    )
    assert "Alice &lt;script&gt;" in photo.text
    assert await lead_stage(h, lead.id) == "quoted"
    async with h.sessionmaker() as s:
        [event] = (await s.execute(select(Event).where(Event.type == "quote_sent"))).scalars()
    assert event.partner_id == bob.id
    assert event.payload == {
        "quote_id": quote.id,
        "lead_id": lead.id,
        "sku": "TEA-001",
        "quantity": 2,
        "total_minor": 23600,
        "currency": "CNY",
    }


async def test_quote_prices_by_level_and_keeps_won_leads_won(harness: BotHarness) -> None:
    h = harness
    await catalogue(h)
    await h.send(CAROL, "/start")
    await add_lead(h, BOB.id, "Alice", stage="won")
    await add_lead(h, CAROL.id, "王芳")
    await set_level(h, CAROL.id, "gold")
    await h.send(BOB, "/quote Alice TEA-001 1 14d")  # member: the list price
    await h.send(CAROL, "/quote 王 TEA-001 3")  # gold: 15% off ¥128.00 = ¥108.80
    first, second = await rows(h, Quote)
    assert (first.unit_price_minor, first.total_minor) == (12800, 12800)
    assert first.valid_until == h.clock.now() + timedelta(days=14)
    assert (second.unit_price_minor, second.total_minor) == (10880, 32640)
    assert await lead_stage(h, first.lead_id) == "won"
    assert await lead_stage(h, second.lead_id) == "quoted"
    [photo] = h.session.of("sendPhoto", CAROL.id)
    assert "¥326.40" in photo.text and "黄金" in photo.text


async def test_quote_validity_is_shown_in_the_partners_time_zone(harness: BotHarness) -> None:
    h = harness
    await catalogue(h)
    await add_lead(h, BOB.id, "Alice")
    async with h.sessionmaker() as s:
        row = (await s.execute(select(Partner).where(Partner.tg_user_id == BOB.id))).scalar_one()
        row.timezone = "America/New_York"
        await s.commit()
    h.session.clear()
    await h.send(BOB, "/quote 1 TEA-001")
    [photo] = h.session.of("sendPhoto", BOB.id)
    # 2026-11-25 01:00 UTC + 7 days = 2026-12-01 20:00 in New York (EST, UTC-5)
    assert "Valid until 2026-12-01 20:00" in photo.text
    [quote] = await rows(h, Quote)
    assert quote.valid_until == h.clock.now() + timedelta(days=7)


async def test_bad_quotes_name_the_bad_part_and_write_nothing(harness: BotHarness) -> None:
    h = harness
    await catalogue(h)
    await add_lead(h, BOB.id, "Alice")
    await h.send(ADMIN, "/product add BARE-1 1 https://shop.example.com/bare Bare")
    await h.send(ADMIN, "/product price BARE-1 list -")
    await h.send(ADMIN, "/product add OLD-1 5 https://shop.example.com/old Old")
    await h.send(ADMIN, "/product archive OLD-1")
    before = await counts(h)
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("/quote", "deals.quote.usage", {}),
        ("/quote 1", "deals.quote.usage", {}),
        ("/quote 7 TEA-001", "leads.unknown", {"ref": "7"}),
        ("/quote Zed TEA-001", "leads.unknown", {"ref": "Zed"}),
        ("/quote 1 NOPE-9", "deals.error.unknown_sku", {"sku": "NOPE-9"}),
        ("/quote 1 OLD-1", "deals.error.unknown_sku", {"sku": "OLD-1"}),
        ("/quote 1 TEA-001 -2", "deals.error.bad_quantity", {"value": "-2", "limit": 100000}),
        ("/quote 1 TEA-001 0", "deals.error.bad_quantity", {"value": "0", "limit": 100000}),
        ("/quote 1 TEA-001 1.5", "deals.error.bad_quantity", {"value": "1.5", "limit": 100000}),
        ("/quote 1 BARE-1", "deals.error.no_price", {"sku": "BARE-1"}),
        ("/order 1 TEA-001 2 abc", "deals.error.bad_amount", {"value": "abc"}),
        ("/order 1 TEA-001 2 0", "deals.error.bad_amount", {"value": "0"}),
        ("/order 1 TEA-001 x", "deals.error.bad_quantity", {"value": "x", "limit": 100000}),
        ("/order 9 TEA-001", "leads.unknown", {"ref": "9"}),
        ("/order", "deals.order.usage", {}),
    ]
    for text, key, params in cases:
        assert await reply(h, BOB, text) == [h.t("en", key, **params)], text
    # in Chinese too
    await h.send(CAROL, "/start")
    before = await counts(h)
    assert await reply(h, CAROL, "/quote") == [h.t("zh", "deals.quote.usage")]
    assert await counts(h) == before
    assert before["quotes"] == 0 and before["chat_orders"] == 0 and before["events"] == 0


# -- orders ----------------------------------------------------------------------------------------------


async def test_order_confirmed_by_an_admin_enters_the_ledger_once(harness: BotHarness) -> None:
    h = harness
    await catalogue(h)
    await set_level(h, BOB.id, "silver")
    lead = await add_lead(h, BOB.id, "Alice")
    await h.send(BOB, "/quote 1 TEA-001 2")
    h.clock.advance(timedelta(days=1))
    texts = await reply(h, BOB, "/order 1 TEA-001 2")
    [order] = await rows(h, ChatOrder)
    bob, admin = await partner(h, BOB.id), await partner(h, ADMIN_ID)
    assert texts == [
        h.t(
            "en",
            "deals.order.registered",
            id=order.id,
            quantity=2,
            product="Spring green tea, 250 g",
            lead="Alice",
            amount="¥236.00",
        )
    ]
    assert (order.status, order.amount_minor, order.quantity, order.category) == ("pending", 23600, 2, "tea")
    notice = await outbox_text(h, f"chat_order:{order.id}:new:{admin.id}")
    assert "¥236.00" in notice.payload["text"] and bob.invite_code in notice.payload["text"]
    buttons = [b["callback_data"] for row in notice.payload["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons == [
        ChatOrderCallback(action="confirm", id=order.id).pack(),
        ChatOrderCallback(action="reject", id=order.id).pack(),
    ]
    async with h.sessionmaker() as s:
        [event] = (await s.execute(select(Event).where(Event.type == "order_registered"))).scalars()
    assert event.payload["chat_order_id"] == order.id and event.payload["amount_minor"] == 23600

    # /orders lists it with the same buttons (from the list)
    h.session.clear()
    await h.send(ADMIN, "/orders")
    [listing] = h.session.of("sendMessage", ADMIN_ID)
    assert listing.text.startswith(h.t("en", "deals.orders.title", count=1))
    assert [b["callback_data"] for b in listing.buttons()] == [
        ChatOrderCallback(action="confirm", id=order.id, src="l").pack(),
        ChatOrderCallback(action="reject", id=order.id, src="l").pack(),
    ]

    # confirm from the notice
    await press(h, ADMIN, ChatOrderCallback(action="confirm", id=order.id).pack())
    assert h.t("en", "deals.orders.confirmed_done", id=order.id, amount="¥236.00", name="Bob") in h.session.texts(
        ADMIN_ID
    )
    assert h.session.of("editMessageReplyMarkup")
    [order] = await rows(h, ChatOrder)
    [ledger_order] = await rows(h, Order)
    assert (order.status, order.order_id, order.decided_by) == ("confirmed", ledger_order.id, admin.id)
    assert (ledger_order.source, ledger_order.external_id, ledger_order.partner_id) == (
        "chat",
        f"chat-{order.id}",
        bob.id,
    )
    assert (ledger_order.amount_minor, ledger_order.attribution, ledger_order.customer_id) == (
        23600,
        "partner_code",
        f"lead-{lead.id}",
    )
    assert await balances(h, bob.id) == {"pending": 2832}  # silver L1 12% of ¥236.00
    assert await lead_stage(h, lead.id) == "won"
    told = await outbox_text(h, f"chat_order:{order.id}:confirmed")
    assert told.chat_id == BOB.id and "¥236.00" in told.payload["text"]

    # a second press, from the list or the notice, changes nothing
    before = await counts(h)
    await press(h, ADMIN, ChatOrderCallback(action="confirm", id=order.id, src="l").pack())
    assert h.t("en", "deals.orders.noop.confirmed", id=order.id) in h.session.texts(ADMIN_ID)
    [edited] = h.session.of("editMessageText")
    assert edited.text == h.t("en", "deals.orders.empty")
    await press(h, ADMIN, ChatOrderCallback(action="confirm", id=order.id).pack())
    await press(h, ADMIN, ChatOrderCallback(action="reject", id=order.id).pack())
    assert h.session.of("answerCallbackQuery")[0].params["text"] == h.t(
        "en", "deals.orders.refused.confirmed", id=order.id
    )
    assert await counts(h) == before
    assert await balances(h, bob.id) == {"pending": 2832}

    # the notices go out through the outbox
    await h.drain_outbox()
    await h.pass_time(2)
    await h.drain_outbox()
    assert any("¥236.00" in text for text in h.session.texts(BOB.id))


async def test_order_amount_given_or_from_the_level_price(harness: BotHarness) -> None:
    h = harness
    await catalogue(h)
    await add_lead(h, BOB.id, "Alice")
    await h.send(BOB, "/order Alice TEA-001 3")  # no quote: member price ¥128.00 × 3
    await h.send(BOB, "/order Alice TEA-001 2 199.99")  # the partner's own amount
    first, second = await rows(h, ChatOrder)
    assert first.amount_minor == 38400
    assert second.amount_minor == 19999
    await press(h, ADMIN, ChatOrderCallback(action="confirm", id=second.id).pack())
    [ledger_order] = await rows(h, Order)
    assert sum(int(i["quantity"]) * int(i["unit_price_minor"]) for i in ledger_order.items) == 19999
    assert sum(int(i["quantity"]) for i in ledger_order.items) == 2
    bob = await partner(h, BOB.id)
    assert await balances(h, bob.id) == {"pending": 2000}  # member 10% of ¥199.99, half up


async def test_reject_asks_for_a_reason_and_tells_the_partner(harness: BotHarness) -> None:
    h = harness
    await catalogue(h)
    lead = await add_lead(h, BOB.id, "Alice")
    await h.send(BOB, "/order 1 TEA-001")
    [order] = await rows(h, ChatOrder)
    await press(h, ADMIN, ChatOrderCallback(action="reject", id=order.id, src="l").pack())
    assert h.session.texts(ADMIN_ID) == [
        h.t("en", "deals.orders.ask_reason", id=order.id, amount="¥128.00", name="Bob")
    ]
    assert await reply(h, ADMIN, "   ") == [h.t("en", "deals.orders.bad_reason", limit=300)]
    assert await reply(h, ADMIN, "No <payment> received") == [
        h.t("en", "deals.orders.rejected_done", id=order.id, name="Bob")
    ]
    [order] = await rows(h, ChatOrder)
    assert (order.status, order.reason, order.order_id) == ("rejected", "No <payment> received", None)
    told = await outbox_text(h, f"chat_order:{order.id}:rejected")
    assert "No &lt;payment&gt; received" in told.payload["text"]
    assert await rows(h, Order) == []
    assert await lead_stage(h, lead.id) == "new"
    # confirming a rejected order is refused; the form is over
    await press(h, ADMIN, ChatOrderCallback(action="confirm", id=order.id).pack())
    assert h.session.of("answerCallbackQuery")[0].params["text"] == h.t(
        "en", "deals.orders.refused.rejected", id=order.id
    )
    assert await rows(h, Order) == []
    assert await reply(h, ADMIN, "/orders") == [h.t("en", "deals.orders.empty")]


async def test_cancelling_the_reject_form_keeps_the_order_pending(harness: BotHarness) -> None:
    h = harness
    await catalogue(h)
    await add_lead(h, BOB.id, "Alice")
    await h.send(BOB, "/order 1 TEA-001")
    [order] = await rows(h, ChatOrder)
    await press(h, ADMIN, ChatOrderCallback(action="reject", id=order.id).pack())
    assert await reply(h, ADMIN, "/cancel") == [h.t("en", "deals.orders.cancelled")]
    assert (await rows(h, ChatOrder))[0].status == "pending"


# -- import ----------------------------------------------------------------------------------------------


async def test_import_file_adds_then_updates_by_sku(harness: BotHarness, tmp_path: Path) -> None:
    h = harness

    async def run(path: Path) -> Any:
        source = read_products_file(path)
        async with UnitOfWork(h.sessionmaker) as uow:
            return await DealService(uow, h.ctx).import_products(source, h.translator.texts("en"))

    report = await run(ROOT / "examples" / "products.yaml")
    assert (report.new, report.updated, report.skipped, report.exit_code) == (3, 0, 0, 0)
    by_sku = {p.sku: p for p in await rows(h, Product)}
    assert by_sku["TEA-001"].level_prices == {"silver": {"price_minor": 11800}, "gold": {"discount_pct": "15"}}
    assert (by_sku["TEA-002"].list_price_minor, by_sku["CUP-010"].active) == (29900, False)

    report = await run(ROOT / "examples" / "products.csv")
    assert (report.new, report.updated, report.unchanged, report.skipped) == (0, 0, 3, 0)

    bad = tmp_path / "bad.csv"
    bad.write_text(
        "sku,name,url,price,level_prices\n"
        "TEA-001,Spring tea,https://shop.example.com/p/tea-001,130,gold=20%\n"
        "BAD-1,Bad,example.com,-3,platinum=5\n",
        encoding="utf-8",
    )
    report = await run(bad)
    assert (report.updated, report.skipped, report.exit_code) == (1, 1, 1)
    assert [str(issue).split(":")[0] for issue in report.issues] == ["row 3 (Bad)"] * 3
    [tea] = [p for p in await rows(h, Product) if p.sku == "TEA-001"]
    assert (tea.list_price_minor, tea.level_prices, tea.category) == (13000, {"gold": {"discount_pct": "20"}}, None)
    assert len(await rows(h, Product)) == 3


CLEAN_ENV = {
    k: v
    for k, v in os.environ.items()
    if k not in {"BOT_TOKEN", "DATABASE_URL", "REDIS_URL", "ADMIN_IDS", "CONTENT_DIR", "MEDIA_DIR"}
}


def run_bot(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "run_bot.py"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_run_bot_products_import(tmp_path: Path) -> None:
    env = {**CLEAN_ENV, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/db/x.db"}
    ok = run_bot(tmp_path, env, "products", "import", str(ROOT / "examples" / "products.yaml"))
    assert (ok.returncode, ok.stderr, ok.stdout) == (0, "", "Imported 3 products (3 new, 0 updated, 0 unchanged).\n")
    again = run_bot(tmp_path, env, "products", "import", str(ROOT / "examples" / "products.csv"))
    assert (again.returncode, again.stdout) == (0, "Imported 3 products (0 new, 0 updated, 3 unchanged).\n")

    (tmp_path / "some-bad.yaml").write_text(
        textwrap.dedent(
            """\
            - {sku: NEW-1, name: Good, url: "https://example.com/a", price: "10"}
            - {sku: NEW-2, name: Bad, url: "https://example.com/b", price: "ten"}
            """
        ),
        encoding="utf-8",
    )
    partly = run_bot(tmp_path, env, "products", "import", "some-bad.yaml")
    assert (partly.returncode, partly.stderr) == (1, "")
    assert partly.stdout.splitlines() == [
        "product 2 (Bad): price: “ten” is not a price. Write an amount above zero like 128 or 128.00.",
        "Imported 1 product (1 new, 0 updated, 0 unchanged); 1 skipped.",
    ]
    (tmp_path / "broken.yaml").write_text("products: [\n", encoding="utf-8")
    broken = run_bot(tmp_path, env, "products", "import", "broken.yaml")
    assert broken.returncode == 2 and broken.stdout == ""
    assert broken.stderr.startswith("Cannot import broken.yaml: not valid YAML") and "Traceback" not in broken.stderr
    (tmp_path / "headless.csv").write_text("code,title\nA,B\n", encoding="utf-8")
    headless = run_bot(tmp_path, env, "products", "import", "headless.csv")
    assert headless.returncode == 2 and "lacks sku, name, url" in headless.stderr
    missing = run_bot(tmp_path, env, "products", "import", "nope.csv")
    assert missing.returncode == 2 and missing.stderr.strip() == "Cannot import nope.csv: no such file"
    usage = run_bot(tmp_path, env, "products", "export", "x.csv")
    assert usage.returncode == 2 and "products import FILE" in usage.stderr
