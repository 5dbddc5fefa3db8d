"""The material center, products, tracked links, uploaded Telegram file ids and daily packs."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import ColumnElement, Table, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ContentItem, DailyPack, Partner, Product, TelegramFile, TrackedLink
from storage.repositories.dialect import dialect_insert


class LinkTarget(NamedTuple):
    """What a click on /r/<slug> needs: whose link it is and where it goes."""

    link_id: int
    partner_id: int
    invite_code: str
    content_id: int | None
    product_id: int | None
    url: str
    campaign: str


class ContentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, item: ContentItem) -> ContentItem:
        self._session.add(item)
        return item

    async def get(self, content_id: int) -> ContentItem | None:
        return await self._session.get(ContentItem, content_id)

    async def by_external_key(self, key: str) -> ContentItem | None:
        result = await self._session.execute(select(ContentItem).where(ContentItem.external_key == key))
        return result.scalar_one_or_none()

    async def page(self, *, offset: int, limit: int, include_archived: bool = True) -> Sequence[ContentItem]:
        """Newest first; archived items after active ones."""
        query = select(ContentItem)
        if not include_archived:
            query = query.where(ContentItem.status == "active")
        query = query.order_by(ContentItem.status, ContentItem.created_at.desc(), ContentItem.id.desc())
        return (await self._session.execute(query.offset(offset).limit(limit))).scalars().all()

    async def count(self, *, include_archived: bool = True) -> int:
        query = select(func.count()).select_from(ContentItem)
        if not include_archived:
            query = query.where(ContentItem.status == "active")
        return int((await self._session.execute(query)).scalar_one())

    async def active(self) -> Sequence[ContentItem]:
        result = await self._session.execute(
            select(ContentItem)
            .where(ContentItem.status == "active")
            .order_by(ContentItem.created_at.desc(), ContentItem.id.desc())
        )
        return result.scalars().all()

    async def many(self, ids: Sequence[int]) -> list[ContentItem]:
        """Items by id, in the order of `ids` (missing ones left out)."""
        if not ids:
            return []
        result = await self._session.execute(select(ContentItem).where(ContentItem.id.in_(ids)))
        found = {item.id: item for item in result.scalars().all()}
        return [found[i] for i in ids if i in found]

    async def search(self, words: str, limit: int) -> Sequence[ContentItem]:
        """Active items whose title or text contains `words` (case-insensitive), newest first."""
        pattern = f"%{words.lower()}%"
        result = await self._session.execute(
            select(ContentItem)
            .where(
                ContentItem.status == "active",
                or_(func.lower(ContentItem.title).like(pattern), func.lower(ContentItem.text).like(pattern)),
            )
            .order_by(ContentItem.created_at.desc(), ContentItem.id.desc())
            .limit(limit)
        )
        return result.scalars().all()


class ProductRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, product: Product) -> Product:
        self._session.add(product)
        return product

    async def by_sku(self, sku: str) -> Product | None:
        result = await self._session.execute(select(Product).where(Product.sku == sku))
        return result.scalar_one_or_none()

    async def active(self) -> Sequence[Product]:
        result = await self._session.execute(select(Product).where(Product.active.is_(True)).order_by(Product.name))
        return result.scalars().all()


class LinkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def for_content(self, partner_id: int, content_ids: Sequence[int]) -> dict[int, TrackedLink]:
        if not content_ids:
            return {}
        result = await self._session.execute(
            select(TrackedLink).where(TrackedLink.partner_id == partner_id, TrackedLink.content_id.in_(content_ids))
        )
        return {link.content_id: link for link in result.scalars().all() if link.content_id is not None}

    async def for_products(self, partner_id: int, product_ids: Sequence[int]) -> dict[int, TrackedLink]:
        if not product_ids:
            return {}
        result = await self._session.execute(
            select(TrackedLink).where(TrackedLink.partner_id == partner_id, TrackedLink.product_id.in_(product_ids))
        )
        return {link.product_id: link for link in result.scalars().all() if link.product_id is not None}

    async def insert(
        self, *, slug: str, partner_id: int, content_id: int | None, product_id: int | None, now: datetime
    ) -> bool:
        """Insert a link unless the slug or the (partner, target) pair exists. True when it was added."""
        stmt = (
            dialect_insert(self._session)(TrackedLink)
            .values(
                slug=slug, partner_id=partner_id, content_id=content_id, product_id=product_id, clicks=0, created_at=now
            )
            .on_conflict_do_nothing()
        )
        result = await self._session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def slug_taken(self, slug: str) -> bool:
        return (await self._session.execute(select(TrackedLink.id).where(TrackedLink.slug == slug))).first() is not None

    async def target(self, slug: str) -> LinkTarget | None:
        """The link behind a slug, with its partner's invite code and the current target URL."""
        query = (
            select(
                TrackedLink.id,
                TrackedLink.partner_id,
                Partner.invite_code,
                TrackedLink.content_id,
                TrackedLink.product_id,
                ContentItem.url,
                Product.url,
                Product.sku,
            )
            .join(Partner, Partner.id == TrackedLink.partner_id)
            .outerjoin(ContentItem, ContentItem.id == TrackedLink.content_id)
            .outerjoin(Product, Product.id == TrackedLink.product_id)
            .where(TrackedLink.slug == slug)
        )
        row = (await self._session.execute(query)).first()
        if row is None:
            return None
        link_id, partner_id, code, content_id, product_id, content_url, product_url, sku = row
        url = content_url if content_id is not None else product_url
        if url is None:
            return None
        campaign = str(content_id) if content_id is not None else f"product-{sku}"
        return LinkTarget(link_id, partner_id, code, content_id, product_id, url, campaign)

    async def add_clicks(self, counts: dict[int, int]) -> None:
        """Add counted clicks to several links in one executemany."""
        if not counts:
            return
        table: Table = TrackedLink.__table__  # type: ignore[assignment]  # Core statement for executemany
        stmt = (
            update(table).where(table.c.id == bindparam("link_id")).values(clicks=table.c.clicks + bindparam("added"))
        )
        await self._session.execute(stmt, [{"link_id": k, "added": v} for k, v in counts.items()])

    async def clicks_for(self, partner_id: int) -> int:
        result = await self._session.execute(
            select(func.coalesce(func.sum(TrackedLink.clicks), 0)).where(TrackedLink.partner_id == partner_id)
        )
        return int(result.scalar_one())


class FileRepository:
    """Telegram file ids of files the bot uploaded, by the bot's own key for the file."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, key: str) -> str | None:
        row = await self._session.get(TelegramFile, key)
        return row.file_id if row else None

    async def many(self, keys: Collection[str]) -> dict[str, str]:
        """key → Telegram file id, for the keys that have one (one query)."""
        if not keys:
            return {}
        result = await self._session.execute(select(TelegramFile).where(TelegramFile.key.in_(set(keys))))
        return {row.key: row.file_id for row in result.scalars()}

    async def put(self, key: str, file_id: str, now: datetime) -> None:
        insert = dialect_insert(self._session)
        stmt = insert(TelegramFile).values(key=key, file_id=file_id, created_at=now)
        stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={"file_id": file_id})
        await self._session.execute(stmt)


class PackRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, partner_id: int, day: str) -> DailyPack | None:
        return await self._session.get(DailyPack, (partner_id, day))

    def add(self, pack: DailyPack) -> DailyPack:
        self._session.add(pack)
        return pack

    async def partner_timezones(self) -> list[str | None]:
        """Every time zone partners are in (None: the deployment's default)."""
        result = await self._session.execute(select(Partner.timezone).distinct())
        return list(result.scalars().all())

    async def due_partners(
        self,
        *,
        timezone: str | None,
        is_default_zone: bool,
        hours: Sequence[int],
        default_hour_due: bool,
        day: str,
        limit: int,
    ) -> Sequence[Partner]:
        """Reachable partners in `timezone` whose push hour is one of `hours` (a None push hour is the default,
        due when `default_hour_due`) and who have no pushed pack for their local `day` yet."""
        if limit <= 0 or not hours:
            return []
        zone: ColumnElement[bool] = Partner.timezone.is_(None) if timezone is None else Partner.timezone == timezone
        if timezone is not None and is_default_zone:
            zone = or_(zone, Partner.timezone.is_(None))
        hour: ColumnElement[bool] = Partner.push_hour.in_(list(hours))
        if default_hour_due:
            hour = or_(hour, Partner.push_hour.is_(None))
        already = (
            select(DailyPack.partner_id)
            .where(DailyPack.partner_id == Partner.id, DailyPack.day == day, DailyPack.pushed.is_(True))
            .exists()
        )
        query = (
            select(Partner)
            .where(zone, hour, Partner.unreachable.is_(False), ~already)
            .order_by(Partner.id)
            .limit(limit)
        )
        return (await self._session.execute(query)).scalars().all()

    async def pushed_today(self, partner_ids: Sequence[int], day: str) -> set[int]:
        if not partner_ids:
            return set()
        result = await self._session.execute(
            select(DailyPack.partner_id).where(
                DailyPack.day == day, DailyPack.pushed.is_(True), DailyPack.partner_id.in_(partner_ids)
            )
        )
        return set(result.scalars().all())
