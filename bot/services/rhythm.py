"""Tiered operations (分层运营) around the pure rhythm (playbooks/rhythm.py).

- Every day (`segments:daily`) each partner is put in the first segment of `tiered_ops` whose condition holds on
  their metrics, read in bulk per batch of partners; `partners.segment` follows, and a change is a
  `segment_changed` event (source scheduler, payload previous/segment) so leads and admins see who slipped.
- The touch sweep (`rhythm:tick`) runs the engine for partners whose wake-up time has come: it sends their
  segment's touches through the outbox (quiet hours and dedupe keys apply), notes touches stopped for lack of
  answers, and stores the next wake-up. The engine computes the segment from the same conditions, so a partner
  whose metrics changed since the night's run moves at their next touch time, in the same way.
- The rhythm is paused and resumed with the playbook switches (/playbooks pause|resume tiered_ops [partner]):
  paused touches are not sent; segments are still computed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.callbacks import PlaybookCallback
from bot.config import ConfigError
from bot.domain.events import EventSource, EventType
from bot.i18n import Texts
from bot.services.acting import language_of
from bot.services.context import ServiceContext
from bot.services.metrics import MetricsService, PartnerMetrics
from bot.services.notify import enqueue_step, partner_zone
from playbooks.engine import Event
from playbooks.loader import load_all, locale_text_keys, media_problems
from playbooks.rhythm import (
    RhythmState,
    SegmentChanged,
    SendTouch,
    TouchState,
    TouchStopped,
    WakeAt,
    apply_rhythm,
    decide_rhythm,
    segment_for,
)
from playbooks.schema import Button, PlaybookError, Rhythm, Vocabulary
from storage.models import Partner, RhythmProgress
from storage.uow import UnitOfWork

TIERED = "tiered_ops"
"""The rhythm whose segments are the partners' activity segments (`partners.segment`)."""
ACTIVE, PAUSED = "active", "paused"
MOVED_DOWN_DAYS = 7
MetricsKey = tuple[tuple[str, int | str], ...]
"""A partner's metric values as a hashable key (the daily run's memo of segments)."""


def load_rhythms() -> dict[str, Rhythm]:
    """The shipped rhythms, checked like the playbooks: a broken file stops the start-up with every problem."""
    try:
        rhythms = load_all(vocabulary=Vocabulary(locale_text_keys())).rhythms
    except PlaybookError as exc:
        raise ConfigError("PLAYBOOKS", "; ".join(exc.issues)) from None
    problems = []
    for rhythm in rhythms.values():
        for segment in rhythm.segments:
            for touch in segment.touches:
                where = f"{rhythm.key}:{segment.key}:{touch.key}"
                message = touch.message
                if message.media is not None:
                    problems += media_problems({where: message.media})
                if message.params:
                    problems.append(f"{where}: touch message params are not supported")
                if any(b.action.contact for b in message.buttons):
                    problems.append(f"{where}: a touch cannot ask for the phone number")
    if problems:
        raise ConfigError("PLAYBOOKS", "; ".join(problems))
    return rhythms


def dump_touches(state: RhythmState) -> dict[str, Any]:
    return {key: [at.isoformat() for at in touch.sent] for key, touch in state.touches.items() if touch.sent}


def load_touches(row: RhythmProgress) -> dict[str, TouchState]:
    raw: Mapping[str, Any] = row.touches or {}
    return {key: TouchState(tuple(datetime.fromisoformat(at) for at in sent)) for key, sent in raw.items()}


def touch_markup(buttons: Sequence[Button], t: Texts) -> dict[str, Any] | None:
    """Inline buttons of a playbook or rhythm message (a command button answers with the command to send); None
    when there are none."""
    inline: list[list[dict[str, str]]] = []
    for b in buttons:
        if b.action.url is not None:
            inline.append([{"text": t(b.text), "url": b.action.url}])
        elif b.action.command is not None:
            data = PlaybookCallback(action="cmd", arg=b.action.command.lstrip("/")).pack()
            inline.append([{"text": t(b.text), "callback_data": data}])
        elif b.action.callback is not None:
            inline.append([{"text": t(b.text), "callback_data": PlaybookCallback(action=b.action.callback).pack()}])
    return {"inline_keyboard": inline} if inline else None


def segment_change(rhythm: Rhythm, state: RhythmState, segment: str, now: datetime) -> SegmentChanged:
    """The `SegmentChanged` that `decide_rhythm` decides for a partner now in `segment` (the same dedupe key), for
    the daily run, which leaves the touches to the sweep."""
    today = now.astimezone(state.tz).date()
    return SegmentChanged(state.segment, segment, f"rhythm:{rhythm.key}:{state.partner_id}:segment:{today}:{segment}")


def _fresh_row(partner_id: int, rhythm: str, segment: str, now: datetime) -> dict[str, Any]:
    """A rhythm row starting `segment` now: no touches sent yet, looked at by the next sweep."""
    return {
        "partner_id": partner_id,
        "rhythm": rhythm,
        "segment": segment,
        "segment_since": now,
        "touches": {},
        "status": ACTIVE,
        "stopped_at": None,
        "wake_at": now,
        "updated_at": now,
    }


def _event_row(partner_id: int, change: SegmentChanged, now: datetime) -> dict[str, Any]:
    return {
        "partner_id": partner_id,
        "type": EventType.SEGMENT_CHANGED.value,
        "payload": {"previous": change.previous, "segment": change.segment},
        "occurred_at": now,
        "source": EventSource.SCHEDULER.value,
        "dedupe_key": change.dedupe_key,
    }


@dataclass(frozen=True, slots=True)
class SegmentBatch:
    """One batch of the daily segmentation."""

    partners: int
    changed: int
    last_id: int | None
    """The last partner id of the batch (the next batch starts after it); None: no partners left."""


@dataclass(frozen=True, slots=True)
class RhythmStats:
    """/playbooks: the segment mix, and who slipped."""

    segments: tuple[tuple[str, int], ...]
    """(segment name, partners), in the rhythm's order."""
    unsegmented: int
    moved_down: int
    """Partners who moved to a lower segment in the last `MOVED_DOWN_DAYS` days."""
    paused_partners: int
    stopped: int
    """Partners whose touches stopped after unanswered tries (until they act or change segment)."""


class RhythmService:
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    def _rhythm(self) -> Rhythm | None:
        return self._ctx.rhythms.get(TIERED)

    async def _metrics(self, rhythm: Rhythm, partners: Sequence[Partner], now: datetime) -> dict[int, PartnerMetrics]:
        return await MetricsService(self._uow, self._ctx).for_rows(partners, now, only=rhythm.metrics_needed)

    # --- the daily segmentation ----------------------------------------------------------------------------------

    async def segment_batch(
        self, after_id: int, limit: int, now: datetime, memo: dict[MetricsKey, str] | None = None
    ) -> SegmentBatch:
        """Segment the next `limit` partners by id after `after_id` at `now`: a few bulk reads and a few bulk
        writes for the whole batch. A new segment is recorded as an event and starts its touches afresh (the next
        sweep looks at them). `memo` keeps the segment of each distinct set of metric values across the batches
        of one run: most partners share a few small counts, and each set is evaluated once."""
        rhythm = self._rhythm()
        repo = self._uow.rhythm
        partners = await repo.partners_after(after_id, limit)
        if rhythm is None or not partners:
            return SegmentBatch(len(partners), 0, partners[-1].id if partners else None)
        metrics = await self._metrics(rhythm, partners, now)
        stored = await repo.segments(partners[0].id, partners[-1].id, rhythm.key)
        rows: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        moved: dict[int, str] = {}
        known = {} if memo is None else memo
        for partner in partners:
            values = metrics[partner.id]
            key = tuple(sorted(values.items()))
            segment = known.get(key)
            if segment is None:
                segment = known[key] = segment_for(rhythm, values).key
            # a partner without a rhythm row yet keeps a segment set before the rhythm existed
            previous = stored.get(partner.id, partner.segment)
            if partner.id in stored and segment == previous:
                continue
            rows.append(_fresh_row(partner.id, rhythm.key, segment, now))
            if segment == previous:
                continue
            state = RhythmState(partner.id, partner_zone(self._ctx, partner), previous)
            events.append(_event_row(partner.id, segment_change(rhythm, state, segment, now), now))
            moved[partner.id] = segment
        await repo.restart(rows)
        await repo.set_partner_segments(moved)
        await repo.add_events_once(events)
        return SegmentBatch(len(partners), len(events), partners[-1].id)

    def _change(self, partner: Partner, row: RhythmProgress, change: SegmentChanged, now: datetime) -> dict[str, Any]:
        """Apply a segment change the sweep found to the row and the partner; the event row to record."""
        partner.segment = change.segment
        row.segment, row.segment_since, row.touches, row.stopped_at = change.segment, now, {}, None
        row.updated_at = now
        return _event_row(partner.id, change, now)

    # --- the touches -----------------------------------------------------------------------------------------------

    async def tick_due(self, limit: int) -> int:
        """The sweep: up to `limit` active rows whose wake-up time has come get what the engine decides. Returns
        how many rows were looked at (a full batch means: call again). Nothing while the rhythm is paused."""
        rhythm = self._rhythm()
        if rhythm is None or rhythm.key in await self._uow.playbooks.paused_playbooks():
            return 0
        now = self._ctx.clock.now()
        rows = await self._uow.rhythm.due(rhythm.key, now, limit)
        if not rows:
            return 0
        partners = await self._uow.partners.by_ids([r.partner_id for r in rows])
        metrics = await self._metrics(rhythm, list(partners.values()), now)
        expected = {w.event for s in rhythm.segments for touch in s.touches for w in touch.expect}
        since = min((r.segment_since for r in rows if r.segment_since is not None), default=now)
        events = await self._uow.rhythm.events_of(list(partners), expected, since)
        for row in rows:
            partner = partners.get(row.partner_id)
            if partner is None:
                row.wake_at = None
                continue
            history = [Event(e.type, e.occurred_at, e.payload or {}) for e in events.get(partner.id, [])]
            await self._run(rhythm, partner=partner, row=row, metrics=metrics[partner.id], events=history, now=now)
        return len(rows)

    async def _run(
        self,
        rhythm: Rhythm,
        *,
        partner: Partner,
        row: RhythmProgress,
        metrics: PartnerMetrics,
        events: Sequence[Event],
        now: datetime,
    ) -> None:
        state = RhythmState(
            partner.id, partner_zone(self._ctx, partner), row.segment, row.segment_since, load_touches(row)
        )
        decisions = decide_rhythm(rhythm, state, metrics, events, now)
        t = self._ctx.translator.texts(language_of(self._ctx, partner))
        for decision in decisions:
            if isinstance(decision, SegmentChanged):
                await self._uow.rhythm.add_events_once([self._change(partner, row, decision, now)])
            elif isinstance(decision, SendTouch):
                await enqueue_step(
                    self._uow,
                    self._ctx,
                    recipient=partner,
                    dedupe_key=decision.dedupe_key,
                    text=t(decision.text_key),
                    media=decision.media,
                    reply_markup=touch_markup(decision.buttons, t),
                )
                row.stopped_at = None
            elif isinstance(decision, TouchStopped):
                row.stopped_at = row.stopped_at or now
            elif isinstance(decision, WakeAt):
                row.wake_at = decision.at
        after = apply_rhythm(state, decisions, now)
        row.segment, row.segment_since, row.touches = after.segment, after.segment_since, dump_touches(after)
        row.updated_at = now

    # --- admins (PlaybookService checks the role and shows these in /playbooks) ------------------------------------

    async def stats(self, rhythm: Rhythm, language: str) -> RhythmStats:
        now = self._ctx.clock.now()
        mix = await self._uow.rhythm.segment_mix()
        keys = [s.key for s in rhythm.segments]
        down = [(a, b) for i, a in enumerate(keys) for b in keys[i + 1 :]]
        moved = await self._uow.rhythm.moved_between(
            EventType.SEGMENT_CHANGED, down, now - timedelta(days=MOVED_DOWN_DAYS)
        )
        paused, stopped = await self._uow.rhythm.counts(rhythm.key)
        names = tuple((s.name.zh if language == "zh" else s.name.en, mix.get(s.key, 0)) for s in rhythm.segments)
        return RhythmStats(names, mix.get(None, 0), moved, paused, stopped)

    async def set_paused_for(self, partner_id: int, rhythm_key: str, paused: bool, by: int) -> bool:
        """Pause or resume the rhythm's touches for one partner; False: they have no rhythm state yet."""
        row = await self._uow.rhythm.state(partner_id, rhythm_key)
        if row is None:
            return False
        now = self._ctx.clock.now()
        row.status = PAUSED if paused else ACTIVE
        row.paused_by = by if paused else None
        row.wake_at = None if paused else now
        row.updated_at = now
        return True
