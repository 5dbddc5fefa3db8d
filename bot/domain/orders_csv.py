"""Orders from a CSV file an admin sends to the bot: the pure part (parsing rows into validated orders).

One row per order line. Rows with the same `order_id` are one order: its order-level columns must agree, and
its lines become the order's items. Each order is validated exactly like a body of POST /api/orders
(`parse_order`), so a file and the API accept and refuse the same things.

Columns (header row required, any order, extra columns refused): order_id, partner_code, coupon, customer_id,
currency, amount, paid_at, sku, category, quantity, unit_price.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field

from bot.domain.orders_api import BodyError, OrderIn, parse_order

COLUMNS = (
    "order_id",
    "partner_code",
    "coupon",
    "customer_id",
    "currency",
    "amount",
    "paid_at",
    "sku",
    "category",
    "quantity",
    "unit_price",
)
REQUIRED = frozenset(COLUMNS) - {"partner_code", "coupon"}
ORDER_FIELDS = ("partner_code", "coupon", "customer_id", "currency", "amount", "paid_at")
MAX_BYTES = 1024 * 1024
MAX_ROWS = 5000


class CsvFileError(ValueError):
    """The file as a whole cannot be read (not UTF-8, no header, unknown columns, too big)."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    rows: tuple[int, ...]
    """1-based data row numbers (the header is row 0)."""
    order_id: str
    path: str
    message: str


@dataclass(slots=True)
class CsvOrders:
    orders: list[OrderIn] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    rows: int = 0

    @property
    def total_minor(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for order in self.orders:
            totals[order.currency] = totals.get(order.currency, 0) + order.amount_minor
        return totals


def read_orders_csv(data: bytes) -> CsvOrders:
    """Every valid order of the file, and every problem with its row numbers and field."""
    result = CsvOrders()
    for order_id, rows in _grouped_rows(data, result).items():
        _add_order(result, order_id, rows)
    return result


def _header(reader: csv.DictReader[str]) -> list[str]:
    header = [name.strip() for name in reader.fieldnames or []]
    if not header:
        raise CsvFileError("the file has no header row")
    unknown = [name for name in header if name not in COLUMNS]
    missing = sorted(REQUIRED - set(header))
    problems = ([f"unknown columns: {', '.join(unknown)}"] if unknown else []) + (
        [f"missing columns: {', '.join(missing)}"] if missing else []
    )
    if problems:
        raise CsvFileError("; ".join(problems))
    return header


def _grouped_rows(data: bytes, result: CsvOrders) -> dict[str, list[tuple[int, dict[str, str]]]]:
    """The data rows by order id, with their 1-based numbers; rows that cannot belong to any order are problems."""
    if len(data) > MAX_BYTES:
        raise CsvFileError(f"the file is larger than {MAX_BYTES // 1024} KB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CsvFileError("the file is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))  # newline="": quoted cells may hold line breaks
    try:
        return _rows_by_order(reader, result)
    except csv.Error as exc:  # a cell over the csv module's 128 KB limit, a stray quote or line break
        raise CsvFileError(f"not valid CSV (line {reader.line_num}): {exc}") from None


def _rows_by_order(reader: csv.DictReader[str], result: CsvOrders) -> dict[str, list[tuple[int, dict[str, str]]]]:
    reader.fieldnames = _header(reader)
    grouped: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for number, row in enumerate(reader, start=1):
        if number > MAX_ROWS:
            raise CsvFileError(f"the file has more than {MAX_ROWS} rows")
        result.rows = number
        if None in row:  # more cells than columns
            result.problems.append(RowProblem((number,), "", "", "the row has more cells than the header"))
            continue
        cells = {key: (value or "").strip() for key, value in row.items()}
        if any(cells.values()):
            grouped.setdefault(cells.get("order_id", ""), []).append((number, cells))
    return grouped


def _add_order(result: CsvOrders, order_id: str, rows: list[tuple[int, dict[str, str]]]) -> None:
    numbers = tuple(n for n, _ in rows)
    first = rows[0][1]
    disagree = [name for name in ORDER_FIELDS if any(cells.get(name, "") != first.get(name, "") for _, cells in rows)]
    if disagree:
        result.problems += [
            RowProblem(numbers, order_id, name, "differs between the rows of this order") for name in disagree
        ]
        return
    body: dict[str, object] = {
        "order_id": order_id,
        "customer_id": first.get("customer_id", ""),
        "currency": first.get("currency", ""),
        "amount": first.get("amount", ""),
        "paid_at": first.get("paid_at", ""),
        "items": [
            {
                "sku": cells.get("sku", ""),
                "category": cells.get("category", ""),
                "quantity": _quantity(cells.get("quantity", "")),
                "unit_price": cells.get("unit_price", ""),
            }
            for _, cells in rows
        ],
    }
    for optional in ("partner_code", "coupon"):
        if first.get(optional):
            body[optional] = first[optional]
    try:
        result.orders.append(parse_order(json.dumps(body).encode()))
    except BodyError as exc:
        result.problems += [RowProblem(numbers, order_id, e.path, e.message) for e in exc.errors]


def _quantity(cell: str) -> object:
    """Quantities are whole numbers in the API body; a CSV cell is text, so convert what clearly is one."""
    return int(cell) if cell.isascii() and cell.isdigit() and len(cell) <= 18 else cell
