"""Metrics of the rules engine (bot.domain.rules.METRICS), computed in bulk from events, orders and the tree.

Definitions, for the record:
- Orders count when they are attributed to the partner (L1) and settled; a fully refunded order becomes
  'refunded' and stops counting; a partly refunded one counts with its value net of the refund.
- Windows (`_30d`, `_7d`) are the 30 / 7 days (24 h each) before `now`.
- `ACTION_EVENTS` are what counts as a partner doing something (active recruits, streaks): sharing, following
  up, adding a lead, an attributed order. Receiving content (`content_sent`) is not an action.
- `revisits_30d` counts `followed_up` events whose payload has `revisit: true`: follow-ups the partner logged on a
  prospect whose revisit reminder had come due, or on a won deal (bot/services/leads.py records them).
- `streak_days`: the issue's streak (bot/domain/streaks.py): consecutive local days (the partner's time zone) with
  at least one share or follow-up (`STREAK_EVENTS`), ending today, or yesterday while today has none yet; days a
  `streak_freeze_used` event covers keep the run without adding to it. Only the last `STREAK_LOOKBACK_DAYS` days
  are read.
- `shares_total`, `leads_total`, `followups_total`: `shared`, `lead_added`, `followed_up` events ever;
  `sprint_wins`: `sprint_won` events (one per sprint won, recorded when the sprint ends).
- `courses_completed` counts `course_completed` events, recorded once per partner and course (bot/services/courses.py),
  so it is the number of distinct courses completed.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta

from bot.domain.events import EventType
from bot.domain.rules import METRICS
from bot.domain.streaks import streak_days
from bot.services.context import ServiceContext
from bot.services.notify import partner_zone
from storage.models import Partner
from storage.uow import UnitOfWork

ACTION_EVENTS: frozenset[str] = frozenset(
    {EventType.SHARED, EventType.FOLLOWED_UP, EventType.LEAD_ADDED, EventType.ORDER_ATTRIBUTED}
)
"""Events that show a partner acting (content reaching them, `content_sent`, does not)."""
STREAK_EVENTS: frozenset[str] = frozenset({EventType.SHARED, EventType.FOLLOWED_UP})
"""What keeps a streak going: a share or a follow-up (the issue's definition)."""
EVER_COUNTS: dict[str, EventType] = {
    "courses_completed": EventType.COURSE_COMPLETED,
    "shares_total": EventType.SHARED,
    "leads_total": EventType.LEAD_ADDED,
    "followups_total": EventType.FOLLOWED_UP,
    "sprint_wins": EventType.SPRINT_WON,
}
"""Metrics that count one event type since joining, read together in one query."""
STREAK_LOOKBACK_DAYS = 60
EVER = datetime(2000, 1, 1, tzinfo=UTC)
"""The start of 'since joining' windows: before any event."""

PartnerMetrics = dict[str, int | str]


class MetricsService:
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    async def for_partners(self, partner_ids: Collection[int], now: datetime) -> dict[int, PartnerMetrics]:
        """Every metric of METRICS for each existing partner of `partner_ids` (unknown ids are left out)."""
        partners = await self._uow.metrics.partners(set(partner_ids))
        return await self.for_rows(partners, now)

    async def for_rows(
        self, partners: Collection[Partner], now: datetime, only: Collection[str] | None = None
    ) -> dict[int, PartnerMetrics]:
        """Every metric for each partner; with `only`, just those metrics, reading only what they need (/me
        shows the next level's condition on every call: two or three metrics, not the whole catalogue)."""
        wanted = set(METRICS) if only is None else set(only)

        def needs(*names: str) -> bool:
            return not wanted.isdisjoint(names)

        repo = self._uow.metrics
        ids = {p.id for p in partners}
        d30, d7 = now - timedelta(days=30), now - timedelta(days=7)
        orders = await repo.order_stats(ids, d30) if needs("sales_30d", "gmv_30d_minor", "orders_total") else {}
        recruits = (
            await repo.recruit_counts(ids, ACTION_EVENTS, d30) if needs("active_recruits", "recruits_total") else {}
        )
        counts_30 = await repo.event_counts(ids, (EventType.SHARED,), d30) if needs("shares_30d") else {}
        counts_7 = (
            await repo.event_counts(ids, (EventType.SHARED, EventType.FOLLOWED_UP), d7)
            if needs("shares_7d", "followups_7d")
            else {}
        )
        revisits = await repo.revisit_counts(ids, EventType.FOLLOWED_UP, d30) if needs("revisits_30d") else {}
        ever_types = [EVER_COUNTS[name] for name in sorted(wanted & EVER_COUNTS.keys())]
        ever = await repo.event_counts(ids, ever_types, EVER) if ever_types else {}
        zones = {p.id: partner_zone(self._ctx, p) for p in partners}
        days: dict[int, set[date]] = {}
        frozen: dict[int, set[date]] = {}
        if needs("streak_days"):
            lookback = now - timedelta(days=STREAK_LOOKBACK_DAYS + 1)
            for partner_id, at in await repo.action_times(ids, STREAK_EVENTS, lookback):
                days.setdefault(partner_id, set()).add(at.astimezone(zones[partner_id]).date())
            frozen = await self._uow.streaks.frozen_days(ids, EventType.STREAK_FREEZE_USED, lookback)

        result: dict[int, PartnerMetrics] = {}
        for p in partners:
            sales, gmv, total = orders.get(p.id, (0, 0, 0))
            recruits_total, active = recruits.get(p.id, (0, 0))
            metrics: PartnerMetrics = {
                "sales_30d": sales,
                "gmv_30d_minor": gmv,
                "orders_total": total,
                "active_recruits": active,
                "recruits_total": recruits_total,
                "shares_7d": counts_7.get((p.id, EventType.SHARED), 0),
                "shares_30d": counts_30.get((p.id, EventType.SHARED), 0),
                "followups_7d": counts_7.get((p.id, EventType.FOLLOWED_UP), 0),
                "revisits_30d": revisits.get(p.id, 0),
                "streak_days": streak_days(
                    days.get(p.id, set()), frozen.get(p.id, set()), now.astimezone(zones[p.id]).date()
                ),
                "days_since_join": max(0, (now - p.joined_at).days),
                "level": p.level,
                **{name: ever.get((p.id, type), 0) for name, type in EVER_COUNTS.items()},
            }
            assert metrics.keys() == METRICS.keys()  # a new metric in the catalogue must be computed here
            result[p.id] = metrics if only is None else {name: metrics[name] for name in wanted if name in metrics}
        return result
