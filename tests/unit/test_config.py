"""Tier 1: configuration parsing and the one-line, exit-code-2 failure of run_bot.py."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.clock import OffsetClock
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
        ("STREAK_REMINDER_HOUR", "24"),
        ("STREAK_FREEZES_PER_MONTH", "-1"),
        ("STREAK_FREEZES_PER_MONTH", "11"),
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


def test_a_test_clock_is_refused_outside_a_sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TEST_CLOCK_OFFSET_FILE", str(tmp_path / "offset"))
    assert load_settings().test_clock_offset_file == tmp_path / "offset"  # no token: the built-in sandbox
    monkeypatch.setenv("BOT_TOKEN", "123456:ABC-def_ghi")
    monkeypatch.setenv("TELEGRAM_API_BASE", "http://127.0.0.1:8081")
    assert load_settings().test_clock_offset_file is not None  # a local emulator
    monkeypatch.setenv("TELEGRAM_API_BASE", "https://api.telegram.org")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "TEST_CLOCK_OFFSET_FILE" in str(info.value)


def test_the_offset_clock_runs_ahead_by_the_file(tmp_path: Path) -> None:
    offset = tmp_path / "offset"
    clock = OffsetClock(offset, reread_seconds=0)
    assert abs((clock.now() - datetime.now(UTC)).total_seconds()) < 5  # no file: no offset
    offset.write_text("86400")
    assert abs((clock.now() - datetime.now(UTC)).total_seconds() - 86400) < 5
    offset.write_text("garbage")
    assert abs((clock.now() - datetime.now(UTC)).total_seconds()) < 5
