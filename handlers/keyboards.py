"""Keyboard builders: they take plain data and texts, never ORM objects."""

from __future__ import annotations

from urllib.parse import quote

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import SUPPORTED, Texts, Translator
from handlers.callbacks import LanguageCallback, ProfileCallback


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
