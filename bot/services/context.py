"""What every use case needs besides the unit of work, built once by the app factory."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from bot.clock import Clock
from bot.crm import load_stages
from bot.domain.lead_stages import StageCatalog
from bot.domain.rules import Plan
from bot.domain.schedule import DEFAULT_QUIET
from bot.i18n import Translator
from playbooks.loader import MEDIA_DIR as PLAYBOOK_MEDIA
from playbooks.schema import Playbook, Rhythm


@dataclass(slots=True)
class ServiceContext:
    clock: Clock
    translator: Translator
    admin_ids: frozenset[int]
    timezone: ZoneInfo
    default_quiet: tuple[int, int] = DEFAULT_QUIET
    """QUIET_HOURS as minutes after local midnight; (0, 0) means none."""
    bot_username: str = ""
    """Filled from getMe at start-up; recruit deep links need it."""
    media_dir: Path = Path("data/outbox-media")
    """MEDIA_DIR: pictures queued as raw bytes are written here until the outbox sends them."""
    public_base_url: str = "http://127.0.0.1:8080"
    """PUBLIC_BASE_URL: tracked links are {public_base_url}/r/<slug>."""
    content_dir: Path = Path("data/content")
    """CONTENT_DIR: original files of content items."""
    link_salt: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    """LINK_SALT: the key of visitors' click hashes."""
    dashboard_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    """DASHBOARD_SECRET: signs /dashboard login links and session cookies (unset: random per process start)."""
    poster_template: str = "classic"
    poster_template_tag: str = "classic@1"
    """The template's name@version: cached posters of another version are not reused."""
    plans: dict[int, Plan] = field(default_factory=dict)
    """Parsed commission plans by version (versions never change once stored)."""
    choice: Callable[[str], str] = field(default=secrets.choice)
    fraud_velocity_orders: int = 5
    """FRAUD_VELOCITY_ORDERS: this many orders from one customer within the window are fine; one more is held."""
    fraud_velocity_minutes: int = 10
    """FRAUD_VELOCITY_MINUTES: the velocity window, by paid_at."""
    lead_stages: StageCatalog = field(default_factory=load_stages)
    """The prospect stages and their labels (bot/crm/stages.yaml)."""
    outbox_retention_days: int = 30
    """OUTBOX_RETENTION_DAYS: finished outbox rows are kept this long (`/stats delivery` counts within it)."""
    lead_overdue_days: int = 7
    """LEAD_OVERDUE_DAYS: an open lead without a follow-up for this many days is overdue."""
    streak_reminder_hour: int = 20
    """STREAK_REMINDER_HOUR: the local hour from which tonight's at-risk streak reminder may go."""
    streak_freezes_per_month: int = 2
    """STREAK_FREEZES_PER_MONTH: missed days per month a streak freeze covers (0: none)."""
    playbooks: dict[str, Playbook] = field(default_factory=dict)
    """The playbooks (playbooks/*.yaml) by key, validated at start-up; none: no partner enters one."""
    rhythms: dict[str, Rhythm] = field(default_factory=dict)
    """The rhythms (playbooks/*.yaml of kind rhythm, e.g. tiered_ops) by key; none: no segments, no touches."""
    playbook_media: Path = PLAYBOOK_MEDIA
    """The folder a playbook step's or touch's `media:` path is relative to (playbooks/media/)."""
    redis: Redis | None = None
    """The shared Redis when REDIS_URL is set: leaderboards are read from its sorted sets (else from SQL)."""
