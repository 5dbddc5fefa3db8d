"""Typed callback data for every inline button (Telegram allows 64 bytes)."""

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
