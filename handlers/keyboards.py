"""Keyboard builders: they take plain data and texts, never ORM objects."""

from __future__ import annotations

from urllib.parse import quote

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.callbacks import LanguageCallback, ProfileCallback, SettingsCallback
from bot.i18n import SUPPORTED, Texts, Translator


def share_url(link: str, text: str) -> str:
    """Telegram's share sheet: one tap opens the chat picker with the link and text filled in."""
    return f"https://t.me/share/url?url={quote(link, safe='')}&text={quote(text, safe='')}"


def language_keyboard(translator: Translator) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(
            text=translator.texts(lang)("language.name"),
            callback_data=LanguageCallback(language=lang).pack(),
        )
        for lang in SUPPORTED
    ]
    return InlineKeyboardMarkup(inline_keyboard=[buttons])


def profile_keyboard(t: Texts, deep_link: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=t("me.card_button"), callback_data=ProfileCallback(action="card").pack())],
            [InlineKeyboardButton(text=t("me.share_button"), url=share_url(deep_link, t("link.share_text")))],
        ]
    )


def share_keyboard(t: Texts, deep_link: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=t("me.share_button"), url=share_url(deep_link, t("link.share_text")))],
            [InlineKeyboardButton(text=t("me.card_button"), callback_data=ProfileCallback(action="card").pack())],
        ]
    )


TIMEZONE_CHOICES = (
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Taipei",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Europe/London",
    "America/New_York",
    "America/Los_Angeles",
    "UTC",
)
PUSH_CHOICES = ("7", "8", "9", "10", "12", "18", "20", "off")
QUIET_CHOICES = ("1320-480", "1380-420", "1260-540", "off")


def settings_keyboard(t: Texts, *, rank_pushes: bool = True) -> InlineKeyboardMarkup:
    """The fields' buttons, and a toggle of leaderboard pushes (it turns them off when they are on)."""
    toggle = InlineKeyboardButton(
        text=t("leaderboards.button_settings_on" if rank_pushes else "leaderboards.button_settings_off"),
        callback_data=SettingsCallback(action="set", field="ranks", value="off" if rank_pushes else "on").pack(),
    )
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=t(f"settings.button_{field}"),
                    callback_data=SettingsCallback(action="menu", field=field).pack(),
                )
                for field in ("tz", "push", "quiet")
            ],
            [toggle],
        ]
    )


def _choice_label(t: Texts, field: str, value: str) -> str:
    if value == "off":
        return t("settings.off")
    if field == "push":
        return f"{int(value):02d}:00"
    if field == "quiet":
        start, end = (int(x) for x in value.split("-"))
        return f"{start // 60:02d}:{start % 60:02d}–{end // 60:02d}:{end % 60:02d}"
    return value


def settings_choices_keyboard(t: Texts, field: str) -> InlineKeyboardMarkup:
    values = {"tz": TIMEZONE_CHOICES, "push": PUSH_CHOICES, "quiet": QUIET_CHOICES}[field]
    buttons = [
        InlineKeyboardButton(
            text=_choice_label(t, field, value),
            callback_data=SettingsCallback(action="set", field=field, value=value).pack(),
        )
        for value in values
    ]
    rows = [buttons[i : i + 3] for i in range(0, len(buttons), 3)]
    rows.append(
        [
            InlineKeyboardButton(
                text=t("settings.back"), callback_data=SettingsCallback(action="back", field=field).pack()
            )
        ]
    )
    return InlineKeyboardMarkup(inline_keyboard=rows)
