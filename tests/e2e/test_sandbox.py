"""Tier 3: `python run_bot.py` without a token is a terminal chat with the whole bot, scriptable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def run_sandbox(tmp_path: Path, script: str, *args: str, admin_ids: str = "") -> str:
    script_file = tmp_path / "script.txt"
    script_file.write_text(script, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("BOT_TOKEN", "DATABASE_URL", "REDIS_URL")}
    env.update(ADMIN_IDS=admin_ids, DEFAULT_LANGUAGE="zh")
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_bot.py"), "--script", str(script_file), *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=150, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result.stdout


def test_sandbox_chat_with_buttons_and_photo(tmp_path: Path) -> None:
    out = run_sandbox(tmp_path, "/start\n/me\n1\n/lang\n2\n", "--as", "2002", "--name", "Li", "--lang", "zh")
    assert "chatting as user 2002" in out
    assert "欢迎加入伙伴助手，Li" in out
    assert "[1] 🖼 个人名片" in out
    photo_lines = [line for line in out.splitlines() if "[photo] saved to" in line]
    assert photo_lines, out
    saved = tmp_path / photo_lines[0].split("saved to", 1)[1].strip()
    assert saved.read_bytes().startswith(b"\x89PNG")
    assert "(edited) ✅ Language set to English." in out
    assert (tmp_path / "data" / "partner_assistant.db").exists()  # embedded defaults: SQLite under ./data


def test_sandbox_admin_from_admin_ids_and_a_refusal_for_others(tmp_path: Path) -> None:
    out = run_sandbox(tmp_path, "/start\n/grant @nobody lead\n", "--as", "7", "--lang", "en", admin_ids="7")
    assert "chatting as user 7" in out and "admin" in out
    assert "No partner has the invite code or username @nobody." in out
    out = run_sandbox(tmp_path, "/start\n/grant @nobody lead\n", "--as", "8", "--lang", "en", admin_ids="7")
    assert "Only admins can use that command" in out
