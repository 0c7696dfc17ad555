"""Augmentation throughput: rotation + shift + zoom + noise on 28x28 batches of 256 must reach
at least 20,000 images/s on a 2-core CPU.

    python benchmarks/bench_augment.py [--batches 200] [--repeat 5]

Each figure is the best of ``repeat`` timed runs of ``batches`` batches (best, because other
processes on a shared machine only ever slow a run down), measured with 1 and with 2 torch
threads. Also timed: every registered op alone, and the same affine pipeline built with
``F.affine_grid``, the step our own one-GEMM grid replaces. Results: benchmarks/results/augment.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import save  # noqa: E402

from smallvision.data.augment.pipeline import Pipeline, build_augment  # noqa: E402
from smallvision.registry import AUGMENTATIONS  # noqa: E402

TARGET = 20_000
SPEC = {"rotate": {"degrees": 15}, "shift": {"fraction": 0.1}, "zoom": {"amount": 0.1}, "noise": {"std": 0.1}}
BATCH, SIZE = 256, 28


def images_per_second(fn, batches: int, repeat: int) -> tuple[float, float]:
    """(best, median) images/s over ``repeat`` runs of ``batches`` calls of ``fn`` on one batch."""
    x = torch.randint(0, 256, (BATCH, 1, SIZE, SIZE), dtype=torch.uint8).float() / 255
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):  # warm-up: allocator, caches, lazy grids
        fn(x, gen)
    rates = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(batches):
            fn(x, gen)
        rates.append(batches * BATCH / (time.perf_counter() - start))
    return max(rates), statistics.median(rates)


def affine_grid_baseline(pipe: Pipeline):
    """The same ops, with the sampling grid from ``F.affine_grid`` instead of one matrix product."""
    affine, rest = pipe.ops[:3], pipe.ops[3:]

    def run(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        m = affine[0].matrix(len(x), gen) @ affine[1].matrix(len(x), gen) @ affine[2].matrix(len(x), gen)
        grid = F.affine_grid(m[:, :2], list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        for op in rest:
            x = op(x, gen)
        return x

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="smoke test: a few batches, not saved")
    args = ap.parse_args()
    if args.quick:
        args.batches, args.repeat = 8, 1
    pipe = build_augment(SPEC)
    load_before = os.getloadavg()[0]
    pipeline, baseline = {}, {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        best, median = images_per_second(pipe, args.batches, args.repeat)
        pipeline[f"threads_{threads}"] = {"best": round(best), "median": round(median)}
        best, median = images_per_second(affine_grid_baseline(pipe), args.batches, args.repeat)
        baseline[f"threads_{threads}"] = {"best": round(best), "median": round(median)}
    threads = max((1, 2), key=lambda t: pipeline[f"threads_{t}"]["best"])
    torch.set_num_threads(threads)
    ops = {}
    for name in AUGMENTATIONS.list():
        best, _ = images_per_second(build_augment({name: {}}), max(20, args.batches // 4), args.repeat)
        ops[name] = round(best)
    best = pipeline[f"threads_{threads}"]["best"]
    if args.quick:
        print(pipeline, ops)
        return
    save(
        "augment",
        {
            "command": "python benchmarks/bench_augment.py",
            "pipeline": SPEC,
            "batch": [BATCH, 1, SIZE, SIZE],
            "note": "images/s; best and median of `repeat` runs of `batches` batches; the machine is "
            "shared, so load_average_1min says how busy it was when the run began",
            "batches": args.batches,
            "repeat": args.repeat,
            "load_average_1min": round(load_before, 2),
            "images_per_second": pipeline,
            "with_F_affine_grid": baseline,
            "best_threads": threads,
            "per_op_images_per_second_defaults": ops,
            "target_images_per_second": TARGET,
            "meets_target": best >= TARGET,
        },
    )


if __name__ == "__main__":
    main()
