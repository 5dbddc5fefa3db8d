"""`python -m benchmarks [--quick]`: every scenario, one table of achieved vs target vs baseline.

The scenarios (benchmarks/suite.py) are imported only once the run starts: a process spawned from this one (the
digest job's chart workers) imports this module again, and should pay for what a bot's chart workers pay for, the few
imports at the top of run_bot.py, not for aiogram and every scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import sys


def main() -> int:
    from benchmarks.suite import run_all

    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="a shorter run (about a minute)")
    return asyncio.run(run_all(parser.parse_args().quick))


if __name__ == "__main__":
    sys.exit(main())
