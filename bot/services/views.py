"""Read models returned by use cases to handlers. Plain data, no ORM objects."""

from __future__ import annotations

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
class ProfileView:
    partner: PartnerView
    upline_name: str | None
    level1: int
    level2: int
    deep_link: str


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
