"""Content reach, the pure part: parsing what admins type, choosing a partner's daily pack, tracked links
and click counting rules. No IO here; services feed it rows and the clock's today."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bot.domain.errors import UsageError

MAX_MEDIA_BYTES = 10 * 1024 * 1024
"""Pictures and videos over 10 MB are refused."""
CAPTION_LIMIT = 1024
"""Telegram's limit for a photo or video caption, in characters."""
MESSAGE_LIMIT = 4096
"""Telegram's limit for a text message."""
LINK_ALLOWANCE = 80
"""Room kept in the share text for the partner's tracked link and the blank line before it."""
TITLE_LIMIT = 120
URL_LIMIT = 2048
PACK_SIZE = 3
COPY_TEXT_LIMIT = 256
"""Telegram's limit for a copy-text button."""

LEVELS = ("member", "silver", "gold")
SEGMENTS = ("high", "mid", "low")
LEVEL_ALIASES = {"会员": "member", "普通": "member", "白银": "silver", "银牌": "silver", "黄金": "gold", "金牌": "gold"}
SEGMENT_ALIASES = {"高": "high", "高活跃": "high", "中": "mid", "中活跃": "mid", "低": "low", "低活跃": "low"}
EVERYONE_WORDS = frozenset({"all", "everyone", "any", "-", "全部", "所有", "所有人"})
NONE_WORDS = frozenset({"-", "none", "no", "skip", "evergreen", "无", "没有", "跳过", "常青", "长期"})

WEEKDAY_NAMES: dict[str, tuple[int, ...]] = {
    "mon": (1,),
    "monday": (1,),
    "tue": (2,),
    "tues": (2,),
    "tuesday": (2,),
    "wed": (3,),
    "wednesday": (3,),
    "thu": (4,),
    "thur": (4,),
    "thurs": (4,),
    "thursday": (4,),
    "fri": (5,),
    "friday": (5,),
    "sat": (6,),
    "saturday": (6,),
    "sun": (7,),
    "sunday": (7,),
    "daily": (1, 2, 3, 4, 5, 6, 7),
    "everyday": (1, 2, 3, 4, 5, 6, 7),
    "weekdays": (1, 2, 3, 4, 5),
    "workdays": (1, 2, 3, 4, 5),
    "weekend": (6, 7),
    "weekends": (6, 7),
    "每天": (1, 2, 3, 4, 5, 6, 7),
    "每日": (1, 2, 3, 4, 5, 6, 7),
    "工作日": (1, 2, 3, 4, 5),
    "周末": (6, 7),
}
_ZH_DAYS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "日": 7, "天": 7}
for _prefix in ("周", "星期", "礼拜"):
    for _char, _day in _ZH_DAYS.items():
        WEEKDAY_NAMES[f"{_prefix}{_char}"] = (_day,)

_SPLIT = re.compile(r"[,，;；、\s]+")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

SLUG_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
SLUG_LENGTH = 8
"""55^8 ≈ 8·10^13 slugs (about 46 bits): guessing one of a few million live links takes millions of tries."""
SLUG_RE = re.compile(r"^[A-Za-z0-9]{4,32}$")

CLICK_WINDOW = timedelta(minutes=30)
"""Repeated clicks from one visitor within this window count once."""
_BOT_AGENT = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|facebookexternalhit|facebookcatalog|embedly|preview|whatsapp|"
    r"telegram|slack|discord|skype|curl/|wget/|python-requests|python-urllib|aiohttp|httpx|go-http-client|"
    r"okhttp|java/|libwww|headlesschrome|phantomjs|scrapy|ahrefs|semrush|baiduspider|yandex|bytespider",
    re.IGNORECASE,
)


def tokens(text: str) -> list[str]:
    return [token for token in _SPLIT.split(text.strip()) if token]


def validate_title(title: str) -> str:
    title = " ".join(title.split())
    if not title:
        raise UsageError("content.error.title_empty")
    if len(title) > TITLE_LIMIT:
        raise UsageError("content.error.title_long", limit=TITLE_LIMIT, length=len(title))
    return title


def share_text_limit(has_media: bool) -> int:
    """How long a share text may be, leaving room for the partner's link, under Telegram's limits."""
    return (CAPTION_LIMIT if has_media else MESSAGE_LIMIT) - LINK_ALLOWANCE


def validate_share_text(text: str, *, has_media: bool) -> str:
    text = text.strip()
    if not text:
        raise UsageError("content.error.text_empty")
    limit = share_text_limit(has_media)
    if len(text) > limit:
        raise UsageError("content.error.text_long", limit=limit, length=len(text))
    return text


def validate_url(url: str) -> str:
    """Only absolute http(s) URLs with a host: partners' links must open a web page."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        raise UsageError("content.error.url")
    if len(url) > URL_LIMIT:
        raise UsageError("content.error.url_long", limit=URL_LIMIT)
    return url


def parse_tags(text: str) -> list[str]:
    """'spring, sale #new' → ['spring', 'sale', 'new']; '-' means no tags."""
    if text.strip().lower() in NONE_WORDS:
        return []
    seen: dict[str, None] = {}
    for token in tokens(text):
        tag = token.lstrip("#").strip()
        if tag:
            seen.setdefault(tag[:32], None)
    return list(seen)[:20]


@dataclass(frozen=True, slots=True)
class Audience:
    levels: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()

    @property
    def everyone(self) -> bool:
        return not self.levels and not self.segments

    def includes(self, level: str, segment: str | None) -> bool:
        """Levels and segments narrow independently: a gold-only, high-only item needs both."""
        if self.levels and level not in self.levels:
            return False
        return not self.segments or segment in self.segments


def parse_audience(text: str) -> Audience:
    """'gold, silver high' → levels gold+silver, segment high; 'all' or '-' → everyone."""
    if text.strip().lower() in EVERYONE_WORDS:
        return Audience()
    levels: list[str] = []
    segments: list[str] = []
    for token in tokens(text):
        word = token.lower()
        level = LEVEL_ALIASES.get(token, word if word in LEVELS else None)
        segment = SEGMENT_ALIASES.get(token, word if word in SEGMENTS else None)
        if level is not None:
            levels += [level] if level not in levels else []
        elif segment is not None:
            segments += [segment] if segment not in segments else []
        else:
            raise UsageError(
                "content.error.audience", word=token, levels=", ".join(LEVELS), segments=", ".join(SEGMENTS)
            )
    return Audience(tuple(levels), tuple(segments))


@dataclass(frozen=True, slots=True)
class Schedule:
    dates: tuple[date, ...] = ()
    weekdays: tuple[int, ...] = ()

    @property
    def evergreen(self) -> bool:
        return not self.dates and not self.weekdays

    def on(self, day: date) -> bool:
        return day in self.dates or day.isoweekday() in self.weekdays

    @classmethod
    def from_stored(cls, dates: Iterable[str], weekdays: Iterable[int]) -> Schedule:
        return cls(tuple(sorted(date.fromisoformat(d) for d in dates)), tuple(sorted(set(weekdays))))

    def stored(self) -> tuple[list[str], list[int]]:
        return [d.isoformat() for d in self.dates], list(self.weekdays)


def parse_schedule(text: str) -> Schedule:
    """Dates and weekdays in either language: '2026-12-01, 2026-12-05', 'mon wed', '周一 周三', 'weekdays',
    '每天'. '-' (or 'evergreen', '常青') means no schedule: the item is evergreen."""
    if text.strip().lower() in NONE_WORDS:
        return Schedule()
    dates: set[date] = set()
    weekdays: set[int] = set()
    for token in tokens(text):
        word = token.lower()
        if _DATE.match(word):
            try:
                dates.add(date.fromisoformat(word))
            except ValueError:
                raise UsageError("content.error.date", value=token) from None
        elif word in WEEKDAY_NAMES:
            weekdays.update(WEEKDAY_NAMES[word])
        elif word.isdecimal() and len(word) == 1 and 1 <= int(word) <= 7:
            weekdays.add(int(word))
        else:
            raise UsageError("content.error.schedule", value=token)
    return Schedule(tuple(sorted(dates)), tuple(sorted(weekdays)))


@dataclass(frozen=True, slots=True)
class Candidate:
    """What pack selection needs to know about one active item."""

    id: int
    created_at: datetime
    audience: Audience = field(default_factory=Audience)
    schedule: Schedule = field(default_factory=Schedule)


def select_pack(
    candidates: Sequence[Candidate], day: date, level: str, segment: str | None, size: int = PACK_SIZE
) -> list[int]:
    """Up to `size` item ids for a partner on their local `day`.

    Items scheduled for that date come first, then items for that weekday, newest first. On a day with
    nothing scheduled the pack falls back to the newest evergreen items, and with no evergreen items
    to the newest items whose dates have passed, so a partner who has material never gets an empty pack.
    """
    eligible = [c for c in candidates if c.audience.includes(level, segment)]
    newest = sorted(eligible, key=lambda c: (c.created_at, c.id), reverse=True)
    by_date = [c for c in newest if day in c.schedule.dates]
    by_weekday = [c for c in newest if c not in by_date and day.isoweekday() in c.schedule.weekdays]
    scheduled = by_date + by_weekday
    if scheduled:
        return [c.id for c in scheduled[:size]]
    evergreen = [c for c in newest if c.schedule.evergreen]
    if evergreen:
        return [c.id for c in evergreen[:size]]
    past = [c for c in newest if c.schedule.dates and max(c.schedule.dates) < day]
    return [c.id for c in past[:size]]


def share_text(text: str, link: str) -> str:
    """The text a partner posts: `{link}` in it is replaced by their link, else the link goes at the end."""
    if "{link}" in text:
        return text.replace("{link}", link)
    return f"{text}\n\n{link}"


def new_slug(choice: Callable[[str], str]) -> str:
    """A random slug; `choice` is `secrets.choice` in production, so slugs are not enumerable."""
    return "".join(choice(SLUG_ALPHABET) for _ in range(SLUG_LENGTH))


def is_valid_slug(slug: str) -> bool:
    return bool(SLUG_RE.fullmatch(slug))


def tracked_link(public_base_url: str, slug: str) -> str:
    return f"{public_base_url.rstrip('/')}/r/{slug}"


def redirect_target(url: str, *, invite_code: str, campaign: str) -> str:
    """The target URL with `ref` and the UTM parameters added; its own query string and fragment are kept
    (a parameter of ours that it already has is replaced, so `ref` is always the partner's)."""
    parts = urlsplit(url)
    ours = {
        "ref": invite_code,
        "utm_source": "partner",
        "utm_medium": "telegram",
        "utm_campaign": campaign,
    }
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ours]
    query = urlencode([*kept, *ours.items()])
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", query, parts.fragment))


def is_bot_agent(user_agent: str | None) -> bool:
    """Empty user agents and known crawlers or link-preview fetchers: recorded, not counted."""
    return not user_agent or not user_agent.strip() or bool(_BOT_AGENT.search(user_agent))


def visitor_hash(salt: bytes, ip: str, user_agent: str) -> str:
    """Who clicked, without storing who: a keyed hash of IP and user agent (the salt stays in the environment)."""
    return hmac.new(salt, f"{ip}|{user_agent}".encode(), hashlib.sha256).hexdigest()[:32]
