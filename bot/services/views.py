"""Read models returned by use cases to handlers. Plain data, no ORM objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from bot.domain.referral import Binding
from bot.domain.roles import Role


@dataclass(frozen=True, slots=True)
class TelegramProfile:
    """Who sent an update, as Telegram describes them."""

    tg_user_id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None


@dataclass(frozen=True, slots=True)
class PartnerView:
    id: int
    tg_user_id: int
    display_name: str
    username: str | None
    role: Role
    """The effective role: ADMIN_IDS make an admin whatever is stored."""
    language: str
    invite_code: str
    joined_at: datetime
    upline_id: int | None


@dataclass(frozen=True, slots=True)
class Registration:
    partner: PartnerView
    created: bool
    binding: Binding
    upline_name: str | None


@dataclass(frozen=True, slots=True)
class BadgeView:
    name: str
    titles: Mapping[str, str]
    """Title by language (zh, en); empty when the plan gives the badge none (or no longer has it)."""
    icon: str = "🏅"
    """The plan's emoji for the badge (🏅 when it gives none, or no longer has the badge)."""


@dataclass(frozen=True, slots=True)
class StreakView:
    """A partner's streak (bot/domain/streaks.py) as /me shows it."""

    days: int
    active_today: bool
    """A share or follow-up today already: the streak is safe until tomorrow."""
    freezes_left: int
    """Streak freezes left this local month."""
    freezes_per_month: int
    """STREAK_FREEZES_PER_MONTH; 0: freezes are off."""


@dataclass(frozen=True, slots=True)
class NextLevelView:
    """The level above the partner's and what its promotion condition reads, next to the partner's values."""

    name: str
    titles: Mapping[str, str]
    condition: str | None
    """The plan's `promote_when` text; None when the plan gives no way up (only an admin can promote)."""
    values: tuple[tuple[str, int | str], ...]
    """(metric, the partner's value now) for each metric the condition names, in the order it names them."""
    met: bool
    """The condition holds now: the daily level review will promote the partner."""


@dataclass(frozen=True, slots=True)
class StandingView:
    """Where a partner stands under the plan in force: level, badges held, the way to the next level."""

    level: str
    titles: Mapping[str, str]
    """The level's title by language, from the plan; empty when the plan no longer has the level."""
    badges: tuple[BadgeView, ...]
    next: NextLevelView | None
    """None at the top level."""
    streak: StreakView | None = None


@dataclass(frozen=True, slots=True)
class ProfileView:
    partner: PartnerView
    upline_name: str | None
    level1: int
    level2: int
    deep_link: str
    standing: StandingView


@dataclass(frozen=True, slots=True)
class MemberView:
    name: str
    joined_at: datetime


@dataclass(frozen=True, slots=True)
class TeamView:
    size: int
    level1: int
    level2: int
    newest: tuple[MemberView, ...]
    overdue: tuple[tuple[str, int], ...] = ()
    """Members with overdue prospects: (name, how many), most first."""


@dataclass(frozen=True, slots=True)
class RoleChange:
    target: PartnerView
    role: Role
    changed: bool


@dataclass(frozen=True, slots=True)
class AuditLine:
    created_at: datetime
    actor_tg_id: int
    action: str
    target: str | None
    outcome: str
