"""Study runner targets: (a) a study's overhead over the same runs made one by one under 5%;
(b) with ``--workers 2`` on a 2-core machine, wall time at most 0.65x of ``--workers 1`` for 4
small single-threaded cells.

    python benchmarks/bench_study.py [--rounds 2] [--epochs 2] [--source builtin:mnist-5k] [--quick]

(a) 4 cells of cnn_small (seeds 1-4; default: MNIST-5k, 2 epochs, a few seconds each), each made by
``smallvision.run`` one after the other, against the same 4 as one study run with ``workers=1``
(in this process, as ``smallvision study FILE --workers 1`` runs them), both with the same
``train.threads``. (b) the same 4 cells with ``train.threads: 1`` as a study with 2 workers against
1 worker. Rounds alternate the two sides of each comparison, so a neighbour's burst lands on both;
the best round of each side is its figure. A warm-up run first loads the data and imports the
models and the report's checks (the warnings every cell prints) for both sides, so that what is
measured is what a study adds per cell and per worker, not the one-off imports of a process.

The cells are small runs, not sub-second ones: with ``--source builtin:digits --epochs 3`` a cell
trains in 0.4 s and a second worker's interpreter start (importing torch, ~3 s here) alone is
longer than the four cells. Results: benchmarks/results/study.json (``--quick``: 2 cells,
1 epoch, 1 round, printed and not saved).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import cpu_facts, load_quiet_enough, save  # noqa: E402

import smallvision  # noqa: E402
from smallvision.report import digest  # noqa: E402
from smallvision.study.runner import run_study  # noqa: E402

TARGET_OVERHEAD = 0.05
TARGET_WORKERS_RATIO = 0.65


def base_config(epochs: int, threads: int, source: str = "builtin:mnist-5k") -> dict:
    """One cell: cnn_small on ``source`` for ``epochs`` epochs with ``threads`` torch threads."""
    return {
        "name": "bench",
        "data": {"source": source, "split": {"train": 0.6, "val": 0.2, "test": 0.2}},
        "model": {"name": "cnn_small"},
        "train": {"epochs": epochs, "batch_size": 64, "threads": threads, "progress": False},
        "report": {"enabled": False},
    }


def one_by_one(base: dict, seeds: list[int], out: Path) -> float:
    """Wall seconds of ``smallvision.run`` for each seed, one after the other."""
    start = time.perf_counter()
    for seed in seeds:
        smallvision.run(copy.deepcopy(base), seed=seed, output_dir=str(out))
    return time.perf_counter() - start


def as_study(base: dict, seeds: list[int], out: Path, workers: int) -> float:
    """Wall seconds of the same cells as one study (``seeds`` over ``base``) with ``workers``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "study.yaml"
    path.write_text(yaml.safe_dump({"name": "bench", "output_dir": str(out), "base": base, "seeds": seeds}))
    start = time.perf_counter()
    result = run_study(path, workers=workers, progress=False)
    wall = time.perf_counter() - start
    failed = [c.name for c in result.failed]
    if failed:
        sys.exit(f"study cells failed: {failed}")
    return wall


def alternate(first, second, rounds: int) -> tuple[list[float], list[float]]:
    """``rounds`` rounds of (first(), second()), the order swapped every other round."""
    a, b = [], []
    for i in range(rounds):
        if i % 2 == 0:
            a.append(first(i))
            b.append(second(i))
        else:
            b.append(second(i))
            a.append(first(i))
    return a, b


def measure(args, tmp: Path) -> dict:
    seeds = [1, 2] if args.quick else [1, 2, 3, 4]
    cores = os.cpu_count() or 1
    wide = base_config(args.epochs, cores, args.source)
    warm = smallvision.run(copy.deepcopy(wide), seed=0, output_dir=str(tmp / "warmup"))  # data + imports
    digest.warnings(warm.dir)  # the report's checks, imported once as a `smallvision run` would
    single, study = alternate(
        lambda i: one_by_one(wide, seeds, tmp / f"single-{i}"),
        lambda i: as_study(wide, seeds, tmp / f"study-{i}", 1),
        args.rounds,
    )
    narrow = base_config(args.epochs, 1, args.source)
    w1, w2 = alternate(
        lambda i: as_study(narrow, seeds, tmp / f"w1-{i}", 1),
        lambda i: as_study(narrow, seeds, tmp / f"w2-{i}", 2),
        args.rounds,
    )
    overhead = min(study) / min(single) - 1
    ratio = min(w2) / min(w1)
    return {
        "overhead": {
            "cells": len(seeds), "threads_per_cell": cores, "one_by_one_seconds": single,
            "study_workers1_seconds": study, "overhead_best_to_best": overhead,
            "target": TARGET_OVERHEAD, "met": overhead < TARGET_OVERHEAD,
        },
        "workers": {
            "cells": len(seeds), "threads_per_cell": 1, "workers1_seconds": w1, "workers2_seconds": w2,
            "ratio_best_to_best": ratio, "target": TARGET_WORKERS_RATIO, "met": ratio <= TARGET_WORKERS_RATIO,
        },
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--source", default="builtin:mnist-5k", help="the cells' data.source")
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 cells, 1 epoch, 1 round, not saved")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.epochs = 1, 1
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        results = measure(args, Path(tmp))
    cell = base_config(args.epochs, 1, args.source)
    del cell["train"]["threads"]  # given per comparison below
    summary = {
        "command": "python benchmarks/bench_study.py " + " ".join(sys.argv[1:]),
        "cell_config": cell,
        "epochs": args.epochs,
        "rounds": args.rounds,
        "cpu_model": cpu_facts()["cpu_model"],
        "load_average_before": [round(x, 2) for x in load_before],
        "timing_valid": load_quiet_enough(load_before),
        **results,
    }
    if args.quick:
        print(summary)
        return
    save("study", summary)


if __name__ == "__main__":
    main()
