"""Typed callback data for every inline button (Telegram allows 64 bytes).

A wire format shared by the handlers that parse presses and the services and jobs that put
keyboards into outbox rows.
"""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class LanguageCallback(CallbackData, prefix="lang"):
    language: str


class ProfileCallback(CallbackData, prefix="me"):
    action: str


class SettingsCallback(CallbackData, prefix="set"):
    action: str
    """menu (open a field's choices) | set (apply a value) | back."""
    field: str
    """tz | push | quiet."""
    value: str = ""


class BroadcastCallback(CallbackData, prefix="bc"):
    action: str
    """everyone | role | team | codes (audience choice) · confirm | abort (preview) · stop (running)."""
    value: str = ""
