"""Run report targets: the report of a 10-class run stays under 5 MB and builds in under 10 s.

    python benchmarks/bench_report.py [--rounds 3] [--epochs 2] [--quick]

Trains ``examples/mnist.yaml`` (MNIST-5k, 10 classes, 1,000 test images) for ``--epochs`` epochs
without a report, then builds its report ``--rounds`` times each way, alternating: as a user does,
``smallvision report DIR`` in a fresh process (imports, matplotlib's start-up and the page), and
``smallvision.report.html.build_report`` in this process (reading, checks, figures and the page;
what ``BuiltReport.seconds`` measures). Size: the bytes of ``report.html``. Results:
benchmarks/results/report.json (``--quick``: 1 epoch, 1 round, printed and not saved).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, cpu_facts, load_quiet_enough, save, shown  # noqa: E402

import smallvision  # noqa: E402
from smallvision.report.html import build_report  # noqa: E402

CONFIG = ROOT / "examples" / "mnist.yaml"
TARGET_MB = 5.0
TARGET_SECONDS = 10.0


def cli_build(run_dir: Path) -> float:
    """Wall seconds of ``smallvision report DIR`` in a fresh interpreter."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "smallvision", "report", str(run_dir)], check=True,
                   capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})  # fmt: skip
    return time.perf_counter() - start


def measure(args, tmp: Path) -> dict:
    overrides = {"train.epochs": args.epochs, "train.progress": False, "report.enabled": False}
    result = smallvision.run(str(CONFIG), output_dir=str(tmp), **overrides)
    cli, api = [], []
    for i in range(args.rounds):  # alternate, so a neighbour's burst lands on both
        for side in (cli, api) if i % 2 == 0 else (api, cli):
            side.append(cli_build(result.dir) if side is cli else build_report(result.dir).seconds)
    built = build_report(result.dir)
    html = built.path.read_text(encoding="utf-8")
    size_mb = built.size / 1e6
    return {
        "config": shown(CONFIG),
        "overrides": overrides,
        "classes": len(result.metrics.heads["label"].classes or []),
        "test_images": result.metrics.data.sizes.get("test"),
        "test_accuracy": result.metrics.test["label"]["accuracy"],
        "size_bytes": built.size,
        "size_mb": round(size_mb, 3),
        "images_on_page": len(re.findall(r"<img\b", html)),
        "cli_seconds": [round(x, 2) for x in cli],
        "build_report_seconds": [round(x, 2) for x in api],
        "target": {"size_mb": TARGET_MB, "seconds": TARGET_SECONDS,
                   "met": size_mb < TARGET_MB and min(cli) < TARGET_SECONDS},
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="smoke test: 1 epoch, 1 round, not saved")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.epochs = 1, 1
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        results = measure(args, Path(tmp))
    summary = {
        "command": "python benchmarks/bench_report.py " + " ".join(sys.argv[1:]),
        "epochs": args.epochs,
        "rounds": args.rounds,
        "cpu_model": cpu_facts()["cpu_model"],
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "timing_valid": load_quiet_enough(load_before),
        **results,
    }
    if args.quick:
        print(summary)
        return
    save("report", summary)


if __name__ == "__main__":
    main()
