"""Case stories and the weekly spotlight: the rules, as pure functions.

A story's text is checked here (length, with or without a photo); approved stories are featured one a day,
network-wide, on the first free day from tomorrow on; the spotlight week starts on Monday; and when no admin
picked anyone for a week, the top riser is the partner whose action events grew most from one week to the next.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from bot.domain.errors import UsageError

TEXT_MIN = 20
TEXT_MAX = 1000
PHOTO_TEXT_MAX = 800
"""With a photo the text is its caption: 800 leaves room for the author's name within Telegram's 1,024."""
PHOTO_MAX_BYTES = 5 * 1024 * 1024
REASON_MAX = 500
BLURB_MAX = 200
EXCERPT_MAX = 300
"""How much of a story the daily pack shows (the whole text is in /stories)."""


def clean_text(raw: str | None, *, with_photo: bool = False) -> str:
    """The story text as stored: trimmed, blank lines squeezed; refused (UsageError) when too short or too long."""
    lines = [line.rstrip() for line in (raw or "").strip().splitlines()]
    squeezed: list[str] = []
    for line in lines:
        if line or (squeezed and squeezed[-1]):
            squeezed.append(line)
    text = "\n".join(squeezed).strip()
    limit = PHOTO_TEXT_MAX if with_photo else TEXT_MAX
    if len(text) < TEXT_MIN:
        raise UsageError("stories.too_short", minimum=TEXT_MIN, length=len(text))
    if len(text) > limit:
        raise UsageError("stories.too_long", maximum=limit, length=len(text))
    return text


def clean_reason(raw: str | None) -> str:
    text = " ".join((raw or "").split())
    if not text or len(text) > REASON_MAX:
        raise UsageError("stories.bad_reason", maximum=REASON_MAX)
    return text


def check_photo_size(size: int | None) -> None:
    if size is not None and size > PHOTO_MAX_BYTES:
        raise UsageError(
            "stories.photo_too_big", size_mb=f"{size / (1024 * 1024):.1f}", limit_mb=PHOTO_MAX_BYTES // (1024 * 1024)
        )


def excerpt(text: str, limit: int = EXCERPT_MAX) -> str:
    """The start of a story, cut at a word boundary when one is near, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit * 2 // 3:
        cut = cut[:space]
    return cut.rstrip() + "…"


def feature_day(earliest: date, last_taken: date | None) -> date:
    """The day an approved story is featured: the first day from `earliest` (tomorrow) after the last day already
    taken. Days are given out in order, so every day before the last taken one is either past or taken."""
    if last_taken is None or last_taken < earliest:
        return earliest
    return last_taken + timedelta(days=1)


def week_start(day: date) -> date:
    """The Monday of `day`'s week."""
    return day - timedelta(days=day.weekday())


@dataclass(frozen=True, slots=True)
class SpotlightArgs:
    next_week: bool
    """True: `/spotlight next …` picks (or shows) next week's partner."""
    handle: str | None
    """'@username' or an invite code; None: show the pick."""
    blurb: str | None


def parse_spotlight(args: str | None) -> SpotlightArgs:
    """`/spotlight [next] [@username|code [blurb]]`."""
    words = (args or "").split(maxsplit=1)
    next_week = bool(words) and words[0].lower() == "next"
    rest = (words[1] if len(words) > 1 else "") if next_week else (args or "")
    parts = rest.split(maxsplit=1)
    if not parts:
        return SpotlightArgs(next_week, None, None)
    handle = parts[0]
    if handle.startswith("@") and len(handle) < 2:
        raise UsageError("spotlight.usage")
    blurb = " ".join(parts[1].split()) if len(parts) > 1 else None
    if blurb is not None and len(blurb) > BLURB_MAX:
        raise UsageError("spotlight.blurb_too_long", maximum=BLURB_MAX, length=len(blurb))
    return SpotlightArgs(next_week, handle, blurb or None)


@dataclass(frozen=True, slots=True)
class WeeklyActions:
    """A partner's action events (shares, follow-ups, leads, attributed orders) in two consecutive weeks."""

    partner_id: int
    previous: int
    """The week before last."""
    current: int
    """The week that just ended."""

    @property
    def growth(self) -> int:
        return self.current - self.previous


def rank_risers(rows: Iterable[WeeklyActions]) -> list[WeeklyActions]:
    """Partners by how much they rose, best first: most growth (a smaller fall counts when nobody grew), then more
    actions in the week that ended, then the lower id. Nobody without actions in the week that ended."""
    risers = [r for r in rows if r.current > 0]
    return sorted(risers, key=lambda r: (-r.growth, -r.current, r.partner_id))


def top_riser(rows: Iterable[WeeklyActions]) -> int | None:
    """The partner id the spotlight goes to when no admin picked anyone, or None when nobody acted last week."""
    ranked = rank_risers(rows)
    return ranked[0].partner_id if ranked else None
