"""The web dashboard: its sessions and used login tokens, and the read queries only the dashboard makes (the
partners table, content performance). Every read takes a `team` (a lead's tree path; None: everybody)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ContentItem, DashboardLoginToken, DashboardSession, Event, Partner, PartnerBadge
from storage.repositories.rollups import in_team


class DashboardRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # --- credentials -----------------------------------------------------------------------------------------

    async def use_token(self, token_id: str, partner_id: int, used_at: datetime, expires_at: datetime) -> bool:
        """Remember a login token as used; False when it was used before (also by a concurrent request)."""
        if await self._session.get(DashboardLoginToken, token_id) is not None:
            return False
        try:
            async with self._session.begin_nested():
                self._session.add(
                    DashboardLoginToken(
                        token_id=token_id, partner_id=partner_id, used_at=used_at, expires_at=expires_at
                    )
                )
        except IntegrityError:
            return False
        return True

    async def add_session(self, id_hash: str, partner_id: int, created_at: datetime, expires_at: datetime) -> None:
        self._session.add(
            DashboardSession(id_hash=id_hash, partner_id=partner_id, created_at=created_at, expires_at=expires_at)
        )
        await self._session.flush()

    async def session(self, id_hash: str) -> DashboardSession | None:
        return await self._session.get(DashboardSession, id_hash)

    async def purge(self, now: datetime) -> None:
        """Forget expired sessions and used tokens that have expired anyway."""
        await self._session.execute(delete(DashboardSession).where(DashboardSession.expires_at <= now))
        await self._session.execute(delete(DashboardLoginToken).where(DashboardLoginToken.expires_at <= now))

    # --- reads -----------------------------------------------------------------------------------------------

    async def partners_page(self, team: str | None, query: str, offset: int, limit: int) -> Sequence[Partner]:
        """Partners matching `query` (see `_matching`), newest first."""
        stmt = _matching(team, query).order_by(Partner.id.desc()).offset(offset).limit(limit)
        return (await self._session.execute(stmt)).scalars().all()

    async def partners_count(self, team: str | None, query: str) -> int:
        count = select(func.count()).select_from(_matching(team, query).subquery())
        return int((await self._session.execute(count)).scalar_one())

    async def partner_in(self, partner_id: int, team: str | None) -> Partner | None:
        stmt = in_team(select(Partner).where(Partner.id == partner_id), Partner.id, team)
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def partners(self, ids: Collection[int], team: str | None) -> dict[int, Partner]:
        if not ids:
            return {}
        stmt = in_team(select(Partner).where(Partner.id.in_(set(ids))), Partner.id, team)
        return {p.id: p for p in (await self._session.execute(stmt)).scalars().all()}

    async def badges(self, partner_id: int) -> list[str]:
        stmt = select(PartnerBadge.badge).where(PartnerBadge.partner_id == partner_id).order_by(PartnerBadge.awarded_at)
        return list((await self._session.execute(stmt)).scalars().all())

    async def content_counts(
        self, start: datetime, end: datetime, team: str | None, limit: int
    ) -> list[tuple[int, str, int, int]]:
        """(content id, title, shares, clicks) per item with a share or a click in [start, end), most shared
        first. Clicks count every `link_clicked` event, as the rollups' funnel does."""
        content_id = Event.payload["content_id"].as_integer()
        counted: dict[int, list[int]] = {}
        for kind, column in (("shared", 0), ("link_clicked", 1)):
            stmt = select(content_id, func.count()).where(
                Event.type == kind, Event.occurred_at >= start, Event.occurred_at < end, content_id.is_not(None)
            )
            stmt = in_team(stmt, Event.partner_id, team)
            rows: Sequence[Any] = (await self._session.execute(stmt.group_by(content_id))).all()
            for item, count in rows:
                counted.setdefault(int(item), [0, 0])[column] = int(count)
        titles: dict[int, str] = {}
        if counted:
            found = await self._session.execute(
                select(ContentItem.id, ContentItem.title).where(ContentItem.id.in_(set(counted)))
            )
            titles = {int(i): str(t) for i, t in found.all()}
        ranked = sorted(counted.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
        return [(item, titles.get(item, f"#{item}"), c[0], c[1]) for item, c in ranked[:limit]]

    async def last_actions(self, ids: Collection[int], action_types: Collection[str]) -> dict[int, datetime]:
        """Each partner's latest action event (share, follow-up, new prospect, attributed order)."""
        if not ids:
            return {}
        stmt = (
            select(Event.partner_id, func.max(Event.occurred_at))
            .where(Event.partner_id.in_(set(ids)), Event.type.in_(set(action_types)))
            .group_by(Event.partner_id)
        )
        rows: Sequence[Any] = (await self._session.execute(stmt)).all()
        return {int(p): at for p, at in rows if at is not None}


def _matching(team: str | None, query: str) -> Select[Partner]:
    """Partners of `team` whose name, username or invite code contains `query` (case-insensitive; empty: all)."""
    stmt = select(Partner)
    words = query.strip().lower().lstrip("@")
    if words:
        stmt = stmt.where(
            or_(
                func.lower(Partner.first_name).contains(words, autoescape=True),
                func.lower(func.coalesce(Partner.last_name, "")).contains(words, autoescape=True),
                func.lower(func.coalesce(Partner.username, "")).contains(words, autoescape=True),
                func.lower(Partner.invite_code).contains(words, autoescape=True),
            )
        )
    return in_team(stmt, Partner.id, team)
