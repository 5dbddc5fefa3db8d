"""Sandbox tooling: a local Telegram Bot API emulator, its control client and a terminal chat.

Modules:
    emulator   -- ``BotAPIEmulator``, an aiohttp server speaking the Bot API over HTTP.
    client     -- ``EmulatorClient`` / ``TgUser``, an async client for the emulator's control API.
    terminal   -- ``chat_loop``, a line-oriented chat with the bot for people and scripts.

The package ``__init__`` deliberately imports nothing so that
``python -m bot.sandbox.emulator`` runs without a double-import warning.
"""
