"""Broadcast audiences and progress arithmetic."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from bot.domain.errors import UsageError
from bot.domain.referral import is_valid_payload

MAX_CODES = 1000
_SPLIT = re.compile(r"[\s,;，；]+")


class AudienceKind(StrEnum):
    EVERYONE = "everyone"
    ROLE = "role"
    TEAM = "team"
    CODES = "codes"
    LEVEL = "level"
    SEGMENT = "segment"


@dataclass(frozen=True, slots=True)
class Audience:
    kind: AudienceKind
    role: str | None = None
    lead: str | None = None
    """The team lead's invite code or @username, for TEAM."""
    codes: tuple[str, ...] = ()
    group: str | None = None
    """The level (LEVEL) or activity segment (SEGMENT)."""

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind.value,
            "role": self.role,
            "lead": self.lead,
            "codes": list(self.codes),
            "group": self.group,
        }

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> Audience:
        codes = raw.get("codes") or ()
        return cls(
            AudienceKind(str(raw["kind"])),
            role=str(raw["role"]) if raw.get("role") else None,
            lead=str(raw["lead"]) if raw.get("lead") else None,
            codes=tuple(str(c) for c in codes) if isinstance(codes, list | tuple) else (),
            group=str(raw["group"]) if raw.get("group") else None,
        )


def parse_codes(text: str) -> tuple[str, ...]:
    """Invite codes separated by spaces, commas or new lines; order kept, duplicates dropped."""
    codes = tuple(dict.fromkeys(code for code in _SPLIT.split(text.strip()) if code))
    if not codes:
        raise UsageError("broadcast.codes_usage")
    bad = [code for code in codes if not is_valid_payload(code)]
    if bad:
        raise UsageError("broadcast.bad_codes", codes=", ".join(bad[:5]))
    if len(codes) > MAX_CODES:
        raise UsageError("broadcast.too_many_codes", limit=MAX_CODES)
    return codes


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a broadcast's deliveries stand, from its outbox rows."""

    total: int
    sent: int = 0
    failed: int = 0
    cancelled: int = 0
    skipped: int = 0
    """Audience members never queued because messages no longer reach them."""

    @property
    def unreachable(self) -> int:
        return self.failed + self.skipped

    @property
    def waiting(self) -> int:
        return max(0, self.total - self.sent - self.failed - self.cancelled - self.skipped)

    @property
    def finished(self) -> bool:
        return self.waiting == 0
