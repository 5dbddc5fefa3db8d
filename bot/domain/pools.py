"""Dividend pools (分红), the pure part: which period just closed, and how a pool is shared.

Decisions, for the record:
- A period is closed when it has ended in the deployment's time zone: `previous_period(d, kind)` is the last
  complete ISO week (Monday to Sunday), calendar month or calendar quarter before the local date `d`.
  Labels: ``2026-W48``, ``2026-11``, ``2026-Q4``; they are part of the once-only ledger key
  ``pool:<name>:<label>``.
- Scope: a pool without `team` is the whole network: its GMV is every attributed order's and every partner may
  qualify. A pool with `team: <invite code>` is that partner's referral subtree, the root included: its GMV is
  the orders attributed to members of the subtree, and only members may receive from it. A plan that wants
  one pool per team defines one pool per team root (each settles and is keyed on its own).
- `split_pool` shares the total exactly (money.split, largest remainder). Weights: equal → 1 each; by_gmv →
  each recipient's period GMV in minor units; by_points → each recipient's period points. Points, for now, are
  a sales count: one point per order attributed to the partner and paid within the period, unless it was fully
  refunded (the points system of issue 7 may replace this definition; the weight column of the preview shows
  the points used). When every weight is zero nothing is paid and the whole total is the remainder.
- The cap is per partner: an amount above it is cut to the cap and the cut goes to the remainder, which the
  platform keeps and the preview shows. The cut is not shared again between the others (that could push them
  over the cap in turn, and the admin sees one number that is simple to check).
- Eligibility: a recipient must meet the plan's `eligibility` condition (when it has one) as well as the pool's
  `qualify`, both on the metrics as of the period's end (see bot.services.pools for which metrics a pool can
  use).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from bot.domain.money import Money, split
from bot.domain.rules import PoolPeriod, PoolSplit


class PoolError(ValueError):
    """A pool that cannot be settled as defined (for example a split that needs a missing system)."""


@dataclass(frozen=True, slots=True)
class Period:
    kind: PoolPeriod
    start: date
    """The first local day of the period."""
    end: date
    """The first local day after it (exclusive)."""
    label: str


def period_containing(day: date, kind: PoolPeriod) -> Period:
    """The period (ISO week, calendar month or quarter) that `day` belongs to."""
    if kind is PoolPeriod.WEEKLY:
        start = day - timedelta(days=day.weekday())
        year, week, _ = start.isocalendar()
        return Period(kind, start, start + timedelta(days=7), f"{year}-W{week:02d}")
    if kind is PoolPeriod.MONTHLY:
        start = day.replace(day=1)
        end = date(start.year + 1, 1, 1) if start.month == 12 else date(start.year, start.month + 1, 1)
        return Period(kind, start, end, f"{start.year}-{start.month:02d}")
    quarter = (day.month - 1) // 3
    start = date(day.year, quarter * 3 + 1, 1)
    end = date(day.year + 1, 1, 1) if quarter == 3 else date(day.year, quarter * 3 + 4, 1)
    return Period(kind, start, end, f"{day.year}-Q{quarter + 1}")


def previous_period(day: date, kind: PoolPeriod) -> Period:
    """The last complete period before the one `day` is in."""
    current = period_containing(day, kind)
    return period_containing(current.start - timedelta(days=1), kind)


def parse_period(label: str, kind: PoolPeriod) -> Period:
    """The period a label names (``2026-11``, ``2026-W48``, ``2026-Q4``); PoolError when it is not one."""
    try:
        if kind is PoolPeriod.WEEKLY:
            year, week = label.split("-W")
            day = date.fromisocalendar(int(year), int(week), 1)
        elif kind is PoolPeriod.MONTHLY:
            year, month = label.split("-")
            day = date(int(year), int(month), 1)
        else:
            year, quarter = label.split("-Q")
            if not 1 <= int(quarter) <= 4:
                raise ValueError(label)
            day = date(int(year), (int(quarter) - 1) * 3 + 1, 1)
    except ValueError:
        raise PoolError(f"not a {kind.value} period: {label!r}") from None
    period = period_containing(day, kind)
    if period.label != label:
        raise PoolError(f"not a {kind.value} period: {label!r}")
    return period


@dataclass(frozen=True, slots=True)
class PoolLine:
    partner_id: int
    weight: int
    amount: Money
    capped: bool


@dataclass(frozen=True, slots=True)
class PoolShare:
    """The outcome of `split_pool`: sum of the lines' amounts + remainder == total, always."""

    lines: tuple[PoolLine, ...]
    remainder: Money
    """What is not paid out: the cap's cuts, or the whole total when nobody has a weight."""


def weights_for(split_kind: PoolSplit, gmv_minor: Sequence[int], points: Sequence[int] | None = None) -> list[int]:
    """The weight of each recipient under the pool's split (`points` only matter for by_points)."""
    if split_kind is PoolSplit.EQUAL:
        return [1] * len(gmv_minor)
    if split_kind is PoolSplit.BY_GMV:
        return [max(g, 0) for g in gmv_minor]
    if points is None or len(points) != len(gmv_minor):
        raise PoolError("by_points needs one points figure per recipient")
    return [max(n, 0) for n in points]


def split_pool(total: Money, recipients: Sequence[tuple[int, int]], cap: Money | None = None) -> PoolShare:
    """Share `total` between (partner_id, weight) recipients exactly, each cut to `cap` when there is one."""
    if total.minor < 0:
        raise PoolError("a pool total cannot be negative")
    if not recipients or sum(w for _, w in recipients) == 0 or total.minor == 0:
        lines = tuple(PoolLine(pid, w, Money.zero(total.currency), False) for pid, w in recipients)
        return PoolShare(lines, total)
    parts = split(total, [w for _, w in recipients])
    out: list[PoolLine] = []
    remainder = Money.zero(total.currency)
    for (pid, weight), part in zip(recipients, parts, strict=True):
        if cap is not None and part > cap:
            remainder += part - cap
            out.append(PoolLine(pid, weight, cap, True))
        else:
            out.append(PoolLine(pid, weight, part, False))
    return PoolShare(tuple(out), remainder)
