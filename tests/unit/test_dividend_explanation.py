"""Tier 1: how /wallet words a dividend line: equal or weighted share, capped, period labels, missing facts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from bot.domain.money import Money
from bot.i18n import Translator
from bot.services.pools import DividendFacts
from bot.services.wallet import StatementLine
from handlers.wallet import explain, period_words

ZONE = ZoneInfo("Asia/Shanghai")


def cny(minor: int) -> Money:
    return Money(minor, "CNY")


def line(amount: int, facts: DividendFacts | None) -> StatementLine:
    return StatementLine(
        kind="dividend", bucket="available", amount=cny(amount), tier=None, level=None, rate=Decimal("0.02"),
        base=cny(4_800_000), order_id=None, order_amount=None, rules_version=3, available_at=None,
        created_at=datetime(2026, 12, 2, tzinfo=UTC), dividend=facts,
    )  # fmt: skip


def facts(split: str = "equal", cap: Money | None = None) -> DividendFacts:
    return DividendFacts("gold", {"en": "gold", "zh": "黄金"}, "2026-11", "monthly", split, 12, cap)


@pytest.fixture(scope="module")
def translator() -> Translator:
    return Translator.load("zh")


def test_the_issue_example_in_both_languages(translator: Translator) -> None:
    en, zh = translator.texts("en"), translator.texts("zh")
    example = line(8000, facts())
    assert explain(example, en, ZONE) == "+¥80.00 = 1/12 of the November 2026 gold pool (2% of ¥48,000.00 GMV)"
    assert explain(example, zh, ZONE) == "+¥80.00 = 2026年11月「黄金」分红池的 1/12（¥48,000.00 业绩的 2%）"


def test_weighted_and_capped_shares_do_not_claim_a_fraction(translator: Translator) -> None:
    en = translator.texts("en")
    weighted = explain(line(9000, facts("by_gmv")), en, ZONE)
    assert "1/12" not in weighted and "by GMV" in weighted and "12 recipients" in weighted and "¥960.00" in weighted
    capped = explain(line(5000, facts("equal", cny(5000))), en, ZONE)
    assert "1/12" not in capped and capped.endswith("capped at ¥50.00 per partner")


def test_a_line_without_facts_still_gives_its_pool_size(translator: Translator) -> None:
    text = explain(line(8000, None), translator.texts("en"), ZONE)
    assert text == "+¥80.00 = your share of the ¥960.00 dividend pool (2% of ¥48,000.00 GMV)"


@pytest.mark.parametrize(
    ("kind", "label", "en", "zh"),
    [
        ("monthly", "2026-01", "January 2026", "2026年1月"),
        ("weekly", "2026-W48", "week 48 of 2026", "2026年第48周"),
        ("quarterly", "2026-Q4", "Q4 2026", "2026年第4季度"),
        ("monthly", "odd", "odd", "odd"),
        ("daily", "2026-11-02", "2026-11-02", "2026-11-02"),
    ],
)
def test_period_words(translator: Translator, kind: str, label: str, en: str, zh: str) -> None:
    assert period_words(kind, label, translator.texts("en")) == en
    assert period_words(kind, label, translator.texts("zh")) == zh
