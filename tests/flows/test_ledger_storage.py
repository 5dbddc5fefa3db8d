"""Storage guarantees the commission ledger relies on: idempotent order and refund claims decided by the
database (also under concurrency), and transactions that balance and post once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.db import create_sessionmaker
from storage.models import LedgerEntry, Order
from storage.uow import UnitOfWork

NOW = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


def order_values(external_id: str = "A1001") -> dict[str, Any]:
    return {
        "source": "api",
        "external_id": external_id,
        "fingerprint": "f" * 64,
        "customer_id": "c1",
        "partner_id": None,
        "attribution": "none",
        "currency": "CNY",
        "amount_minor": 15000,
        "refunded_minor": 0,
        "items": [],
        "paid_at": NOW,
        "status": "unattributed",
        "created_at": NOW,
    }


def lines(txn: str) -> list[dict[str, Any]]:
    base = {"txn": txn, "currency": "CNY", "kind": "commission", "created_at": NOW}
    return [
        {**base, "line": 1, "account": "partner:1", "bucket": "pending", "amount_minor": 1500},
        {**base, "line": 2, "account": "platform:commission", "bucket": "expense", "amount_minor": -1500},
    ]


async def test_an_order_is_claimed_once(engine: AsyncEngine) -> None:
    sessionmaker = create_sessionmaker(engine)
    async with UnitOfWork(sessionmaker) as uow:
        first = (await uow.ledger.claim_orders([order_values()])).get("A1001")
    async with UnitOfWork(sessionmaker) as uow:
        again = (await uow.ledger.claim_orders([order_values()])).get("A1001")
        existing = await uow.ledger.order("api", "A1001")
    assert first is not None and again is None
    assert existing is not None and existing.id == first


async def test_transactions_balance_and_post_once(engine: AsyncEngine) -> None:
    sessionmaker = create_sessionmaker(engine)
    async with UnitOfWork(sessionmaker) as uow:
        assert await uow.ledger.post(lines("order:api:A1001")) is True
    async with UnitOfWork(sessionmaker) as uow:
        assert await uow.ledger.post(lines("order:api:A1001")) is False
    with pytest.raises(ValueError, match="does not balance"):
        async with UnitOfWork(sessionmaker) as uow:
            await uow.ledger.post(lines("order:api:A1002")[:1])
    async with sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(LedgerEntry))).scalar_one() == 2


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # SQLite has one writer at a time
async def test_concurrent_replays_claim_one_order(engine: AsyncEngine) -> None:
    sessionmaker = create_sessionmaker(engine)

    async def claim() -> int | None:
        async with UnitOfWork(sessionmaker) as uow:
            claimed = (await uow.ledger.claim_orders([order_values("C1")])).get("C1")
            await asyncio.sleep(0.05)  # hold the transaction open while the others try
            return claimed

    results = await asyncio.gather(claim(), claim(), claim())
    assert len([r for r in results if r is not None]) == 1
    async with sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(Order))).scalar_one() == 1
