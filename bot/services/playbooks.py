"""Playbooks around the pure engine (playbooks/engine.py): a partner enters the 7-day start on sign-up, `tick`
runs the engine on their events and carries out its decisions (outbox messages, rewards, the next wake-up),
/start7 and /me show the progress, and admins pause or resume a playbook for everyone or for one partner."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config import ConfigError
from bot.domain.errors import UsageError
from bot.domain.events import EventSource, EventType
from bot.i18n import Texts
from bot.services.acting import Audited, language_of, require_admin
from bot.services.context import ServiceContext
from bot.services.notify import enqueue_step, enqueue_text
from bot.services.rhythm import RhythmService, RhythmStats, touch_markup
from bot.services.views import PartnerView
from playbooks.engine import (
    FINAL,
    Complete,
    Decision,
    Event,
    Finish,
    Nudge,
    PlaybookState,
    ScheduleWake,
    Send,
    StepState,
    StepStatus,
    apply,
    decide,
    progress,
    should_start,
)
from playbooks.loader import load_all, locale_text_keys, media_problems
from playbooks.schema import Button, Playbook, PlaybookError, Vocabulary
from storage.models import Partner, PlaybookProgress
from storage.uow import UnitOfWork

ONBOARDING = "onboarding_7day"
ACTIVE, PAUSED, FINISHED = "active", "paused", "finished"

# What the review step's params count since the playbook started.
REVIEW_COUNTS = {"shares": EventType.SHARED, "clicks": EventType.LINK_CLICKED, "leads": EventType.LEAD_ADDED}

# --- the engine's state as stored (playbook_progress.state) --------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def dump_state(state: PlaybookState) -> dict[str, Any]:
    steps = {
        key: {
            "status": step.status.value,
            "sent_at": _iso(step.sent_at),
            "nudges_sent": step.nudges_sent,
            "last_nudged_at": _iso(step.last_nudged_at),
            "completed_at": _iso(step.completed_at),
        }
        for key, step in state.steps.items()
        if step != StepState()
    }
    return {"steps": steps, "current_step": state.current_step, "finished_at": _iso(state.finished_at)}


def load_state(row: PlaybookProgress, tz: ZoneInfo) -> PlaybookState:
    data: Mapping[str, Any] = row.state or {}
    steps = {
        key: StepState(
            status=StepStatus(raw["status"]),
            sent_at=_dt(raw.get("sent_at")),
            nudges_sent=int(raw.get("nudges_sent", 0)),
            last_nudged_at=_dt(raw.get("last_nudged_at")),
            completed_at=_dt(raw.get("completed_at")),
        )
        for key, raw in dict(data.get("steps", {})).items()
    }
    return PlaybookState(
        partner_id=row.partner_id,
        started_at=row.started_at,
        tz=tz,
        steps=steps,
        current_step=int(data.get("current_step", 0)),
        finished_at=_dt(data.get("finished_at")),
    )


# --- results -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checklist:
    """/start7 and the /me line: the day, and each step with done / skipped / open."""

    name: str
    day: int
    total: int
    items: tuple[tuple[str, str], ...]
    """(step key, done | skipped | open)."""
    finished: bool

    @property
    def done(self) -> int:
        return sum(status == "done" for _, status in self.items)


@dataclass(frozen=True, slots=True)
class PlaybookStats:
    key: str
    name: str
    paused: bool
    active: int
    paused_partners: int
    finished: int
    steps: tuple[tuple[str, int], ...]
    """(step key, partners who completed it)."""
    rhythm: RhythmStats | None = None
    """Set for a rhythm (tiered operations): its segment mix instead of steps."""


@dataclass(frozen=True, slots=True)
class PauseResult:
    playbook: str
    paused: bool
    partner: str | None
    """The invite code or @username it was done for; None: for everyone."""


def checklist_text(checklist: Checklist, t: Texts) -> str:
    lines = [
        t(
            "playbooks.progress.title",
            name=checklist.name,
            day=checklist.day,
            total=checklist.total,
            done=checklist.done,
            steps=len(checklist.items),
        )
    ]
    item_keys = {"done": "playbooks.progress.item_done", "skipped": "playbooks.progress.item_skipped"}
    for step, status in checklist.items:
        lines.append(t(item_keys.get(status, "playbooks.progress.item_open"), step=t(f"playbooks.steps.{step}")))
    if checklist.finished:
        lines.append(t("playbooks.progress.finished"))
    return "\n".join(lines)


def _markup(buttons: Sequence[Button], t: Texts) -> dict[str, Any] | None:
    """Telegram cannot mix the contact button with inline buttons: a message asking for the phone gets a reply
    keyboard (its other buttons send their label, which handlers/playbooks.py recognises)."""
    if not buttons:
        return None
    if any(b.action.contact for b in buttons):
        rows = [
            [{"text": t(b.text), "request_contact": True} if b.action.contact else {"text": t(b.text)}] for b in buttons
        ]
        return {"keyboard": rows, "resize_keyboard": True}
    return touch_markup(buttons, t)


def load_playbooks() -> dict[str, Playbook]:
    """The shipped playbooks, checked against the real locale keys and event types: a broken file stops the
    start-up with every problem listed."""
    try:
        playbooks = load_all(vocabulary=Vocabulary(locale_text_keys())).playbooks
    except PlaybookError as exc:
        raise ConfigError("PLAYBOOKS", "; ".join(exc.issues)) from None
    media = {f"{p.key}:{s.key}": s.message.media for p in playbooks.values() for s in p.steps if s.message.media}
    problems = media_problems(media)
    if problems:
        raise ConfigError("PLAYBOOKS", "; ".join(problems))
    return playbooks


class PlaybookService(Audited):
    def __init__(self, uow: UnitOfWork, ctx: ServiceContext) -> None:
        self._uow = uow
        self._ctx = ctx

    # --- partners ------------------------------------------------------------------------------------------------

    def _tz(self, partner: Partner) -> ZoneInfo:
        if partner.timezone:
            try:
                return ZoneInfo(partner.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                pass
        return self._ctx.timezone

    async def start(self, partner: Partner, playbook_key: str = ONBOARDING) -> bool:
        """The partner enters the playbook (once) and gets its first message. False: no such playbook loaded,
        not in its audience, or already in it."""
        playbook = self._ctx.playbooks.get(playbook_key)
        # a playbook for an audience (a condition on metrics) is not entered on sign-up
        if playbook is None or playbook.start.audience is not None or not should_start(playbook):
            return False
        if await self._uow.playbooks.progress(partner.id, playbook_key) is not None:
            return False
        now = self._ctx.clock.now()
        row = PlaybookProgress(
            partner_id=partner.id,
            playbook=playbook_key,
            started_at=now,
            state={},
            status=ACTIVE,
            wake_at=now,
            updated_at=now,
        )
        self._uow.playbooks.add(row)
        await self._uow.flush()
        await self.tick(partner, row)
        return True

    async def tick(self, partner: Partner, row: PlaybookProgress) -> list[Decision]:
        """Run the engine for one partner now and carry out what it decides; nothing for a paused row or a
        playbook paused for everyone."""
        playbook = self._ctx.playbooks.get(row.playbook)
        now = self._ctx.clock.now()
        if playbook is None:  # its file was removed: the sweep stops looking at it
            row.wake_at, row.updated_at = None, now
            return []
        if row.status != ACTIVE or row.playbook in await self._uow.playbooks.paused_playbooks():
            return []
        state = load_state(row, self._tz(partner))
        events = [
            Event(e.type, e.occurred_at, e.payload or {})
            for e in await self._uow.playbooks.events_since(partner.id, row.started_at)
        ]
        decisions = decide(playbook, state, events, now)
        t = self._ctx.translator.texts(language_of(self._ctx, partner))
        wake_at: datetime | None = None
        for decision in decisions:
            if isinstance(decision, Send):
                values: dict[str, object] = dict(decision.values)
                values.update(await self._params(partner, row, decision.params))
                await enqueue_step(
                    self._uow,
                    self._ctx,
                    recipient=partner,
                    dedupe_key=decision.dedupe_key,
                    text=t(decision.text_key, **values),
                    media=decision.media,
                    reply_markup=_markup(decision.buttons, t),
                )
            elif isinstance(decision, Nudge):
                await enqueue_text(
                    self._uow,
                    self._ctx,
                    recipient=partner,
                    dedupe_key=decision.dedupe_key,
                    text=t(decision.text_key, **decision.values),
                )
            elif isinstance(decision, Complete):
                await self._reward(partner, playbook, decision, now)
            elif isinstance(decision, ScheduleWake):
                wake_at = decision.at
            elif isinstance(decision, Finish):
                row.status = FINISHED
        new_state = apply(state, playbook, decisions, now)
        row.state = dump_state(new_state)
        row.wake_at = wake_at
        row.updated_at = now
        return decisions

    async def _params(self, partner: Partner, row: PlaybookProgress, names: Sequence[str]) -> dict[str, int]:
        values = {}
        for name in names:
            event_type = REVIEW_COUNTS.get(name)
            if event_type is None:
                raise ValueError(f"playbook {row.playbook}: no value for the message param {name!r}")
            values[name] = await self._uow.events.count_since(
                partner_id=partner.id, type=event_type, since=row.started_at
            )
        return values

    async def _reward(self, partner: Partner, playbook: Playbook, done: Complete, now: datetime) -> None:
        if done.reward is None:
            return
        if done.reward.badge is not None:
            await self._uow.metrics.award_badge(partner.id, done.reward.badge, now)
        if done.reward.points is not None:
            await self._uow.events.add_once(
                dedupe_key=done.dedupe_key,
                partner_id=partner.id,
                type=EventType.POINTS_EARNED,
                occurred_at=now,
                source=EventSource.SCHEDULER,
                payload={"points": done.reward.points, "reason": f"playbook:{playbook.key}:{done.step}"},
            )

    async def tick_due(self, limit: int) -> int:
        """The sweep: active rows whose wake-up time has come or whose partner did something since. Returns how
        many rows were looked at (a full batch means: call again)."""
        now = self._ctx.clock.now()
        paused = await self._uow.playbooks.paused_playbooks()
        rows = await self._uow.playbooks.due(now, paused_playbooks=paused, limit=limit)
        partners = await self._uow.partners.by_ids([r.partner_id for r in rows])
        for row in rows:
            partner = partners.get(row.partner_id)
            if partner is None:
                continue
            await self.tick(partner, row)
        return len(rows)

    async def record_profile(self, partner_id: int, *, phone: bool) -> bool | None:
        """Day 0: the phone was shared through the contact button (`phone`), or skipped. The number itself is not
        kept. None: no open step of the partner's expects it (nothing recorded); else whether that step is done."""
        return await self._record(partner_id, EventType.PROFILE_COMPLETED, {"phone": phone})

    async def accept_terms(self, partner_id: int) -> bool | None:
        """Day 0: the program terms accepted (as `record_profile`)."""
        return await self._record(partner_id, EventType.TERMS_ACCEPTED, {})

    async def _record(self, partner_id: int, event_type: EventType, payload: dict[str, object]) -> bool | None:
        partner = await self._uow.partners.get(partner_id)
        if partner is None:
            return None
        for key, playbook in self._ctx.playbooks.items():
            row = await self._uow.playbooks.progress(partner_id, key)
            if row is None or row.status != ACTIVE:
                continue
            state = load_state(row, self._tz(partner))
            waiting = [
                step
                for step in playbook.steps
                if state.step(step.key).status not in FINAL
                and step.expect is not None
                and any(wanted.event == event_type for wanted in step.expect.events)
            ]
            if not waiting:
                continue
            await self._uow.events.add_once(
                dedupe_key=f"{event_type.value}:{partner_id}",
                partner_id=partner_id,
                type=event_type,
                occurred_at=self._ctx.clock.now(),
                source=EventSource.BOT,
                payload=payload,
            )
            await self._uow.flush()
            await self.tick(partner, row)
            after = load_state(row, self._tz(partner))
            return after.step(waiting[0].key).status is StepStatus.DONE
        return None

    async def checklist(
        self, partner_id: int, language: str, playbook_key: str = ONBOARDING, *, advance: bool = True
    ) -> Checklist | None:
        """The partner's progress (None: they are not in the playbook). With `advance` (the partner asking), the
        engine runs first, so an action taken a moment ago shows as done now rather than after the next minute's
        sweep; without it (someone else looking, e.g. their lead's digest) the stored progress is read as it is."""
        playbook = self._ctx.playbooks.get(playbook_key)
        partner = await self._uow.partners.get(partner_id)
        if playbook is None or partner is None:
            return None
        row = await self._uow.playbooks.progress(partner_id, playbook_key)
        if row is None:
            return None
        if advance:
            await self.tick(partner, row)
        return self._checklist(playbook, partner, row, language)

    async def checklists(
        self, partners: Sequence[Partner], language: str, playbook_key: str = ONBOARDING
    ) -> dict[int, Checklist]:
        """`checklist(advance=False)` of several partners in one read (a page of leads' digests of newcomers):
        partner id → their stored progress; partners not in the playbook are left out."""
        playbook = self._ctx.playbooks.get(playbook_key)
        if playbook is None or not partners:
            return {}
        rows = await self._uow.playbooks.progress_of([p.id for p in partners], playbook_key)
        return {p.id: self._checklist(playbook, p, rows[p.id], language) for p in partners if p.id in rows}

    def _checklist(self, playbook: Playbook, partner: Partner, row: PlaybookProgress, language: str) -> Checklist:
        state = load_state(row, self._tz(partner))
        shown = progress(playbook, state, self._ctx.clock.now())
        items = tuple(
            (
                step.key,
                "done"
                if state.step(step.key).status is StepStatus.DONE
                else "skipped"
                if state.step(step.key).status is StepStatus.SKIPPED
                else "open",
            )
            for step in playbook.steps
        )
        name = playbook.name.zh if language == "zh" else playbook.name.en
        return Checklist(name, shown.day, shown.total, items, shown.finished)

    # --- admins --------------------------------------------------------------------------------------------------

    async def stats(self, actor: PartnerView, language: str) -> list[PlaybookStats]:
        """Each playbook: partners active, paused and finished, and how many completed each step."""
        require_admin(actor)
        paused = set(await self._uow.playbooks.paused_playbooks())
        out = []
        for key, playbook in self._ctx.playbooks.items():
            rows = await self._uow.playbooks.all_of(key)
            done = {step.key: 0 for step in playbook.steps}
            for row in rows:
                for step_key, raw in dict((row.state or {}).get("steps", {})).items():
                    if step_key in done and raw.get("status") == StepStatus.DONE.value:
                        done[step_key] += 1
            out.append(
                PlaybookStats(
                    key=key,
                    name=playbook.name.zh if language == "zh" else playbook.name.en,
                    paused=key in paused,
                    active=sum(r.status == ACTIVE for r in rows),
                    paused_partners=sum(r.status == PAUSED for r in rows),
                    finished=sum(r.status == FINISHED for r in rows),
                    steps=tuple(done.items()),
                )
            )
        for key, rhythm in self._ctx.rhythms.items():
            mix = await RhythmService(self._uow, self._ctx).stats(rhythm, language)
            name = rhythm.name.zh if language == "zh" else rhythm.name.en
            out.append(
                PlaybookStats(
                    key=key,
                    name=name,
                    paused=key in paused,
                    active=0,
                    paused_partners=mix.paused_partners,
                    finished=0,
                    steps=(),
                    rhythm=mix,
                )
            )
        return out

    async def set_paused(
        self, actor: PartnerView, playbook_key: str, paused: bool, handle: str | None = None
    ) -> PauseResult:
        """Pause or resume `playbook_key` for everyone, or (with `handle`: an invite code or @username) for one
        partner. A resumed partner's row is looked at by the next sweep."""
        require_admin(actor)
        if playbook_key not in self._ctx.playbooks and playbook_key not in self._ctx.rhythms:
            raise UsageError("playbooks.admin.usage")
        now = self._ctx.clock.now()
        action = "playbook.pause" if paused else "playbook.resume"
        if handle is None:
            await self._uow.playbooks.set_paused(playbook_key, paused, now)
            self._audit(actor, action, playbook_key, "ok", {"scope": "everyone"})
            return PauseResult(playbook_key, paused, None)
        partner = await self._uow.partners.by_handle(handle)
        if playbook_key in self._ctx.rhythms:
            rhythms = RhythmService(self._uow, self._ctx)
            if partner is None or not await rhythms.set_paused_for(partner.id, playbook_key, paused, actor.id):
                raise UsageError("playbooks.admin.not_in_playbook", who=handle)
            self._audit(actor, action, f"partner:{partner.id}", "ok", {"playbook": playbook_key})
            return PauseResult(playbook_key, paused, handle)
        row = await self._uow.playbooks.progress(partner.id, playbook_key) if partner is not None else None
        if partner is None or row is None:
            raise UsageError("playbooks.admin.not_in_playbook", who=handle)
        if row.status != FINISHED:
            row.status = PAUSED if paused else ACTIVE
            row.paused_by = actor.id if paused else None
            row.wake_at = None if paused else now
            row.updated_at = now
        self._audit(actor, action, f"partner:{partner.id}", "ok", {"playbook": playbook_key})
        return PauseResult(playbook_key, paused, handle)
