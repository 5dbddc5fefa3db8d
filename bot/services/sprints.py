"""Monthly sprints (月度冲刺): admins create and end them, partners follow their progress, and a sweep announces
each stage through the outbox and closes ended sprints.

- A sprint's values are counted inside its window, per participant, with one GROUP BY (see
  `SprintRepository.values`): shares (`shared` events), new leads (`lead_added`), follow-ups (`followed_up`),
  orders (settled orders attributed to the partner, by paid_at) and GMV (their value net of refunds, in the
  sprint's currency), recruits (partners whose upline is the participant and who joined in the window).
- Participants are the sprint's audience as it is when counted (a partner who joins the team mid-sprint takes part).
- Stages (bot/domain/sprints.py) go out in batches of participants by id; the sprint row remembers which stages
  are done and how far the one in progress got, and each message's dedupe key `sprint:<id>:<stage>:<partner>`
  makes a repeated batch queue nothing twice.
- At the end, the final standings are written to `sprint_results` once, each winner gets a `sprint_won` event,
  every participant gets the winners announcement with their own rank, and every admin a summary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from bot.domain.errors import UsageError
from bot.domain.events import EventSource, EventType
from bot.domain.money import Money, format_money
from bot.domain.roles import Role
from bot.domain.sprints import (
    EVERYONE,
    STAGES,
    Audience,
    Board,
    Gap,
    Metric,
    Stage,
    due_stage,
    parse_sprint,
    parse_sprint_id,
    progress_bar,
    rank,
    stage_times,
    time_left,
    winners,
)
from bot.i18n import Raw, Texts
from bot.services.acting import Audited, language_of, require_admin
from bot.services.context import ServiceContext
from bot.services.ledger import SettlementService
from bot.services.notify import deliverable_at, enqueue_text, partner_zone, text_row
from bot.services.partners import display_name
from bot.services.views import PartnerView
from storage.models import Partner, Sprint, SprintResult
from storage.uow import UnitOfWork

LIST_LIMIT = 10
WINNERS_SHOWN = 10


# -- read models -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SprintLine:
    id: int
    title: str
    metric: Metric
    target: int
    currency: str
    starts_at: datetime
    ends_at: datetime
    prizes: str
    audience: Audience
    state: Literal["upcoming", "running", "closing", "ended", "cancelled"]
    winners: int = 0


@dataclass(frozen=True, slots=True)
class SprintCard:
    """A participant's view of a running sprint."""

    sprint: SprintLine
    value: int
    rank: int
    participants: int
    gap: Gap | None


@dataclass(frozen=True, slots=True)
class SprintOverview:
    cards: tuple[SprintCard, ...]
    upcoming: tuple[SprintLine, ...]
    zone: ZoneInfo
    now: datetime


@dataclass(frozen=True, slots=True)
class SprintList:
    items: tuple[SprintLine, ...]
    zone: ZoneInfo


@dataclass(frozen=True, slots=True)
class SprintCreated:
    sprint: SprintLine
    zone: ZoneInfo


@dataclass(frozen=True, slots=True)
class SprintEnded:
    sprint: SprintLine
    outcome: Literal["ended", "cancelled"]


def _state(row: Sprint, now: datetime) -> Literal["upcoming", "running", "closing", "ended", "cancelled"]:
    if row.status == "cancelled":
        return "cancelled"
    if row.status == "ended":
        return "ended"
    if now < row.starts_at:
        return "upcoming"
    return "running" if now < row.ends_at else "closing"


def sprint_line(row: Sprint, now: datetime, winners: int = 0) -> SprintLine:
    return SprintLine(
        id=row.id,
        title=row.title,
        metric=Metric(row.metric),
        target=row.target,
        currency=row.currency,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        prizes=row.prizes,
        audience=Audience.stored(row.audience),
        state=_state(row, now),
        winners=winners,
    )


# -- texts shared by /sprint and the announcements --------------------------------------------------------------


def amount_text(line: SprintLine, value: int, t: Texts) -> str:
    """A value with its unit: "3 shares", "¥1,200.00"."""
    if line.metric.is_money:
        return format_money(Money(value, line.currency), t.language)
    if value == 1:
        return t(f"sprints.unit_one.{line.metric.value}")
    return t(f"sprints.unit.{line.metric.value}", n=value)


def metric_text(line: SprintLine, t: Texts) -> str:
    return t(f"sprints.metric.{line.metric.value}")


def audience_text(audience: Audience, t: Texts) -> str:
    if audience == EVERYONE:
        return t("sprints.audience.everyone")
    return t(f"sprints.audience.{audience.kind}", value=audience.value)


def last_minute(line: SprintLine, zone: ZoneInfo) -> str:
    """The sprint's last minute in `zone` ("2026-11-30 23:59")."""
    return (line.ends_at - timedelta(seconds=1)).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def first_minute(line: SprintLine, zone: ZoneInfo) -> str:
    return line.starts_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def left_text(now: datetime, line: SprintLine, t: Texts) -> str:
    left = time_left(now, line.ends_at)
    if left.days:
        return t("sprints.left.days", days=left.days, hours=left.hours)
    if left.hours:
        return t("sprints.left.hours", hours=left.hours, minutes=left.minutes)
    return t("sprints.left.minutes", minutes=left.minutes)


def gap_text(card: SprintCard, t: Texts) -> str:
    if card.gap is None:
        return t("sprints.leading") if card.value > 0 else t("sprints.no_value_yet")
    return t("sprints.gap", amount=amount_text(card.sprint, card.gap.amount, t), rank=card.gap.rank)


def card_text(card: SprintCard, t: Texts, zone: ZoneInfo, now: datetime) -> str:
    line = card.sprint
    return t(
        "sprints.card",
        title=line.title,
        metric=metric_text(line, t),
        target=amount_text(line, line.target, t),
        bar=progress_bar(card.value, line.target),
        value=amount_text(line, card.value, t),
        rank=card.rank,
        count=card.participants,
        gap=Raw(gap_text(card, t)),
        prizes=line.prizes,
        end=last_minute(line, zone),
        left=Raw(left_text(now, line, t)),
    )


class SprintService(Audited):
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    # ------------------------------------------------------------------ admins

    async def create(self, actor: PartnerView, text: str | None) -> SprintCreated:
        """A sprint from `<title> | <metric> | <target> | <first day> | <last day> | <prizes> [| <audience>]` with
        dates in the admin's zone; audited. Bad input changes nothing."""
        require_admin(actor)
        now = self._ctx.clock.now()
        _, plan = await SettlementService(self._uow, self._ctx).plan_for(now)
        zone = await self._zone_of(actor.id)
        spec = parse_sprint(
            text, today=now.astimezone(zone).date(), zone=zone, currency=plan.currency, levels=list(plan.levels)
        )
        if spec.audience.kind == "team" and not await self._uow.sprints.lead_exists(spec.audience.value):
            raise UsageError("sprints.error.team", value=spec.audience.value)
        row = await self._uow.sprints.add(
            Sprint(
                title=spec.title,
                metric=spec.metric.value,
                target=spec.target,
                currency=plan.currency,
                starts_at=spec.starts_at,
                ends_at=spec.ends_at,
                prizes=spec.prizes,
                audience=spec.audience.label,
                status="active",
                stages_done=[],
                stage_cursor=0,
                created_by=actor.id,
                created_at=now,
            )
        )
        details = {
            "title": spec.title,
            "metric": spec.metric.value,
            "target": spec.target,
            "starts_at": spec.starts_at.isoformat(),
            "ends_at": spec.ends_at.isoformat(),
            "audience": spec.audience.label,
        }
        self._audit(actor, "sprint_add", f"sprint:{row.id}", "ok", details)
        return SprintCreated(sprint_line(row, now), zone)

    async def end(self, actor: PartnerView, text: str | None) -> SprintEnded:
        """End a running sprint now (its results go out with the next sweep, counted up to now), or cancel one that
        has not started (nobody was told about it yet); audited."""
        require_admin(actor)
        sprint_id = parse_sprint_id(text)
        row = await self._uow.sprints.get(sprint_id)
        if row is None:
            raise UsageError("sprints.not_found", id=sprint_id)
        now = self._ctx.clock.now()
        if row.status != "active" or row.ends_at <= now:
            raise UsageError("sprints.already_over", id=sprint_id, title=row.title)
        outcome: Literal["ended", "cancelled"]
        if now < row.starts_at:
            row.status, outcome = "cancelled", "cancelled"
        else:
            row.ends_at, outcome = now, "ended"
        row.ended_by = actor.id
        await self._uow.flush()
        self._audit(actor, f"sprint_{'cancel' if outcome == 'cancelled' else 'end'}", f"sprint:{row.id}", "ok", {})
        return SprintEnded(sprint_line(row, now), outcome)

    async def listing(self, actor: PartnerView) -> SprintList:
        require_admin(actor)
        now = self._ctx.clock.now()
        items = []
        for row in await self._uow.sprints.recent(LIST_LIMIT):
            count = await self._uow.sprints.result_count(row.id, winners_only=True) if row.status == "ended" else 0
            items.append(sprint_line(row, now, count))
        return SprintList(tuple(items), await self._zone_of(actor.id))

    # ------------------------------------------------------------------ partners

    async def overview(self, partner_id: int) -> SprintOverview:
        """The running sprints the partner takes part in, with their value, rank and gap; and upcoming ones."""
        now = self._ctx.clock.now()
        cards = []
        for row in await self._uow.sprints.running(now):
            if await self._uow.sprints.is_participant(row.audience, partner_id):
                board = await self.board(row)
                standing = board.standing(partner_id)
                cards.append(
                    SprintCard(
                        sprint_line(row, now), standing.value, standing.rank, board.participants, board.gap(partner_id)
                    )
                )
        upcoming = [
            sprint_line(row, now)
            for row in await self._uow.sprints.upcoming(now, LIST_LIMIT)
            if await self._uow.sprints.is_participant(row.audience, partner_id)
        ]
        return SprintOverview(tuple(cards), tuple(upcoming), await self._zone_of(partner_id), now)

    async def board(self, row: Sprint) -> Board:
        """The sprint's values so far for every participant."""
        values = await self._uow.sprints.values(row.metric, row.audience, row.starts_at, row.ends_at, row.currency)
        return Board(values, await self._uow.sprints.participant_count(row.audience))

    async def current_window(self, now: datetime) -> tuple[int, datetime, datetime] | None:
        """The current sprint's id and window, for "the current sprint" period of leaderboards: the running sprint
        for everyone if there is one, else the running sprint that ends first; None when none runs."""
        running = await self._uow.sprints.running(now)
        if not running:
            return None
        chosen = next((row for row in running if row.audience == EVERYONE.label), running[0])
        return chosen.id, chosen.starts_at, chosen.ends_at

    # ------------------------------------------------------------------ the sweep

    async def tick(self, limit: int) -> int:
        """Announce the stages that have come due, up to `limit` participants in all (the job calls it again while
        it does a full batch). How many participants were handled."""
        now = self._ctx.clock.now()
        handled = 0
        for row in await self._uow.sprints.started(now):
            while handled < limit:
                before = len(row.stages_done)
                handled += await self._advance(row, now, limit - handled)
                if row.stage_cursor or len(row.stages_done) == before:
                    break  # the budget ran out inside a stage, or nothing (more) is due for this sprint
        return handled

    async def _advance(self, row: Sprint, now: datetime, budget: int) -> int:
        done = [Stage(s) for s in row.stages_done]
        if row.stage_cursor:
            scheduled = stage_times(row.starts_at, row.ends_at)
            stage = next(s for s in STAGES if s in scheduled and s not in done)  # finish the one in progress first
        else:
            decision = due_stage(row.starts_at, row.ends_at, done, now)
            if decision is None:
                return 0
            stage = decision.announce
            row.stages_done = [*row.stages_done, *(s.value for s in decision.skip)]
        if stage is Stage.RESULTS:
            return await self._announce_results(row, now, budget)
        board = await self.board(row)
        partners = await self._uow.sprints.participants_after(row.audience, row.stage_cursor, budget)
        line = sprint_line(row, now)
        rows = []
        for partner in partners:
            t = self._ctx.translator.texts(language_of(self._ctx, partner))
            standing = board.standing(partner.id)
            card = SprintCard(line, standing.value, standing.rank, board.participants, board.gap(partner.id))
            # "time left" as of when the message will arrive (after the partner's quiet hours)
            arrives = deliverable_at(self._ctx, partner, now)
            text = self._stage_text(stage, card, t, partner_zone(self._ctx, partner), arrives)
            rows.append(text_row(self._ctx, recipient=partner, dedupe_key=self._key(row, stage, partner), text=text))
        if rows and await self._uow.outbox.enqueue_many(rows):
            self._uow.outbox_dirty = True
        self._progress(row, stage, partners, budget)
        return len(partners)

    def _progress(self, row: Sprint, stage: Stage, partners: Sequence[Partner], budget: int) -> None:
        if len(partners) < budget:
            row.stages_done = [*row.stages_done, stage.value]
            row.stage_cursor = 0
        else:
            row.stage_cursor = partners[-1].id

    @staticmethod
    def _key(row: Sprint, stage: Stage, partner: Partner) -> str:
        return f"sprint:{row.id}:{stage.value}:{partner.id}"

    def _stage_text(self, stage: Stage, card: SprintCard, t: Texts, zone: ZoneInfo, now: datetime) -> str:
        line = card.sprint
        if stage is Stage.KICKOFF:
            return t(
                "sprints.kickoff",
                title=line.title,
                metric=metric_text(line, t),
                target=amount_text(line, line.target, t),
                start=first_minute(line, zone),
                end=last_minute(line, zone),
                prizes=line.prizes,
            )
        return t(f"sprints.{stage.value}", title=line.title) + "\n\n" + card_text(card, t, zone, now)

    async def _announce_results(self, row: Sprint, now: datetime, budget: int) -> int:
        if not row.stage_cursor and not await self._uow.sprints.has_results(row.id):
            await self._close(row, now)
        winning = await self._uow.sprints.results(row.id, winners_only=True, limit=WINNERS_SHOWN)
        winner_count = await self._uow.sprints.result_count(row.id, winners_only=True)
        count = await self._uow.sprints.result_count(row.id)
        names = await self._uow.partners.by_ids([r.partner_id for r in winning])
        pairs = await self._uow.sprints.results_after(row.id, row.stage_cursor, budget)
        line = sprint_line(row, now)
        rows = []
        for partner, result in pairs:
            t = self._ctx.translator.texts(language_of(self._ctx, partner))
            lines = [t("sprints.results.title", title=line.title)]
            lines += self._winner_lines(line, winning, winner_count, names, t)
            key = "sprints.results.you_won" if result.winner else "sprints.results.you"
            lines.append(
                t(key, value=amount_text(line, result.value, t), rank=result.rank, count=count, prizes=line.prizes)
            )
            rows.append(
                text_row(
                    self._ctx,
                    recipient=partner,
                    dedupe_key=self._key(row, Stage.RESULTS, partner),
                    text="\n".join(lines),
                )
            )
        if rows and await self._uow.outbox.enqueue_many(rows):
            self._uow.outbox_dirty = True
        partners = [p for p, _ in pairs]
        self._progress(row, Stage.RESULTS, partners, budget)
        if not row.stage_cursor:
            row.status = "ended"
        return len(pairs)

    @staticmethod
    def _winner_lines(
        line: SprintLine, results: Sequence[SprintResult], total: int, names: Mapping[int, Partner], t: Texts
    ) -> list[str]:
        """The first winners (`results`, best first) and how many more there are of `total`."""
        if not results:
            return [t("sprints.results.no_winners")]
        shown = [
            t(
                "sprints.results.winner",
                rank=r.rank,
                name=display_name(names[r.partner_id]) if r.partner_id in names else "?",
                value=amount_text(line, r.value, t),
            )
            for r in results
        ]
        if total > len(results):
            shown.append(t("sprints.results.more", count=total - len(results)))
        return [t("sprints.results.winners_title"), *shown]

    async def _close(self, row: Sprint, now: datetime) -> None:
        """The final standings, once: every participant's row, a `sprint_won` event per winner, the admins' summary."""
        values = await self._uow.sprints.values(row.metric, row.audience, row.starts_at, row.ends_at, row.currency)
        everyone = dict.fromkeys(await self._uow.sprints.participant_ids(row.audience), 0)
        everyone.update({p: v for p, v in values.items() if p in everyone})
        standings = rank(everyone)
        winning = {s.partner_id for s in winners(standings, row.target)}
        await self._uow.sprints.add_results(
            [
                {
                    "sprint_id": row.id,
                    "partner_id": s.partner_id,
                    "value": s.value,
                    "rank": s.rank,
                    "winner": s.partner_id in winning,
                }
                for s in standings
            ]
        )
        await self._uow.events.add_many(
            [
                {
                    "partner_id": s.partner_id,
                    "type": EventType.SPRINT_WON.value,
                    "occurred_at": now,
                    "source": EventSource.SCHEDULER.value,
                    "payload": {"sprint_id": row.id, "rank": s.rank, "metric": row.metric, "value": s.value},
                    "dedupe_key": f"sprint:{row.id}:won:{s.partner_id}",
                }
                for s in standings
                if s.partner_id in winning
            ]
        )
        line = sprint_line(row, now)
        reached = sum(1 for s in standings if s.value >= row.target)
        top = [s for s in standings if s.partner_id in winning][:WINNERS_SHOWN]
        names = await self._uow.partners.by_ids([s.partner_id for s in top])
        for admin in await self._admins():
            t = self._ctx.translator.texts(language_of(self._ctx, admin))
            lines = [
                t(
                    "sprints.summary",
                    id=row.id,
                    title=row.title,
                    count=len(standings),
                    winners=len(winning),
                    reached=reached,
                    total=amount_text(line, sum(values.values()), t),
                )
            ]
            lines += [
                t(
                    "sprints.results.winner",
                    rank=s.rank,
                    name=display_name(names[s.partner_id]),
                    value=amount_text(line, s.value, t),
                )
                for s in top
            ]
            if len(winning) > len(top):
                lines.append(t("sprints.results.more", count=len(winning) - len(top)))
            await enqueue_text(
                self._uow,
                self._ctx,
                recipient=admin,
                dedupe_key=f"sprint:{row.id}:summary:{admin.id}",
                text="\n".join(lines),
            )

    async def _admins(self) -> list[Partner]:
        """Every admin: stored with the role, or configured in ADMIN_IDS (once they have started the bot)."""
        admins = {p.id: p for p in await self._uow.partners.with_roles([Role.ADMIN.value])}
        for tg_id in sorted(self._ctx.admin_ids):
            configured = await self._uow.partners.by_tg_id(tg_id)
            if configured is not None:
                admins[configured.id] = configured
        return list(admins.values())

    async def _zone_of(self, partner_id: int) -> ZoneInfo:
        partner = await self._uow.partners.get(partner_id)
        return partner_zone(self._ctx, partner) if partner is not None else self._ctx.timezone
