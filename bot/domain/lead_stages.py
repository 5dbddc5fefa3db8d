"""The stages of a prospect (new → contacted → interested → quoted → won / lost), as configured in YAML."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

REQUIRED_STAGES = ("new", "contacted", "quoted", "won", "lost")
"""Stages the bot moves leads to by itself: a first follow-up, a quote, a confirmed order, the buttons."""


class Stage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,15}$")
    zh: str = Field(min_length=1, max_length=40)
    en: str = Field(min_length=1, max_length=40)
    final: bool = False
    """The deal is over (won, lost): such a lead is never overdue."""

    def label(self, language: str) -> str:
        return self.zh if language == "zh" else self.en


class StageCatalog(BaseModel):
    """The ordered stages; validated when the app starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stages: tuple[Stage, ...]

    @model_validator(mode="after")
    def _complete(self) -> StageCatalog:
        keys = [s.key for s in self.stages]
        if len(set(keys)) != len(keys):
            raise ValueError("stage keys must be unique")
        missing = [k for k in REQUIRED_STAGES if k not in keys]
        if missing:
            raise ValueError(f"missing stages: {', '.join(missing)}")
        return self

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(s.key for s in self.stages)

    @property
    def final_keys(self) -> tuple[str, ...]:
        return tuple(s.key for s in self.stages if s.final)

    def get(self, key: str) -> Stage | None:
        return next((s for s in self.stages if s.key == key), None)

    def label(self, key: str, language: str) -> str:
        stage = self.get(key)
        return stage.label(language) if stage else key

    def find(self, word: str) -> Stage | None:
        """A stage named by its key or either label, case-insensitively (`won`, `Won`, `已成交`)."""
        word = word.strip().casefold()
        return next((s for s in self.stages if word in (s.key, s.zh.casefold(), s.en.casefold())), None)
