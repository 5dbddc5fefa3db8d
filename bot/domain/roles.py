"""Roles and what each may do."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    PARTNER = "partner"
    LEAD = "lead"
    ADMIN = "admin"


_RANK = {Role.PARTNER: 0, Role.LEAD: 1, Role.ADMIN: 2}

GRANTABLE_ROLES = frozenset({Role.LEAD, Role.ADMIN})


def effective_role(stored: Role, *, configured_admin: bool) -> Role:
    """Anyone listed in ADMIN_IDS is an admin whatever the stored role says."""
    return Role.ADMIN if configured_admin else stored


def has_at_least(role: Role, required: Role) -> bool:
    """Admins may do everything a team lead may; leads everything a partner may."""
    return _RANK[role] >= _RANK[required]


def role_after_revoke(current: Role, revoked: Role) -> Role | None:
    """The stored role after revoking `revoked`; None when the partner does not hold it."""
    if current != revoked:
        return None
    return Role.PARTNER
