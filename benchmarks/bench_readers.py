"""How fast the readers and the offline datasets load.

Targets (issue 3): 60,000 28x28 images from IDX in under 2 s; a folder of 10,000 PNGs in under
15 s; the glyphs set built in under ~20 s. Writes benchmarks/results/readers.json.

    python benchmarks/bench_readers.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import measure_peak  # noqa: E402

from smallvision.data.builtins import glyphs, patches
from smallvision.data.load import load_source

RESULTS = Path(__file__).parent / "results" / "readers.json"


def write_idx(path: Path, arr: np.ndarray, gz: bool) -> None:
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.tobytes()
    path.write_bytes(gzip.compress(data, compresslevel=6) if gz else data)


def best_of(repeat: int, fn) -> tuple[float, object]:
    """The fastest of ``repeat`` timed calls (the others absorb disk-cache and import warm-up)."""
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def bench_idx(tmp: Path, rng: np.random.Generator, repeat: int) -> dict:
    out = {}
    for gz in (False, True):
        folder = tmp / ("idx_gz" if gz else "idx")
        folder.mkdir()
        write_idx(
            folder / "train-images-idx3-ubyte", rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8), gz
        )
        write_idx(folder / "train-labels-idx1-ubyte", rng.integers(0, 10, 60000, dtype=np.uint8), gz)
        seconds, data = best_of(repeat, lambda f=folder: load_source(f"idx:{f}"))
        assert data.images.shape == (60000, 1, 28, 28)
        out["idx_gz" if gz else "idx"] = {
            "images": 60000,
            "seconds": round(seconds, 3),
            "target_seconds": 2.0,
        }
    return out


def bench_folder(tmp: Path, rng: np.random.Generator, repeat: int) -> dict:
    root = tmp / "pngs"
    images = rng.integers(0, 256, (10000, 28, 28), dtype=np.uint8)
    for i, img in enumerate(images):
        folder = root / f"class{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:05d}.png")
    seconds, data = best_of(repeat, lambda: load_source(f"folder:{root}"))
    assert data.images.shape == (10000, 1, 28, 28)
    return {"folder_png": {"images": 10000, "seconds": round(seconds, 3), "target_seconds": 15.0}}


def bench_csv(tmp: Path, rng: np.random.Generator, repeat: int) -> dict:
    path = tmp / "fer.csv"
    pixels = rng.integers(0, 256, (10000, 48 * 48))
    rows = (f"{i % 7},{' '.join(map(str, p))},Training" for i, p in enumerate(pixels))
    path.write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    seconds, data = best_of(repeat, lambda: load_source(f"csv:{path}"))
    assert data.images.shape == (10000, 1, 48, 48)
    return {"csv_fer_48x48": {"images": 10000, "seconds": round(seconds, 3)}}


def bench_builtins(repeat: int) -> dict:
    out = {}
    for name, clear in (
        ("glyphs", glyphs.glyph_bank.cache_clear),  # cold: fonts rendered again
        ("patches", patches.photographs.cache_clear),
        ("shapes-multitask", lambda: None),
        ("digits-28", lambda: None),
    ):

        def build(name=name, clear=clear):
            clear()
            return load_source(f"builtin:{name}", seed=0)

        seconds, data = best_of(repeat, build)
        out[f"builtin_{name}"] = {"images": len(data), "seconds": round(seconds, 3)}
    out["builtin_glyphs"]["target_seconds"] = 20.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smoke test: one repeat, not saved")
    args = parser.parse_args()
    if args.quick:
        args.repeat = 1
    rng = np.random.default_rng(0)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results.update(bench_idx(Path(tmp), rng, args.repeat))
        results.update(bench_folder(Path(tmp), rng, args.repeat))
        results.update(bench_csv(Path(tmp), rng, args.repeat))
    results.update(bench_builtins(args.repeat))
    for name, r in results.items():
        target = f" (target < {r['target_seconds']:g} s)" if "target_seconds" in r else ""
        print(
            f"{name:28s} {r['images']:>6d} images  {r['seconds']:7.3f} s  {r['images'] / r['seconds']:>10.0f} img/s{target}"
        )
    if args.quick:
        return
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": "readers",
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": sys.version.split()[0],
            "torch": torch.__version__,
        },
        "repeat": args.repeat,
        "note": "best of `repeat` runs, wall-clock seconds",
        "results": results,
        "peak": measure_peak(0.5),
    }
    RESULTS.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
