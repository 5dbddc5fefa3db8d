"""Configuration: one pydantic-settings model read from the environment and an optional `.env`.

Nothing here runs at import time; `load_settings()` is called by the entry point and the
result is passed down explicitly.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.domain.errors import UsageError
from bot.domain.schedule import parse_setting

TOKEN_RE = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{1,128}$")
LANGUAGES = ("zh", "en")
DEFAULT_API_BASE = "https://api.telegram.org"


class ConfigError(Exception):
    """Invalid configuration; the message names the environment variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


def _check_http_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("must be an http(s) URL such as https://example.com")
    return value.rstrip("/")


class Settings(BaseSettings):
    """Every setting the bot reads. Secrets are `SecretStr` and never logged."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr | None = None
    telegram_api_base: str = DEFAULT_API_BASE
    database_url: str = "sqlite+aiosqlite:///./data/partner_assistant.db"
    redis_url: str | None = None
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    default_language: Literal["zh", "en"] = "zh"
    timezone: str = "Asia/Shanghai"
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=0, le=65535)
    public_base_url: str = "http://127.0.0.1:8080"
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    quiet_hours: str = "22:00-08:00"
    """Default quiet hours in each partner's local time ('off' for none); partners change theirs in /settings."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    """json: one JSON object per log line, with update_id or job_id when known (README: Monitoring)."""
    metrics_token: SecretStr | None = None
    """When set, GET /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`; unset: open to all."""
    throttle_rate: int = Field(default=8, ge=1, description="updates per user per throttle window")
    throttle_window_seconds: float = Field(default=4.0, gt=0)
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    outbox_claim_timeout_seconds: float = Field(default=120.0, ge=1)
    """Messages claimed by a sender that died are queued again after this long (at start-up, and every minute)."""
    delivery_rate: int = Field(default=25, ge=1, le=30, description="outbox messages per second, all chats together")
    allow_paid_broadcast: bool = False
    """Pay Telegram Stars per message to send faster than 30/s (up to DELIVERY_PAID_RATE)."""
    delivery_paid_rate: int = Field(default=1000, ge=1, le=1000, description="messages per second when paid")
    media_dir: Path = Path("data/outbox-media")
    """Where pictures queued as raw bytes are kept until sent; every sender process must see the same folder."""
    orders_api_secret: SecretStr | None = None
    """Shared secret of the shop's signed POST /api/orders and /api/refunds (HMAC-SHA256). Unset: they answer 503."""
    content_dir: Path = Path("data/content")
    """Original pictures and videos of content items, kept for poster rendering; shared by every process."""
    link_salt: SecretStr | None = None
    """Key of the visitor hash for link clicks (no raw IPs are stored). Unset: a random key per process start,
    so repeat clicks are still counted once within a run but not across restarts or processes."""
    dashboard_secret: SecretStr | None = None
    """Key (HMAC-SHA256) of /dashboard login links and web dashboard session cookies. Unset: a random key per
    process start, so links and dashboard sessions end with a restart and work only on the process that issued them."""
    trust_forwarded_for: bool = False
    """The web server is behind one trusted reverse proxy: take the visitor's IP from X-Forwarded-For."""
    poster_template: str = Field(default="classic", pattern=r"^[a-z0-9_-]{1,40}$")
    """Name of the poster template (bot/media/poster_templates/<name>.yaml or a file under POSTER_TEMPLATE_DIR)."""
    fraud_velocity_orders: int = Field(default=5, ge=1)
    """More than this many orders from one customer within FRAUD_VELOCITY_MINUTES are held for an admin."""
    fraud_velocity_minutes: int = Field(default=10, ge=1)
    lead_overdue_days: int = Field(default=7, ge=1, le=365)
    """An open prospect without a follow-up for this many days is overdue (also when its reminder has passed)."""
    streak_reminder_hour: int = Field(default=20, ge=0, le=23)
    """Local hour from which a partner whose streak is at risk (no share or follow-up yet today) gets tonight's one
    reminder; never inside their quiet hours."""
    streak_freezes_per_month: int = Field(default=2, ge=0, le=10)
    """Missed local days per calendar month a streak freeze covers, so the streak goes on; 0 turns freezes off."""
    poster_template_dir: Path | None = None
    """Extra poster templates a designer adds without touching the code."""
    font_path: Path | None = None
    """A font file that draws Chinese; unset: the font shipped with the project's dependencies."""
    scheduler_lock_ttl_seconds: float = Field(default=15.0, ge=1, le=3600, description="leader lock lifetime")
    scheduler_poll_seconds: float = Field(default=2.0, gt=0, le=60, description="leader re-reads the job store")
    outbox_retention_days: int = Field(default=30, ge=14, le=3650)
    """Outbox rows that were sent, dead-lettered or cancelled are deleted this many days later (`outbox:prune`).
    At least 14: an admin may re-pick a spotlight up to 13 days apart, and that notice's outbox row is what keeps it
    from being sent twice; nudges look 7 days back in the outbox."""
    startup_catch_up_seconds: float = Field(default=20.0, ge=1, le=600)
    """How long after the leader starts the first pack dispatch runs (packs due while the bot was down go out then);
    the first rollups refresh runs at half of it."""
    update_dedupe_ttl_seconds: int = Field(default=86_400, ge=60, description="how long an update id is remembered")
    test_clock_offset_file: Path | None = None
    """Sandbox and end-to-end tests only: the bot's clock runs ahead by the seconds written in this file.
    Refused with a BOT_TOKEN unless TELEGRAM_API_BASE is a local emulator (127.0.0.1 or localhost)."""

    @field_validator("bot_token", mode="before")
    @classmethod
    def _token_shape(cls, value: object) -> object:
        if value in (None, ""):
            return None
        if not isinstance(value, str) or not TOKEN_RE.fullmatch(value.strip()):
            raise ValueError("must look like 123456789:AAE... (digits, a colon, then the secret)")
        return value.strip()

    @field_validator("telegram_api_base", "public_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _check_http_url(value)

    @model_validator(mode="after")
    def _test_clock_only_in_a_sandbox(self) -> Settings:
        local = urlparse(self.telegram_api_base).hostname in ("127.0.0.1", "localhost")
        if self.test_clock_offset_file is not None and self.bot_token is not None and not local:
            raise ValueError("TEST_CLOCK_OFFSET_FILE moves the bot's time: only with a local Bot API emulator")
        return self

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        return None if not value else _check_http_url(value)

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_url(cls, value: object) -> object:
        if value in (None, ""):
            return None
        if not isinstance(value, str) or urlparse(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must be a redis:// URL such as redis://127.0.0.1:6379/0")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _admin_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            if not all(p.isdigit() for p in parts):
                raise ValueError("must be comma-separated numeric Telegram user ids, e.g. 1001,1002")
            return frozenset(int(p) for p in parts)
        return value

    @field_validator("default_language", mode="before")
    @classmethod
    def _language(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() not in LANGUAGES:
            raise ValueError("must be zh or en")
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError("must be an IANA time zone such as Asia/Shanghai") from exc
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        try:
            parse_setting(f"quiet {value}")
        except UsageError:
            raise ValueError("must be a local time range such as 22:00-08:00, or off") from None
        return value

    @property
    def default_quiet(self) -> tuple[int, int]:
        quiet = parse_setting(f"quiet {self.quiet_hours}").quiet
        assert quiet is not None
        return quiet

    @property
    def sandbox(self) -> bool:
        """No token means the bot runs against the embedded Bot API stand-in."""
        return self.bot_token is None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def sqlite_path(self) -> Path | None:
        """The file behind a SQLite URL, so the entry point can create its folder."""
        prefix = "sqlite+aiosqlite:///"
        if not self.database_url.startswith(prefix):
            return None
        raw = self.database_url[len(prefix) :].split("?", 1)[0]
        return None if raw in ("", ":memory:") else Path(raw)


def load_settings(**overrides: object) -> Settings:
    """Build `Settings`, turning pydantic's report into one `ConfigError` naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        variable = str(first["loc"][0]).upper() if first["loc"] else "CONFIG"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(variable, message) from None
