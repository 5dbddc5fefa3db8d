"""Tier 2: the commission plan's versions for admins (/rules): the plan in force and its file, uploading a draft
(refused with line numbers when invalid), simulating it on real orders and a sample, publishing it, orders
settled after publishing, and the refusal of non-admins."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from bot.callbacks import RulesCallback
from bot.domain.orders_api import OrderIn, OrderItemIn
from bot.services.ledger import DEFAULT_PLAN
from bot.services.registry import UseCases
from storage.models import AuditEntry, LedgerEntry, Partner, RuleVersion
from storage.uow import UnitOfWork
from tests.support.harness import ADMIN_ID, START, BotHarness, tg_user

ADMIN = tg_user(ADMIN_ID, "Root", lang="en")
ALICE = tg_user(101, "Alice", lang="en")  # Bob's upline
BOB = tg_user(102, "Bob", lang="en")
DEFAULT_TEXT = DEFAULT_PLAN.read_text(encoding="utf-8")
MEMBER_L1 = 'l1: "10%"   # the direct partner of the sale'
VALID_V2 = DEFAULT_TEXT.replace("version: 1", "version: 2").replace(MEMBER_L1, 'l1: "12%"')
BAD_RATE = DEFAULT_TEXT.replace(MEMBER_L1, 'l1: "150%"')


def line_of(text: str, fragment: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if fragment in line)


async def versions(h: BotHarness) -> list[tuple[int, str]]:
    async with h.sessionmaker() as s:
        rows = (await s.execute(select(RuleVersion).order_by(RuleVersion.version))).scalars()
        return [(r.version, r.status) for r in rows]


async def code_of(h: BotHarness, tg_id: int) -> str:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner.invite_code).where(Partner.tg_user_id == tg_id))).scalar_one()


async def team(h: BotHarness) -> None:
    """The admin, Alice, and Bob recruited by Alice; everyone at the first level (member)."""
    await h.send(ADMIN, "/start")
    await h.send(ALICE, "/start")
    await h.send(BOB, f"/start {await code_of(h, ALICE.id)}")


async def settle(h: BotHarness, order_id: str, seller: int, amount_minor: int, paid_at: datetime) -> None:
    order = OrderIn(
        order_id=order_id,
        partner_code=await code_of(h, seller),
        coupon=None,
        customer_id=f"cust-{order_id}",
        currency="CNY",
        amount_minor=amount_minor,
        items=(OrderItemIn("TEA-1", "tea", 1, amount_minor),),
        paid_at=paid_at,
    )
    async with UnitOfWork(h.sessionmaker) as uow:
        await UseCases(uow, h.ctx).settlement.ingest_order(order)


async def upload(
    h: BotHarness, text: str, *, file_id: str = "plan-file", caption: str | None = "/rules upload"
) -> None:
    await h.send_file(
        ADMIN, "document", text.encode(), file_id=file_id, file_name="plan.yaml", mime_type="application/x-yaml",
        caption=caption,
    )  # fmt: skip


async def test_rules_shows_the_plan_in_force_and_its_file(harness: BotHarness) -> None:
    await team(harness)
    harness.session.clear()
    await harness.send(ADMIN, "/rules")
    [shown] = harness.session.of("sendMessage", ADMIN.id)
    for fragment in (
        "Commission plan v1</b> (in force)",
        "Published: 2026-11-25 09:00 (Asia/Shanghai)",  # the admin's local time
        "Currency: CNY",
        "• Member: L1 10% · L2 3%",
        "• Silver: L1 12% · L2 4%",
        "• Gold: L1 15% · L2 5%",
        "Category overrides: none",
        "Cap per order: none",
        "no L1 on a partner's own orders",
        "Hold: 14 days",
        "Minimum withdrawal: ¥50.00",
    ):
        assert fragment in shown.text, fragment
    assert "L3" not in shown.text  # l3_enabled is false
    [button] = shown.buttons()
    assert button["text"] == "📄 Plan file"

    harness.session.clear()
    await harness.press(ADMIN, button["callback_data"])
    [document] = harness.session.of("sendDocument", ADMIN.id)
    assert document.params["document"] == "<upload:rules-v1.yaml>"
    assert document.params["caption"] == harness.t("en", "rules.file_caption", version=1)

    harness.session.clear()
    await harness.send(tg_user(ADMIN_ID, "Root", lang="zh"), "/rules")
    assert "• 会员：L1 10% · L2 3%" in harness.session.texts(ADMIN.id)[-1]


async def test_an_invalid_plan_lists_its_problems_with_line_numbers_and_stores_nothing(harness: BotHarness) -> None:
    await team(harness)
    await harness.send(ADMIN, "/rules")
    harness.session.clear()
    await upload(harness, BAD_RATE)
    [reply] = harness.session.texts(ADMIN.id)
    line = line_of(BAD_RATE, '"150%"')
    assert "The plan was not stored</b>: 1 problem(s)" in reply
    assert f"• plan.yaml line {line}: levels.member.l1: rate must be between 0 and 1" in reply
    assert await versions(harness) == [(1, "published")]

    # not YAML, not UTF-8, too big, not a .yaml file: a clear message each, nothing stored
    harness.session.clear()
    await upload(harness, "version: 1\nlevels: [member\n")
    assert "not valid YAML" in harness.session.texts(ADMIN.id)[-1]
    await harness.send_file(ADMIN, "document", "版本".encode("gb18030"), file_name="p.yaml", caption="/rules upload")
    assert harness.session.texts(ADMIN.id)[-1] == harness.t("en", "rules.upload.not_utf8")
    await harness.send_file(ADMIN, "document", b"x", file_name="p.yaml", file_size=300_000, caption="/rules upload")
    assert harness.session.texts(ADMIN.id)[-1] == harness.t("en", "rules.upload.too_big", size_kb=292, limit_kb=256)
    await harness.send_file(ADMIN, "document", b"x", file_name="plan.txt", caption="/rules upload")
    assert harness.session.texts(ADMIN.id)[-1] == harness.t("en", "rules.upload.not_yaml_file")
    assert await versions(harness) == [(1, "published")]


async def test_upload_simulate_publish_and_settle_with_the_new_version(harness: BotHarness) -> None:
    await team(harness)
    await settle(harness, "A1", BOB.id, 15000, START - timedelta(days=3))  # Bob 15.00, Alice 4.50
    await settle(harness, "A2", ALICE.id, 20000, START - timedelta(days=1))  # Alice 20.00
    await settle(harness, "OLD", BOB.id, 50000, START - timedelta(days=40))  # outside the 30 days
    harness.session.clear()

    await harness.send(ADMIN, "/rules simulate")
    assert harness.session.texts(ADMIN.id) == [harness.t("en", "rules.no_draft")]

    # upload in two steps: /rules upload, then the file
    await harness.send(ADMIN, "/rules upload")
    assert harness.session.texts(ADMIN.id)[-1] == harness.t("en", "rules.upload.ask")
    await harness.send(ADMIN, "here it comes")
    assert harness.session.texts(ADMIN.id)[-1] == harness.t("en", "rules.upload.expect_file")
    harness.session.clear()
    await upload(harness, VALID_V2, caption=None)
    [saved] = harness.session.texts(ADMIN.id)
    assert saved.startswith(harness.t("en", "rules.upload.saved", version=2))
    assert "• Member: L1 12% · L2 3%" in saved and "/rules simulate to compare it with v1" in saved
    assert await versions(harness) == [(1, "published"), (2, "draft")]

    harness.session.clear()
    await harness.send(ADMIN, "/rules")
    assert "Commission plan v1</b>" in harness.session.texts(ADMIN.id)[-1]  # the draft is not in force
    assert "Draft v2 is waiting" in harness.session.texts(ADMIN.id)[-1]

    harness.session.clear()
    await harness.send(ADMIN, "/rules simulate")
    [sim] = harness.session.texts(ADMIN.id)
    assert "Draft v2 compared with v1" in sim
    assert "2 recomputed, 0 left out" in sim
    assert "Partners earning: 2, of whom 2 would earn a different amount" in sim
    assert "• Alice: ¥24.50 → ¥28.50 (+¥4.00)\n• Bob: ¥15.00 → ¥18.00 (+¥3.00)" in sim
    assert "Total commission</b>: ¥39.50 → ¥46.50 (+¥7.00)" in sim
    assert "Sample order of ¥150.00" in sim
    assert "Member seller with Member uplines:\n   L1: ¥15.00 → ¥18.00\n   L2: ¥4.50 → ¥4.50" in sim
    assert "Gold seller with Gold uplines:\n   L1: ¥22.50 → ¥22.50\n   L2: ¥7.50 → ¥7.50" in sim
    assert await versions(harness) == [(1, "published"), (2, "draft")]  # nothing written

    harness.session.clear()
    await harness.send(ADMIN, "/rules publish")
    [confirm] = harness.session.of("sendMessage", ADMIN.id)
    assert confirm.text == harness.t("en", "rules.publish.confirm", version=2, current=1)
    assert [b["text"] for b in confirm.buttons()] == ["✅ Publish v2", "✖️ Cancel"]
    await harness.press(ADMIN, confirm.buttons()[1]["callback_data"])
    assert await versions(harness) == [(1, "published"), (2, "draft")]
    await harness.press(ADMIN, confirm.buttons()[0]["callback_data"])
    assert await versions(harness) == [(1, "superseded"), (2, "published")]
    assert [c.text for c in harness.session.of("editMessageText")] == [
        harness.t("en", "rules.publish.cancelled"),
        harness.t("en", "rules.publish.done", version=2, previous=1),
    ]
    async with harness.sessionmaker() as s:
        v2 = (await s.execute(select(RuleVersion).where(RuleVersion.version == 2))).scalar_one()
        audit = (await s.execute(select(AuditEntry).where(AuditEntry.action.like("rules_%")))).scalars().all()
    assert v2.published_at is not None and v2.published_at.replace(tzinfo=None) == START.replace(tzinfo=None)
    assert [(a.action, a.target, a.outcome) for a in audit] == [
        ("rules_upload", "v2", "ok"),
        ("rules_publish", "v2", "ok"),
    ]

    # an order paid from now on settles with v2; the ledger entry records it
    harness.clock.advance(timedelta(minutes=1))
    await settle(harness, "A3", BOB.id, 15000, harness.clock.now())
    async with harness.sessionmaker() as s:
        entries = (
            await s.execute(
                select(LedgerEntry)
                .where(LedgerEntry.kind == "commission", LedgerEntry.partner_id.is_not(None))
                .order_by(LedgerEntry.id)
            )
        ).scalars()
        by_order = [(e.rules_version, e.tier, e.rate, e.amount_minor) for e in entries]
    assert by_order[-2:] == [(2, 1, "0.12", 1800), (2, 2, "0.03", 450)]
    assert all(version == 1 for version, *_ in by_order[:-2])  # earlier orders keep v1

    harness.session.clear()
    await harness.send(ADMIN, "/rules")
    assert "Commission plan v2</b> (in force)" in harness.session.texts(ADMIN.id)[-1]
    await harness.send(ADMIN, "/rules publish")
    assert harness.session.texts(ADMIN.id)[-1] == harness.t("en", "rules.no_draft")


async def test_a_new_upload_replaces_the_draft_and_an_old_publish_button_is_refused(harness: BotHarness) -> None:
    await team(harness)
    await upload(harness, VALID_V2)
    harness.session.clear()
    await harness.send(ADMIN, "/rules publish")
    [confirm] = harness.session.of("sendMessage", ADMIN.id)
    stale = confirm.buttons()[0]["callback_data"]

    other = VALID_V2.replace('l2: "3%"    # their upline', 'l2: "4%"')
    harness.session.clear()
    await upload(harness, other, file_id="plan-2")
    assert harness.session.texts(ADMIN.id)[-1].startswith(harness.t("en", "rules.upload.replaced", version=2))
    assert await versions(harness) == [(1, "published"), (2, "draft")]

    await harness.press(ADMIN, stale)
    [alert] = harness.session.of("answerCallbackQuery")
    assert alert.params["text"] == harness.t("en", "rules.publish.stale")
    assert await versions(harness) == [(1, "published"), (2, "draft")]

    harness.session.clear()
    await upload(harness, DEFAULT_TEXT, file_id="plan-3")
    assert harness.session.texts(ADMIN.id)[-1] == harness.t("en", "rules.upload.same", version=1)
    publish = RulesCallback(action="publish", version=2, check="").pack()
    await harness.press(ADMIN, publish)
    assert await versions(harness) == [(1, "published"), (2, "draft")]


async def test_a_partner_is_refused_rules(harness: BotHarness) -> None:
    await team(harness)
    harness.session.clear()
    await harness.send(ALICE, "/rules")
    await harness.send(ALICE, "/rules publish")
    assert harness.session.texts(ALICE.id) == [harness.t("en", "denied.admin")] * 2
    await harness.press(ALICE, RulesCallback(action="file", version=1).pack())
    assert not harness.session.of("sendDocument")
    async with harness.sessionmaker() as s:
        denied = (await s.execute(select(AuditEntry).where(AuditEntry.outcome == "denied"))).scalars().all()
    assert [(d.actor_tg_id, d.action) for d in denied] == [(ALICE.id, "rules"), (ALICE.id, "rules")]
