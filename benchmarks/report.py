"""One table for every scenario: target, achieved, baseline measured in the same run, ratio, pass/fail."""

from __future__ import annotations

import socket
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Result:
    scenario: str
    metric: str
    target: str
    achieved: float
    baseline: float | None
    passed: bool | None
    """None for a reference row: measured for comparison, with no target of its own."""
    unit: str = ""

    @property
    def ratio(self) -> float | None:
        return self.achieved / self.baseline if self.baseline else None


def render(results: list[Result]) -> str:
    header = ("scenario", "metric", "target", "achieved", "baseline", "ratio", "result")
    rows = [
        (
            r.scenario,
            r.metric,
            r.target,
            f"{r.achieved:,.2f}{r.unit}",
            f"{r.baseline:,.2f}{r.unit}" if r.baseline is not None else "-",
            f"{r.ratio:.2f}x" if r.ratio is not None else "-",
            "ref" if r.passed is None else "PASS" if r.passed else "FAIL",
        )
        for r in results
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)) for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def all_passed(results: list[Result]) -> bool:
    """Every row with a target met it (reference rows have none)."""
    return all(r.passed is not False for r in results)


def reachable(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a local service (PostgreSQL, Redis) accepts connections, so a scenario can run or be left out."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False
