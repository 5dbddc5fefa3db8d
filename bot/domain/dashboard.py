"""The web dashboard's credentials (issue 8 §4): signed one-time login links and signed session cookies. Pure.

A login link carries `<partner id>.<token id>.<expiry unix seconds>.<signature>`; the signature is HMAC-SHA256
under DASHBOARD_SECRET over the other three fields with a purpose prefix, so a token cannot be replayed as a cookie
or the other way round. The token id is random (chosen by the caller); the service remembers used ids until they
expire, which makes each link single-use. A session cookie is `<session id>.<signature>`: the id is random, stored
only hashed, and the signature lets a forged cookie be refused before any database read.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

LINK_TTL = timedelta(minutes=10)
"""A /dashboard login link works this long, once."""
SESSION_TTL = timedelta(hours=12)
"""A dashboard session lasts this long after login; then /dashboard in the bot gives a new link."""
COOKIE_NAME = "pa_dashboard"
_TOKEN_PURPOSE = b"dashboard-login|"
_COOKIE_PURPOSE = b"dashboard-session|"
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
MAX_ID_LENGTH = 64


class TokenProblem(StrEnum):
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class LoginToken:
    partner_id: int
    token_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """A verified token, or why it was refused."""

    token: LoginToken | None
    problem: TokenProblem | None = None


def _mac(secret: bytes, purpose: bytes, message: str) -> str:
    return hmac.new(secret, purpose + message.encode(), hashlib.sha256).hexdigest()


def _valid_id(value: str) -> bool:
    return 0 < len(value) <= MAX_ID_LENGTH and set(value) <= _ID_CHARS


def sign_login(secret: bytes, partner_id: int, token_id: str, issued_at: datetime) -> str:
    """The login token for `partner_id`, valid for LINK_TTL from `issued_at`; `token_id` is a fresh random id."""
    if not _valid_id(token_id):
        raise ValueError("token ids are 1-64 URL-safe characters")
    expires = int((issued_at + LINK_TTL).timestamp())
    body = f"{partner_id}.{token_id}.{expires}"
    return f"{body}.{_mac(secret, _TOKEN_PURPOSE, body)}"


def verify_login(secret: bytes, token: str | None, now: datetime) -> TokenCheck:
    """The token's claims when it is well-formed, signed with `secret` and not expired at `now`."""
    parts = (token or "").split(".")
    if len(parts) != 4 or len(token or "") > 256:
        return TokenCheck(None, TokenProblem.MALFORMED)
    partner, token_id, expires, signature = parts
    if not (partner.isdigit() and expires.isdigit() and _valid_id(token_id)):
        return TokenCheck(None, TokenProblem.MALFORMED)
    body = f"{partner}.{token_id}.{expires}"
    if not hmac.compare_digest(signature.encode(), _mac(secret, _TOKEN_PURPOSE, body).encode()):
        return TokenCheck(None, TokenProblem.BAD_SIGNATURE)
    expires_at = datetime.fromtimestamp(int(expires), UTC)
    if now >= expires_at:
        return TokenCheck(None, TokenProblem.EXPIRED)
    return TokenCheck(LoginToken(int(partner), token_id, expires_at))


def session_cookie(secret: bytes, session_id: str) -> str:
    """The cookie value for a session: its id and the id's signature."""
    if not _valid_id(session_id):
        raise ValueError("session ids are 1-64 URL-safe characters")
    return f"{session_id}.{_mac(secret, _COOKIE_PURPOSE, session_id)}"


def session_id_of(secret: bytes, cookie: str | None) -> str | None:
    """The session id in a cookie signed with `secret`; None for a missing, malformed or forged cookie."""
    session_id, dot, signature = (cookie or "").partition(".")
    if not dot or not _valid_id(session_id):
        return None
    if not hmac.compare_digest(signature.encode(), _mac(secret, _COOKIE_PURPOSE, session_id).encode()):
        return None
    return session_id


def hash_id(value: str) -> str:
    """What the database keeps of a session id: its SHA-256, so a leaked table opens no session."""
    return hashlib.sha256(value.encode()).hexdigest()


def page_window(page: int, per_page: int, total: int) -> tuple[int, int, int]:
    """(the page actually shown, its offset, the number of pages) for a 1-based `page` clamped to what exists."""
    pages = max(1, -(-total // per_page))
    shown = min(max(page, 1), pages)
    return shown, (shown - 1) * per_page, pages
