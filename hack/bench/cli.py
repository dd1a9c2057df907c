"""Start-up time of the CLI: ``snn-dra --help`` and ``snn-dra --version``, each in a fresh process.

Usage: python hack/bench/cli.py [RUNS]   (default 7; prints the median wall time of each, no thresholds)
The target is under 0.5 s for both: the root group imports no command module (driver/cli/lazy.py).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

SNN_DRA = Path(sys.executable).parent / "snn-dra"


def median_seconds(args: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([str(SNN_DRA), *args], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    subprocess.run([str(SNN_DRA), "--version"], check=True, capture_output=True)  # warm the page cache
    help_s = median_seconds(["--help"], runs)
    version_s = median_seconds(["--version"], runs)
    print(f"cli-bench: help_s={help_s:.3f} version_s={version_s:.3f}")


if __name__ == "__main__":
    main()
