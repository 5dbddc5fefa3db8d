"""Fuzz: every pure argument parser behind a bot command, fed hostile text.

Invariant: each parser either returns a value or raises the error type it documents (a `UsageError` carrying a
text key that exists in both locales, or the parser's own `ValueError` subclass the service turns into one);
never another exception, and quickly (no catastrophic regex backtracking, no huge-integer conversion).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given

from bot.domain import behaviour, broadcasts, campaigns, content, deals, exports, leaderboards, leads, schedule, sprints
from bot.domain.errors import UsageError
from bot.domain.lead_reminders import WhenError, parse_when, split_trailing_when
from bot.domain.money import MoneyError, parse_money
from bot.domain.pools import PoolError
from bot.domain.pools import parse_period as pool_period
from bot.domain.rules import PoolPeriod
from bot.domain.stories import parse_spotlight
from bot.i18n import Translator
from bot.services.leads import LeadService
from bot.services.library import parse_command, parse_field
from bot.services.roles import parse_role_args
from bot.services.stats import parse_section
from tests.fuzz.strategies import ARGS, fuzz_settings

NOW = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
TODAY = date(2026, 11, 25)
ZONE = ZoneInfo("Asia/Shanghai")
LEVELS = ("bronze", "silver", "gold")
TRANSLATOR = Translator.load("en")


def _lead_line(text: str) -> object:
    # parse_line uses no state of the service: the usage error it raises is what /lead answers
    return LeadService.parse_line(object.__new__(LeadService), text)


Parser = Callable[[str], object]
CAMPAIGN = partial(campaigns.parse_campaign, now=NOW, zone=ZONE, currency="CNY", levels=LEVELS)
PARSERS: list[tuple[str, Parser, tuple[type[Exception], ...]]] = [
    # (name, parser, the exceptions it documents; () for a parser that never raises)
    ("stats period", behaviour.parse_period, (UsageError,)),
    ("stats section", parse_section, (UsageError,)),
    ("broadcast codes", broadcasts.parse_codes, (UsageError,)),
    ("campaign add", CAMPAIGN, (UsageError,)),
    ("campaign discount", lambda s: campaigns.parse_discount(s, "CNY"), (UsageError,)),
    ("campaign validity", lambda s: campaigns.parse_validity(s, NOW, ZONE), (UsageError,)),
    ("campaign max uses", campaigns.parse_max_uses, (UsageError,)),
    ("campaign levels", lambda s: campaigns.parse_levels(s, LEVELS), (UsageError,)),
    ("event add", lambda s: campaigns.parse_event(s, now=NOW, zone=ZONE), (UsageError,)),
    ("event ref", campaigns.parse_event_ref, ()),
    ("rsvp form", lambda s: campaigns.parse_rsvp_form(s, s), ()),
    ("content tags", content.parse_tags, (UsageError,)),
    ("content audience", content.parse_audience, (UsageError,)),
    ("content schedule", content.parse_schedule, (UsageError,)),
    ("content command", parse_command, (UsageError,)),
    ("content field title", lambda s: parse_field("title", s, has_media=False), (UsageError,)),
    ("content field url", lambda s: parse_field("url", s, has_media=True), (UsageError,)),
    ("quote", deals.parse_quote_args, (UsageError,)),
    ("order", deals.parse_order_args, (UsageError,)),
    ("product", deals.parse_product_command, (UsageError,)),
    ("price", lambda s: deals.parse_price(s, "CNY"), (UsageError,)),
    ("price JPY", lambda s: deals.parse_price(s, "JPY"), (UsageError,)),
    ("level price", lambda s: deals.parse_level_price(s, "CNY"), (UsageError,)),
    ("currency", deals.parse_currency, (UsageError,)),
    ("sku", deals.parse_sku, (UsageError,)),
    ("quantity", deals.parse_quantity, (UsageError,)),
    ("valid days", deals.parse_valid_days, (UsageError,)),
    ("export", lambda s: exports.parse_export_args(s, NOW, ZONE), (UsageError,)),
    ("export period", lambda s: exports.parse_period(s, NOW, ZONE), (UsageError,)),
    ("rank", leaderboards.parse_rank_args, (UsageError,)),
    ("lead ref", leads.parse_lead_ref, ()),
    ("lead contact", leads.parse_contact, ()),
    ("lead line", leads.parse_lead_line, (leads.LeadArgsError,)),
    ("lead command", _lead_line, (UsageError,)),
    ("reminder when", lambda s: parse_when(s, NOW, ZONE), (WhenError,)),
    ("follow-up note", lambda s: split_trailing_when(s, NOW, ZONE), (WhenError,)),
    ("settings", schedule.parse_setting, (UsageError,)),
    ("settings clock", schedule.parse_clock, (UsageError,)),
    ("sprint add", partial(sprints.parse_sprint, today=TODAY, zone=ZONE, currency="CNY", levels=LEVELS), (UsageError,)),
    ("sprint id", sprints.parse_sprint_id, (UsageError,)),
    ("sprint target", lambda s: sprints.parse_target(s, sprints.parse_metric("gmv"), "CNY"), (UsageError,)),
    ("spotlight", parse_spotlight, (UsageError,)),
    ("grant", lambda s: parse_role_args(s, "grant.usage"), (UsageError,)),
    ("money", lambda s: parse_money(s, "CNY"), (MoneyError,)),
    ("pool week", lambda s: pool_period(s, PoolPeriod.WEEKLY), (PoolError,)),
    ("pool quarter", lambda s: pool_period(s, PoolPeriod.QUARTERLY), (PoolError,)),
]

FUZZ = fuzz_settings(60)


@pytest.mark.parametrize(("parse", "allowed"), [pytest.param(p, a, id=name) for name, p, a in PARSERS])
@FUZZ
@given(text=ARGS)
@example(text="²")
@example(text="#²")
@example(text="archive ²")
@example(text="9" * 4000)
@example(text="\x00 | \x00 | \x00 | \x00 | \x00 | \x00")
def test_parser_returns_or_raises_its_documented_error(
    parse: Parser, allowed: tuple[type[Exception], ...], text: str
) -> None:
    started = time.monotonic()
    try:
        parse(text)
    except allowed as exc:
        if isinstance(exc, UsageError):
            _renders(exc)
    assert time.monotonic() - started < 2.0


def _renders(error: UsageError) -> None:
    """The key names a real text in both languages, with every parameter it needs (else KeyError)."""
    params: dict[str, Any] = {name: str(value) for name, value in error.params.items()}
    for language in ("en", "zh"):
        assert TRANSLATOR.texts(language)(error.key, **params)
