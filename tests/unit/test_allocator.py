"""Tier 1: the C allocator settings a bot process applies at start-up, unless the environment sets its own."""

from __future__ import annotations

import sys

import pytest

from bot.allocator import SETTINGS, tune_malloc

ALL = [variable for variable, _, _ in SETTINGS]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_every_setting_applies_when_the_environment_sets_none() -> None:
    assert tune_malloc({}) == ALL


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_an_operators_own_setting_wins() -> None:
    assert tune_malloc({"MALLOC_ARENA_MAX": "4"}) == [v for v in ALL if v != "MALLOC_ARENA_MAX"]
    assert tune_malloc(dict.fromkeys(ALL, "1")) == []


def test_nothing_is_applied_off_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert tune_malloc({}) == []
