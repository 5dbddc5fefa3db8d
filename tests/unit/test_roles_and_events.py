"""Tier 1: role ranks and the event catalogue."""

from __future__ import annotations

import pytest

from bot.domain.events import EVENT_CATALOGUE, EventType
from bot.domain.roles import Role, effective_role, has_at_least, role_after_revoke


@pytest.mark.parametrize(
    ("role", "required", "allowed"),
    [
        (Role.PARTNER, Role.PARTNER, True),
        (Role.PARTNER, Role.LEAD, False),
        (Role.PARTNER, Role.ADMIN, False),
        (Role.LEAD, Role.LEAD, True),
        (Role.LEAD, Role.ADMIN, False),
        (Role.ADMIN, Role.LEAD, True),
        (Role.ADMIN, Role.ADMIN, True),
    ],
)
def test_role_ranks(role: Role, required: Role, allowed: bool) -> None:
    assert has_at_least(role, required) is allowed


@pytest.mark.parametrize("stored", list(Role))
def test_configured_admins_are_always_admins(stored: Role) -> None:
    assert effective_role(stored, configured_admin=True) is Role.ADMIN
    assert effective_role(stored, configured_admin=False) is stored


@pytest.mark.parametrize(
    ("current", "revoked", "after"),
    [
        (Role.LEAD, Role.LEAD, Role.PARTNER),
        (Role.ADMIN, Role.ADMIN, Role.PARTNER),
        (Role.PARTNER, Role.LEAD, None),
        (Role.ADMIN, Role.LEAD, None),
    ],
)
def test_revoke(current: Role, revoked: Role, after: Role | None) -> None:
    assert role_after_revoke(current, revoked) == after


def test_every_event_type_is_documented() -> None:
    assert set(EVENT_CATALOGUE) == set(EventType)
    assert all(text.strip() for text in EVENT_CATALOGUE.values())
