"""Configuration files of the prospect (CRM) features."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.domain.lead_stages import StageCatalog

STAGES_FILE = Path(__file__).parent / "stages.yaml"


def load_stages(path: Path = STAGES_FILE) -> StageCatalog:
    """The stage catalogue from YAML, validated (pydantic raises on a bad file)."""
    with path.open(encoding="utf-8") as fh:
        return StageCatalog.model_validate(yaml.safe_load(fh) or {})
