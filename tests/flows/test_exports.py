"""Tier 2: /export for admins — every kind as CSV, XLSX opened with openpyxl, periods in the deployment's time zone,
masked lead contacts, formula neutralisation, the progress message edited then the file sent, zipping and the
upload limit, partners refused, bad arguments answered with usage and nothing written, and a 20,000-event export
streamed in batches."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram.types import FSInputFile, User
from openpyxl import load_workbook
from sqlalchemy import insert, select, update

import bot.services.exports as exports_module
from bot.domain.errors import UsageError
from bot.domain.orders_api import parse_order, parse_refund
from bot.services.registry import UseCases
from storage.models import AuditEntry, Event, LeadReminder, LedgerEntry, Order, Partner
from storage.uow import UnitOfWork
from tests.support.harness import ADMIN_ID, START, BotHarness, tg_user

ADMIN = tg_user(ADMIN_ID, "Root", lang="en")
ALICE = tg_user(201, "Alice", username="alice_w", lang="en")
BOB = tg_user(202, "=cmd|' /C calc'!A0", username="bobby", lang="zh")
ZH_ADMIN = tg_user(ADMIN_ID, "Root", lang="zh")


@dataclass
class Upload:
    filename: str
    data: bytes
    path: Path | None = None


@pytest.fixture
def uploads(harness: BotHarness, monkeypatch: pytest.MonkeyPatch) -> list[Upload]:
    """The documents the bot sends, read from their temporary files while the request is made."""
    sent: list[Upload] = []
    original = harness.session.make_request

    async def spy(bot: Any, method: Any, timeout: int | None = None) -> Any:
        document = getattr(method, "document", None)
        if isinstance(document, FSInputFile):
            data = await asyncio.to_thread(Path(document.path).read_bytes)
            sent.append(Upload(str(document.filename), data, Path(document.path)))
        return await original(bot, method, timeout)

    monkeypatch.setattr(harness.session, "make_request", spy)
    return sent


# -- helpers -------------------------------------------------------------------------------------------


async def partner(h: BotHarness, user: User) -> Partner:
    async with h.sessionmaker() as s:
        return (await s.execute(select(Partner).where(Partner.tg_user_id == user.id))).scalar_one()


async def network(h: BotHarness) -> tuple[Partner, Partner]:
    """The admin, Alice (joined directly) and Bob (joined through Alice's code, a name that looks like a formula)."""
    await h.send(ADMIN, "/start")
    await h.send(ALICE, "/start")
    alice = await partner(h, ALICE)
    await h.send(BOB, f"/start {alice.invite_code}")
    h.session.clear()
    return alice, await partner(h, BOB)


async def add_events(h: BotHarness, rows: list[dict[str, Any]]) -> None:
    async with h.sessionmaker() as s, s.begin():
        await s.execute(insert(Event), rows)


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


async def refund(h: BotHarness, refund_id: str, order_id: str, amount: str) -> None:
    body = {"refund_id": refund_id, "order_id": order_id, "amount": amount, "currency": "CNY"}
    async with UnitOfWork(h.sessionmaker) as uow:
        await UseCases(uow, h.ctx).settlement.ingest_refund(parse_refund(json.dumps(body).encode()))


async def audit(h: BotHarness) -> list[tuple[str, str, dict[str, Any]]]:
    async with h.sessionmaker() as s:
        rows = (await s.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars()
        return [(r.action, r.outcome, dict(r.details)) for r in rows]


def table(upload: Upload) -> list[list[str]]:
    assert upload.data.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM
    return list(csv.reader(io.StringIO(upload.data.decode("utf-8-sig"))))


def as_dicts(rows: list[list[str]]) -> list[dict[str, str]]:
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


async def export(h: BotHarness, user: User, args: str) -> None:
    h.session.clear()
    await h.send(user, f"/export {args}")


def period_days(h: BotHarness, days: int, language: str = "en") -> str:
    today = h.clock.now().astimezone(h.ctx.timezone).date()
    return h.t(language, "exports.period_days", first=str(today - timedelta(days=days - 1)), last=str(today))


# -- each kind -----------------------------------------------------------------------------------------


async def test_partners_csv_has_the_tree_level_and_last_action_but_no_phone(
    harness: BotHarness, uploads: list[Upload]
) -> None:
    alice, bob = await network(harness)
    async with harness.sessionmaker() as s, s.begin():
        await s.execute(
            update(Partner)
            .where(Partner.id == alice.id)
            .values(level="gold", segment="high", timezone="Europe/Berlin", language="en")
        )
    shared_at = START + timedelta(hours=3)
    await add_events(
        harness,
        [
            {"partner_id": alice.id, "type": "shared", "payload": {}, "occurred_at": shared_at, "source": "bot"},
            {  # receiving content is not an action
                "partner_id": alice.id,
                "type": "content_sent",
                "payload": {},
                "occurred_at": shared_at + timedelta(days=1),
                "source": "scheduler",
            },
        ],
    )
    await export(harness, ADMIN, "partners")

    [upload] = uploads
    assert upload.filename.startswith("partners-all-") and upload.filename.endswith(".csv")
    rows = table(upload)
    assert rows[0] == [
        "id",
        "name",
        "username",
        "invite code",
        "upline code",
        "level",
        "segment",
        "role",
        "language",
        "time zone",
        "joined at",
        "last action at",
    ]
    assert not any("phone" in column for column in rows[0])
    by_name = {row["name"]: row for row in as_dicts(rows)}
    assert set(by_name) == {"Root", "Alice", "'=cmd|' /C calc'!A0"}  # the formula is neutralised
    assert by_name["Alice"] == {
        "id": str(alice.id),
        "name": "Alice",
        "username": "alice_w",
        "invite code": alice.invite_code,
        "upline code": "",
        "level": "gold",
        "segment": "high",
        "role": "partner",
        "language": "en",
        "time zone": "Europe/Berlin",
        "joined at": "2026-11-25T09:00:00+08:00",
        "last action at": "2026-11-25T12:00:00+08:00",
    }
    bob_row = by_name["'=cmd|' /C calc'!A0"]
    assert (bob_row["username"], bob_row["upline code"], bob_row["last action at"]) == ("bobby", alice.invite_code, "")
    assert by_name["Root"]["role"] == "admin"
    caption = harness.session.of("sendDocument", ADMIN_ID)[0].params["caption"]
    kind = harness.t("en", "exports.kind.partners")
    period = harness.t("en", "exports.period_all")
    assert caption == harness.t("en", "exports.caption", kind=kind, count=3, period=period, zone="Asia/Shanghai")
    assert (
        "partners_export",
        "ok",
        {"rows": 3, "period": "all", "format": "csv", "bytes": len(upload.data), "zipped": False},
    ) in await audit(harness)
    assert bob.upline_id == alice.id


async def test_events_csv_filtered_by_period_in_the_deployment_zone(harness: BotHarness, uploads: list[Upload]) -> None:
    alice, _ = await network(harness)
    # 2026-11-25 09:00 in Shanghai now. 15:59 UTC on the 24th is the 24th's last minute there, 16:00 the 25th.
    moments = {
        "long_ago": datetime(2026, 10, 1, 4, 0, tzinfo=UTC),
        "yesterday_late": datetime(2026, 11, 24, 15, 59, tzinfo=UTC),
        "today_early": datetime(2026, 11, 24, 16, 0, tzinfo=UTC),
    }
    await add_events(
        harness,
        [
            {
                "partner_id": alice.id,
                "type": "shared",
                "payload": {"content_id": 7, "note": name, "中文": "分享"},
                "occurred_at": at,
                "source": "bot",
            }
            for name, at in moments.items()
        ],
    )
    async with harness.sessionmaker() as s:
        all_ids = list((await s.execute(select(Event.id).order_by(Event.id))).scalars())

    await export(harness, ADMIN, "events today")
    await export(harness, ADMIN, "events 2026-11-24..2026-11-24")
    await export(harness, ADMIN, "events 2026-10")
    await export(harness, ADMIN, "events all")
    await export(harness, ADMIN, "events")  # the last 30 days
    today, day_before, october, everything, default = (as_dicts(table(u)) for u in uploads)

    notes = [json.loads(row["payload"]).get("note") for row in today]
    assert "today_early" in notes and "yesterday_late" not in notes and "long_ago" not in notes
    assert [row["payload"] for row in day_before] == ['{"content_id": 7, "note": "yesterday_late", "中文": "分享"}']
    [old] = october
    assert (old["partner id"], old["partner"], old["invite code"], old["type"], old["source"]) == (
        str(alice.id),
        "Alice",
        alice.invite_code,
        "shared",
        "bot",
    )
    assert old["occurred at"] == "2026-10-01T12:00:00+08:00"
    assert [int(row["id"]) for row in everything] == all_ids
    assert len(default) == len(all_ids) - 1  # all but October's
    assert uploads[1].filename.startswith("events-2026-11-24_2026-11-24-")


async def test_leads_csv_masks_contacts_as_team_does(harness: BotHarness, uploads: list[Upload]) -> None:
    alice, _ = await network(harness)
    await harness.send(ALICE, "/lead Wang Li +86 138-0013-5678 met at the fair, secret note")
    await harness.send(ALICE, "/lead Qian wx:qian_888")
    await harness.send(ALICE, "/lead =SUM(A1) @zhao_q")
    await harness.send(ALICE, "/followup 1 called, sending brochure in 1d")
    await export(harness, ADMIN, "leads")

    [upload] = uploads
    rows = table(upload)
    assert rows[0] == [
        "partner id",
        "partner",
        "invite code",
        "lead id",
        "number",
        "name",
        "phone (masked)",
        "stage",
        "source",
        "created at",
        "last follow-up at",
        "next reminder at",
    ]
    wang, qian, formula = as_dicts(rows)
    assert (wang["partner"], wang["number"], wang["name"], wang["phone (masked)"], wang["stage"]) == (
        "Alice",
        "1",
        "Wang Li",
        "'+861****5678",
        "contacted",
    )
    assert wang["last follow-up at"] == "2026-11-25T09:00:00+08:00"
    assert wang["next reminder at"] == "2026-11-26T09:00:00+08:00"
    assert (qian["phone (masked)"], qian["last follow-up at"], qian["next reminder at"]) == ("", "", "")
    assert formula["name"] == "'=SUM(A1)"
    text = upload.data.decode("utf-8-sig")
    for secret in ("13800135678", "8613800135678", "qian_888", "zhao_q", "secret note", "brochure"):
        assert secret not in text
    async with harness.sessionmaker() as s:
        assert (await s.execute(select(LeadReminder.status))).scalars().all() == ["pending"]
    assert wang["partner id"] == str(alice.id)


async def test_orders_and_ledger_csv_with_money_in_three_forms(harness: BotHarness, uploads: list[Upload]) -> None:
    alice, _ = await network(harness)
    await sell(harness, alice.invite_code, "A-1001", "600.00")
    await refund(harness, "R-1", "A-1001", "100.50")
    await export(harness, ADMIN, "orders")
    await export(harness, ADMIN, "ledger month")

    orders, ledger = uploads
    order_rows = table(orders)
    assert order_rows[0] == [
        "id",
        "external id",
        "source",
        "partner id",
        "partner",
        "invite code",
        "amount",
        "currency",
        "amount minor",
        "refunded",
        "refunded minor",
        "status",
        "attribution",
        "paid at",
    ]
    [order] = as_dicts(order_rows)
    assert (order["external id"], order["source"], order["partner"], order["invite code"]) == (
        "A-1001",
        "api",
        "Alice",
        alice.invite_code,
    )
    assert (order["amount"], order["currency"], order["amount minor"]) == ("600.00", "CNY", "60000")
    assert (order["refunded"], order["refunded minor"], order["status"]) == ("100.50", "10050", "settled")
    assert order["paid at"] == "2026-11-25T09:00:00+08:00"

    ledger_rows = as_dicts(table(ledger))
    async with harness.sessionmaker() as s:
        entries = list((await s.execute(select(LedgerEntry).order_by(LedgerEntry.id))).scalars())
        order_id = (await s.execute(select(Order.id))).scalar_one()
    assert [int(row["entry id"]) for row in ledger_rows] == [e.id for e in entries]
    assert sum(int(row["amount minor"]) for row in ledger_rows) == 0  # double entry: every transaction balances
    commission = next(row for row in ledger_rows if row["kind"] == "commission" and row["partner"] == "Alice")
    assert (commission["tier"], commission["amount"], commission["amount minor"], commission["currency"]) == (
        "1",
        "60.00",
        "6000",
        "CNY",
    )
    assert (commission["order id"], commission["order external id"]) == (str(order_id), "A-1001")
    assert commission["plan version"] != "" and commission["bucket"] == "pending"
    reversal = next(row for row in ledger_rows if row["kind"] == "reversal" and row["partner"] == "Alice")
    assert reversal["amount"].startswith("-")  # negative amounts are numbers, not neutralised text


async def test_xlsx_opens_with_openpyxl(harness: BotHarness, uploads: list[Upload]) -> None:
    alice, bob = await network(harness)
    await export(harness, ADMIN, "partners xlsx")
    [upload] = uploads
    assert upload.filename.endswith(".xlsx")
    book = await asyncio.to_thread(load_workbook, io.BytesIO(upload.data), read_only=True)
    sheet = book["partners"]
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    book.close()
    assert values[0][:5] == ["id", "name", "username", "invite code", "upline code"]
    by_id = {row[0]: row for row in values[1:]}
    assert len(by_id) == 3
    assert by_id[alice.id][1:5] == ["Alice", "alice_w", alice.invite_code, None]
    assert by_id[bob.id][1] == "'=cmd|' /C calc'!A0"  # text, not a formula
    assert by_id[bob.id][4] == alice.invite_code
    assert isinstance(by_id[alice.id][0], int)


async def test_payouts_csv_and_nothing_to_export(harness: BotHarness, uploads: list[Upload]) -> None:
    alice, _ = await network(harness)
    await export(harness, ADMIN, "payouts all")
    # no withdrawals yet: a polite answer, no progress message and no file
    kind, period = harness.t("en", "exports.kind.payouts"), harness.t("en", "exports.period_all")
    assert [c.method for c in harness.calls] == ["sendMessage"]
    assert harness.calls[0].text == harness.t("en", "exports.empty", kind=kind, period=period, command="payouts")
    assert uploads == []
    empty = {"rows": 0, "period": "all", "format": "csv", "bytes": 0, "zipped": False}
    assert ("payouts_export", "empty", empty) in await audit(harness)

    await sell(harness, alice.invite_code, "A-2001", "600.00")
    harness.clock.advance(timedelta(days=14, hours=1))
    async with UnitOfWork(harness.sessionmaker) as uow:
        await UseCases(uow, harness.ctx).settlement.release_matured()
    await harness.send(ALICE, "/withdraw 55")
    await export(harness, ADMIN, "payouts")
    [upload] = uploads
    rows = table(upload)
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
    [row] = rows[1:]
    assert row[1:] == [
        "Alice",
        alice.invite_code,
        "55.00",
        "CNY",
        "requested",
        "2026-12-09T10:00:00+08:00",
        "",
        "",
        "",
        "",
    ]


# -- progress, size and streaming -----------------------------------------------------------------------


async def test_large_export_streams_in_batches_and_edits_the_progress_message(
    harness: BotHarness, uploads: list[Upload], monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, _ = await network(harness)
    base = START - timedelta(days=2)
    await add_events(
        harness,
        [
            {
                "partner_id": alice.id,
                "type": "shared",
                "payload": {"n": n},
                "occurred_at": base + timedelta(seconds=n),
                "source": "bot",
            }
            for n in range(20_000)
        ],
    )
    # Writing takes time: each look at the clock is a second later, so the 2-second progress throttle lets
    # some reports through and holds back others.
    real_now = harness.clock.now

    def ticking() -> datetime:
        harness.clock.advance(timedelta(seconds=1))
        return real_now()

    monkeypatch.setattr(harness.clock, "now", ticking)
    batches: list[int] = []
    write = exports_module._write_batch

    def counted(sink: Any, formatter: Any, records: Any, env: Any) -> None:
        batches.append(len(records))
        write(sink, formatter, records, env)

    monkeypatch.setattr(exports_module, "_write_batch", counted)
    await export(harness, ADMIN, "events 7d")

    async with harness.sessionmaker() as s:
        total = len((await s.execute(select(Event.id).where(Event.occurred_at >= base))).all())
    assert total >= 20_000
    assert sum(batches) == total and max(batches) <= exports_module.BATCH and len(batches) >= 20

    methods = [c.method for c in harness.calls]
    first = harness.calls[0]
    assert first.method == "sendMessage"
    kind = harness.t("en", "exports.kind.events")
    assert first.text == harness.t("en", "exports.progress", kind=kind, percent=0, written="0", total=f"{total:,}")
    edits = harness.session.of("editMessageText", ADMIN_ID)
    assert 2 <= len(edits) <= len(batches)
    shown = [int(e.text.split("… ")[1].split("%")[0]) for e in edits]
    assert shown == sorted(shown) and shown[0] > 0 and shown[-1] <= 100
    for edit in edits:  # whole batches, with the percentage of the count made first
        written = int(edit.text.split("\n")[1].split(" ")[0].replace(",", ""))
        assert written % exports_module.BATCH == 0
        assert edit.text == harness.t(
            "en",
            "exports.progress",
            kind=kind,
            percent=written * 100 // total,
            written=f"{written:,}",
            total=f"{total:,}",
        )
    assert methods.index("sendDocument") > methods.index("editMessageText")
    [deleted] = harness.session.of("deleteMessage", ADMIN_ID)
    assert methods[-1] == "deleteMessage"
    assert deleted.params["message_id"] == edits[0].params["message_id"]

    [upload] = uploads
    assert upload.path is not None and not await asyncio.to_thread(upload.path.parent.exists)  # cleaned up
    rows = as_dicts(table(upload))
    assert len(rows) == total
    numbered = [json.loads(row["payload"])["n"] for row in rows if row["type"] == "shared"]
    assert numbered == list(range(20_000))


async def test_over_the_upload_limit_the_file_is_zipped_or_refused(
    harness: BotHarness, uploads: list[Upload], monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, _ = await network(harness)
    await add_events(
        harness,
        [
            {"partner_id": alice.id, "type": "shared", "payload": {"n": n}, "occurred_at": START, "source": "bot"}
            for n in range(300)
        ],
    )
    monkeypatch.setattr(exports_module, "UPLOAD_LIMIT", 8_000)
    await export(harness, ADMIN, "events today")
    [upload] = uploads
    assert upload.filename.endswith(".csv.zip")
    with zipfile.ZipFile(io.BytesIO(upload.data)) as archive:
        [name] = archive.namelist()
        inner = Upload(name, archive.read(name))
    assert name == upload.filename.removesuffix(".zip")
    assert len(inner.data) > 8_000 and len(as_dicts(table(inner))) >= 300
    caption = harness.session.of("sendDocument", ADMIN_ID)[0].params["caption"]
    assert caption.endswith(harness.t("en", "exports.zipped"))

    monkeypatch.setattr(exports_module, "UPLOAD_LIMIT", 500)
    await export(harness, ADMIN, "events today")
    assert len(uploads) == 1
    answer = harness.session.of("sendMessage", ADMIN_ID)[-1].text
    kind = harness.t("en", "exports.kind.events")
    outcomes = [(outcome, details) for action, outcome, details in await audit(harness) if action == "events_export"]
    assert [outcome for outcome, _ in outcomes] == ["ok", "too_large"]
    size = f"{outcomes[1][1]['bytes'] / (1024 * 1024):.1f}"
    assert outcomes[1][1]["zipped"] is True and outcomes[1][1]["bytes"] > 500
    assert answer == harness.t(
        "en", "exports.too_large", kind=kind, period=period_days(harness, 1), size=size, command="events"
    )
    assert "/export events 7d" in answer


# -- refusals ------------------------------------------------------------------------------------------


async def test_a_partner_is_refused_and_audited(harness: BotHarness, uploads: list[Upload]) -> None:
    await network(harness)
    await export(harness, ALICE, "orders")
    assert harness.session.texts(ALICE.id) == [harness.t("en", "denied.admin")]
    assert uploads == []
    assert [(a, o) for a, o, _ in await audit(harness)] == [("export", "denied")]
    # the use case checks the power too, whoever calls it
    reports: list[Any] = []

    async def progress(report: Any) -> None:
        reports.append(report)

    async with UnitOfWork(harness.sessionmaker) as uow:
        uc = UseCases(uow, harness.ctx)
        row = await uow.partners.by_tg_id(ALICE.id)
        assert row is not None
        with pytest.raises(UsageError) as refused:
            await uc.exports.export(uc.partners.view(row), "orders", progress)
    assert refused.value.key == "denied.admin" and reports == []


async def test_bad_arguments_answer_usage_and_change_nothing(harness: BotHarness, uploads: list[Upload]) -> None:
    await network(harness)
    before = await audit(harness)
    cases = [
        ("", "exports.usage", {}),
        ("customers", "exports.unknown_kind", {"value": "customers"}),
        ("orders yesterday", "exports.bad_argument", {"value": "yesterday"}),
        ("orders 2026-13", "exports.bad_period", {"value": "2026-13"}),
        ("orders 2026-11-15..2026-11-01", "exports.bad_range", {"value": "2026-11-15..2026-11-01"}),
        ("orders csv xlsx", "exports.twice", {"value": "xlsx"}),
    ]
    for args, key, params in cases:
        await export(harness, ADMIN, args)
        assert harness.session.texts(ADMIN_ID) == [harness.t("en", key, **params)], args
        assert [c.method for c in harness.calls] == ["sendMessage"], args  # no progress message, no file
    assert uploads == []
    assert await audit(harness) == before


async def test_texts_in_chinese(harness: BotHarness, uploads: list[Upload]) -> None:
    await network(harness)
    await export(harness, ZH_ADMIN, "partners 30d")
    caption = harness.session.of("sendDocument", ADMIN_ID)[0].params["caption"]
    kind = harness.t("zh", "exports.kind.partners")
    expected = harness.t(
        "zh", "exports.caption", kind=kind, count=3, period=period_days(harness, 30, "zh"), zone="Asia/Shanghai"
    )
    assert caption == expected and "合伙人" in caption
    progress = harness.session.of("sendMessage", ADMIN_ID)[0].text
    assert progress.startswith("⏳ 正在导出合伙人")
    assert len(uploads) == 1
