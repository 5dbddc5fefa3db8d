"""Streaks, pure: consecutive local days with at least one share or follow-up, kept over missed days by freezes,
and the decisions made from them (which missed days a freeze covers, whether tonight's reminder is due).

Definitions, for the record:
- An *active day* is a local day (the partner's time zone) with at least one `shared` or `followed_up` event.
- A *frozen day* is a missed local day covered by a streak freeze (a `streak_freeze_used` event names it).
- The streak is the number of active days in the unbroken run of active or frozen days that ends today, or
  yesterday while today has no action yet: today is not over, so yesterday's streak is still alive (and "at
  risk"). Frozen days keep the run going but do not add to it: a freeze saves a streak, it does not grow it.
- A freeze covers a missed day only after that day is over, only when the streak up to the day before was at
  least 1, and only while the month of the missed day has freezes left (`per_month`, counted per local calendar
  month; 0 disables freezes). Missed days are covered oldest first, all or none: when one of them cannot be
  covered the streak is over and no freeze is spent on it.
- A streak is *at risk* when it is at least 1 and today has no action yet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from bot.domain.schedule import in_quiet_hours

ONE_DAY = timedelta(days=1)


def _run(active: Collection[date], frozen: Collection[date], end: date) -> int:
    """Active days in the run of consecutive active-or-frozen days ending exactly at `end`."""
    count, day = 0, end
    while day in active or day in frozen:
        if day in active:
            count += 1
        day -= ONE_DAY
    return count


def streak_days(active: Collection[date], frozen: Collection[date], today: date) -> int:
    """The partner's streak on `today` (see the module docstring)."""
    return _run(active, frozen, today if today in active else today - ONE_DAY)


def at_risk(active: Collection[date], frozen: Collection[date], today: date) -> bool:
    """A streak of at least one day that today's first share or follow-up has not saved yet."""
    return today not in active and streak_days(active, frozen, today) >= 1


def freezes_used(frozen: Collection[date], year: int, month: int) -> int:
    return sum(1 for day in frozen if (day.year, day.month) == (year, month))


def freezes_left(frozen: Collection[date], today: date, per_month: int) -> int:
    """Freezes still available in `today`'s month."""
    return max(0, per_month - freezes_used(frozen, today.year, today.month))


def days_to_freeze(active: Collection[date], frozen: Collection[date], today: date, per_month: int) -> list[date]:
    """The missed days before `today` (so already over) that freezes cover now, oldest first.

    Empty when freezes are off, when yesterday was kept anyway, when there is no streak to save, or when the
    first missed day's month has no freeze left. Applying the answer and asking again gives nothing more."""
    if per_month <= 0:
        return []
    kept = [day for day in (*active, *frozen) if day < today]
    if not kept:
        return []
    last = max(kept)
    if _run(active, frozen, last) < 1:
        return []
    used = Counter((day.year, day.month) for day in frozen)
    covered: list[date] = []
    day = last + ONE_DAY
    while day < today:
        month = (day.year, day.month)
        if used[month] >= per_month:
            break
        used[month] += 1
        covered.append(day)
        day += ONE_DAY
    if day < today:  # a missed day no freeze covers: the streak is over, nothing is spent on it
        return []
    return covered


@dataclass(frozen=True, slots=True)
class ReminderWindow:
    """When tonight's at-risk reminder may go: from `hour` (local) to midnight, outside quiet hours."""

    hour: int
    quiet: tuple[int, int]
    """Quiet hours as minutes after local midnight (start, end); equal values mean none."""

    def open_at(self, local: datetime) -> bool:
        minute = local.hour * 60 + local.minute
        return local.hour >= self.hour and not in_quiet_hours(minute, *self.quiet)
