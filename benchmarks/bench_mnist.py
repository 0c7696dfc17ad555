"""The foundation target: `smallvision run examples/mnist.yaml` trains and evaluates in <= 60 s
on a 2-core CPU with test accuracy >= 98.5%.

    python benchmarks/bench_mnist.py [--seeds 42 43 44]

Each seed is one full run (data loading excluded from the timed part, as the run records it:
train_seconds + eval_seconds from metrics.json). Results: benchmarks/results/mnist.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import save  # noqa: E402

import smallvision  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[42])
    ap.add_argument("--config", default=str(ROOT / "examples" / "mnist.yaml"))
    ap.add_argument("--quick", action="store_true", help="smoke test: one seed, one epoch, not saved")
    args = ap.parse_args()
    quick = {"train.epochs": 1} if args.quick else {}
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            start = time.perf_counter()
            r = smallvision.run(args.config, seed=seed, output_dir=tmp, **{"train.progress": False, **quick})
            wall = time.perf_counter() - start
            m = r.metrics
            runs.append(
                {
                    "seed": seed,
                    "test_accuracy": m.test["label"]["accuracy"],
                    "test_macro_f1": m.test["label"]["macro_f1"],
                    "train_seconds": m.train_seconds,
                    "eval_seconds": m.eval_seconds,
                    "train_plus_eval_seconds": m.train_seconds + m.eval_seconds,
                    "wall_seconds_with_loading_and_report": wall,
                    "epochs_run": m.epochs_run,
                    "best_epoch": m.best_epoch,
                    "n_train": m.data.sizes["train"],
                    "n_val": m.data.sizes["val"],
                    "n_test": m.data.sizes["test"],
                }
            )
    accs = [r["test_accuracy"] for r in runs]
    secs = [r["train_plus_eval_seconds"] for r in runs]
    summary = {
        "config": str(Path(args.config).relative_to(ROOT))
        if args.config.startswith(str(ROOT))
        else args.config,
        "command": "python benchmarks/bench_mnist.py " + " ".join(sys.argv[1:]),
        "runs": runs,
        "test_accuracy_mean": statistics.mean(accs),
        "test_accuracy_min": min(accs),
        "train_plus_eval_seconds_mean": statistics.mean(secs),
        "train_plus_eval_seconds_max": max(secs),
        "targets": {"seconds_max": 60, "accuracy_min": 0.985},
        "meets_targets": max(secs) <= 60 and min(accs) >= 0.985,
    }
    if args.quick:
        print(summary)
        return
    save("mnist", summary)


if __name__ == "__main__":
    main()
