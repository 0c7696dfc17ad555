"""The trainer end to end against the bare training step of the same network, in one run.

    python benchmarks/bench_trainer.py [--epochs 6] [--profile] [--quick]

Trains ``examples/mnist.yaml`` (report off) and, after every epoch, times the isolated step of a
copy of the same network: the same batch size, memory format, optimiser and loss on one fixed
batch of training images, with no slicing, augmentation, validation or checkpoint. The two
alternate (epoch, step burst of as many images, epoch, ...) so that both see the same machine;
the best of each is reported with the spread. Target: the trainer at >= 90% of the bare step.

An epoch's time runs from ``before_epoch`` to after its checkpoint and history are written, and
is split into the batch loop and what follows it (validation, best-state copy, checkpoint).
``--profile`` then trains once more under cProfile and attributes the fit's time to its parts.
Results: benchmarks/results/trainer.json.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from common import ROOT, load_quiet_enough, measure_peak, save, shown, spread  # noqa: E402

from smallvision.study.run import make_trainer, prepare, resolve_config, train_and_finish  # noqa: E402
from smallvision.train.events import BatchInfo, Callback, EpochRecord  # noqa: E402
from smallvision.train.optim import build_optimizer  # noqa: E402
from smallvision.train.trainer import Split  # noqa: E402

CONFIG = ROOT / "examples" / "mnist.yaml"
TARGET = 0.90


class Interleave(Callback):
    """Trainer callback: times each epoch, then a burst of bare steps of a copy of the network.

    Args:
        train: the run's training split (the bare step's fixed batch is its first images).
    """

    def __init__(self, train: Split) -> None:
        self.train = train
        self.epochs: list[dict] = []
        self.bare: list[float] = []

    def before_fit(self, t) -> None:
        self.steps = t.steps_per_epoch(self.train)
        self.batch = t.cfg.batch_size
        self.net = copy.deepcopy(t.model).train()
        self.opt = build_optimizer(self.net, t.cfg)
        images = self.train.images[: self.batch]
        self.x = t.normalizer.standardize(t.normalizer.to_unit(images))
        if t.cfg.channels_last:
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.y = next(iter(self.train.targets.values()))[: self.batch]
        self.head = next(iter(t.heads))
        self.start = time.perf_counter()

    def before_batch(self, t, batch: BatchInfo) -> None:
        if batch.index == 0:
            self.start = time.perf_counter()

    def after_batch(self, t, batch: BatchInfo) -> None:
        if batch.index == self.steps - 1:
            self.loop_end = time.perf_counter()

    def after_epoch(self, t, record: EpochRecord) -> None:  # after the history and checkpoint callbacks
        end = time.perf_counter()
        images = self.steps * self.batch
        self.epochs.append(
            {
                "images_per_s": round(images / (end - self.start), 1),
                "loop_s": round(self.loop_end - self.start, 3),
                "after_loop_s": round(end - self.loop_end, 3),
            }
        )
        self.bare.append(round(images / self.bare_steps(), 1))

    def bare_steps(self) -> float:
        """Seconds for one epoch's worth of bare steps (after two warm-up steps)."""
        for _ in range(2):
            self.step()
        start = time.perf_counter()
        for _ in range(self.steps):
            self.step()
        return time.perf_counter() - start

    def step(self) -> None:
        out = self.net(self.x)
        loss = F.cross_entropy(out[self.head], self.y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()


def train(cfg, run_dir: Path, callbacks=()) -> Split:
    """One run of ``cfg`` into ``run_dir`` with the extra callbacks built by ``callbacks(p)``."""
    p = prepare(cfg)
    run_dir.mkdir(parents=True)
    extra = [make(p.split_data["train"]) for make in callbacks]
    train_and_finish(p, make_trainer(p, run_dir, extra), run_dir)
    return extra


def profile_fit(cfg, tmp: str) -> dict:
    """Train once under cProfile; the share of the fit's time in each part of an epoch."""
    profiler = cProfile.Profile()
    profiler.enable()
    train(cfg, Path(tmp) / "profiled")
    profiler.disable()
    stats = pstats.Stats(profiler)
    cumulative = {}
    for (file, _, func), (_, _, _, cum, _) in stats.stats.items():
        cumulative[(Path(file).name, func)] = max(cum, cumulative.get((Path(file).name, func), 0.0))
    parts = {
        "fit": ("trainer.py", "fit"),
        "prepare_batch (slice, augment, mix, standardize)": ("trainer.py", "prepare_batch"),
        "forward (training and validation)": ("base.py", "forward"),
        "backward": ("_tensor.py", "backward"),
        "optimizer step": ("optimizer.py", "wrapper"),
        "scheduler step": ("lr_scheduler.py", "step"),
        "validation": ("trainer.py", "validate"),
        "best-state copy": ("early_stopping.py", "update"),
        "checkpoint": ("callbacks.py", "after_epoch"),
        "history.csv": ("callbacks.py", "write_history"),
    }
    seconds = {name: cumulative.get(key, 0.0) for name, key in parts.items()}
    fit = seconds.pop("fit") or 1.0
    shares = {name: round(s / fit, 4) for name, s in seconds.items()}
    shares["checkpoint"] = round(shares["checkpoint"] - shares["history.csv"], 4)  # both after_epoch
    return {"fit_seconds_under_cprofile": round(fit, 2), "share_of_fit": shares}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=CONFIG)
    ap.add_argument("--epochs", type=int, default=6, help="epochs of the measured run")
    ap.add_argument("--profile", action="store_true", help="also attribute the time with cProfile")
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 epochs, not saved")
    args = ap.parse_args()
    if args.quick:
        args.epochs = 2
    over = {"train.epochs": args.epochs, "report.enabled": False, "train.progress": False}
    cfg = resolve_config(args.config, over)
    load_before = os.getloadavg()
    peak_before = measure_peak(0.3 if args.quick else 1.0)
    with tempfile.TemporaryDirectory() as tmp:
        (cb,) = train(cfg, Path(tmp) / "measured", [Interleave])
        profile = profile_fit(cfg, tmp) if args.profile else None
    peak_after = measure_peak(0.3 if args.quick else 1.0)
    trainer = [e["images_per_s"] for e in cb.epochs]
    # pair each epoch with the burst right after it: the ratio least moved by the machine's load
    ratios = [a / b for a, b in zip(trainer, cb.bare, strict=True)]
    payload = {
        "command": "python benchmarks/bench_trainer.py " + " ".join(sys.argv[1:]),
        "config": shown(args.config),
        "epochs": args.epochs,
        "batch_size": cfg.train.batch_size,
        "channels_last": cfg.train.channels_last,
        "trainer_images_per_s": spread(trainer),
        "bare_step_images_per_s": spread(cb.bare),
        "ratio_best_to_best": round(max(trainer) / max(cb.bare), 3),
        "ratio_per_epoch": {"median": round(statistics.median(ratios), 3), **spread(ratios)},
        "epochs_detail": [{**e, "bare_images_per_s": b} for e, b in zip(cb.epochs, cb.bare, strict=True)],
        "after_loop_share": round(
            statistics.median(e["after_loop_s"] / (e["loop_s"] + e["after_loop_s"]) for e in cb.epochs), 4
        ),
        "peak": [peak_before, peak_after],
        "load_average_before": [round(v, 2) for v in load_before],
        "timing_valid": load_quiet_enough(load_before) and load_quiet_enough(),
        "target": {"ratio": TARGET, "met": max(trainer) / max(cb.bare) >= TARGET},
        "profile": profile,
    }
    if args.quick:
        print(payload)
        return
    save("trainer", payload)


if __name__ == "__main__":
    main()
