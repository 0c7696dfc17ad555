"""`import smallvision` and `smallvision --help` must each take under 1.5 s (lazy heavy imports).

python benchmarks/bench_import.py [--quick]   # median of 5 fresh processes each (--quick: 1, not saved)
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
    quick = "--quick" in sys.argv[1:]
    repeat = 1 if quick else 5
    imp = timed([sys.executable, "-c", "import smallvision"], repeat)
    helps = timed([sys.executable, "-m", "smallvision.cli", "--help"], repeat)
    if quick:
        print({"import_seconds": imp, "help_seconds": helps})
        return
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
