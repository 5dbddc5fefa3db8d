"""The commission plan: loading with located errors, conditions over the metric catalogue, commission lines,
levels and badges."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import bot
from bot.domain.money import Money, format_money, parse_money
from bot.domain.rules import (
    DEFAULT_BADGE_ICON,
    METRICS,
    CommissionLine,
    Condition,
    ConditionError,
    Earner,
    MetricsError,
    Order,
    OrderItem,
    Plan,
    PlanError,
    PoolPeriod,
    PoolSplit,
    commission_lines,
    earned_badges,
    evaluate_level,
    is_eligible,
    load_plan,
)

DEFAULT_PLAN = Path(bot.__file__).parent / "plans" / "default.yaml"

LEVELS = """\
version: 7
currency: CNY
min_withdrawal: "50.00"
levels:
  member:
    title: {zh: 会员, en: Member}
    l1: "10%"
    l2: "3%"
    l3: "1%"
  silver:
    title: {zh: 白银, en: Silver}
    l1: "12%"
    l2: "4%"
    l3: "2%"
    promote_when: "sales_30d >= 5 and active_recruits >= 2"
    demote_when: "sales_30d == 0"
  gold:
    title: {zh: 黄金, en: Gold}
    l1: "15%"
    l2: "5%"
    l3: "3%"
    promote_when: "sales_30d >= 20 and active_recruits >= 5"
    demote_when: "sales_30d < 5"
"""


def plan(extra: str = "") -> Plan:
    return load_plan(LEVELS + textwrap.dedent(extra), "test.yaml")


def cny(text: str) -> Money:
    return parse_money(text, "CNY")


@pytest.fixture(scope="module")
def default() -> Plan:
    return load_plan(DEFAULT_PLAN.read_text(encoding="utf-8"), "default.yaml")


# --- the shipped plan ------------------------------------------------------------------------------------------


def test_default_plan_is_the_issue(default: Plan) -> None:
    assert default.version == "2"  # the shipped default with badge icons
    assert default.currency == "CNY"
    assert list(default.levels) == ["member", "silver", "gold"]
    assert [(lv.l1, lv.l2) for lv in default.levels.values()] == [
        (Decimal("0.10"), Decimal("0.03")),
        (Decimal("0.12"), Decimal("0.04")),
        (Decimal("0.15"), Decimal("0.05")),
    ]
    assert default.l3_enabled is False
    assert default.cap_per_order is None
    assert default.hold_days == 14
    assert default.min_withdrawal == Money(5000, "CNY")
    assert default.self_purchase_rebate is False
    assert default.categories == {}
    assert len(default.badges) >= 2


def test_acceptance_150_order_member_upline_member(default: Plan) -> None:
    """The issue's example: ¥150.00 for B (member) whose upline A is a member → B ¥15.00, A ¥4.50."""
    lines = commission_lines(default, Order("o-1", cny("150.00")), [Earner(2, "member"), Earner(1, "member")])
    assert [(line.earner_id, line.tier, format_money(line.amount, "zh")) for line in lines] == [
        (2, 1, "¥15.00"),
        (1, 2, "¥4.50"),
    ]
    assert lines[0] == CommissionLine(
        order_id="o-1",
        earner_id=2,
        tier=1,
        level="member",
        rate=Decimal("0.10"),
        base=cny("150.00"),
        amount=cny("15.00"),
        rule="levels.member.l1",
        plan_version="2",
    )
    assert lines[1].rule == "levels.member.l2"


@pytest.mark.parametrize(
    ("l1_level", "l2_level", "l1_amount", "l2_amount"),
    [
        ("member", "member", "15.00", "4.50"),
        ("silver", "member", "18.00", "4.50"),  # each earner gets their own level's rate
        ("member", "silver", "15.00", "6.00"),
        ("gold", "silver", "22.50", "6.00"),
        ("silver", "gold", "18.00", "7.50"),
        ("gold", "gold", "22.50", "7.50"),
    ],
)
def test_rates_are_the_earners_levels(
    default: Plan, l1_level: str, l2_level: str, l1_amount: str, l2_amount: str
) -> None:
    lines = commission_lines(default, Order("o", cny("150.00")), [Earner(2, l1_level), Earner(1, l2_level)])
    assert [line.amount for line in lines] == [cny(l1_amount), cny(l2_amount)]
    assert [line.rule for line in lines] == [f"levels.{l1_level}.l1", f"levels.{l2_level}.l2"]


def test_chain_shorter_than_tiers(default: Plan) -> None:
    assert [line.tier for line in commission_lines(default, Order("o", cny("10")), [Earner(2, "gold")])] == [1]
    assert commission_lines(default, Order("o", cny("10")), []) == []


def test_lines_that_round_to_zero_are_left_out(default: Plan) -> None:
    lines = commission_lines(default, Order("o", cny("0.10")), [Earner(2, "member"), Earner(1, "member")])
    assert [(line.tier, line.amount) for line in lines] == [(1, Money(1, "CNY"))]  # L2: 0.3 fen → 0


# --- L3, categories, cap, self-purchase, eligibility -----------------------------------------------------------

CHAIN3 = [Earner(3, "member"), Earner(2, "silver"), Earner(1, "gold")]


@pytest.mark.parametrize(("enabled", "tiers"), [("false", [1, 2]), ("true", [1, 2, 3])])
def test_l3_only_when_enabled(enabled: str, tiers: list[int]) -> None:
    lines = commission_lines(plan(f"l3_enabled: {enabled}\n"), Order("o", cny("100")), CHAIN3)
    assert [line.tier for line in lines] == tiers
    if enabled == "true":
        assert (lines[2].earner_id, lines[2].amount, lines[2].rule) == (1, cny("3.00"), "levels.gold.l3")


CATEGORIES = """\
categories:
  gift_cards:
    member: {l1: "2%", l2: "1%"}
    silver: {l1: "3%"}
"""


def test_category_override_per_item_line() -> None:
    order = Order(
        "o",
        cny("300.00"),
        items=(OrderItem(cny("100.00"), "gift_cards"), OrderItem(cny("150.00"), "tea"), OrderItem(cny("50.00"))),
    )
    lines = commission_lines(plan(CATEGORIES), order, [Earner(2, "member"), Earner(1, "silver")])
    got = [(line.earner_id, line.rule, line.rate, line.base, line.amount) for line in lines]
    assert got == [
        (2, "categories.gift_cards.member.l1", Decimal("0.02"), cny("100"), cny("2.00")),
        (2, "levels.member.l1", Decimal("0.10"), cny("200"), cny("20.00")),  # tea and uncategorised together
        # silver has no l2 override for gift cards: the level's rate applies to every line
        (1, "levels.silver.l2", Decimal("0.04"), cny("300"), cny("12.00")),
    ]


def test_category_for_unknown_level_is_a_load_error() -> None:
    with pytest.raises(PlanError, match=r"test\.yaml line \d+: categories\.tea\.platinum: unknown level"):
        plan("categories:\n  tea:\n    platinum: {l1: 20%}\n")


@pytest.mark.parametrize(
    ("cap", "l1", "l2", "capped"),
    [
        ("100.00", "15.00", "4.50", [False, False]),
        ("15.00", "15.00", "4.50", [False, False]),  # exactly the cap is not capped
        ("10.00", "10.00", "4.50", [True, False]),  # the cap is per earner, not per order total
        ("4.00", "4.00", "4.00", [True, True]),
    ],
)
def test_cap_per_order_caps_each_earner(cap: str, l1: str, l2: str, capped: list[bool]) -> None:
    lines = commission_lines(
        plan(f'cap_per_order: "{cap}"\n'), Order("o", cny("150.00")), [Earner(2, "member"), Earner(1, "member")]
    )
    assert [line.amount for line in lines] == [cny(l1), cny(l2)]
    assert [line.capped for line in lines] == capped


def test_cap_is_shared_between_an_earners_lines_exactly() -> None:
    order = Order("o", cny("300.00"), items=(OrderItem(cny("100.00"), "gift_cards"), OrderItem(cny("200.00"))))
    lines = commission_lines(plan(CATEGORIES + 'cap_per_order: "11.00"\n'), order, [Earner(2, "member")])
    # uncapped: 2.00 + 20.00 = 22.00 → halved, in proportion, summing exactly to the cap
    assert [line.amount for line in lines] == [cny("1.00"), cny("10.00")]
    assert all(line.capped for line in lines)


_CAP_PLAN = load_plan(LEVELS + CATEGORIES)


@given(
    st.integers(min_value=1, max_value=10**9),
    st.integers(min_value=1, max_value=10**7),
    st.integers(min_value=1, max_value=10**7),
)
def test_capped_earner_never_gets_more_than_cap(cap_fen: int, gift_fen: int, other_fen: int) -> None:
    cap = Money(cap_fen, "CNY")
    capped_plan = _CAP_PLAN.model_copy(update={"cap_per_order": cap})
    order = Order(
        "o",
        Money(gift_fen + other_fen, "CNY"),
        items=(OrderItem(Money(gift_fen, "CNY"), "gift_cards"), OrderItem(Money(other_fen, "CNY"))),
    )
    lines = commission_lines(capped_plan, order, [Earner(2, "member")])
    assert sum(line.amount.minor for line in lines) <= cap_fen
    assert all(line.amount.minor <= line.base.minor for line in lines)


@pytest.mark.parametrize(
    ("rebate", "expected"),
    [
        ("false", [(1, 2, "4.50")]),  # the buyer earns nothing on their own order; the upline still earns
        ("true", [(2, 1, "15.00"), (1, 2, "4.50")]),
    ],
)
def test_self_purchase(rebate: str, expected: list[tuple[int, int, str]]) -> None:
    order = Order("o", cny("150.00"), self_purchase=True)
    lines = commission_lines(
        plan(f"self_purchase_rebate: {rebate}\n"), order, [Earner(2, "member"), Earner(1, "member")]
    )
    assert [(line.earner_id, line.tier, line.amount) for line in lines] == [(e, t, cny(a)) for e, t, a in expected]


def test_ineligible_earner_is_skipped_without_compression(default: Plan) -> None:
    lines = commission_lines(
        default, Order("o", cny("150.00")), [Earner(2, "member", eligible=False), Earner(1, "member")]
    )
    assert [(line.earner_id, line.tier) for line in lines] == [(1, 2)]


def test_eligibility_condition() -> None:
    p = plan('eligibility: "days_since_join >= 7 or orders_total >= 1"\n')
    assert is_eligible(p, {"days_since_join": 7, "orders_total": 0})
    assert not is_eligible(p, {"days_since_join": 2, "orders_total": 0})
    assert is_eligible(plan(), {})


def test_order_checks() -> None:
    with pytest.raises(ValueError, match="do not add up"):
        Order("o", cny("10"), items=(OrderItem(cny("9")),))
    with pytest.raises(ValueError, match="negative"):
        Order("o", Money(-1, "CNY"))
    with pytest.raises(ValueError, match="USD"):
        commission_lines(plan(), Order("o", Money(100, "USD")), [Earner(1, "member")])
    with pytest.raises(ValueError, match="platinum"):
        commission_lines(plan(), Order("o", cny("10")), [Earner(1, "platinum")])


# --- levels and badges -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "sales", "recruits", "expected"),
    [
        ("member", 0, 0, "member"),
        ("member", 5, 1, "member"),
        ("member", 5, 2, "silver"),
        ("member", 25, 6, "gold"),  # straight to the highest qualifying level
        ("silver", 10, 3, "silver"),
        ("silver", 20, 5, "gold"),
        ("silver", 0, 9, "member"),  # demotion
        ("gold", 4, 9, "silver"),  # one step down at a time
        ("gold", 0, 0, "silver"),
        ("gold", 30, 9, "gold"),
    ],
)
def test_evaluate_level(default: Plan, current: str, sales: int, recruits: int, expected: str) -> None:
    assert evaluate_level(default, current, {"sales_30d": sales, "active_recruits": recruits}) == expected


def test_evaluate_level_sets_the_level_metric() -> None:
    p = load_plan(LEVELS.replace('demote_when: "sales_30d < 5"', "demote_when: \"level == 'gold' and sales_30d < 5\""))
    assert evaluate_level(p, "gold", {"sales_30d": 1, "active_recruits": 0}) == "silver"


def test_evaluate_level_unknown_level(default: Plan) -> None:
    with pytest.raises(ValueError, match="platinum"):
        evaluate_level(default, "platinum", {})


@pytest.mark.parametrize(
    ("metrics", "badges"),
    [
        ({}, set()),
        ({"orders_total": 1}, {"first_sale"}),
        ({"orders_total": 3, "recruits_total": 5, "active_recruits": 3, "streak_days": 7},
         {"first_sale", "team_builder", "on_fire", "first_recruit"}),
        ({"recruits_total": 9, "active_recruits": 2, "streak_days": 8}, {"on_fire", "first_recruit"}),
        ({"streak_days": 6}, set()),
        ({"shares_total": 1}, {"first_share"}),
        ({"leads_total": 1}, {"first_lead"}),
        ({"followups_total": 9}, set()),
        ({"followups_total": 10}, {"followups_10"}),
        ({"courses_completed": 1}, {"course_graduate"}),
        ({"sprint_wins": 1}, {"sprint_winner"}),
    ],
)  # fmt: skip
def test_earned_badges(default: Plan, metrics: dict[str, int], badges: set[str]) -> None:
    zero = {name: 0 for name, spec in METRICS.items() if spec.type is int}
    assert earned_badges(default, {**zero, **metrics}) == badges


def test_shipped_badges_have_icons_and_both_names(default: Plan) -> None:
    assert {"first_share", "on_fire", "first_lead", "followups_10", "first_sale", "first_recruit"} <= set(
        default.badges
    )
    assert {"course_graduate", "sprint_winner", "team_builder"} <= set(default.badges)
    assert default.badges["starter_7day"].when is None  # the 7-day start's reward, never by a condition
    for badge in default.badges.values():
        assert badge.title is not None and badge.title.zh and badge.title.en
        assert badge.icon != DEFAULT_BADGE_ICON


@pytest.mark.parametrize("icon", ["abc", "", "<b>", "🔥🔥🔥🔥🔥🔥🔥🔥🔥"])
def test_a_badge_icon_is_one_emoji(icon: str) -> None:
    text = LEVELS + f'badges:\n  x:\n    icon: "{icon}"\n    when: "orders_total >= 1"\n'
    with pytest.raises(PlanError, match=r"badges\.x\.icon"):
        load_plan(text)


def test_earlier_shipped_plans_still_load() -> None:
    for path in sorted((DEFAULT_PLAN.parent / "shipped").glob("*.yaml")):
        old = load_plan(path.read_text(encoding="utf-8"), path.name)
        assert all(badge.icon == DEFAULT_BADGE_ICON for badge in old.badges.values())


def test_a_badge_without_an_icon_gets_the_medal() -> None:
    plan = load_plan(LEVELS + 'badges:\n  x:\n    when: "orders_total >= 1"\n')
    assert plan.badges["x"].icon == DEFAULT_BADGE_ICON == "🏅"


# --- conditions ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "metrics", "result"),
    [
        ("sales_30d >= 5 and active_recruits >= 2", {"sales_30d": 5, "active_recruits": 2}, True),
        ("sales_30d >= 5 and active_recruits >= 2", {"sales_30d": 5, "active_recruits": 1}, False),
        ("level == 'gold' or gmv_30d_minor > 100000", {"level": "silver", "gmv_30d_minor": 100001}, True),
        ("level in ['silver', 'gold']", {"level": "member"}, False),
        ("not (shares_7d > 0)", {"shares_7d": 0}, True),
        ("shares_30d >= 2 * shares_7d", {"shares_30d": 10, "shares_7d": 5}, True),
    ],
)
def test_condition_evaluation(text: str, metrics: dict[str, int | str], result: bool) -> None:
    assert Condition(text).evaluate(metrics) is result


@pytest.mark.parametrize(
    ("metrics", "message"),
    [({}, "sales_30d.*not given"), ({"sales_30d": "5"}, "number"), ({"sales_30d": True}, "number")],
)
def test_condition_metrics_are_checked(metrics: dict[str, object], message: str) -> None:
    with pytest.raises(MetricsError, match=message):
        Condition("sales_30d >= 5").evaluate(metrics)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("salez_30d >= 5", "unknown metric 'salez_30d'"),
        ("sales_30d >=", "syntax error"),
        ("level >= 5", "level is text"),
        ("sales_30d", "not true/false"),
        ("$now > sales_30d", r"\$now is not allowed"),
        ("$random() > 0.5", r"\$random is not allowed"),
    ],
)
def test_condition_compile_errors(text: str, message: str) -> None:
    with pytest.raises(ConditionError, match=message):
        Condition(text)


def test_metric_catalogue_is_documented() -> None:
    for name, spec in METRICS.items():
        assert spec.type in (int, str), name
        assert spec.description_en
        assert spec.description_zh


# --- plan errors name the line and the field -------------------------------------------------------------------

ONE_LEVEL = """\
version: 1
min_withdrawal: "50.00"
levels:
  member:
    title: {zh: 会员, en: Member}
    l1: "10%"
    l2: "3%"
"""


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        (ONE_LEVEL.replace('l1: "10%"', 'l1: "150%"'), 6, "levels.member.l1", "rate must be between 0 and 1"),
        (ONE_LEVEL.replace('l1: "10%"', "l1: 1.5"), 6, "levels.member.l1", "rate must be between 0 and 1"),
        (ONE_LEVEL.replace('l1: "10%"', "l1: ten"), 6, "levels.member.l1", "not a rate"),
        (ONE_LEVEL + "bonus: 5\n", 8, "bonus", "unknown key"),
        (ONE_LEVEL + "    colour: red\n", 8, "levels.member.colour", "unknown key"),
        (
            ONE_LEVEL + 'badges:\n  star:\n    when: "salez_30d > 1"\n',
            10,
            "badges.star.when",
            "unknown metric 'salez_30d'",
        ),
        (ONE_LEVEL + 'badges:\n  star:\n    when: "sales_30d >"\n', 10, "badges.star.when", "syntax error"),
        (ONE_LEVEL + 'badges:\n  star:\n    when: "level >= 5"\n', 10, "badges.star.when", "level is text"),
        (ONE_LEVEL + 'eligibility: "$now > 0"\n', 8, "eligibility", "not allowed"),
        (ONE_LEVEL.replace('min_withdrawal: "50.00"', "min_withdrawal: 50.001"), 2, "min_withdrawal", "decimal"),
        (ONE_LEVEL.replace('min_withdrawal: "50.00"', "min_withdrawal: -5"), 2, "min_withdrawal", "negative"),
        (ONE_LEVEL.replace('min_withdrawal: "50.00"\n', ""), 1, "min_withdrawal", "missing"),
        (ONE_LEVEL.replace("version: 1", "version: 1\ncurrency: XYZ"), 2, "currency", "unknown currency"),
        (ONE_LEVEL + "hold_days: -1\n", 8, "hold_days", "greater than or equal to 0"),
        (ONE_LEVEL + 'hold_days: "14"\n', 8, "hold_days", "integer"),
        (ONE_LEVEL + 'cap_per_order: "0"\n', 8, "cap_per_order", "more than zero"),
        (ONE_LEVEL + '    promote_when: "sales_30d > 1"\n', 8, "levels.member.promote_when", "first level"),
        (ONE_LEVEL.replace("  member:", "  Member:"), 4, "levels.Member", "should match pattern"),
        (ONE_LEVEL + "l3_enabled: maybe\n", 8, "l3_enabled", "boolean"),
        (ONE_LEVEL + "levels: {}\n", 8, "levels", "duplicate key"),
        (ONE_LEVEL + "pools:\n  p:\n    share: 1%\n    period: daily\n", 11, "pools.p.period", "weekly"),
    ],
)
def test_plan_errors_name_line_and_field(text: str, line: int, field: str, message: str) -> None:
    with pytest.raises(PlanError) as caught:
        load_plan(text, "plan.yaml")
    first = caught.value.issues[0]
    assert first.startswith(f"plan.yaml line {line}: {field}: "), first
    assert message in first


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("- 1\n- 2\n", "must be a mapping"),
        ("version: 1\n  levels: [\n", "line 2: not valid YAML"),
        ("version: 1\nx: .nan\n", "x: not a number"),
    ],
)
def test_plan_that_is_not_a_plan(text: str, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        load_plan(text)


def test_no_float_reaches_money_or_rates() -> None:
    data = {
        "version": 1,
        "min_withdrawal": 50.0,
        "levels": {"member": {"title": {"zh": "会员", "en": "Member"}, "l1": 0.1, "l2": "3%"}},
    }
    with pytest.raises(Exception, match="not a float") as caught:
        Plan.from_data(data)
    assert "min_withdrawal" in str(caught.value)
    assert "l1" in str(caught.value)


def test_unquoted_decimals_are_read_exactly() -> None:
    p = load_plan(ONE_LEVEL.replace('"10%"', "0.10").replace('"50.00"', "50.00"))
    assert p.levels["member"].l1 == Decimal("0.10")
    assert p.min_withdrawal == Money(5000, "CNY")


def test_pools_load() -> None:
    p = load_plan(
        ONE_LEVEL
        + """\
pools:
  gold_quarterly:
    share: "1%"
    period: quarterly
    qualify: "level == 'gold' and sales_30d >= 10"
    split: by_gmv
    cap: "20000.00"
"""
    )
    pool = p.pools["gold_quarterly"]
    assert (pool.share, pool.period, pool.split, pool.cap) == (
        Decimal("0.01"),
        PoolPeriod.QUARTERLY,
        PoolSplit.BY_GMV,
        Money(2_000_000, "CNY"),
    )
    assert pool.qualify is not None
    assert pool.qualify.evaluate({"level": "gold", "sales_30d": 10})


def test_money_in_plan_uses_the_plan_currency() -> None:
    p = load_plan(ONE_LEVEL.replace("version: 1", "version: v2\ncurrency: JPY").replace('"50.00"', '"500"'))
    assert p.min_withdrawal == Money(500, "JPY")
    assert p.version == "v2"


@pytest.mark.parametrize(
    "text",
    [
        "a: &a [*a]\n",  # an anchor that contains itself
        "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",  # an alias bomb
    ],
)
def test_hostile_yaml_is_refused_quickly(text: str) -> None:
    with pytest.raises(PlanError, match="too large or too deeply nested"):
        load_plan(text)


def test_plan_money_must_be_in_the_plan_currency() -> None:
    data = {
        "version": 1,
        "min_withdrawal": Money(5000, "USD"),
        "levels": {"member": {"title": {"zh": "会员", "en": "Member"}, "l1": "10%", "l2": "3%"}},
    }
    with pytest.raises(Exception, match="in CNY"):
        Plan.from_data(data)


def test_cap_smaller_than_the_lines_leaves_out_zero_shares() -> None:
    order = Order("o", cny("300.00"), items=(OrderItem(cny("100.00"), "gift_cards"), OrderItem(cny("200.00"))))
    lines = commission_lines(plan(CATEGORIES + 'cap_per_order: "0.01"\n'), order, [Earner(2, "member")])
    assert [(line.rule, line.amount, line.capped) for line in lines] == [("levels.member.l1", cny("0.01"), True)]
