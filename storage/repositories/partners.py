"""Partners and the referral tree."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Partner


class PartnerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        # The session's identity map holds unchanged rows weakly: the update's own partner, looked up by
        # Telegram id in the middleware and dropped once its view is built, would be read again by id in
        # the use case. Holding it for the unit of work lets `get` answer from the map (one query less).
        self._held: list[Partner] = []

    async def by_tg_id(self, tg_user_id: int) -> Partner | None:
        result = await self._session.execute(select(Partner).where(Partner.tg_user_id == tg_user_id))
        partner = result.scalar_one_or_none()
        if partner is not None:
            self._held.append(partner)
        return partner

    async def get(self, partner_id: int) -> Partner | None:
        return await self._session.get(Partner, partner_id)

    async def by_invite_code(self, code: str) -> Partner | None:
        result = await self._session.execute(select(Partner).where(Partner.invite_code == code))
        return result.scalar_one_or_none()

    async def by_invite_codes(self, codes: Collection[str]) -> dict[str, Partner]:
        if not codes:
            return {}
        result = await self._session.execute(select(Partner).where(Partner.invite_code.in_(set(codes))))
        return {partner.invite_code: partner for partner in result.scalars()}

    async def by_ids(self, ids: Collection[int]) -> dict[int, Partner]:
        if not ids:
            return {}
        result = await self._session.execute(select(Partner).where(Partner.id.in_(set(ids))))
        return {partner.id: partner for partner in result.scalars()}

    async def by_username(self, username: str) -> Partner | None:
        result = await self._session.execute(
            select(Partner).where(func.lower(Partner.username) == username.lower()).limit(1)
        )
        return result.scalar_one_or_none()

    async def by_handle(self, handle: str) -> Partner | None:
        """A partner named by an admin as '@username' or by invite code."""
        return await self.by_username(handle[1:]) if handle.startswith("@") else await self.by_invite_code(handle)

    async def code_taken(self, code: str) -> bool:
        result = await self._session.execute(select(Partner.id).where(Partner.invite_code == code))
        return result.first() is not None

    async def add(self, partner: Partner, upline: Partner | None) -> Partner:
        """Insert a partner and place them in the tree under `upline` (or at a root)."""
        partner.tree_path = "/"
        self._session.add(partner)
        await self._session.flush()
        self.place(partner, upline)
        await self._session.flush()
        return partner

    @staticmethod
    def place(partner: Partner, upline: Partner | None) -> None:
        """Attach a partner who has no downline yet, or whose downline moves with them."""
        partner.upline_id = upline.id if upline else None
        prefix = upline.tree_path if upline else "/"
        partner.tree_path = f"{prefix}{partner.id}/"
        partner.depth = upline.depth + 1 if upline else 0

    async def rebase_subtree(self, old_prefix: str, new_prefix: str, depth_shift: int) -> None:
        """Move every descendant path from under `old_prefix` to under `new_prefix`."""
        rows = await self._session.execute(
            select(Partner).where(Partner.tree_path.startswith(old_prefix, autoescape=True))
        )
        for member in rows.scalars():
            if member.tree_path == old_prefix:
                continue
            member.tree_path = new_prefix + member.tree_path[len(old_prefix) :]
            member.depth += depth_shift
        await self._session.flush()

    async def count_at_level(self, partner: Partner, level: int) -> int:
        """How many partners sit exactly `level` steps below `partner`."""
        return (await self.count_levels(partner, (level,)))[0]

    async def count_levels(self, partner: Partner, levels: Sequence[int]) -> tuple[int, ...]:
        """Downline sizes at several depths below `partner`, in one query."""
        depths = [partner.depth + level for level in levels]
        columns = [func.count(case((Partner.depth == depth, 1))) for depth in depths]
        result = await self._session.execute(
            select(*columns).where(
                Partner.tree_path.startswith(partner.tree_path, autoescape=True),
                Partner.depth.in_(depths),
            )
        )
        return tuple(int(value) for value in result.one())

    async def subtree_size(self, partner: Partner) -> int:
        """Everyone below `partner`, at any depth."""
        result = await self._session.execute(
            select(func.count())
            .select_from(Partner)
            .where(
                Partner.tree_path.startswith(partner.tree_path, autoescape=True),
                Partner.id != partner.id,
            )
        )
        return int(result.scalar_one())

    async def direct_downline(self, partner: Partner, limit: int) -> Sequence[Partner]:
        result = await self._session.execute(
            select(Partner).where(Partner.upline_id == partner.id).order_by(Partner.joined_at.desc()).limit(limit)
        )
        return result.scalars().all()

    async def with_roles(self, roles: Sequence[str]) -> Sequence[Partner]:
        result = await self._session.execute(select(Partner).where(Partner.role.in_(roles)))
        return result.scalars().all()
