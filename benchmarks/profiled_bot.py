"""`run_bot.py` under cProfile for the measured window only (benchmarks/e2e_http.py --profile): SIGUSR1 starts
profiling, SIGUSR2 stops it and writes the stats to the file named on the command line. Start-up (imports, schema
building) is left out, so what remains is the cost of handling updates.

`python -m benchmarks.profiled_bot STATS_FILE` with run_bot.py's environment (PYTHONPATH must name the project).
"""

from __future__ import annotations

import cProfile
import signal
import sys
from types import FrameType

import run_bot


def main(stats_file: str) -> int:
    profile = cProfile.Profile()

    def start(signum: int, frame: FrameType | None) -> None:
        profile.enable()

    def stop(signum: int, frame: FrameType | None) -> None:
        profile.disable()
        profile.dump_stats(stats_file)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    sys.argv = ["run_bot.py"]
    return run_bot.entry()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
