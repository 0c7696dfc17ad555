"""`import smallvision` and `smallvision --help` must each take under 1.5 s (lazy heavy imports).

python benchmarks/bench_import.py       # median of 5 fresh processes each
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import save  # noqa: E402


def timed(cmd: list[str], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    imp = timed([sys.executable, "-c", "import smallvision"])
    helps = timed([sys.executable, "-m", "smallvision.cli", "--help"])
    save(
        "import",
        {
            "command": "python benchmarks/bench_import.py",
            "import_seconds_median": imp,
            "help_seconds_median": helps,
            "target_seconds": 1.5,
            "meets_targets": imp < 1.5 and helps < 1.5,
        },
    )


if __name__ == "__main__":
    main()
