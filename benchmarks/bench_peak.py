"""The fp32 matmul and conv throughput this machine reaches (GFLOP/s, 2 threads).

    python benchmarks/bench_peak.py [--rounds 6] [--seconds 1] [--quick]

Machines differ more than our code does (an AVX2 EPYC and an AVX-512 Xeon have trained the same
network 3.5x apart), so the other benchmarks report their throughput as a fraction of this peak,
measured beside them with ``common.measure_peak``. This script records the peak alone, best of
``--rounds`` with the spread, with the CPU model and its vector extensions, in
benchmarks/results/peak.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import load_quiet_enough, measure_peak, save, spread  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=1.0, help="per measurement")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 short rounds, not saved")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.seconds = 2, 0.2
    load_before = os.getloadavg()
    start = time.perf_counter()
    rounds = []
    for _ in range(args.rounds):
        rounds.append(measure_peak(args.seconds, args.threads))
        print(rounds[-1], flush=True)
    payload = {
        "command": "python benchmarks/bench_peak.py " + " ".join(sys.argv[1:]),
        "threads": args.threads,
        "matmul": "fp32 1024x1024 @ 1024x1024 (torch.mm)",
        "conv": "fp32 3x3 conv 64->64, batch 128 of 14x14, channels_last, forward",
        "matmul_gflops": spread([r["matmul_gflops"] for r in rounds]),
        "conv_gflops": spread([r["conv_gflops"] for r in rounds]),
        "rounds": rounds,
        "load_average_before": [round(v, 2) for v in load_before],
        "timing_valid": load_quiet_enough(load_before) and load_quiet_enough(),
        "wall_s": round(time.perf_counter() - start, 1),
    }
    if args.quick:
        print(payload)
        return
    save("peak", payload)


if __name__ == "__main__":
    main()
