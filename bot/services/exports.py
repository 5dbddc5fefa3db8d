"""Admin exports: `/export <kind> [period] [csv|xlsx]` writes partners, events, leads, orders, ledger lines or
withdrawals to a CSV or XLSX file for an admin, however many rows there are.

The rows are counted first (for the progress percentage), then read from a server-side cursor in batches of
`BATCH`; each batch is formatted and written to a temporary file in a worker thread, so neither the memory nor
the event loop sees the whole export. Progress is reported at the start and then at most every
`PROGRESS_EVERY`. A file over Telegram's upload limit for bots is zipped; if even the zip is too large, the
result says so and no file is sent.

Column names and raw values (statuses, stages, kinds) are stable English: the files are imported by other
tools, so they do not change with the admin's language. Times are shown in the deployment's time zone with
their offset; money as a decimal amount, its currency and the integer minor units. Text that people or shops
typed (names, references, ids from the shop) is neutralised against spreadsheet formulas (`safe_cell`), and a
lead's contact details are masked as a team lead sees them in /team.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import re
import shutil
import tempfile
import zipfile
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TextIO
from zoneinfo import ZoneInfo

from bot.domain.exports import ExportRequest, Period, parse_export_args, percent, safe_cell
from bot.domain.leads import mask_phone
from bot.domain.money import Money
from bot.domain.roles import Role, effective_role
from bot.services.acting import Audited, require_admin
from bot.services.context import ServiceContext
from bot.services.metrics import ACTION_EVENTS
from bot.services.views import PartnerView
from storage.repositories.exports import (
    EventRecord,
    LeadRecord,
    LedgerRecord,
    OrderRecord,
    PartnerRecord,
    PayoutRecord,
)
from storage.uow import UnitOfWork

UPLOAD_LIMIT = 50 * 1024 * 1024
"""Telegram lets a bot send files of at most 50 MB."""
BATCH = 1000
"""Rows fetched from the cursor and written to the file at a time."""
PROGRESS_EVERY = timedelta(seconds=2)
"""The progress message is edited at most this often (Telegram limits edits, and people read slowly)."""
XLSX_TEXT_MAX = 32767
"""The longest text an XLSX cell holds."""

Cell = str | int


@dataclass(frozen=True, slots=True)
class _Env:
    """What formatting a row needs besides the row."""

    zone: ZoneInfo
    """The deployment's time zone: every time is shown in it, with its offset."""
    admin_ids: frozenset[int]
    """ADMIN_IDS: these partners are admins whatever their stored role."""


Formatter = Callable[[Any, _Env], list[Cell]]

PARTNER_COLUMNS = (
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
)
EVENT_COLUMNS = ("id", "partner id", "partner", "invite code", "type", "source", "occurred at", "payload")
LEAD_COLUMNS = (
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
)
ORDER_COLUMNS = (
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
)
LEDGER_COLUMNS = (
    "entry id",
    "transaction",
    "partner id",
    "partner",
    "invite code",
    "account",
    "bucket",
    "kind",
    "tier",
    "amount",
    "currency",
    "amount minor",
    "order id",
    "order external id",
    "plan version",
    "created at",
)
PAYOUT_COLUMNS = (
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
)
"""The withdrawals finance imports: the columns of the original `/export payouts`, unchanged."""


# -- results ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportProgress:
    kind: str
    written: int
    total: int
    """Rows counted before writing began (rows added since may make `written` larger)."""

    @property
    def percent(self) -> int:
        return percent(self.written, self.total)


class ProgressReporter(Protocol):
    """Told how far an export is: first with nothing written, then at most every `PROGRESS_EVERY`."""

    async def __call__(self, progress: ExportProgress, /) -> None: ...


@dataclass(slots=True)
class ExportFile:
    """A finished export. Use it as a context manager (`with await …export(…) as done:`) so the temporary file
    is removed once sent."""

    request: ExportRequest
    zone: ZoneInfo
    rows: int
    filename: str
    """The name the admin sees (`orders-30d-20261125-0900.csv`, `….csv.zip` when zipped)."""
    size: int
    """Bytes of the file as it would be sent."""
    zipped: bool = False
    path: Path | None = None
    """The file to send; None when there is nothing to send: no rows, or too large even zipped."""
    _directory: Path | None = field(default=None, repr=False)

    @property
    def too_large(self) -> bool:
        return self.rows > 0 and self.path is None

    def close(self) -> None:
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __enter__(self) -> ExportFile:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# -- formatting (runs in the writer thread) -------------------------------------------------------------


def _stamp(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).isoformat(timespec="seconds") if moment else ""


def _name(first: str | None, last: str | None, fallback: str = "") -> str:
    """The partner's name as everywhere in the bot (`display_name`), from plain columns."""
    return " ".join(part for part in (first, last) if part) or fallback


def _text(value: str | None) -> str:
    return safe_cell(value or "")


def _amount(minor: int, currency: str) -> str:
    return str(Money(minor, currency).amount)


def _partner_row(r: PartnerRecord, env: _Env) -> list[Cell]:
    return [
        r.id,
        _text(_name(r.first_name, r.last_name, str(r.tg_user_id))),
        _text(r.username),
        _text(r.invite_code),
        _text(r.upline_code),
        r.level,
        r.segment or "",
        effective_role(Role(r.role), configured_admin=r.tg_user_id in env.admin_ids).value,
        r.language or "",
        r.timezone or "",
        _stamp(r.joined_at, env.zone),
        _stamp(r.last_action_at, env.zone),
    ]


def _event_row(r: EventRecord, env: _Env) -> list[Cell]:
    return [
        r.id,
        r.partner_id if r.partner_id is not None else "",
        _text(_name(r.first_name, r.last_name)),
        _text(r.invite_code),
        r.type,
        r.source,
        _stamp(r.occurred_at, env.zone),
        _text(json.dumps(r.payload, ensure_ascii=False, sort_keys=True)),
    ]


def _lead_row(r: LeadRecord, env: _Env) -> list[Cell]:
    return [
        r.partner_id,
        _text(_name(r.first_name, r.last_name)),
        _text(r.invite_code),
        r.id,
        r.number,
        _text(r.name),
        _text(mask_phone(r.phone)),
        r.stage,
        r.source,
        _stamp(r.created_at, env.zone),
        _stamp(r.last_followup_at, env.zone),
        _stamp(r.next_reminder_at, env.zone),
    ]


def _order_row(r: OrderRecord, env: _Env) -> list[Cell]:
    return [
        r.id,
        _text(r.external_id),
        r.source,
        r.partner_id if r.partner_id is not None else "",
        _text(_name(r.first_name, r.last_name)),
        _text(r.invite_code),
        _amount(r.amount_minor, r.currency),
        r.currency,
        r.amount_minor,
        _amount(r.refunded_minor, r.currency),
        r.refunded_minor,
        r.status,
        r.attribution,
        _stamp(r.paid_at, env.zone),
    ]


def _ledger_row(r: LedgerRecord, env: _Env) -> list[Cell]:
    return [
        r.id,
        _text(r.txn),
        r.partner_id if r.partner_id is not None else "",
        _text(_name(r.first_name, r.last_name)),
        _text(r.invite_code),
        r.account,
        r.bucket,
        r.kind,
        r.tier if r.tier is not None else "",
        _amount(r.amount_minor, r.currency),
        r.currency,
        r.amount_minor,
        r.order_id if r.order_id is not None else "",
        _text(r.order_external_id),
        r.rules_version if r.rules_version is not None else "",
        _stamp(r.created_at, env.zone),
    ]


def _payout_row(r: PayoutRecord, env: _Env) -> list[Cell]:
    return [
        r.id,
        _text(_name(r.first_name, r.last_name, str(r.tg_user_id))),
        _text(r.invite_code),
        _amount(r.amount_minor, r.currency),
        r.currency,
        r.status,
        _stamp(r.created_at, env.zone),
        _stamp(r.decided_at, env.zone),
        _stamp(r.paid_at, env.zone),
        _text(r.reference),
        _text(r.reason),
    ]


KINDS: dict[str, tuple[tuple[str, ...], Formatter]] = {
    "partners": (PARTNER_COLUMNS, _partner_row),
    "events": (EVENT_COLUMNS, _event_row),
    "leads": (LEAD_COLUMNS, _lead_row),
    "orders": (ORDER_COLUMNS, _order_row),
    "ledger": (LEDGER_COLUMNS, _ledger_row),
    "payouts": (PAYOUT_COLUMNS, _payout_row),
}
"""Per kind: the header and how one record becomes a row."""


# -- writers (run in the writer thread) -----------------------------------------------------------------


class _Sink(Protocol):
    def write(self, rows: Sequence[list[Cell]]) -> None: ...

    def close(self) -> None: ...


class _CsvSink:
    """UTF-8 with a BOM, so spreadsheet programs read Chinese names right; CRLF line ends."""

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        self._file: TextIO = path.open("w", encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._file, lineterminator="\r\n")
        self._writer.writerow(header)

    def write(self, rows: Sequence[list[Cell]]) -> None:
        self._writer.writerows(rows)

    def close(self) -> None:
        self._file.close()


XLSX_ILLEGAL = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")
"""The control characters an XLSX cell cannot hold (openpyxl's ILLEGAL_CHARACTERS_RE)."""


def _xlsx_value(value: Cell) -> Cell:
    if isinstance(value, int):
        return value
    return XLSX_ILLEGAL.sub("", value)[:XLSX_TEXT_MAX]


class _XlsxSink:
    """openpyxl in write-only mode: rows go to a temporary part as they are appended, not into memory."""

    def __init__(self, path: Path, header: Sequence[str], title: str) -> None:
        from openpyxl import Workbook  # imported on first use: openpyxl is 6 MB a process holds for nothing otherwise

        self._path = path
        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet(title)
        self._sheet.append(list(header))

    def write(self, rows: Sequence[list[Cell]]) -> None:
        for row in rows:
            self._sheet.append([_xlsx_value(value) for value in row])

    def close(self) -> None:
        self._book.save(self._path)


def _open_sink(request: ExportRequest, path: Path) -> _Sink:
    header, _ = KINDS[request.kind]
    if request.format == "xlsx":
        return _XlsxSink(path, header, request.kind)
    return _CsvSink(path, header)


def _write_batch(sink: _Sink, formatter: Formatter, records: Sequence[Any], env: _Env) -> None:
    sink.write([formatter(record, env) for record in records])


def _zip(path: Path, filename: str) -> Path:
    target = path.with_name(f"{filename}.zip")
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(path, arcname=filename)
    path.unlink()
    return target


def _fit(request: ExportRequest, zone: ZoneInfo, rows: int, path: Path, directory: Path) -> ExportFile:
    """The file as it can be sent: as written, zipped when over the upload limit, or none when even the zip is
    too large."""
    filename = path.name
    size = path.stat().st_size
    if size <= UPLOAD_LIMIT:
        return ExportFile(request, zone, rows, filename, size, path=path, _directory=directory)
    zipped = _zip(path, filename)
    size = zipped.stat().st_size
    if size <= UPLOAD_LIMIT:
        return ExportFile(request, zone, rows, zipped.name, size, zipped=True, path=zipped, _directory=directory)
    return ExportFile(request, zone, rows, zipped.name, size, zipped=True, _directory=directory)


# -- the use case -------------------------------------------------------------------------------------


class ExportService(Audited):
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    async def export(self, actor: PartnerView, args: str | None, progress: ProgressReporter) -> ExportFile:
        """Write what `args` asks for to a temporary file (audited). Refused (UsageError, nothing written)
        unless `actor` is an admin and `args` is `<kind> [period] [csv|xlsx]`."""
        require_admin(actor)
        now = self._ctx.clock.now()
        zone = self._ctx.timezone
        request = parse_export_args(args, now, zone)
        period = request.period
        total = await self._uow.exports.count(request.kind, period.since, period.until)
        filename = f"{request.kind}-{period.slug}-{now.astimezone(zone):%Y%m%d-%H%M}.{request.format}"
        if total == 0:
            self._audited(actor, request, "empty", rows=0, size=0, zipped=False)
            return ExportFile(request, zone, 0, filename, 0)
        await progress(ExportProgress(request.kind, 0, total))
        directory = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="export-"))
        try:
            path = directory / filename
            rows = await self._write(request, path, total, progress)
            done = await asyncio.to_thread(_fit, request, zone, rows, path, directory)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        outcome = "too_large" if done.too_large else "ok"
        self._audited(actor, request, outcome, rows=rows, size=done.size, zipped=done.zipped)
        return done

    async def _write(self, request: ExportRequest, path: Path, total: int, progress: ProgressReporter) -> int:
        _, formatter = KINDS[request.kind]
        env = _Env(self._ctx.timezone, self._ctx.admin_ids)
        sink = await asyncio.to_thread(_open_sink, request, path)
        written = 0
        reported = self._ctx.clock.now()
        try:
            async with contextlib.aclosing(self._batches(request.kind, request.period)) as batches:
                async for records in batches:
                    await asyncio.to_thread(_write_batch, sink, formatter, records, env)
                    written += len(records)
                    now = self._ctx.clock.now()
                    if now - reported >= PROGRESS_EVERY:
                        reported = now
                        await progress(ExportProgress(request.kind, written, total))
        finally:
            await asyncio.to_thread(sink.close)
        return written

    def _batches(self, kind: str, period: Period) -> AsyncGenerator[Sequence[Any], None]:
        repo, since, until = self._uow.exports, period.since, period.until
        if kind == "partners":
            return repo.partners(since, until, BATCH, ACTION_EVENTS)
        if kind == "events":
            return repo.events(since, until, BATCH)
        if kind == "leads":
            return repo.leads(since, until, BATCH)
        if kind == "orders":
            return repo.orders(since, until, BATCH)
        if kind == "ledger":
            return repo.ledger(since, until, BATCH)
        return repo.payouts(since, until, BATCH)

    def _audited(
        self, actor: PartnerView, request: ExportRequest, outcome: str, *, rows: int, size: int, zipped: bool
    ) -> None:
        details = {
            "rows": rows,
            "period": request.period.label,
            "format": request.format,
            "bytes": size,
            "zipped": zipped,
        }
        self._audit(actor, f"{request.kind}_export", None, outcome, details)
