"""A partner's own delivery settings: time zone, daily push hour and quiet hours."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.domain.errors import UsageError
from bot.domain.events import EventSource, EventType
from bot.domain.roles import Role
from bot.domain.schedule import DEFAULT_PUSH_HOUR, PUSH_OFF, SettingChange
from bot.services.context import ServiceContext
from bot.services.digests import digest_minute
from bot.services.notify import partner_zone, quiet_hours_of
from storage.models import Partner
from storage.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class SettingsView:
    timezone: str
    local_now: datetime
    push_hour: int | None
    """None when the daily push is turned off."""
    quiet: tuple[int, int] | None
    """None when the partner has no quiet hours."""
    rank_pushes: bool = True
    """Leaderboard pushes and rank-change notices (off: /rank still works)."""
    digest_minute: int | None = None
    """Team leads: the daily digest's local time (minutes after midnight); -1 off; None for everyone else."""
    weekly_digest: bool = True


class SettingsService:
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    async def view(self, partner_id: int) -> SettingsView:
        return await self._with_ranks(partner_id, self._view(await self._partner(partner_id)))

    async def _with_ranks(self, partner_id: int, view: SettingsView) -> SettingsView:
        return replace(view, rank_pushes=not await self._uow.leaderboards.opted_out([partner_id]))

    async def change(self, partner_id: int, change: SettingChange) -> SettingsView:
        partner = await self._partner(partner_id)
        payload: dict[str, object] = {}
        if change.timezone is not None:
            partner.timezone = self._checked_zone(change.timezone)
            payload["timezone"] = partner.timezone
        if change.push_hour is not None:
            partner.push_hour = change.push_hour
            payload["push_hour"] = change.push_hour
        if change.quiet is not None:
            partner.quiet_start_min, partner.quiet_end_min = change.quiet
            payload["quiet"] = list(change.quiet)
        if change.digest_minute is not None or change.weekly_digest is not None:
            if partner.role != Role.LEAD:
                raise UsageError("digests.leads_only")
            if change.digest_minute is not None:
                partner.digest_minute = change.digest_minute
                payload["digest_minute"] = change.digest_minute
            if change.weekly_digest is not None:
                partner.weekly_digest = change.weekly_digest
                payload["weekly_digest"] = change.weekly_digest
        now = self._ctx.clock.now()
        if change.rank_pushes is not None:
            await self._uow.leaderboards.set_opted_out(partner.id, not change.rank_pushes, now)
            payload["rank_pushes"] = change.rank_pushes
        partner.updated_at = now
        self._uow.events.add(
            partner_id=partner.id,
            type=EventType.SETTINGS_CHANGED,
            occurred_at=now,
            source=EventSource.BOT,
            payload=payload,
        )
        return await self._with_ranks(partner.id, self._view(partner))

    @staticmethod
    def _checked_zone(name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError("settings.bad_timezone", value=name) from None
        return name

    def _view(self, partner: Partner) -> SettingsView:
        zone = partner_zone(self._ctx, partner)
        push = DEFAULT_PUSH_HOUR if partner.push_hour is None else partner.push_hour
        quiet = quiet_hours_of(self._ctx, partner)
        return SettingsView(
            timezone=zone.key,
            local_now=self._ctx.clock.now().astimezone(zone),
            push_hour=None if push == PUSH_OFF else push,
            quiet=None if quiet[0] == quiet[1] else quiet,
            digest_minute=digest_minute(partner) if partner.role == Role.LEAD else None,
            weekly_digest=partner.weekly_digest,
        )

    async def _partner(self, partner_id: int) -> Partner:
        partner = await self._uow.partners.get(partner_id)
        if partner is None:
            raise LookupError(f"partner {partner_id} does not exist")
        return partner
