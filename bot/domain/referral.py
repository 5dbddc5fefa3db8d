"""Invite codes and the first-touch binding rules of the referral tree."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import StrEnum

# No 0/O/1/l/I: codes are read aloud and typed from posters.
CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 8
PAYLOAD_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def new_invite_code(choice: Callable[[str], str]) -> str:
    """A short random code; `choice` is `secrets.choice` in production (about 47 bits)."""
    return "".join(choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def is_valid_payload(payload: str) -> bool:
    """Deep-link payloads are at most 64 characters of [A-Za-z0-9_-] (Telegram's own rule)."""
    return bool(PAYLOAD_RE.fullmatch(payload))


class Binding(StrEnum):
    """What happened to the upline link on a /start."""

    NO_CODE = "no_code"
    BOUND = "bound"
    ALREADY_BOUND = "already_bound"
    INVALID_CODE = "invalid_code"
    UNKNOWN_CODE = "unknown_code"
    OWN_CODE = "own_code"
    CYCLE = "cycle"


@dataclass(frozen=True, slots=True)
class BindingInput:
    """Facts about one /start, gathered by the service before deciding."""

    partner_id: int | None
    """The partner's id if they were already registered, else None."""
    current_upline_id: int | None
    payload: str | None
    code_owner_id: int | None
    """Owner of the payload's code; None when the code is unknown or there is no payload."""
    code_owner_ancestor_ids: Collection[int] = ()
    """Every upline of the code owner, nearest first."""


def decide_binding(facts: BindingInput) -> Binding:
    """First-touch binding.

    A partner who already has an upline is never moved. A partner without one is bound to the
    first valid code they arrive with, unless it is their own code or it would make a cycle
    (the code's owner sits in the partner's own downline).
    """
    if not facts.payload:
        return Binding.NO_CODE
    if facts.current_upline_id is not None:
        return Binding.ALREADY_BOUND
    if not is_valid_payload(facts.payload):
        return Binding.INVALID_CODE
    if facts.code_owner_id is None:
        return Binding.UNKNOWN_CODE
    if facts.partner_id is not None and facts.code_owner_id == facts.partner_id:
        return Binding.OWN_CODE
    if facts.partner_id is not None and facts.partner_id in facts.code_owner_ancestor_ids:
        return Binding.CYCLE
    return Binding.BOUND


def recruit_deep_link(bot_username: str, code: str) -> str:
    return f"https://t.me/{bot_username}?start={code}"
