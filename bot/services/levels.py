"""Levels, badges and commission eligibility: the rules engine applied to every partner's metrics, once a day
(and on demand).

A partner whose level changes gets the new level, an append-only `LevelChange` row with the metrics that
decided it, and a notice (once per partner, level and day: `level:<partner>:<to>:<date>`); their upline is told
too, in the upline's language (`level-upline:<upline>:<partner>:<to>:<date>`). Badges are awarded once, for good
(`partner_badges`' primary key decides), each with its own notice with the badge's icon (`badge:<partner>:<badge>`).
The plan's `eligibility` condition sets `commission_eligible`, which settlement reads for every order's earners.
A condition that cannot be evaluated on a partner's metrics (MetricsError) is logged and that partner skipped.

Besides the daily run over everyone, `evaluate_recent` (the `levels:events` job, every minute) evaluates the
partners who recorded a relevant event (`RELEVANT_EVENTS`) since its cursor (`job_cursors`, the last event id
read), so a first share earns its badge a minute later and an order can promote at once, while a share or /today
update itself does no extra work. Events committed out of id order (two PostgreSQL transactions finishing in the
other order) can be passed over by the cursor; the daily run catches them.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from bot.domain.events import EventType
from bot.domain.rules import MetricsError, Plan, Titles, earned_badges, evaluate_level, is_eligible
from bot.services.acting import language_of
from bot.services.context import ServiceContext
from bot.services.ledger import SettlementService
from bot.services.metrics import MetricsService, PartnerMetrics
from bot.services.notify import partner_zone, text_row
from bot.services.partners import display_name
from storage.models import LevelChange, Partner
from storage.uow import UnitOfWork

log = logging.getLogger(__name__)

RELEVANT_EVENTS: frozenset[str] = frozenset(
    {
        EventType.SHARED,
        EventType.FOLLOWED_UP,
        EventType.LEAD_ADDED,
        EventType.ORDER_ATTRIBUTED,
        EventType.COURSE_COMPLETED,
        EventType.INVITED,
        EventType.SPRINT_WON,
    }
)
"""Events after which a partner's level and badges are looked at again within a minute."""
EVENTS_CURSOR = "levels:events"


@dataclass(slots=True)
class LevelRun:
    """What one evaluation did."""

    evaluated: int = 0
    promoted: list[tuple[int, str, str]] = field(default_factory=list)
    """(partner id, from level, to level)."""
    demoted: list[tuple[int, str, str]] = field(default_factory=list)
    badges: list[tuple[int, str]] = field(default_factory=list)
    """(partner id, badge) newly awarded."""
    eligibility: list[tuple[int, bool]] = field(default_factory=list)
    """(partner id, eligible now) whose commission eligibility changed."""
    skipped: list[int] = field(default_factory=list)
    """Partners whose metrics a condition could not use (logged)."""


def _title(titles: Titles | None, fallback: str, language: str) -> str:
    if titles is None:
        return fallback
    return titles.zh if language == "zh" else titles.en


def _percent(rate: Decimal) -> str:
    text = f"{(rate * 100).normalize():f}"
    return f"{text}%"


class LevelService:
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    async def evaluate(self, partner_ids: Collection[int], now: datetime) -> LevelRun:
        """Move each partner to the level the plan in force gives their metrics and award new badges."""
        version, plan = await SettlementService(self._uow, self._ctx).plan_for(now)
        partners = await self._uow.metrics.partners(set(partner_ids))
        metrics = await MetricsService(self._uow, self._ctx).for_rows(partners, now)
        held = await self._uow.metrics.badges_of({p.id for p in partners})
        run = LevelRun()
        changes: dict[int, str] = {}  # partner id -> their previous level
        wanted: dict[int, list[str]] = {}  # partner id -> badges to award, in order
        for partner in partners:
            values = metrics[partner.id]
            try:
                new_level = evaluate_level(plan, partner.level, values)
                badges = earned_badges(plan, {**values, "level": new_level})
                eligible = is_eligible(plan, {**values, "level": new_level})
            except (MetricsError, ValueError) as exc:  # ValueError: a level the plan no longer has
                log.warning("levels: partner %s skipped: %s", partner.id, exc)
                run.skipped.append(partner.id)
                continue
            run.evaluated += 1
            if partner.commission_eligible != eligible:  # settlement reads it for every order until the next run
                partner.commission_eligible = eligible
                run.eligibility.append((partner.id, eligible))
            if new_level != partner.level:
                changes[partner.id] = partner.level
                self._change_level(partner, new_level, plan=plan, version=version, values=values, now=now, run=run)
            if new := sorted(badges - held.get(partner.id, set())):
                wanted[partner.id] = new
        # the batch's writes at once: its badges in one insert, its notices in another (a nightly run over a
        # large network is hundreds of batches; a statement per badge and notice made it minutes long)
        awarded = await self._uow.metrics.award_badges([(p, b) for p, new in wanted.items() for b in new], now)
        upline_ids = {p.upline_id for p in partners if p.id in changes and p.upline_id is not None}
        uplines = await self._uow.partners.by_ids(upline_ids)
        rows: list[dict[str, Any]] = []
        for partner in partners:  # each partner's level notices, then their badges', as they were decided
            if partner.id in changes:
                rows += self._level_rows(partner, changes[partner.id], plan, now, uplines.get(partner.upline_id or 0))
            for badge in wanted.get(partner.id, ()):
                if (partner.id, badge) in awarded:
                    run.badges.append((partner.id, badge))
                    rows.append(self._badge_row(partner, plan, badge))
        if rows and await self._uow.outbox.enqueue_many(rows):
            self._uow.outbox_dirty = True
        await self._uow.flush()
        return run

    def _change_level(
        self,
        partner: Partner,
        new_level: str,
        *,
        plan: Plan,
        version: int,
        values: PartnerMetrics,
        now: datetime,
        run: LevelRun,
    ) -> None:
        old_level = partner.level
        names = list(plan.levels)
        up = names.index(new_level) > names.index(old_level)
        partner.level = new_level
        self._uow.metrics.add_level_change(
            LevelChange(
                partner_id=partner.id,
                from_level=old_level,
                to_level=new_level,
                rules_version=version,
                metrics=dict(values),
                changed_at=now,
            )
        )
        (run.promoted if up else run.demoted).append((partner.id, old_level, new_level))

    def _level_rows(
        self, partner: Partner, old_level: str, plan: Plan, now: datetime, upline: Partner | None
    ) -> list[dict[str, Any]]:
        """The outbox rows telling the partner (and their upline) of their new level, `partner.level`."""
        new_level = partner.level
        names = list(plan.levels)
        up = names.index(new_level) > names.index(old_level)
        language = language_of(self._ctx, partner)
        t = self._ctx.translator.texts(language)
        level = plan.levels[new_level]
        title = _title(level.title, new_level, language)
        if up:
            text = t("levels.up", level=title, l1=_percent(level.l1), l2=_percent(level.l2))
        else:
            lost = plan.levels[old_level]
            condition = lost.promote_when.text if lost.promote_when is not None else ""
            text = t(
                "levels.down",
                level=title,
                previous=_title(lost.title, old_level, language),
                condition=condition,  # the translator escapes parameters
            )
        day = now.astimezone(partner_zone(self._ctx, partner)).date().isoformat()
        rows = [text_row(self._ctx, recipient=partner, dedupe_key=f"level:{partner.id}:{new_level}:{day}", text=text)]
        if upline is not None:
            theirs = language_of(self._ctx, upline)
            ut = self._ctx.translator.texts(theirs)
            rows.append(
                text_row(
                    self._ctx,
                    recipient=upline,
                    dedupe_key=f"level-upline:{upline.id}:{partner.id}:{new_level}:{day}",
                    text=ut(
                        "streaks.upline.up" if up else "streaks.upline.down",
                        name=display_name(partner),
                        level=_title(level.title, new_level, theirs),
                        previous=_title(plan.levels[old_level].title, old_level, theirs),
                    ),
                )
            )
        return rows

    def _badge_row(self, partner: Partner, plan: Plan, badge: str) -> dict[str, Any]:
        language = language_of(self._ctx, partner)
        title = _title(plan.badges[badge].title, badge, language)
        icon = plan.badges[badge].icon
        return text_row(
            self._ctx,
            recipient=partner,
            dedupe_key=f"badge:{partner.id}:{badge}",
            text=self._ctx.translator.texts(language)("levels.badge", icon=icon, title=title),
        )

    async def evaluate_recent(self, now: datetime, limit: int) -> tuple[LevelRun, bool]:
        """Evaluate the partners with a relevant event since the cursor, reading at most `limit` events; and
        whether more are waiting. The first call only places the cursor at the newest event (the daily run covers
        the past)."""
        streaks = self._uow.streaks
        position = await streaks.cursor(EVENTS_CURSOR)
        newest = await streaks.last_event_id()
        if position is None or newest <= position:
            if position is None:
                await streaks.move_cursor(EVENTS_CURSOR, newest, now)
            return LevelRun(), False
        partners, position = await streaks.partners_with_events(position, newest, RELEVANT_EVENTS, limit)
        run = await self.evaluate(partners, now) if partners else LevelRun()
        await streaks.move_cursor(EVENTS_CURSOR, position, now)
        return run, position < newest
