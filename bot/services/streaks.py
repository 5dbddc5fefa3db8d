"""Streaks: the freeze that covers a missed day once it is over, tonight's one reminder when a streak is at risk,
and the streak /me shows. The rules are pure (bot/domain/streaks.py); this applies them to partners.

How the `streaks:sweep` job (every 10 minutes) finds partners, for the record:
- Per time zone partners are in, by pages of partner ids (one transaction each).
- Freezes: partners with a share, follow-up or freeze in the last `2 × STREAK_FREEZES_PER_MONTH + 2` days (a
  longer gap cannot be covered) whose `partner_streaks.checked_day` is before yesterday (local). Each is looked at
  once per local day, just after midnight: the freezes the domain decides are recorded as `streak_freeze_used`
  events (`streak_freeze:<partner>:<day>`, payload `day`, `freezes_left`) and the partner is told through the
  outbox (`streak-freeze:<partner>:<day>`; after their quiet hours). With 0 freezes a month nothing is done.
- Reminders: once the zone's local hour reaches STREAK_REMINDER_HOUR, partners with a share, follow-up or freeze
  since the start of yesterday (local) whose evening check of today is not done. A partner in their quiet hours is
  passed over (looked at again by the next run, e.g. when their quiet hours end before midnight) and gets none
  when they last until midnight; everyone else is checked once: at risk → one reminder
  (`streak-risk:<partner>:<day>`), then `evening_day` = today either way.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.events import EventSource, EventType
from bot.domain.streaks import ReminderWindow, at_risk, days_to_freeze, freezes_left, streak_days
from bot.services.acting import language_of
from bot.services.context import ServiceContext
from bot.services.metrics import STREAK_EVENTS, STREAK_LOOKBACK_DAYS
from bot.services.notify import enqueue_text, partner_zone, quiet_hours_of, text_row
from bot.services.views import StreakView
from storage.models import Partner
from storage.uow import UnitOfWork

KEPT_EVENTS: frozenset[str] = STREAK_EVENTS | {EventType.STREAK_FREEZE_USED}
"""Events that show a day was kept: a share, a follow-up, or a freeze that covered it."""


@dataclass(frozen=True, slots=True)
class SweepPage:
    """One page of a streak sweep: how many partners it looked at, the last one's id, and what it did."""

    seen: int
    last_id: int
    done: int
    """Freezes recorded, or reminders queued."""


class StreakService:
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    async def status(self, partner: Partner) -> StreakView:
        """The partner's streak now and the freezes left this month (for /me)."""
        now = self._ctx.clock.now()
        today = now.astimezone(partner_zone(self._ctx, partner)).date()
        active, frozen = (await self._days([partner], now)).get(partner.id, (set(), set()))
        per_month = self._ctx.streak_freezes_per_month
        return StreakView(
            days=streak_days(active, frozen, today),
            active_today=today in active,
            freezes_left=freezes_left(frozen, today, per_month),
            freezes_per_month=per_month,
        )

    async def days_of(self, partners: Collection[Partner]) -> dict[int, int]:
        """Each partner's streak now, in days (the web dashboard's partners table: one read for a page)."""
        now = self._ctx.clock.now()
        by_id = {p.id: p for p in partners}
        return {
            partner_id: streak_days(active, frozen, now.astimezone(partner_zone(self._ctx, by_id[partner_id])).date())
            for partner_id, (active, frozen) in (await self._days(partners, now)).items()
        }

    async def timezones(self) -> list[str | None]:
        return await self._uow.streaks.timezones()

    async def freeze_page(self, timezone: str | None, now: datetime, *, after_id: int, limit: int) -> SweepPage:
        """Cover the missed days that are over with freezes, for one page of partners in `timezone`."""
        per_month = self._ctx.streak_freezes_per_month
        if per_month <= 0:
            return SweepPage(0, after_id, 0)
        zone, is_default = self._zone(timezone)
        today = now.astimezone(zone).date()
        yesterday = (today - timedelta(days=1)).isoformat()
        partners = await self._uow.streaks.candidates(
            timezone=timezone,
            is_default_zone=is_default,
            types=KEPT_EVENTS,
            since=now - timedelta(days=2 * per_month + 2),
            done=self._uow.streaks.checked_through(yesterday),
            after_id=after_id,
            limit=limit,
        )
        if not partners:
            return SweepPage(0, after_id, 0)
        days = await self._days(partners, now)
        recorded = 0
        for partner in partners:
            active, frozen = days.get(partner.id, (set(), set()))
            covered = days_to_freeze(active, frozen, today, per_month)
            if covered:
                recorded += await self._freeze(partner, covered, active=active, frozen=frozen, today=today, now=now)
        await self._uow.streaks.mark([p.id for p in partners], now, checked_day=yesterday)
        return SweepPage(len(partners), partners[-1].id, recorded)

    async def _freeze(
        self,
        partner: Partner,
        covered: Sequence[date],
        *,
        active: set[date],
        frozen: set[date],
        today: date,
        now: datetime,
    ) -> int:
        per_month = self._ctx.streak_freezes_per_month
        recorded = 0
        for day in covered:
            frozen = frozen | {day}
            if await self._uow.events.add_once(
                dedupe_key=f"streak_freeze:{partner.id}:{day.isoformat()}",
                partner_id=partner.id,
                type=EventType.STREAK_FREEZE_USED,
                occurred_at=now,
                source=EventSource.SCHEDULER,
                payload={"day": day.isoformat(), "freezes_left": freezes_left(frozen, day, per_month)},
            ):
                recorded += 1
        last = covered[-1]
        t = self._ctx.translator.texts(language_of(self._ctx, partner))
        text = t(
            "streaks.freeze.used",
            count=len(covered),
            days=streak_days(active, frozen, today),
            left=freezes_left(frozen, today, per_month),
        )
        await enqueue_text(
            self._uow,
            self._ctx,
            recipient=partner,
            dedupe_key=f"streak-freeze:{partner.id}:{last.isoformat()}",
            text=text,
        )
        return recorded

    async def remind_page(self, timezone: str | None, now: datetime, *, after_id: int, limit: int) -> SweepPage:
        """Tonight's reminder for partners in `timezone` whose streak is at risk, for one page of partners."""
        zone, is_default = self._zone(timezone)
        local = now.astimezone(zone)
        hour = self._ctx.streak_reminder_hour
        if local.hour < hour:
            return SweepPage(0, after_id, 0)
        today = local.date()
        start_of_yesterday = datetime.combine(today - timedelta(days=1), time(), zone)
        partners = await self._uow.streaks.candidates(
            timezone=timezone,
            is_default_zone=is_default,
            types=KEPT_EVENTS,
            since=start_of_yesterday,
            done=self._uow.streaks.evening_done(today.isoformat()),
            after_id=after_id,
            limit=limit,
        )
        if not partners:
            return SweepPage(0, after_id, 0)
        awake = [p for p in partners if ReminderWindow(hour, quiet_hours_of(self._ctx, p)).open_at(local)]
        days = await self._days(awake, now)
        rows = []
        for partner in awake:
            active, frozen = days.get(partner.id, (set(), set()))
            if at_risk(active, frozen, today):
                rows.append(self._reminder(partner, active, frozen, today))
        queued = await self._uow.outbox.enqueue_many(rows) if rows else 0
        self._uow.outbox_dirty = self._uow.outbox_dirty or queued > 0
        await self._uow.streaks.mark([p.id for p in awake], now, evening_day=today.isoformat())
        return SweepPage(len(partners), partners[-1].id, queued)

    def _reminder(self, partner: Partner, active: set[date], frozen: set[date], today: date) -> dict[str, Any]:
        """Tonight's outbox row: the streak, and the freezes left when freezes are on."""
        t = self._ctx.translator.texts(language_of(self._ctx, partner))
        per_month = self._ctx.streak_freezes_per_month
        text = t("streaks.risk", days=streak_days(active, frozen, today))
        if per_month > 0:
            text = f"{text}\n{t('streaks.risk_freezes', left=freezes_left(frozen, today, per_month))}"
        return text_row(
            self._ctx, recipient=partner, dedupe_key=f"streak-risk:{partner.id}:{today.isoformat()}", text=text
        )

    def _zone(self, timezone: str | None) -> tuple[ZoneInfo, bool]:
        zone = ZoneInfo(timezone) if timezone else self._ctx.timezone
        return zone, timezone is None or zone == self._ctx.timezone

    async def _days(self, partners: Collection[Partner], now: datetime) -> dict[int, tuple[set[date], set[date]]]:
        """Per partner: their active local days (a share or follow-up) and their frozen days, in the lookback."""
        ids = {p.id for p in partners}
        if not ids:
            return {}
        zones = {p.id: partner_zone(self._ctx, p) for p in partners}
        since = now - timedelta(days=STREAK_LOOKBACK_DAYS + 1)
        result: dict[int, tuple[set[date], set[date]]] = {pid: (set(), set()) for pid in ids}
        for partner_id, at in await self._uow.metrics.action_times(ids, STREAK_EVENTS, since):
            result[partner_id][0].add(at.astimezone(zones[partner_id]).date())
        for partner_id, frozen in (
            await self._uow.streaks.frozen_days(ids, EventType.STREAK_FREEZE_USED, since)
        ).items():
            result[partner_id][1].update(frozen)
        return result
