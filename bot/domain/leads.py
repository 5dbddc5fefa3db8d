"""Prospects (leads): how partners name them in commands, and what counts as the same contact."""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUMBER = re.compile(r"^#?(\d{1,9})$")


@dataclass(frozen=True, slots=True)
class LeadRef:
    """How a command names a lead: by the partner's running number (`3`, `#3`) or by a name prefix."""

    number: int | None = None
    name_prefix: str | None = None


def parse_lead_ref(token: str) -> LeadRef | None:
    """`#3` or `3` is lead number 3; any other non-empty token is a name prefix (case-insensitive)."""
    token = token.strip()
    if not token:
        return None
    match = _NUMBER.match(token)
    if match:
        return LeadRef(number=int(match.group(1)))
    return LeadRef(name_prefix=token.casefold())


# -- contacts ------------------------------------------------------------------------------------------

_PHONE = re.compile(r"^\+?[\d\s().-]{6,24}$")
_PHONE_PIECE = re.compile(r"^\+?[\d().-]*\d[\d().-]*$")
_HANDLE = re.compile(r"^@([A-Za-z][A-Za-z0-9_]{3,31})$")
_WECHAT = re.compile(r"^(?:wx:|wechat:|微信[:：]?)?([A-Za-z][A-Za-z0-9_-]{5,19})$", re.IGNORECASE)
_WECHAT_MARKED = re.compile(r"^(?:wx:|wechat:|微信[:：]?)(\S{1,64})$", re.IGNORECASE)
NAME_MAX = 128
NOTE_MAX = 2000


def normalise_phone(text: str) -> str | None:
    """Digits only, a leading + kept: '+86 138-0013-8000' → '+8613800138000'; None when it is not a phone."""
    text = text.strip()
    if not _PHONE.match(text):
        return None
    digits = re.sub(r"\D", "", text)
    if not 6 <= len(digits) <= 20:
        return None
    return ("+" if text.startswith("+") else "") + digits


def normalise_handle(text: str) -> str | None:
    """'@Alice_W' → 'alice_w'; None when it is not a Telegram username."""
    match = _HANDLE.match(text.strip())
    return match.group(1).lower() if match else None


def mask_phone(phone: str | None) -> str:
    """What a team lead sees: '13800135678' → '138****5678'; short numbers keep only their last two digits."""
    if not phone:
        return ""
    plus = "+" if phone.startswith("+") else ""
    digits = phone.lstrip("+")
    if len(digits) >= 8:
        return f"{plus}{digits[:3]}****{digits[-4:]}"
    return f"{plus}{'*' * (len(digits) - 2)}{digits[-2:]}"


@dataclass(frozen=True, slots=True)
class Contact:
    """One way to reach a lead, normalised."""

    phone: str | None = None
    wechat: str | None = None
    telegram: str | None = None


def parse_contact(token: str) -> Contact | None:
    """A phone, an @telegram handle, or a WeChat id (`wx:` / `微信:` marks one explicitly); None otherwise."""
    token = token.strip()
    if not token:
        return None
    phone = normalise_phone(token)
    if phone is not None:
        return Contact(phone=phone)
    handle = normalise_handle(token)
    if handle is not None:
        return Contact(telegram=handle)
    marked = _WECHAT_MARKED.match(token)
    if marked:
        return Contact(wechat=marked.group(1))
    return None


@dataclass(frozen=True, slots=True)
class LeadDraft:
    """A lead as the partner described it, before it is stored."""

    name: str
    phone: str | None = None
    wechat: str | None = None
    telegram: str | None = None
    tg_user_id: int | None = None
    note: str | None = None

    def with_contact(self, contact: Contact | None) -> LeadDraft:
        if contact is None:
            return self
        return LeadDraft(
            name=self.name,
            phone=contact.phone or self.phone,
            wechat=contact.wechat or self.wechat,
            telegram=contact.telegram or self.telegram,
            tg_user_id=self.tg_user_id,
            note=self.note,
        )


class LeadArgsError(ValueError):
    """The /lead line could not be understood; `part` names what was wrong."""

    def __init__(self, part: str) -> None:
        super().__init__(part)
        self.part = part


def parse_lead_line(args: str) -> LeadDraft:
    """`/lead <name> [phone | wechat id | @telegram] [note]`.

    The name is the words before the first contact (a phone, which may span words, `@handle`, `wx:id`); the
    contacts in a row from there are taken, and the rest is the note.
    Without a contact token the first word is the name and the rest the note, unless the line holds a
    single word-like WeChat id after the name (`Li wxid_abc123`).
    """
    words = args.split()
    if not words:
        raise LeadArgsError("name")
    for i in range(1, len(words)):
        found = _contact_at(words, i)
        if found is None:
            continue
        draft, end = LeadDraft(name="").with_contact(found[0]), found[1]
        while (more := _contact_at(words, end)) is not None:  # several contacts in a row: 138… wx:abc @abc
            draft, end = draft.with_contact(more[0]), more[1]
        contact = Contact(phone=draft.phone, wechat=draft.wechat, telegram=draft.telegram)
        return _draft(" ".join(words[:i]), contact, words[end:])
    wechat = _WECHAT.match(words[1]) if len(words) >= 2 else None
    if wechat is not None and any(c.isdigit() or c == "_" for c in words[1]):
        return _draft(words[0], Contact(wechat=wechat.group(1)), words[2:])
    return _draft(words[0], None, words[1:])


def _contact_at(words: list[str], i: int) -> tuple[Contact, int] | None:
    """The contact starting at word `i` and the index after it; a phone may span words ('138 0013 8000')."""
    end = i
    while end < len(words) and _PHONE_PIECE.match(words[end]):
        end += 1
    phone = normalise_phone(" ".join(words[i:end])) if end > i else None
    if phone is not None:
        return Contact(phone=phone), end
    contact = parse_contact(words[i]) if i < len(words) else None
    return (contact, i + 1) if contact is not None else None


def _draft(name: str, contact: Contact | None, rest: list[str]) -> LeadDraft:
    name = name.strip()
    if not name or len(name) > NAME_MAX or name.startswith("/"):
        raise LeadArgsError("name")
    note = " ".join(rest).strip() or None
    if note is not None and len(note) > NOTE_MAX:
        raise LeadArgsError("note")
    return LeadDraft(name=name, note=note).with_contact(contact)
