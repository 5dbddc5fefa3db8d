"""The product catalogue's pages, quotes and orders registered in chat."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ChatOrder, Lead, Partner, Product, Quote


class DealRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # ------------------------------------------------------------------ catalogue

    async def product_page(self, *, offset: int, limit: int) -> Sequence[Product]:
        """Active products first, then archived ones; by SKU."""
        result = await self._session.execute(
            select(Product).order_by(Product.active.desc(), Product.sku).offset(offset).limit(limit)
        )
        return result.scalars().all()

    async def product_count(self) -> int:
        return int((await self._session.execute(select(func.count()).select_from(Product))).scalar_one())

    async def product(self, product_id: int) -> Product | None:
        return await self._session.get(Product, product_id)

    # ------------------------------------------------------------------ quotes

    def add_quote(self, quote: Quote) -> Quote:
        self._session.add(quote)
        return quote

    async def latest_quote(self, partner_id: int, lead_id: int, product_id: int) -> Quote | None:
        """The partner's newest quote of this product to this lead."""
        result = await self._session.execute(
            select(Quote)
            .where(Quote.partner_id == partner_id, Quote.lead_id == lead_id, Quote.product_id == product_id)
            .order_by(Quote.created_at.desc(), Quote.id.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()

    # ------------------------------------------------------------------ chat orders

    def add_order(self, order: ChatOrder) -> ChatOrder:
        self._session.add(order)
        return order

    async def order(self, order_id: int) -> ChatOrder | None:
        return await self._session.get(ChatOrder, order_id, populate_existing=True)

    async def pending(self, limit: int) -> Sequence[tuple[ChatOrder, Partner, Lead | None]]:
        """Orders waiting for an admin, oldest first, with their partner and lead."""
        result = await self._session.execute(
            select(ChatOrder, Partner, Lead)
            .join(Partner, Partner.id == ChatOrder.partner_id)
            .outerjoin(Lead, Lead.id == ChatOrder.lead_id)
            .where(ChatOrder.status == "pending")
            .order_by(ChatOrder.created_at, ChatOrder.id)
            .limit(limit)
        )
        return [(o, p, lead) for o, p, lead in result.all()]

    async def transition(self, order_id: int, from_status: str, values: Mapping[str, Any]) -> bool:
        """Change the order only while it is in `from_status`; False when it is not (another admin or a second
        press got there first). The database decides, atomically."""
        result = await self._session.execute(
            update(ChatOrder)
            .where(ChatOrder.id == order_id, ChatOrder.status == from_status)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def lead(self, lead_id: int) -> Lead | None:
        return await self._session.get(Lead, lead_id)
