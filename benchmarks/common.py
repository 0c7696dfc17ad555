"""Shared helpers for benchmark scripts: machine facts, the machine's fp32 peak, writing results.

Machines differ (the same 2-core box has been an AVX2 EPYC and an AVX-512 Xeon, 3.5x apart), so
every benchmark records the peak it measured beside its own figures: ratios travel, times do not.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from datetime import datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
QUIET_LOAD = 2.5  # 1-minute load average under which timings are taken as the machine's own


def cpu_facts() -> dict:
    """CPU model (lscpu "Model name") and its vector extensions, from /proc/cpuinfo on Linux."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name":
                model = value.strip()
            elif key.strip() == "Flags":
                flags = set(value.split())
    except (OSError, subprocess.CalledProcessError):
        pass
    return {
        "cpu_model": model,
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx": "amx_tile" in flags,
    }


def machine() -> dict:
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        **cpu_facts(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "date": datetime.now().isoformat(timespec="seconds"),
    }


def shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (results then read the same anywhere)."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def load_quiet_enough(load: tuple[float, ...] | None = None) -> bool:
    """Whether the 1-minute load average is low enough for timings to describe this machine."""
    return (load or os.getloadavg())[0] < QUIET_LOAD


def _best_rate(fn, flops: float, seconds: float, min_reps: int = 3) -> float:
    """GFLOP/s of the fastest of the calls of ``fn`` that fit in ``seconds`` (after one warm-up)."""
    fn()
    best, start, reps = float("inf"), time.perf_counter(), 0
    while reps < min_reps or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        reps += 1
    return flops / best / 1e9


def measure_peak(seconds: float = 1.0, threads: int = 2) -> dict:
    """The fp32 matmul and conv throughput (GFLOP/s) this machine reaches now with ``threads``.

    Matmul: 1024x1024 by 1024x1024 (fits in cache blocks, large enough to amortise the call).
    Conv: a 64->64 3x3 conv on a batch of 128 14x14 channels_last maps, the shape of cnn_bn's
    middle block, forward only. Each is the best call over ``seconds``, so a briefly shared core
    costs little; benchmarks call this beside their own measurement and keep the best round.
    """
    import torch
    import torch.nn.functional as F

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        n = 1024
        a, b = torch.randn(n, n), torch.randn(n, n)
        matmul = _best_rate(lambda: torch.mm(a, b), 2 * n**3, seconds)
        x = torch.randn(128, 64, 14, 14).contiguous(memory_format=torch.channels_last)
        w = torch.randn(64, 64, 3, 3).contiguous(memory_format=torch.channels_last)
        conv_flops = 2 * 128 * 64 * 14 * 14 * 64 * 9
        with torch.no_grad():
            conv = _best_rate(lambda: F.conv2d(x, w, padding=1), conv_flops, seconds)
    finally:
        torch.set_num_threads(before)
    return {
        "matmul_gflops": round(matmul, 1),
        "conv_gflops": round(conv, 1),
        "threads": threads,
        "load_average": round(os.getloadavg()[0], 2),
    }


def save(name: str, results: dict) -> Path:
    """Write ``results`` plus machine facts to benchmarks/results/<name>.json and print it.

    The machine's peak goes beside every result: measured now unless ``results`` carries its own
    ``peak`` (the benchmarks that interleave it with their measurement do).
    """
    path = RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "machine": machine(), **results}
    payload.setdefault("peak", measure_peak(0.5))
    path.write_text(json.dumps(payload, indent=2))
    print(json.dumps(payload, indent=2))
    return path


def spread(values: list[float]) -> dict:
    """Best (max), min and max of repeated measurements of a rate, rounded."""
    return {"best": round(max(values), 1), "min": round(min(values), 1), "max": round(max(values), 1)}


def interleaved(measure, rounds: int, peak_seconds: float = 0.5) -> tuple[dict, list]:
    """Alternate the machine's peak and ``measure()`` for ``rounds`` rounds (peak, x, peak, x, ...).

    On a shared machine a neighbour's burst lowers whichever measurement it lands on; alternating
    puts both under the same conditions, and the best round of each is the machine's own figure.

    Returns:
        ({"matmul_gflops": spread, "conv_gflops": spread, ...}, [measure() of each round]).
    """
    peaks, results = [], []
    for _ in range(rounds):
        peaks.append(measure_peak(peak_seconds))
        results.append(measure())
    summary = {
        "matmul_gflops": spread([p["matmul_gflops"] for p in peaks]),
        "conv_gflops": spread([p["conv_gflops"] for p in peaks]),
        "rounds": rounds,
    }
    return summary, results
