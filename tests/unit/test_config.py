"""Tier 1: configuration parsing and the one-line, exit-code-2 failure of run_bot.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings

CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in {"BOT_TOKEN", "DATABASE_URL", "REDIS_URL", "ADMIN_IDS"}}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in (
        "BOT_TOKEN",
        "TELEGRAM_API_BASE",
        "DATABASE_URL",
        "REDIS_URL",
        "ADMIN_IDS",
        "DEFAULT_LANGUAGE",
        "TIMEZONE",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults_mean_sandbox() -> None:
    settings = load_settings()
    assert settings.sandbox and settings.default_language == "zh" and settings.timezone == "Asia/Shanghai"
    assert settings.web_host == "127.0.0.1" and settings.web_port == 8080
    assert settings.database_url.startswith("sqlite+aiosqlite:///./data/")


def test_values_from_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ADMIN_IDS=5, 6\nDEFAULT_LANGUAGE=en\n")
    monkeypatch.setenv("BOT_TOKEN", "123456:ABC-def_ghi")
    settings = load_settings()
    assert settings.admin_ids == frozenset({5, 6}) and settings.default_language == "en"
    assert settings.bot_token is not None and settings.bot_token.get_secret_value() == "123456:ABC-def_ghi"
    assert "ABC-def" not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BOT_TOKEN", "not-a-token"),
        ("DEFAULT_LANGUAGE", "fr"),
        ("TELEGRAM_API_BASE", "ftp://x"),
        ("PUBLIC_BASE_URL", "nope"),
        ("DATABASE_URL", "mysql://x"),
        ("REDIS_URL", "http://x"),
        ("ADMIN_IDS", "12,abc"),
        ("TIMEZONE", "Mars/Base"),
        ("WEB_PORT", "99999"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_invalid_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.variable == variable


def run_bot(project_root: Path, cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(project_root / "run_bot.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_run_bot_exits_2_with_one_line(project_root: Path, tmp_path: Path) -> None:
    result = run_bot(project_root, tmp_path, {**CLEAN_ENV, "BOT_TOKEN": "garbage"})
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Configuration error: BOT_TOKEN")
    assert "Traceback" not in result.stderr


def test_webhook_mode_requires_its_settings(project_root: Path, tmp_path: Path) -> None:
    result = run_bot(project_root, tmp_path, {**CLEAN_ENV, "BOT_TOKEN": "123456:TEST-token"}, "--webhook")
    assert result.returncode == 2
    assert result.stderr.strip() == "Configuration error: WEBHOOK_URL: is required with --webhook"
