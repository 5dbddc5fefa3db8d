"""The commission plan: a versioned YAML file of levels, rates, conditions and badges, and the pure decisions
made from it (commission lines for an order, a partner's level, their badges).

Loading: `load_plan(text, source)` takes the YAML text (reading the file happens elsewhere) and either returns
a validated `Plan` or raises `PlanError`, whose message names the file, line and field, e.g.
``plan.yaml line 12: levels.gold.l1: rate must be between 0 and 1``. Unknown keys are errors.

Conditions (`promote_when`, `demote_when`, badges' `when`, `eligibility`, pools' `qualify`) are expressions of
the rule-engine library (no eval, no parser of ours), compiled at load time against the metric catalogue
`METRICS`: an unknown metric, a syntax error, a type error (`level >= 5`) or an expression that is not
true/false is a load error. Built-ins (`$now`, `$random`, ...) are refused: a condition reads metrics only,
so the same metrics always give the same decision.

Decisions made here, for the record:
- Rates are those of the earner's level: L1 is paid the L1 rate of the attributed partner's level, L2 the L2 rate
  of the upline's own level, L3 (only when `l3_enabled`) the L3 rate of the third partner's level.
- A category override replaces, per item line, the level's rate for the tiers it names; tiers it leaves out keep
  the level's rate. Items sharing a rule are summed first and rounded once (ROUND_HALF_UP, see money.py).
- `cap_per_order` caps what each earner (each tier) earns from one order, not the sum over tiers. When an
  earner's lines exceed it, the cap is shared between their lines in proportion (exactly, largest remainder)
  and those lines are marked `capped`.
- Self-purchase (the buyer is the attributed partner): with `self_purchase_rebate` off the buyer earns no L1;
  their uplines still earn L2/L3 as on any other order. With it on, the buyer earns L1 like any partner.
- An earner who is not eligible (see `is_eligible`) is skipped; their share is not passed up (no compression).
- Lines that round to zero are left out.
- Levels: promotion goes straight to the highest level above the current one whose `promote_when` holds;
  otherwise, if the current level's `demote_when` holds, the partner drops one level; otherwise they stay.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any, Self

import rule_engine
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    PlainValidator,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import core_schema
from rule_engine.builtins import Builtins

from bot.domain.model_files import FieldError
from bot.domain.money import (
    CURRENCY_EXPONENTS,
    CurrencyMismatchError,
    Money,
    MoneyError,
    exponent,
    parse_money,
    percent_of,
    split,
)

# --- the metric catalogue --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricSpec:
    type: type[int] | type[str]
    description_en: str
    description_zh: str


METRICS: dict[str, MetricSpec] = {
    "sales_30d": MetricSpec(
        int,
        "Orders attributed to the partner (as L1) in the last 30 days, refunded ones excluded",
        "近30天归属订单数（不含退款）",
    ),
    "gmv_30d_minor": MetricSpec(
        int, "Value of those orders, in minor units (fen: 15000 is ¥150.00)", "近30天归属订单金额（单位：分）"
    ),
    "orders_total": MetricSpec(int, "Orders attributed to the partner since joining", "加入以来归属订单总数"),
    "active_recruits": MetricSpec(
        int,
        "Direct recruits with any action (share, follow-up, order) in the last 30 days",
        "近30天有动作的直属下级人数",
    ),
    "recruits_total": MetricSpec(int, "Direct recruits ever", "直属下级总人数"),
    "shares_7d": MetricSpec(int, "Content shares in the last 7 days", "近7天分享次数"),
    "shares_30d": MetricSpec(int, "Content shares in the last 30 days", "近30天分享次数"),
    "followups_7d": MetricSpec(int, "Customer follow-ups recorded in the last 7 days", "近7天客户跟进次数"),
    "revisits_30d": MetricSpec(
        int, "Returning visitors to the partner's tracked links in the last 30 days", "近30天回访客户数"
    ),
    "streak_days": MetricSpec(
        int,
        "Consecutive local days with at least one share or follow-up, ending today (or yesterday while today has "
        "none yet); days covered by a streak freeze keep it without adding to it",
        "连续打卡天数（每天至少一次分享或跟进；今天尚未行动时计到昨天；冻结卡保住的日子不加天数）",
    ),
    "days_since_join": MetricSpec(int, "Days since the partner joined", "加入天数"),
    "level": MetricSpec(str, "The partner's current level name, e.g. 'silver'", "当前等级名，如 'silver'"),
    "courses_completed": MetricSpec(
        int, "Courses of /learn the partner completed (every lesson's quiz passed), ever", "已完成的课程数"
    ),
    "shares_total": MetricSpec(int, "Content shares since joining", "加入以来分享次数"),
    "leads_total": MetricSpec(int, "Prospects added since joining", "加入以来添加的潜在客户数"),
    "followups_total": MetricSpec(int, "Customer follow-ups recorded since joining", "加入以来客户跟进次数"),
    "sprint_wins": MetricSpec(int, "Monthly sprints the partner finished among the winners", "月度冲刺获胜次数"),
}
"""Every name a condition may use. Metrics are computed by services from events, orders and the referral tree
and handed to the domain as a plain mapping; the `_30d`/`_7d` windows end at the evaluation's day."""

MetricValue = int | str
Metrics = Mapping[str, MetricValue]

_ENGINE_TYPES = {int: rule_engine.DataType.FLOAT, str: rule_engine.DataType.STRING}
_TYPE_WORDS = {int: "number", str: "text"}


class PlanError(ValueError):
    """A plan that does not load; each line of the message names the source, line and field."""

    def __init__(self, issues: Sequence[str]) -> None:
        super().__init__("\n".join(issues))
        self.issues = list(issues)


class ConditionError(ValueError):
    """A condition that does not compile against the metric catalogue."""


class MetricsError(ValueError):
    """Metrics handed to a condition are missing or of the wrong type (a bug in the caller, not in the plan)."""


# --- conditions ------------------------------------------------------------------------------------------------


class _NoBuiltins(Mapping[str, Any]):
    """Type table for `$name` built-ins that refuses every name, so `$now` fails when the condition compiles."""

    def __getitem__(self, name: str) -> Any:
        raise rule_engine.errors.SymbolResolutionError(name, symbol_scope=Builtins.scope_name)

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __bool__(self) -> bool:
        return True  # Builtins replaces an empty (falsy) table with its own


def _context() -> Any:
    context = rule_engine.Context(
        type_resolver={name: _ENGINE_TYPES[spec.type] for name, spec in METRICS.items()},
        default_timezone="utc",
        mapping_attribute_lookup=False,
    )
    context.builtins = Builtins({}, timezone=context.default_timezone, value_types=_NoBuiltins())
    return context


class Condition:
    """A compiled expression over metrics, e.g. ``sales_30d >= 5 and active_recruits >= 2``."""

    __slots__ = ("_rule", "metrics", "text")

    def __init__(self, text: str) -> None:
        self.text = text.strip()
        context = _context()
        try:
            self._rule = rule_engine.Rule(self.text, context=context)
        except rule_engine.errors.SymbolResolutionError as exc:
            if exc.symbol_scope == Builtins.scope_name:
                raise ConditionError(f"${exc.symbol_name} is not allowed: conditions read metrics only") from None
            hint = f", did you mean {exc.suggestion!r}?" if exc.suggestion else " (see the metric catalogue)"
            raise ConditionError(f"unknown metric {exc.symbol_name!r}{hint}") from None
        except rule_engine.errors.RuleSyntaxError as exc:
            raise ConditionError(f"{exc.message} in {self.text!r}") from None
        except rule_engine.errors.EngineError as exc:
            used = sorted(name for name in context.symbols if name in METRICS)
            types = ", ".join(f"{name} is {_TYPE_WORDS[METRICS[name].type]}" for name in used)
            raise ConditionError(f"{exc.message} in {self.text!r} ({types})") from None
        if self._rule.statement.expression.result_type != rule_engine.DataType.BOOLEAN:
            raise ConditionError(f"{self.text!r} is not true/false; compare it, e.g. 'sales_30d >= 5'")
        self.metrics = frozenset(context.symbols & METRICS.keys())

    def evaluate(self, metrics: Metrics) -> bool:
        for name in self.metrics:
            if name not in metrics:
                raise MetricsError(f"metric {name!r} is needed by {self.text!r} but was not given")
            value, wanted = metrics[name], METRICS[name].type
            if type(value) is not wanted:
                raise MetricsError(f"metric {name!r} must be {_TYPE_WORDS[wanted]}, got {value!r}")
        return bool(self._rule.evaluate({name: metrics[name] for name in self.metrics}))

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Condition) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    @classmethod
    def _validate(cls, value: object) -> Self:
        if isinstance(value, cls):
            return value
        if not isinstance(value, str) or not value.strip():
            raise ValueError("a condition is text like 'sales_30d >= 5'")
        return cls(value)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: type[Any], handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate, serialization=core_schema.plain_serializer_function_ser_schema(lambda c: c.text)
        )


# --- field types -----------------------------------------------------------------------------------------------

_RATE_TEXT = re.compile(r"^\d+(\.\d+)?%?$")


def _rate(value: object) -> Decimal:
    """A rate from '10%', '0.10', an unquoted 0.10 (the loader reads it as a Decimal) or 0. No floats."""
    if isinstance(value, bool | float):
        raise ValueError("write a rate as '10%' or '0.10', not a float")
    if isinstance(value, str):
        text = value.strip()
        if not _RATE_TEXT.match(text):
            raise ValueError(f"not a rate: {value!r} (write '10%' or '0.10')")
        rate = Decimal(text[:-1]) / 100 if text.endswith("%") else Decimal(text)
    elif isinstance(value, int | Decimal):
        rate = Decimal(value)
    else:
        raise ValueError("write a rate as '10%' or '0.10'")
    if not rate.is_finite() or not 0 <= rate <= 1:
        raise ValueError("rate must be between 0 and 1 (0% to 100%)")
    return rate


def _version(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _plan_money(value: object, info: ValidationInfo) -> Money:
    """Money in the plan's currency, from text like '50.00' (the loader passes the plan's currency as context)."""
    context = info.context if isinstance(info.context, dict) else {}
    currency = context.get("currency") or info.data.get("currency") or DEFAULT_CURRENCY
    if isinstance(value, Money):
        if value.currency != currency or value.minor < 0:
            raise ValueError(f"must be a non-negative amount in {currency}")
        return value
    if isinstance(value, float):
        raise ValueError("write money as text like '50.00', not a float")
    if not isinstance(value, str | int | Decimal):
        raise ValueError("write money as text like '50.00'")
    try:
        return parse_money(value, currency)
    except MoneyError as exc:
        raise ValueError(str(exc)) from None


DEFAULT_CURRENCY = "CNY"
Rate = Annotated[Decimal, BeforeValidator(_rate)]
PlanMoney = Annotated[Money, PlainValidator(_plan_money)]
Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
CategoryName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Version = Annotated[str, BeforeValidator(_version), StringConstraints(min_length=1, max_length=32)]
TIERS = (1, 2, 3)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Titles(_Model):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class Level(_Model):
    title: Titles
    l1: Rate
    l2: Rate
    l3: Rate = Decimal(0)
    promote_when: Condition | None = None
    """Reaching this level from a lower one (the first level has none: everyone starts there)."""
    demote_when: Condition | None = None
    """Dropping from this level to the one below (the first level has none)."""

    def rate(self, tier: int) -> Decimal:
        rates = {1: self.l1, 2: self.l2, 3: self.l3}
        return rates[tier]


class TierRates(_Model):
    """A category's rates for one level; a tier left out keeps the level's rate."""

    l1: Rate | None = None
    l2: Rate | None = None
    l3: Rate | None = None

    def rate(self, tier: int) -> Decimal | None:
        rates = {1: self.l1, 2: self.l2, 3: self.l3}
        return rates[tier]


DEFAULT_BADGE_ICON = "🏅"


def _icon(value: object) -> object:
    if isinstance(value, str):
        value = value.strip()
        if not value or len(value) > 8 or any(ch.isalnum() or ch in "<>&" for ch in value):
            raise ValueError("an icon is one emoji, e.g. '🔥'")
    return value


class Badge(_Model):
    title: Titles | None = None
    icon: Annotated[str, BeforeValidator(_icon)] = DEFAULT_BADGE_ICON
    """Shown before the badge's name in /me and in its notice; plans stored before icons existed get 🏅."""
    when: Condition | None = None
    """Awarded when this holds on the partner's metrics; None: only a playbook step's reward awards it (the
    7-day start's `starter_7day`), the plan gives its names and icon."""


class PoolPeriod(StrEnum):
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"


class PoolSplit(StrEnum):
    EQUAL = "equal"
    BY_GMV = "by_gmv"
    BY_POINTS = "by_points"


class Pool(_Model):
    """A dividend pool: `share` of the period's GMV (the whole network's, or one `team`'s), split between the
    partners who `qualify` (and, within a team pool, belong to the team). See bot.domain.pools."""

    title: Titles | None = None
    share: Rate
    period: PoolPeriod
    team: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")] | None = None
    """The invite code of the team's root partner: the pool is that partner's referral subtree (the root
    included) — its GMV, its recipients. None: the whole network."""
    qualify: Condition | None = None
    split: PoolSplit = PoolSplit.EQUAL
    cap: PlanMoney | None = None
    """At most this much to one partner in one period; what the cap cuts is not shared again, it stays with
    the platform as part of the pool's remainder (shown in the preview)."""


class Plan(_Model):
    """One version of the commission plan. Levels are listed lowest first."""

    version: Version
    """Recorded on every ledger entry the plan produces."""
    currency: str = DEFAULT_CURRENCY
    levels: dict[Name, Level] = Field(min_length=1)
    l3_enabled: bool = False
    categories: dict[CategoryName, dict[Name, TierRates]] = Field(default_factory=dict)
    cap_per_order: PlanMoney | None = None
    self_purchase_rebate: bool = False
    hold_days: int = Field(default=14, ge=0, le=365, strict=True)
    min_withdrawal: PlanMoney
    eligibility: Condition | None = None
    """Who earns commission at all; no condition means every partner does."""
    badges: dict[Name, Badge] = Field(default_factory=dict)
    pools: dict[Name, Pool] = Field(default_factory=dict)

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        try:
            exponent(value)
        except MoneyError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        first = next(iter(self.levels))
        for field in ("promote_when", "demote_when"):
            if getattr(self.levels[first], field) is not None:
                message = f"the first level ({first}) is where everyone starts: it has no {field}"
                raise FieldError(("levels", first, field), message)
        for category, by_level in self.categories.items():
            for level in by_level:
                if level not in self.levels:
                    known = ", ".join(self.levels)
                    raise FieldError(("categories", category, level), f"unknown level {level!r} (levels: {known})")
        if self.cap_per_order is not None and self.cap_per_order.minor <= 0:
            raise FieldError(("cap_per_order",), "cap must be more than zero")
        return self

    @classmethod
    def from_data(cls, data: object) -> Plan:
        """Validate plain data (from YAML); money fields are read in the plan's own currency."""
        currency = data.get("currency") if isinstance(data, dict) else None
        context = {
            "currency": currency if isinstance(currency, str) and currency in CURRENCY_EXPONENTS else DEFAULT_CURRENCY
        }
        return cls.model_validate(data, context=context)

    def rate(self, level: str, tier: int, category: str | None = None) -> tuple[Decimal, str]:
        """The rate an earner of `level` gets on `tier` for an item of `category`, and the rule that set it."""
        override = self.categories.get(category, {}).get(level) if category is not None else None
        rate = override.rate(tier) if override is not None else None
        if rate is not None:
            return rate, f"categories.{category}.{level}.l{tier}"
        return self.level(level).rate(tier), f"levels.{level}.l{tier}"

    def level(self, name: str) -> Level:
        try:
            return self.levels[name]
        except KeyError:
            raise ValueError(f"level {name!r} is not in plan {self.version}") from None


# --- loading ---------------------------------------------------------------------------------------------------

_FLOAT_TAG = "tag:yaml.org,2002:float"
_MERGE_TAG = "tag:yaml.org,2002:merge"
Path = tuple[str | int, ...]


def load_plan(text: str, source: str = "plan.yaml") -> Plan:
    """Parse and validate a plan from YAML text; `PlanError` names `source`, the line and the field."""
    lines: dict[Path, int] = {}
    try:
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:  # a control character: the reader refuses the text before parsing it
        raise PlanError([f"{source} line 1: not valid YAML: {' '.join(str(exc).split())}"]) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise PlanError([f"{source}: the plan is empty"])
        data = _Reader(loader, lines, source).data(node, ())
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else 1
        raise PlanError([f"{source} line {line}: not valid YAML: {exc.problem}"]) from None
    except PlanError:
        raise
    except (ValueError, RecursionError) as exc:  # a date PyYAML can't build (2026-02-30); nesting past its stack
        problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise PlanError([f"{source}: not valid YAML: {problem}"]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise PlanError([f"{source} line 1: the plan must be a mapping of keys (version, levels, ...)"])
    try:
        return Plan.from_data(data)
    except ValidationError as exc:
        raise PlanError([_issue(error, source, lines) for error in exc.errors()]) from None


class _Reader:
    """Plain data from YAML nodes, recording the line of every key; floats become exact Decimals.

    Aliases are expanded, so a node budget and a depth limit keep an alias bomb or a self-referencing
    anchor from hanging the loader."""

    MAX_NODES = 20_000
    MAX_DEPTH = 32

    def __init__(self, loader: yaml.SafeLoader, lines: dict[Path, int], source: str) -> None:
        self.loader, self.lines, self.source = loader, lines, source
        self.budget = self.MAX_NODES

    def fail(self, line: int, path: Path, message: str) -> PlanError:
        return PlanError([f"{self.source} line {line}: {_dotted(path) or 'plan'}: {message}"])

    def data(self, node: yaml.Node, path: Path) -> object:
        line = node.start_mark.line + 1
        self.lines.setdefault(path, line)
        self.budget -= 1
        if self.budget < 0 or len(path) > self.MAX_DEPTH:
            raise self.fail(line, path, "the plan is too large or too deeply nested")
        if isinstance(node, yaml.MappingNode):
            result: dict[object, object] = {}
            for key_node, value_node in node.value:
                line = key_node.start_mark.line + 1
                if key_node.tag == _MERGE_TAG or not isinstance(key_node, yaml.ScalarNode):
                    raise self.fail(line, path, "keys must be plain names")
                key = self.loader.construct_object(key_node)
                if key in result:
                    raise self.fail(line, (*path, str(key)), "duplicate key")
                self.lines[(*path, str(key))] = line
                result[key] = self.data(value_node, (*path, str(key)))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.data(item, (*path, i)) for i, item in enumerate(node.value)]
        if node.tag == _FLOAT_TAG:
            try:
                number = Decimal(str(node.value).replace("_", ""))
            except InvalidOperation:
                number = Decimal("NaN")
            if not number.is_finite():
                raise self.fail(line, path, f"not a number: {node.value}")
            return number
        return self.loader.construct_object(node)


def _dotted(path: Sequence[object]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out


def _issue(error: Any, source: str, lines: Mapping[Path, int]) -> str:
    loc: Path = tuple(part for part in error["loc"] if part != "[key]")
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, FieldError):
        loc = (*loc, *cause.path)
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "required, but missing"
    elif isinstance(cause, Exception):
        message = str(cause)
    else:
        message = error["msg"]
    line = next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), 1)
    return f"{source} line {line}: {_dotted(loc) or 'plan'}: {message}"


# --- decisions -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderItem:
    amount: Money
    category: str | None = None


@dataclass(frozen=True, slots=True)
class Order:
    """A paid order attributed to `chain[0]` of `commission_lines`. Without items it is one uncategorised line."""

    id: str
    amount: Money
    items: tuple[OrderItem, ...] = ()
    self_purchase: bool = False
    """The buyer is the attributed partner."""

    def __post_init__(self) -> None:
        if self.amount.minor < 0:
            raise ValueError("an order amount is not negative")
        if not self.items:
            return
        if any(item.amount.currency != self.amount.currency for item in self.items):
            raise CurrencyMismatchError(f"order {self.id}: items in another currency than the order")
        if sum(item.amount.minor for item in self.items) != self.amount.minor:  # ints: settlement's hot path
            raise ValueError(f"order {self.id}: items do not add up to the order amount")

    def lines(self) -> tuple[OrderItem, ...]:
        return self.items or (OrderItem(self.amount),)


@dataclass(frozen=True, slots=True)
class Earner:
    """A partner in the order's chain: the attributed partner first, then their upline, nearest first."""

    partner_id: int
    level: str
    eligible: bool = True
    """From `is_eligible` on the partner's metrics; an ineligible partner earns nothing on the order."""


@dataclass(frozen=True, slots=True)
class CommissionLine:
    order_id: str
    earner_id: int
    tier: int
    level: str
    rate: Decimal
    base: Money
    amount: Money
    rule: str
    """The plan entry that set the rate: 'levels.gold.l1' or 'categories.tea.gold.l1'."""
    plan_version: str
    capped: bool = False


def commission_lines(plan: Plan, order: Order, chain: Sequence[Earner]) -> list[CommissionLine]:
    """What each partner in `chain` earns from `order`, one line per earner and rule (see the module docstring)."""
    if order.amount.currency != plan.currency:
        raise ValueError(f"order {order.id} is in {order.amount.currency}, plan {plan.version} in {plan.currency}")
    tiers = 3 if plan.l3_enabled else 2
    result: list[CommissionLine] = []
    for tier, earner in enumerate(chain[:tiers], start=1):
        if tier == 1 and order.self_purchase and not plan.self_purchase_rebate:
            continue
        if not earner.eligible:
            continue
        bases: dict[str, tuple[Decimal, Money]] = {}
        for item in order.lines():
            rate, rule = plan.rate(earner.level, tier, item.category)
            _, base = bases.get(rule, (rate, Money.zero(plan.currency)))
            bases[rule] = (rate, base + item.amount)
        lines = [
            CommissionLine(order.id, earner.partner_id, tier, earner.level, rate, base, amount, rule, plan.version)
            for rule, (rate, base) in bases.items()
            if (amount := percent_of(base, rate)).minor > 0
        ]
        result += _capped(lines, plan.cap_per_order)
    return result


def _capped(lines: list[CommissionLine], cap: Money | None) -> list[CommissionLine]:
    if cap is None or not lines or sum(line.amount.minor for line in lines) <= cap.minor:
        return lines
    shares = split(cap, [line.amount.minor for line in lines])
    return [
        CommissionLine(
            line.order_id, line.earner_id, line.tier, line.level, line.rate, line.base, share,
            line.rule, line.plan_version, capped=True,
        )
        for line, share in zip(lines, shares, strict=True)
        if share.minor > 0
    ]  # fmt: skip


def evaluate_level(plan: Plan, current_level: str, metrics: Metrics) -> str:
    """The level a partner should hold now: the highest level above `current_level` whose `promote_when` holds,
    else one level down if the current level's `demote_when` holds, else `current_level`.
    The `level` metric is set to `current_level` for the conditions."""
    plan.level(current_level)
    names = list(plan.levels)
    here = names.index(current_level)
    metrics = {**metrics, "level": current_level}
    for name in reversed(names[here + 1 :]):
        promote = plan.levels[name].promote_when
        if promote is not None and promote.evaluate(metrics):
            return name
    demote = plan.levels[current_level].demote_when
    if here > 0 and demote is not None and demote.evaluate(metrics):
        return names[here - 1]
    return current_level


def earned_badges(plan: Plan, metrics: Metrics) -> set[str]:
    """The badges whose condition holds on `metrics` (awarding only new ones is the caller's business)."""
    return {name for name, badge in plan.badges.items() if badge.when is not None and badge.when.evaluate(metrics)}


def is_eligible(plan: Plan, metrics: Metrics) -> bool:
    """Whether a partner earns commission at all under the plan's `eligibility` condition (none: everyone does)."""
    return plan.eligibility is None or plan.eligibility.evaluate(metrics)
