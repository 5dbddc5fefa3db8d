"""Points and leaderboards: folding events into the boards, /rank, the weekly and monthly pushes and rank-change
notices.

Sync (the `leaderboards:sync` job, every minute) folds new behaviour events into `leaderboard_scores`, and mirrors
the new scores into Redis when it is configured. Why a trailing re-scan plus folded-event markers and not a plain
"id > cursor": on PostgreSQL an event id is taken when the row is inserted but becomes visible when its transaction
commits, so an event can appear after events with higher ids were already folded. The sync therefore reads every
event above a low-water mark that it has not folded yet (the `leaderboard_folded` rows say which), and only
raises the mark to events folded at least `SETTLE` ago: any transaction that took a lower id has committed (or
rolled back) by then, as no transaction that writes events stays open that long. Folded rows below the mark are
forgotten, so the marker table holds only the last few minutes. Every fold is one transaction: the scores, the
markers and the mark commit together, so a crash folds nothing twice and loses nothing.

Scope "team": the partners of the nearest ancestor-or-self with role `lead` (that lead's whole referral subtree,
nested leads' teams included). A partner without a lead above has no team board.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.domain.errors import UserFacingError
from bot.domain.leaderboards import (
    FOLDED_TYPES,
    TOP,
    Entry,
    FoldEvent,
    Metric,
    Period,
    RankArgs,
    Scope,
    Standing,
    board_key,
    cap_key,
    fold,
    local_day,
    period_end,
    period_start,
    previous_start,
    rank_change,
    ranked,
    ranks_by_score,
    standing_among,
    with_ranks,
)
from bot.domain.money import Money, format_money
from bot.domain.points import PointsRules, parse_points
from bot.domain.schedule import DEFAULT_PUSH_HOUR
from bot.i18n import Texts
from bot.services.acting import language_of
from bot.services.context import ServiceContext
from bot.services.notify import enqueue_text, partner_zone
from bot.services.sprints import SprintService
from storage.leaderboards import BoardStore, RedisBoards, SqlBoards
from storage.models import Partner
from storage.uow import UnitOfWork

POINTS_FILE = Path(__file__).resolve().parent.parent / "plans" / "points.yaml"
SYNC_NAME = "events"
SETTLE = timedelta(minutes=5)
"""Longer than any transaction that writes events stays open."""
PUSH_WINDOW_HOURS = 3
NOTICE_METRIC = Metric.POINTS
"""Rank-change notices follow this week's network board of this metric."""


def load_points(path: Path = POINTS_FILE) -> PointsRules:
    return parse_points(path.read_text(encoding="utf-8"), path.name)


@functools.cache
def shipped_points() -> PointsRules:
    """bot/plans/points.yaml, read once (the app calls this at start-up, so a bad file stops it)."""
    return load_points()


class NoTeam(UserFacingError):
    def __init__(self) -> None:
        super().__init__("leaderboards.no_team")


class NoSprint(UserFacingError):
    def __init__(self) -> None:
        super().__init__("leaderboards.no_sprint")


@dataclass(frozen=True, slots=True)
class BoardView:
    args: RankArgs
    first_day: date
    last_day: date
    top: list[Entry]
    names: dict[int, str]
    me: Standing
    partner_id: int
    currency: str
    team_of: str | None = None
    """The team lead's name (scope team)."""
    past: bool = False
    """A finished period (a push of last week or month)."""


class LeaderboardService:
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext, rules: PointsRules | None = None) -> None:
        self._uow = uow
        self._ctx = ctx
        self._rules = rules

    @property
    def rules(self) -> PointsRules:
        return self._rules if self._rules is not None else shipped_points()

    @functools.cached_property
    def store(self) -> BoardStore:
        """Redis sorted sets when Redis is configured, else the SQL table; both answer the same."""
        if self._ctx.redis is not None:
            return RedisBoards(self._ctx.redis, self._uow.leaderboards, self._ctx.timezone)
        return SqlBoards(self._uow.leaderboards)

    # ------------------------------------------------------------------ sync
    async def sync(self, limit: int) -> int:
        """Fold up to `limit` new events into the boards (and Redis); how many events were read."""
        repo, now, zone = self._uow.leaderboards, self._ctx.clock.now(), self._ctx.timezone
        types = set(self.rules.rules) | FOLDED_TYPES
        rows = await repo.unfolded_events(await repo.safe_id(SYNC_NAME), types, limit)
        events = [
            FoldEvent(e.id, int(e.partner_id), e.type, dict(e.payload or {}), e.occurred_at)
            for e in rows
            if e.partner_id is not None
        ]
        caps = {
            (cap_key(e.type, local_day(e.occurred_at, zone)), e.partner_id)
            for e in events
            if self.rules.cap(e.type) is not None
        }
        earned = await repo.scores_at(caps)
        scores = await repo.add_scores(fold(events, self.rules, zone, earned))
        await repo.mark_folded([e.id for e in rows], now)
        await repo.advance(SYNC_NAME, now - SETTLE, now)
        await self.store.publish(scores)
        return len(rows)

    # ------------------------------------------------------------------ /rank
    async def board(self, partner_id: int, args: RankArgs) -> BoardView:
        """The top 10 of a board and the partner's own standing on it."""
        partner = await self._partner(partner_id)
        today = local_day(self._ctx.clock.now(), self._ctx.timezone)
        if args.period is Period.SPRINT:
            return await self._sprint_board(partner, args)
        start = period_start(args.period, today)
        return await self._view(partner, args, start, past=False)

    async def _view(self, partner: Partner, args: RankArgs, start: date, *, past: bool) -> BoardView:
        key = board_key(args.metric, args.period, start)
        last_day = period_end(args.period, start) - timedelta(days=1)
        team_of: str | None = None
        if args.scope is Scope.TEAM:
            lead = await self._lead(partner)
            scores = await self.store.scores_of(key, await self._uow.leaderboards.subtree_ids(lead.tree_path))
            top, me, team_of = ranked(scores.items()), standing_among(scores, partner.id), lead.first_name
        else:
            top = with_ranks(await self.store.top(key, TOP))
            me = await self.store.standing(key, partner.id)
        return await self._finish(
            partner, args=args, first=start, last=last_day, top=top, me=me, team_of=team_of, past=past
        )

    async def _sprint_board(self, partner: Partner, args: RankArgs) -> BoardView:
        window = await SprintService(self._uow, self._ctx).current_window(self._ctx.clock.now())
        if window is None:
            raise NoSprint
        _, starts_at, ends_at = window
        zone = self._ctx.timezone
        first, last = local_day(starts_at, zone), local_day(ends_at - timedelta(microseconds=1), zone)
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        boards = [board_key(args.metric, Period.TODAY, d) for d in days]
        team_of: str | None = None
        if args.scope is Scope.TEAM:
            lead = await self._lead(partner)
            scores = await self._uow.leaderboards.summed(boards, lead.tree_path)
            team_of = lead.first_name
        else:
            scores = await self._uow.leaderboards.summed(boards)
        top, me = ranked(scores.items()), standing_among(scores, partner.id)
        return await self._finish(
            partner, args=args, first=first, last=last, top=top, me=me, team_of=team_of, past=False
        )

    async def _finish(
        self,
        partner: Partner,
        *,
        args: RankArgs,
        first: date,
        last: date,
        top: list[Entry],
        me: Standing,
        team_of: str | None,
        past: bool,
    ) -> BoardView:
        found = await self._uow.partners.by_ids([e.partner_id for e in top])
        names = {pid: p.first_name for pid, p in found.items()}
        return BoardView(args, first, last, top, names, me, partner.id, self.rules.gmv_currency, team_of, past)

    async def _lead(self, partner: Partner) -> Partner:
        lead = await self._uow.leaderboards.nearest_lead(partner.tree_path)
        if lead is None:
            raise NoTeam
        return lead

    async def _partner(self, partner_id: int) -> Partner:
        partner = await self._uow.partners.get(partner_id)
        if partner is None:
            raise LookupError(f"partner {partner_id} does not exist")
        return partner

    # ------------------------------------------------------------------ opt-out
    async def pushes_on(self, partner_id: int) -> bool:
        return partner_id not in await self._uow.leaderboards.opted_out([partner_id])

    # ------------------------------------------------------------------ pushes
    async def push_due(self, now: datetime, limit: int) -> int:
        """Weekly (Monday) and monthly (the 1st) pushes to partners whose local push hour has come: the last
        finished week's or month's top 10 of points with their own standing. Once per partner and period (the
        `leaderboard_pushes` row, and the outbox dedupe key); opted-out partners get none. How many were queued."""
        pushed = 0
        deployment_today = local_day(now, self._ctx.timezone)
        for zone_name in await self._uow.packs.partner_timezones():
            zone = ZoneInfo(zone_name) if zone_name else self._ctx.timezone
            local = now.astimezone(zone)
            hours = [h for h in range(24) if 0 <= local.hour - h < PUSH_WINDOW_HOURS]
            due = [Period.WEEK] if local.weekday() == 0 else []
            due += [Period.MONTH] if local.day == 1 else []
            for period in due:
                start = previous_start(period, period_start(period, deployment_today))
                tag = f"{period.value[0]}:{start.isoformat()}"
                partners = await self._uow.leaderboards.due_pushes(
                    period=tag,
                    timezone=zone_name,
                    is_default_zone=zone_name is None or zone == self._ctx.timezone,
                    hours=hours,
                    default_hour_due=DEFAULT_PUSH_HOUR in hours,
                    limit=limit - pushed,
                )
                for partner in partners:
                    view = await self._view(partner, RankArgs(period, Scope.NETWORK, Metric.POINTS), start, past=True)
                    t = self._ctx.translator.texts(language_of(self._ctx, partner))
                    await enqueue_text(
                        self._uow,
                        self._ctx,
                        recipient=partner,
                        dedupe_key=f"rank-push:{partner.id}:{tag}",
                        text=render_board(view, t),
                    )
                    await self._uow.leaderboards.mark_pushed(partner.id, tag, now)
                    pushed += 1
                if pushed >= limit:
                    return pushed
        return pushed

    async def notify_changes(self, now: datetime, after: int, limit: int) -> int | None:
        """One page (by partner id, after `after`) of this week's network points board: each partner's rank is
        compared with the last one seen, and those who were overtaken or just entered the top 10 are told, at most
        once per partner and local day (outbox dedupe key). Ranks come from the board's per-score counts, so a
        run reads each row once. The last partner id of the page, or None after the last page."""
        repo = self._uow.leaderboards
        start = period_start(Period.WEEK, local_day(now, self._ctx.timezone))
        key = board_key(NOTICE_METRIC, Period.WEEK, start)
        page = await repo.page_with_standings(key, after, limit)
        if not page:
            return None
        rank_of = ranks_by_score(await repo.score_counts(key))
        moved: dict[int, int] = {}
        changes: dict[int, tuple[str, int, int]] = {}
        for partner_id, score, before, board_before in page:
            rank = rank_of[score]
            if before == rank and board_before == key:
                continue
            moved[partner_id] = rank
            change = rank_change(before if board_before == key else None, rank)
            if change is not None:
                changes[partner_id] = (change.kind, rank, score)
        await repo.save_ranks(key, moved, now)
        muted = await repo.opted_out(changes)
        partners = await self._uow.partners.by_ids([p for p in changes if p not in muted])
        for partner_id, partner in partners.items():
            kind, rank, score = changes[partner_id]
            if partner.unreachable:
                continue
            t = self._ctx.translator.texts(language_of(self._ctx, partner))
            day = now.astimezone(partner_zone(self._ctx, partner)).date().isoformat()
            value = render_value(Metric.POINTS, score, t, self.rules.gmv_currency)
            await enqueue_text(
                self._uow,
                self._ctx,
                recipient=partner,
                dedupe_key=f"rank-change:{partner_id}:{day}",
                text=t(f"leaderboards.notice_{kind}", rank=rank, value=value),
            )
        return page[-1][0] if len(page) == limit else None


def render_value(metric: Metric, value: int, t: Texts, currency: str) -> str:
    if metric is Metric.GMV:
        return format_money(Money(value, currency), t.language)
    return t(f"leaderboards.value_{metric.value}" + ("_one" if value == 1 else ""), n=value)


def render_board(view: BoardView, t: Texts) -> str:
    """The board as text: title, the top 10 and the partner's own line (shown even outside the top)."""
    args = view.args
    period = t(f"leaderboards.{'last' if view.past else 'period'}_{args.period.value}")
    scope = (
        t("leaderboards.scope_team", lead=view.team_of) if args.scope is Scope.TEAM else t("leaderboards.scope_network")
    )
    dates = (
        view.first_day.isoformat()
        if view.first_day == view.last_day
        else f"{view.first_day.isoformat()} – {view.last_day.isoformat()}"
    )
    lines = [
        t("leaderboards.title", metric=t(f"leaderboards.metric_{args.metric.value}"), period=period, scope=scope),
        t("leaderboards.dates", dates=dates),
        "",
    ]
    if not view.top:
        lines.append(t("leaderboards.empty"))
    for entry in view.top:
        name = view.names.get(entry.partner_id, "?")
        value = render_value(args.metric, entry.score, t, view.currency)
        key = "leaderboards.line_me" if entry.partner_id == view.partner_id else "leaderboards.line"
        lines.append(t(key, rank=entry.rank, name=name, value=value))
    lines += ["", render_me(view, t)]
    return "\n".join(lines)


def render_me(view: BoardView, t: Texts) -> str:
    me, metric = view.me, view.args.metric
    value = render_value(metric, me.score, t, view.currency)
    if me.gap is None or me.next_rank is None:
        return t("leaderboards.you_top" if me.score > 0 else "leaderboards.you_empty", rank=me.rank, value=value)
    gap = render_value(metric, me.gap, t, view.currency)
    if me.score == 0:
        return t("leaderboards.you_unranked", gap=gap, next=me.next_rank)
    return t("leaderboards.you", rank=me.rank, value=value, gap=gap, next=me.next_rank)
