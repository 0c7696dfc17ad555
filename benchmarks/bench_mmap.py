"""Training from a memory-mapped file: peak memory against the file's size (issue 13, data past memory).

Writes 60,000 images of 96x96x3 uint8 (STL-10's image size; channels last, as image arrays usually
are) to a ``.npy`` file of 1.66 GB in a temporary folder, then runs ``smallvision.run`` on it for one epoch in a fresh
process per mode, ``data.options.mmap: true`` and, for contrast, ``false`` (loaded into memory),
and records each process's peak resident set (``getrusage`` ``ru_maxrss``) against the file's size.
A sampler thread also records the peak of ``RssAnon`` (the process's own memory) and ``RssFile``
(mapped file pages counted in the RSS) from ``/proc/self/status``.

Evaluation batches are 256 images too (``train.eval_batch_size``: a batch of 1,000 such images is
110 MB as float32, several times over while it is standardised). The model is a small MLP so that
the epoch takes seconds: memory, not speed, is measured, and the
figures do not depend on the machine's load. Writes benchmarks/results/mmap.json.

    python benchmarks/bench_mmap.py [--images 60000] [--size 96] [--modes mmap loaded]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save  # noqa: E402

MB = 1 << 20


def write_set(folder: Path, n: int, size: int) -> Path:
    """``images.npy`` (n, size, size, 3) uint8 with a learnable class stripe, and ``labels.npy``."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, n)
    path = folder / "images.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
    for start in range(0, n, 2000):  # in chunks: the writer should not hold the set either
        part = rng.integers(0, 128, (min(2000, n - start), size, size, 3), dtype=np.uint8)
        rows = labels[start : start + len(part)] * (size // 10)
        part[np.arange(len(part)), rows] = 255
        out[start : start + len(part)] = part
    out.flush()
    del out
    np.save(folder / "labels.npy", labels)
    return path


class Sampler(threading.Thread):
    """Peaks of RssAnon and RssFile (kB in /proc/self/status), sampled every 20 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peaks = {"RssAnon": 0, "RssFile": 0}
        self.running = True

    def run(self) -> None:
        while self.running:
            self.sample()
            time.sleep(0.02)

    def sample(self) -> None:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in self.peaks:
                    self.peaks[key] = max(self.peaks[key], int(value.split()[0]))
        except OSError:  # not Linux: only ru_maxrss is recorded
            pass


def child(path: Path, mode: str, out_dir: Path) -> dict:
    """One run from ``path`` in this process; its memory figures."""
    import smallvision
    import smallvision.study.run  # noqa: F401  (torch, scikit-learn ...: the baseline holds them)

    sampler = Sampler()
    sampler.sample()
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB: python, torch, smallvision
    sampler.start()
    start = time.perf_counter()
    result = smallvision.run({
        "name": f"mmap-{mode}",
        "output_dir": str(out_dir),
        "data": {"source": f"npy:{path}", "options": {"mmap": mode == "mmap"},
                 "split": {"train": 0.8, "val": 0.1, "test": 0.1}},
        "model": {"name": "mlp", "params": {"hidden": [32]}},
        "train": {"epochs": 1, "batch_size": 256, "eval_batch_size": 256, "threads": 2, "progress": False},
        "report": {"enabled": False},
    })  # fmt: skip
    seconds = time.perf_counter() - start
    sampler.running = False
    sampler.join()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "mode": mode,
        "peak_rss_mb": peak / 1024,
        "baseline_rss_mb": baseline / 1024,
        "peak_over_baseline_mb": (peak - baseline) / 1024,
        "peak_rss_anon_mb": sampler.peaks["RssAnon"] / 1024,
        "peak_rss_file_mb": sampler.peaks["RssFile"] / 1024,
        "run_seconds": seconds,
        "test_accuracy": result.metrics.splits["test"]["label"]["accuracy"],
        "n_train": result.metrics.data.sizes["train"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60000)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--modes", nargs="+", default=["mmap", "loaded"], choices=["mmap", "loaded"])
    parser.add_argument("--out", default="mmap", help="results name (benchmarks/results/<out>.json)")
    parser.add_argument("--child", choices=["mmap", "loaded"], help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--write", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one measurement, in its own process so that ru_maxrss is its own
        print(json.dumps(child(args.path, args.child, args.path.parent / "runs")))
        return
    if args.write:  # in its own process too: a child's ru_maxrss starts from its parent's peak
        write_set(args.path.parent, args.images, args.size)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "images.npy"
        subprocess.run(
            [sys.executable, __file__, "--write", "--path", str(path), "--images", str(args.images),
             "--size", str(args.size)], check=True,
        )  # fmt: skip
        file_mb = path.stat().st_size / MB
        runs = {}
        for mode in args.modes:
            out = subprocess.run(
                [sys.executable, __file__, "--child", mode, "--path", str(path)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            runs[mode] = json.loads(out.stdout.strip().splitlines()[-1])
            runs[mode]["peak_over_file"] = runs[mode]["peak_rss_mb"] / file_mb
    command = (
        "python benchmarks/bench_mmap.py"
        + (f" --images {args.images} --size {args.size}" if (args.images, args.size) != (60000, 96) else "")
        + (f" --modes {' '.join(args.modes)}" if args.modes != ["mmap", "loaded"] else "")
        + (f" --out {args.out}" if args.out != "mmap" else "")
    )
    threshold = os.environ.get("MALLOC_MMAP_THRESHOLD_")  # set: smallvision leaves malloc as told
    save(args.out, {
        "command": (f"MALLOC_MMAP_THRESHOLD_={threshold} " if threshold else "") + command,
        "malloc_mmap_threshold_env": threshold,
        "images": args.images,
        "image_shape": [args.size, args.size, 3],
        "file_mb": file_mb,
        "runs": runs,
        "target": "peak RSS of the memory-mapped run well under the file's size",
        "met": "mmap" in runs and runs["mmap"]["peak_rss_mb"] < 0.5 * file_mb,
    })  # fmt: skip


if __name__ == "__main__":
    main()
