"""The benchmark table: a reference row (no target) reads "ref" and neither passes nor fails the run."""

from __future__ import annotations

from benchmarks.report import Result, all_passed, render


def _row(passed: bool | None) -> Result:
    return Result("scenario", "updates/s vs bare", "target", 100.0, 400.0, passed, "/s")


def test_reference_rows_read_ref_and_do_not_decide_the_run() -> None:
    table = render([_row(True), _row(None), _row(False)]).splitlines()
    assert [line.split()[-1] for line in table[2:]] == ["PASS", "ref", "FAIL"]
    assert "0.25x" in table[3]
    assert all_passed([_row(True), _row(None)])
    assert not all_passed([_row(None), _row(False)])
