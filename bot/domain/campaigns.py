"""Coupon campaigns and events: the one-line syntax admins type, personal codes, slugs and reminder windows.

Pure: inputs are text, instants and zones; failures are `CampaignInputError`s naming the part that could not be
understood (a text key and its parameters), so the handler answers with usage in the user's language.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from bot.domain.errors import UsageError
from bot.domain.money import Money, MoneyError, format_money, parse_money

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
"""Letters and digits that cannot be mistaken for one another when read aloud or retyped: no 0/O, 1/I/L."""
CODE_RANDOM_LENGTH = 6
CODE_PREFIX_MAX = 6
CODE_MAX = 32
SLUG_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
SLUG_LENGTH = 10
NAME_MAX = 100
TITLE_MAX = 200
PLACE_MAX = 300
URL_MAX = 2048
CAPACITY_MAX = 100_000
MAX_USES_MAX = 1_000_000
VALIDITY_DAYS_MAX = 3660
NO_VALUE = frozenset({"-", "none", "unlimited", "all", "无", "不限", "全部"})
"""What an admin types for "no limit" / "every level" in an optional field."""

REMIND_DAY = timedelta(days=1)
REMIND_HOUR = timedelta(hours=1)

_DAYS = re.compile(r"^(\d{1,4})\s*(?:d|days?|天)$", re.IGNORECASE)
_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$")
_DATETIME = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:\s+|T)(\d{1,2})[:：](\d{2})$")
_PERCENT = re.compile(r"^(\d{1,3})\s*%$")
_LEVEL = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class CampaignInputError(UsageError):
    """A part of a /campaign add or /event add line that could not be understood."""


# -- codes and slugs -------------------------------------------------------------------------------------------


def code_prefix(name: str, campaign_id: int) -> str:
    """The readable start of a campaign's codes: its name's unambiguous Latin letters and digits (up to six),
    else `C` and the campaign's id in the code alphabet for names without any (a Chinese name)."""
    letters = "".join(ch for ch in name.upper() if ch in CODE_ALPHABET)[:CODE_PREFIX_MAX]
    return letters or f"C{_in_code_alphabet(campaign_id)}"


def _in_code_alphabet(number: int) -> str:
    """`number` written in base 31 with `CODE_ALPHABET` as digits, so it has no lookalike characters either."""
    digits = ""
    while True:
        number, rest = divmod(number, len(CODE_ALPHABET))
        digits = CODE_ALPHABET[rest] + digits
        if number == 0:
            return digits


def generate_code(prefix: str, choice: Callable[[str], str]) -> str:
    """A personal code `PREFIX-XXXXXX`: six random characters of `CODE_ALPHABET` (31^6 ≈ 887 million a prefix)."""
    tail = "".join(choice(CODE_ALPHABET) for _ in range(CODE_RANDOM_LENGTH))
    return f"{prefix}-{tail}"[:CODE_MAX]


def normalize_code(text: str) -> str:
    """A code as typed by a customer or the shop: spaces dropped, upper-cased."""
    return "".join(text.split()).upper()


def generate_slug(choice: Callable[[str], str], length: int = SLUG_LENGTH) -> str:
    """A random URL slug of lower-case unambiguous characters."""
    return "".join(choice(SLUG_ALPHABET) for _ in range(length))


# -- campaigns -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Discount:
    kind: str
    """percent | amount."""
    value: int
    """Whole percent, or minor units of `currency`."""
    currency: str | None = None

    def label(self, language: str) -> str:
        if self.kind == "percent":
            return f"{self.value}%"
        assert self.currency is not None
        return format_money(Money(self.value, self.currency), language)


def parse_discount(text: str, currency: str) -> Discount:
    """`10%` (1–100 percent off) or an amount off in the plan's currency: `20`, `20.50`, `¥20`."""
    raw = text.strip().replace("％", "%")
    percent = _PERCENT.match(raw)
    if percent:
        value = int(percent.group(1))
        if not 1 <= value <= 100:
            raise CampaignInputError("campaigns.error.discount", value=text)
        return Discount("percent", value)
    try:
        money = parse_money(raw.lstrip("¥￥").strip(), currency)
    except MoneyError:
        raise CampaignInputError("campaigns.error.discount", value=text) from None
    if money.minor <= 0:
        raise CampaignInputError("campaigns.error.discount", value=text)
    return Discount("amount", money.minor, currency)


def _local_midnight_after(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)


def parse_validity(text: str, now: datetime, zone: ZoneInfo) -> datetime:
    """When codes stop working: `30d` (30 days from now) or a last day `2026-12-31` (valid through that local
    day). Must be in the future."""
    raw = text.strip()
    days = _DAYS.match(raw)
    if days:
        count = int(days.group(1))
        if not 1 <= count <= VALIDITY_DAYS_MAX:
            raise CampaignInputError("campaigns.error.validity", value=text)
        return now + timedelta(days=count)
    found = _DATE.match(raw)
    if not found:
        raise CampaignInputError("campaigns.error.validity", value=text)
    try:
        day = date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
    except ValueError:
        raise CampaignInputError("campaigns.error.validity", value=text) from None
    until = _local_midnight_after(day, zone)
    if until <= now:
        raise CampaignInputError("campaigns.error.past", value=text)
    if until - now > timedelta(days=VALIDITY_DAYS_MAX):
        raise CampaignInputError("campaigns.error.validity", value=text)
    return until


def parse_max_uses(text: str) -> int | None:
    """A positive number of redemptions per personal code; empty or `-` for no limit."""
    raw = text.strip().lower()
    if not raw or raw in NO_VALUE:
        return None
    if not raw.isdecimal() or len(raw) > 12 or not 1 <= int(raw) <= MAX_USES_MAX:
        raise CampaignInputError("campaigns.error.max_uses", value=text)
    return int(raw)


def parse_levels(text: str, known: Sequence[str]) -> tuple[str, ...]:
    """Comma- or space-separated plan levels (`silver,gold`); empty or `all` for every level."""
    raw = text.strip().lower()
    if not raw or raw in NO_VALUE:
        return ()
    names = [part for part in re.split(r"[,，\s]+", raw) if part]
    for name in names:
        if not _LEVEL.match(name) or name not in known:
            raise CampaignInputError("campaigns.error.level", value=name, known=", ".join(known))
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True, slots=True)
class CampaignSpec:
    name: str
    discount: Discount
    valid_until: datetime
    max_uses: int | None
    levels: tuple[str, ...]


def split_fields(text: str | None) -> list[str]:
    """The `|`-separated fields of a one-line form, trimmed."""
    return [part.strip() for part in re.split(r"[|｜]", text or "")]


def clean_text(text: str) -> str:
    """Free text with control characters turned into spaces and runs of spaces collapsed."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def parse_campaign(
    text: str | None, *, now: datetime, zone: ZoneInfo, currency: str, levels: Sequence[str]
) -> CampaignSpec:
    """`<name> | <discount> | <validity> [| <max uses per code> [| <levels>]]`."""
    fields = split_fields(text)
    if len(fields) < 3 or len(fields) > 5:
        raise CampaignInputError("campaigns.campaign.usage")
    fields += [""] * (5 - len(fields))
    name = clean_text(fields[0])
    if not name or len(name) > NAME_MAX:
        raise CampaignInputError("campaigns.error.name", limit=NAME_MAX)
    return CampaignSpec(
        name=name,
        discount=parse_discount(fields[1], currency),
        valid_until=parse_validity(fields[2], now, zone),
        max_uses=parse_max_uses(fields[3]),
        levels=parse_levels(fields[4], levels),
    )


def is_open(valid_from: datetime, valid_until: datetime, active: bool, at: datetime) -> bool:
    """A campaign takes codes and redemptions while active and inside [valid_from, valid_until)."""
    return active and valid_from <= at < valid_until


def eligible(levels: Sequence[str], level: str) -> bool:
    """Empty means every level."""
    return not levels or level in levels


# -- events ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventSpec:
    title: str
    starts_at: datetime
    place: str | None
    online_url: str | None
    capacity: int | None


def parse_local_time(text: str, zone: ZoneInfo, now: datetime) -> datetime:
    """`2026-12-05 19:30` in `zone`, as UTC. Refused: other shapes, impossible dates, a time skipped by a daylight
    saving change, and the past."""
    found = _DATETIME.match(text.strip())
    if not found:
        raise CampaignInputError("campaigns.error.time", value=text)
    year, month, day, hour, minute = (int(g) for g in found.groups())
    try:
        local = datetime(year, month, day, hour, minute, tzinfo=zone)
    except ValueError:
        raise CampaignInputError("campaigns.error.time", value=text) from None
    moment = local.astimezone(UTC)
    if moment.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):  # in a spring-forward gap
        raise CampaignInputError("campaigns.error.time", value=text)
    if moment <= now:
        raise CampaignInputError("campaigns.error.past", value=text)
    return moment


def parse_place(text: str) -> tuple[str | None, str | None]:
    """(place, None) for a venue, or (None, url) for an online link (http or https only)."""
    raw = clean_text(text)
    if not raw:
        raise CampaignInputError("campaigns.error.place")
    if raw.lower().startswith(("http://", "https://")) or "://" in raw:
        parts = urlsplit(raw)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname or " " in raw or len(raw) > URL_MAX:
            raise CampaignInputError("campaigns.error.link", value=text)
        return None, raw
    if len(raw) > PLACE_MAX:
        raise CampaignInputError("campaigns.error.place")
    return raw, None


def parse_capacity(text: str) -> int | None:
    raw = text.strip().lower()
    if not raw or raw in NO_VALUE:
        return None
    if not raw.isdecimal() or len(raw) > 12 or not 1 <= int(raw) <= CAPACITY_MAX:
        raise CampaignInputError("campaigns.error.capacity", value=text)
    return int(raw)


def parse_event(text: str | None, *, now: datetime, zone: ZoneInfo) -> EventSpec:
    """`<title> | <YYYY-MM-DD HH:MM> | <place or https://link> [| <capacity>]`, the time in the admin's zone."""
    fields = split_fields(text)
    if len(fields) < 3 or len(fields) > 4:
        raise CampaignInputError("campaigns.event.usage")
    fields += [""] * (4 - len(fields))
    title = clean_text(fields[0])
    if not title or len(title) > TITLE_MAX:
        raise CampaignInputError("campaigns.error.title", limit=TITLE_MAX)
    place, url = parse_place(fields[2])
    return EventSpec(
        title=title,
        starts_at=parse_local_time(fields[1], zone, now),
        place=place,
        online_url=url,
        capacity=parse_capacity(fields[3]),
    )


@dataclass(frozen=True, slots=True)
class EventRef:
    """How /invite names an event: its number (`3`, `#3`) or its slug."""

    number: int | None = None
    slug: str | None = None


def parse_event_ref(token: str) -> EventRef | None:
    raw = token.strip().lower()
    if raw.startswith("#"):
        raw = raw[1:]
    if raw.isdecimal() and len(raw) <= 12:
        return EventRef(number=int(raw))
    if raw and len(raw) <= 32 and raw.isascii() and raw.isalnum():
        return EventRef(slug=raw)
    return None


def split_invite(text: str | None) -> tuple[str, str] | None:
    """`/invite <lead> <event>`: the last word names the event, everything before it the lead."""
    words = (text or "").split()
    if len(words) < 2:
        return None
    return " ".join(words[:-1]), words[-1]


# -- reminders -------------------------------------------------------------------------------------------------


def due_reminder(starts_at: datetime, now: datetime) -> str | None:
    """Which reminder of an event is due at `now`: `1h` within the last hour before the start, `1d` from a day
    before until an hour before, else None. A sweep that first sees an event less than an hour away sends only
    the 1h reminder; once the event has started, none."""
    if now >= starts_at:
        return None
    if now >= starts_at - REMIND_HOUR:
        return "1h"
    if now >= starts_at - REMIND_DAY:
        return "1d"
    return None


def remind_key(event_id: int, partner_id: int, kind: str) -> str:
    return f"event-remind:{event_id}:{partner_id}:{kind}"


# -- the RSVP form ---------------------------------------------------------------------------------------------

RSVP_NAME_MAX = 128


@dataclass(frozen=True, slots=True)
class RsvpForm:
    """A submitted RSVP form: the cleaned name, the answer, and the text keys of what was wrong."""

    name: str
    attending: bool | None
    errors: tuple[str, ...]


def parse_rsvp_form(name: str | None, answer: str | None) -> RsvpForm:
    """Name: 1–128 characters after cleaning; answer: `yes` or `no`."""
    cleaned = clean_text(name or "")
    errors: list[str] = []
    if not cleaned or len(cleaned) > RSVP_NAME_MAX:
        errors.append("campaigns.rsvp.error_name")
    attending = {"yes": True, "no": False}.get((answer or "").strip().lower())
    if attending is None:
        errors.append("campaigns.rsvp.error_answer")
    return RsvpForm(cleaned, attending, tuple(errors))
