"""Fuzz: every bot command with random arguments, through the production Dispatcher (BotHarness), as a partner,
a team lead and an admin, on SQLite and PostgreSQL.

Invariant for each `/cmd <args>` update: the bot answers (at least one Bot API call), no reply carries a
traceback, the error middleware never had to step in (no `error.generic` reply, no ERROR log), and when the
answer is a refusal (a usage or error text, or a `UserFacingError` the middleware turned into one) no table's
row count changed.
"""

from __future__ import annotations

import logging
import re
import string

import pytest
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import User
from hypothesis import example, given
from hypothesis import strategies as st

from bot.services.menu import ADMIN_COMMANDS, LEAD_COMMANDS, PARTNER_COMMANDS
from tests.fuzz.dbstate import changed, row_counts
from tests.fuzz.strategies import ARGS, fuzz_settings
from tests.support.harness import ADMIN_ID, BotHarness, tg_user

PARTNER = tg_user(201, "Pia", username="pia_fuzz")
LEAD = tg_user(202, "Leo", username="leo_fuzz")
ADMIN = tg_user(ADMIN_ID, "Ada", username="ada_fuzz")

EXTRA_COMMANDS = ("start", "cancel", "deletelead", "stats", "rules")
ALL_COMMANDS = tuple(dict.fromkeys((*PARTNER_COMMANDS, *LEAD_COMMANDS, *ADMIN_COMMANDS, *EXTRA_COMMANDS)))
REFUSAL = re.compile(r"(^|[._])(usage\w*|error|errors|bad_\w+|unknown\w*|invalid\w*|not_found|too_\w+)($|\.)")
"""Text keys that answer input the bot refused (a usage line or an error naming the bad part)."""

FUZZ = fuzz_settings(30)


def _pattern(template: str) -> str:
    parts = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if name is not None:
            parts.append(".*")
    return "".join(parts)


def _texts_matching(h: BotHarness, key_filter: re.Pattern[str]) -> re.Pattern[str]:
    patterns = {
        _pattern(template)
        for catalog in h.translator.catalogs.values()
        for key, template in catalog.items()
        if key_filter.search(key)
    }
    return re.compile("|".join(f"(?:{p})" for p in sorted(patterns)), re.DOTALL)


class Checker:
    """Sends one command and checks the invariant; the harness and log capture live across examples."""

    def __init__(self, h: BotHarness, caplog: pytest.LogCaptureFixture) -> None:
        self.h = h
        self.caplog = caplog
        self.refusals = _texts_matching(h, REFUSAL)
        self.generic = {h.t(lang, "error.generic") for lang in h.translator.catalogs}

    async def check(self, user: User, command: str, args: str) -> None:
        h = self.h
        assert isinstance(h.dp.storage, MemoryStorage)
        h.dp.storage.storage.clear()  # no form left open by the previous example
        text = f"/{command} {args}" if args else f"/{command}"
        calls_before = len(h.session.calls)
        records_before = len(self.caplog.records)
        before = await row_counts(h.sessionmaker)
        update = await h.send(user, text)
        after = await row_counts(h.sessionmaker)
        calls = h.session.calls[calls_before:]
        records = self.caplog.records[records_before:]
        assert calls, f"no answer to {text!r}"
        texts = [str(value) for c in calls for name, value in c.params.items() if name in ("text", "caption")]
        assert not any("Traceback" in t for t in texts), texts
        assert not self.generic & set(texts), f"{text!r} failed: {[r.getMessage() for r in records]}"
        errors = [r for r in records if r.levelno >= logging.ERROR]
        assert not errors, [r.getMessage() for r in errors]
        refused = any(f"update {update.update_id} refused" in r.getMessage() for r in records)
        if refused or (texts and all(self.refusals.fullmatch(t) for t in texts)):
            assert not changed(before, after), f"{text!r} was refused ({texts}) but wrote {changed(before, after)}"


@pytest.fixture
async def checker(harness: BotHarness, caplog: pytest.LogCaptureFixture) -> Checker:
    caplog.set_level(logging.INFO)
    await harness.send(ADMIN, "/start")
    await harness.send(PARTNER, "/start")
    await harness.send(LEAD, "/start")
    await harness.send(ADMIN, f"/grant @{LEAD.username} lead")
    harness.session.clear()
    return Checker(harness, caplog)


SWEEP_ARGS = ("", "²", "#²", "9" * 30, "\x00 | \x00 | \x00 | \x00 | \x00", "<b>x</b> & {link} %s", "x" * 4000)


@pytest.mark.parametrize(
    "args", SWEEP_ARGS, ids=["none", "superscript", "hash-superscript", "huge", "nul", "markup", "long"]
)
async def test_every_command_as_admin_with_nasty_arguments(checker: Checker, args: str) -> None:
    for command in ALL_COMMANDS:
        await checker.check(ADMIN, command, args)


@FUZZ
@given(command=st.sampled_from(ALL_COMMANDS), args=ARGS)
@example(command="content", args="#99999999999999999999")  # once an id overflow on PostgreSQL
@example(command="poster", args="²")  # once int("²") after str.isdigit()
@example(command="leads", args="\x00 | \x00")  # once PostgreSQL refusing U+0000 in a search
@example(command="lead", args="Ann\x00 +8613800000000 met\x00 at the fair")
async def test_random_commands_as_partner(checker: Checker, command: str, args: str) -> None:
    await checker.check(PARTNER, command, args)


@FUZZ
@given(command=st.sampled_from((*PARTNER_COMMANDS, *LEAD_COMMANDS)), args=ARGS)
async def test_random_commands_as_lead(checker: Checker, command: str, args: str) -> None:
    await checker.check(LEAD, command, args)


@FUZZ
@given(command=st.sampled_from(ALL_COMMANDS), args=ARGS)
async def test_random_commands_as_admin(checker: Checker, command: str, args: str) -> None:
    await checker.check(ADMIN, command, args)
