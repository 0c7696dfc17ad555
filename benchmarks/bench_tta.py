"""Time-to-accuracy in the spirit of airbench: the default MNIST recipe over several seeds.

    python benchmarks/bench_tta.py [--seeds 0 1 2 3 4] [--set key=value ...] [--quick]

Each seed is one full run of ``examples/mnist.yaml`` (report off). Accuracy is on MNIST-5k's
1,000 test images. Training FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode``
on the run's own first training step (augmentation, mixing, forward, loss, backward) times the
steps it took; the validation after each epoch is counted the same way and reported apart.
Both are deterministic, so the accuracy and FLOP figures hold whatever the machine's load; wall
times do not, and the load average is recorded beside them. Each run also keeps its per-epoch
training loss, validation loss and accuracy (``history``). Results: benchmarks/results/tta.json.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, load_quiet_enough, measure_peak, save, shown  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from smallvision.config import parse_override  # noqa: E402
from smallvision.study.run import make_trainer, prepare, resolve_config, train_and_finish  # noqa: E402
from smallvision.train.events import BatchInfo, Callback, EpochRecord  # noqa: E402

CONFIG = ROOT / "examples" / "mnist.yaml"
TARGET_ACCURACY = 0.99
# the recipe this benchmark was written against: 15 epochs of cnn_bn (issue 13)
OLD_DEFAULT = ["train.epochs=15", "train.batch_size=128", "model.name=cnn_bn", "model.params={}"]


class CountFlops(Callback):
    """Trainer callback: FLOPs of the first training step and of the first epoch's validation.

    The counter runs only around those two (its dispatch overhead would distort the timing of
    the rest); every later step and validation repeats the same shapes, so they cost the same.

    Args:
        steps_per_epoch: batches in an epoch (the validation follows the last one).
    """

    def __init__(self, steps_per_epoch: int) -> None:
        self.steps_per_epoch = steps_per_epoch
        self.step_flops = 0
        self.val_flops = 0
        self._mode: FlopCounterMode | None = None

    def _start(self) -> None:
        self._mode = FlopCounterMode(display=False)
        self._mode.__enter__()

    def _stop(self) -> int:
        self._mode.__exit__(None, None, None)
        flops, self._mode = self._mode.get_total_flops(), None
        return flops

    def before_batch(self, trainer, batch: BatchInfo) -> None:
        if batch.step == 0:
            self._start()

    def after_batch(self, trainer, batch: BatchInfo) -> None:
        if batch.step == 0:
            self.step_flops = self._stop()
        if batch.epoch == 1 and batch.index == self.steps_per_epoch - 1:
            self._start()

    def after_epoch(self, trainer, record: EpochRecord) -> None:
        if record.epoch == 1 and self._mode is not None:
            self.val_flops = self._stop()


def one_run(config: Path, seed: int, overrides: dict, tmp: str) -> dict:
    """Train one seed; its accuracy, FLOPs and times."""
    cfg = resolve_config(
        config, {**overrides, "seed": seed, "report.enabled": False, "train.progress": False}
    )
    start = time.perf_counter()
    p = prepare(cfg)
    steps_per_epoch = max(1, len(p.split_data["train"]) // cfg.train.batch_size)
    counter = CountFlops(steps_per_epoch)
    run_dir = Path(tmp) / f"seed{seed}"
    run_dir.mkdir(parents=True)
    trainer = make_trainer(p, run_dir, [counter])
    m = train_and_finish(p, trainer, run_dir).metrics
    wall = time.perf_counter() - start
    epochs = m.epochs_run
    print(f"seed {seed}: accuracy {m.test['label']['accuracy']}", flush=True)
    return {
        "seed": seed,
        "test_accuracy": m.test["label"]["accuracy"],
        "epochs_run": epochs,
        "best_epoch": m.best_epoch,
        "steps": epochs * steps_per_epoch,
        "flops_per_step": counter.step_flops,
        "train_flops": counter.step_flops * epochs * steps_per_epoch,
        "val_flops": counter.val_flops * epochs,
        "train_seconds": round(m.train_seconds, 2),
        "eval_seconds": round(m.eval_seconds, 2),
        "wall_seconds": round(wall, 2),
        "history": curve(trainer.history),
    }


# the per-epoch figures kept of each run: how the recipe learns, for the README's reasons
CURVE_KEYS = ("train/loss", "val/loss", "val/label/accuracy")


def curve(history: list[dict]) -> dict[str, list[float]]:
    """``{key: [value per epoch]}`` of :data:`CURVE_KEYS` from the trainer's history rows."""
    return {k: [round(row[k], 4) for row in history] for k in CURVE_KEYS if history and k in history[0]}


def counted_flops(config: Path, overrides: dict, tmp: str) -> dict:
    """A recipe's training and validation FLOPs without training it: one step and one validation.

    Every step repeats the first one's shapes (the last partial batch is dropped) and every
    validation the first's, so one of each times the number the recipe runs gives its total.
    """
    cfg = resolve_config(config, {**overrides, "report.enabled": False, "train.progress": False})
    p = prepare(cfg)
    trainer = make_trainer(p, Path(tmp) / "counted")
    train, val = p.split_data["train"], p.split_data["val"]
    trainer.setup(train)
    with FlopCounterMode(display=False) as step:
        trainer.train_step(train, trainer.batches(train)[0])
    with FlopCounterMode(display=False) as validation:
        trainer.validate(val)
    steps = cfg.train.epochs * trainer.steps_per_epoch(train)
    return {
        "epochs": cfg.train.epochs,
        "steps": steps,
        "flops_per_step": step.get_total_flops(),
        "train_flops": step.get_total_flops() * steps,
        "val_flops": validation.get_total_flops() * cfg.train.epochs,
        "train_flops_per_image": step.get_total_flops() // cfg.train.batch_size,
    }


def run_seeds(config: Path, seeds: list[int], overrides: dict, tmp: str, jobs: int) -> list[dict]:
    """One run per seed, ``jobs`` at a time in separate processes (each on one thread)."""
    if jobs <= 1:
        return [one_run(config, s, overrides, tmp) for s in seeds]
    overrides = {**overrides, "train.threads": 1}  # jobs share the cores: no oversubscription
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(one_run, config, s, overrides, tmp) for s in seeds]
        return [f.result() for f in futures]


def summarize(runs: list[dict], batch: int) -> dict:
    accs = [r["test_accuracy"] for r in runs]
    train_flops = statistics.mean(r["train_flops"] for r in runs)
    seconds = [r["train_seconds"] for r in runs]
    return {
        "test_accuracy_mean": round(statistics.mean(accs), 4),
        "test_accuracy_std": round(statistics.stdev(accs), 4) if len(accs) > 1 else 0.0,
        "test_accuracy_min": min(accs),
        "test_accuracy_max": max(accs),
        "train_flops": train_flops,
        "val_flops": statistics.mean(r["val_flops"] for r in runs),
        "train_flops_per_image": round(runs[0]["flops_per_step"] / batch),
        "train_seconds_mean": round(statistics.mean(seconds), 2),
        "train_seconds_min": min(seconds),
        # training FLOPs per second of the training loop (validation and checkpoints included)
        "achieved_gflops": round(train_flops / statistics.mean(seconds) / 1e9, 1),
    }


def command() -> str:
    return "python benchmarks/bench_tta.py " + " ".join(f"'{a}'" if " " in a else a for a in sys.argv[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--config", type=Path, default=CONFIG)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    ap.add_argument("--out", default="tta", help="results name (benchmarks/results/<out>.json)")
    ap.add_argument(
        "--count-only", action="store_true", help="count the recipe's FLOPs without training (no timing)"
    )
    ap.add_argument("--jobs", type=int, default=1, help="seeds run in parallel (one thread each)")
    ap.add_argument("--quick", action="store_true", help="smoke test: one seed, one epoch, not saved")
    args = ap.parse_args()
    overrides = {".".join(k): v for k, v in map(parse_override, args.set)}
    if args.quick:
        args.seeds, overrides["train.epochs"] = args.seeds[:1], 1
    if args.count_only:
        with tempfile.TemporaryDirectory() as tmp:
            counted = counted_flops(args.config, overrides, tmp)
        save(
            args.out, {"command": command(), "config": shown(args.config), "overrides": overrides, **counted}
        )
        return
    load_before = os.getloadavg()
    peak = measure_peak(seconds=0.3 if args.quick else 1.0)
    with tempfile.TemporaryDirectory() as tmp:
        runs = run_seeds(args.config, args.seeds, overrides, f"{tmp}/runs", args.jobs)
    recipe = {"overrides": overrides, "runs": runs}
    recipe.update(summarize(runs, resolve_config(args.config, overrides).train.batch_size))
    recipe["fraction_of_matmul_peak"] = round(recipe["achieved_gflops"] / peak["matmul_gflops"], 3)
    payload = {
        "command": command(),
        "config": shown(args.config),
        "seeds": args.seeds,
        "jobs": args.jobs,
        "peak": peak,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "timing_valid": args.jobs == 1 and load_quiet_enough(load_before) and load_quiet_enough(),
        "target": {"accuracy_mean": TARGET_ACCURACY, "flops_fraction_of_old_default": 0.5},
        "old_default_count": "python benchmarks/bench_tta.py --count-only --out tta_old_default --set "
        + " ".join(f"'{o}'" for o in OLD_DEFAULT),
        "default": recipe,
    }
    if args.quick:
        print(payload)
        return
    save(args.out, payload)


if __name__ == "__main__":
    main()
