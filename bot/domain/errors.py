"""Errors that carry a text key, so the handler layer can answer in the user's language."""

from __future__ import annotations


class UserFacingError(Exception):
    """An expected failure: the user gets the text under `key`, and nothing is written."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


class UsageError(UserFacingError):
    """A command was called with missing or invalid arguments."""
