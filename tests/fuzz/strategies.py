"""Hypothesis strategies shared by the fuzz tests: hostile command arguments, JSON values and YAML-able data."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXPLORE = os.environ.get("FUZZ_EXPLORE") == "1"
"""`FUZZ_EXPLORE=1`: ten times the examples from a random seed each run, to hunt for new bugs locally. Otherwise
the examples are derived from each test's name (the same every run), so CI is deterministic."""


def fuzz_settings(max_examples: int) -> settings:
    """Bounded examples (each may be a whole update or HTTP request), no per-example deadline, derandomized."""
    return settings(
        max_examples=max_examples * 10 if EXPLORE else max_examples,
        deadline=None,
        derandomize=not EXPLORE,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


NASTY_TOKENS = (
    "",
    "#",
    "|",
    "||",
    "%",
    "-",
    "0",
    "-1",
    "#0",
    "#-1",
    "²",  # isdigit() but not int()-able
    "#²",
    "١٢",  # Arabic-Indic digits
    "１２",  # full-width digits
    "\x00",
    "\x1b[31m",
    "\r\n",
    "\u202e",  # right-to-left override
    "\ufeff",
    "\ud7ff",
    "🙂",
    "𝟘𝟙",  # mathematical digits
    "1e9999",
    "NaN",
    "inf",
    "-0.00",
    "99.999",
    "1,000.00",
    "9" * 40,
    "9" * 300,
    "2026-12-05",
    "2026-02-30",
    "9999-12-31",
    "0000-00-00",
    "2026-12-05 19:30",
    "25:61",
    "19：30",
    "tomorrow",
    "明天10点",
    "in 2 hours",
    "3d",
    "today",
    "7d",
    "30d",
    "month",
    "week",
    "sprint",
    "network",
    "team",
    "gmv",
    "add",
    "list",
    "archive",
    "restore",
    "price",
    "next",
    "off",
    "on",
    "tz",
    "Asia/Shanghai",
    "../../etc/passwd",
    "push",
    "quiet",
    "22:00-08:00",
    "digest",
    "lead",
    "admin",
    "partner",
    "gold",
    "silver",
    "50%",
    "150%",
    "@someone",
    "+8613800000000",
    "wx:abc",
    "微信:abc",
    "https://shop.example.com/x",
    "javascript:alert(1)",
    "<b>",
    "</i>&amp;",
    "{link}",
    "%(x)s",
    "SKU-1",
    "CNY",
    "USD",
    "JPY",
    "XXX",
    "orders",
    "leads",
    "partners",
    "ledger",
)


def _huge_int() -> st.SearchStrategy[str]:
    return st.integers(min_value=-(10**40), max_value=10**40).map(str)


TOKEN = st.one_of(
    st.sampled_from(NASTY_TOKENS),
    _huge_int(),
    st.text(max_size=12),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
)
"""One word of hostile input: known keywords and edge cases, huge integers, any unicode incl. control chars."""

SEPARATOR = st.sampled_from([" ", " ", " | ", "|", "\n", "  ", "\t", "，"])

ARGS = st.one_of(
    st.text(max_size=60),
    st.builds(lambda words, sep: sep.join(words), st.lists(TOKEN, max_size=8), SEPARATOR),
    st.builds("|".join, st.lists(TOKEN, min_size=3, max_size=8)),
    st.just("x" * 4000),
)
"""Arguments after a command: free unicode text, or hostile tokens joined by spaces, pipes or newlines."""

JSON_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(NASTY_TOKENS),
)

JSON_VALUE: st.SearchStrategy[Any] = st.recursive(
    JSON_SCALAR,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
"""Any JSON document (valid JSON only: NaN/Infinity are written by other tests as raw bytes)."""


def explains(exc: BaseException) -> None:
    """A refusal must say why: its message is not empty."""
    assert str(exc).strip(), f"{type(exc).__name__} without a message"
