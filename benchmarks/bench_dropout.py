"""The zoo's dropout against nn.Dropout's own on the CPU: the layer alone, and a whole cnn_bn step.

``smallvision.models.blocks.Dropout`` draws its training mask as 16 random bits an element cut from
64-bit ``random_`` words; ``nn.Dropout`` calls ``bernoulli_``, one draw an element. Measured here:

- each of cnn_bn's three dropout inputs (batch 128 at 28x28x1): forward + backward of one layer,
  best of ``--repeats`` calls, for each implementation;
- the training step of bench_models.py (shift, forward, loss, backward, Adam; batch 128, 2 threads,
  channels_last) of cnn_bn as built, and of the same network with each Dropout swapped for an
  nn.Dropout of the same p. The two are measured alternately for ``--rounds`` rounds and the best
  round of each is kept, with the spread.

Writes benchmarks/results/dropout.json.

    python benchmarks/bench_dropout.py [--rounds 3] [--seconds 3] [--repeats 30] [--quick]
"""

from __future__ import annotations

import argparse
import os
import time

import bench_models
import torch
from bench_models import BATCH, make_step, replace_modules, throughput
from common import load_quiet_enough, save, spread
from torch import nn

from smallvision.models.blocks import Dropout

SHAPES = [(BATCH, 32, 14, 14), (BATCH, 64, 7, 7), (BATCH, 128)]  # cnn_bn's dropout inputs


def layer_ms(layer: nn.Module, shape: tuple[int, ...], repeats: int) -> float:
    """Best forward + backward time (ms) of ``layer`` in training mode on a ``shape`` input."""
    x = torch.randn(shape)
    if len(shape) == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    grad = torch.ones(shape)
    layer.train()
    best = float("inf")
    for i in range(repeats + 2):
        t0 = time.perf_counter()
        layer(x).backward(grad)
        if i >= 2:  # two warm-up calls
            best = min(best, time.perf_counter() - t0)
        x.grad = None
    return best * 1000


def with_torch_dropout(net: nn.Module) -> nn.Module:
    """``net`` with each zoo Dropout replaced by an ``nn.Dropout`` of the same p, in place."""
    return replace_modules(net, Dropout, lambda d: nn.Dropout(d.p))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured time per step measurement")
    parser.add_argument("--repeats", type=int, default=30, help="calls per layer measurement")
    parser.add_argument("--quick", action="store_true", help="smoke test: short, not saved")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds, args.repeats = 1, 0.2, 2
        bench_models.WAIT_BUDGET[0] = 0.0
    torch.set_num_threads(2)
    load_before = os.getloadavg()
    layers = []
    for shape in SHAPES:
        torch.manual_seed(0)
        ours, theirs = (
            layer_ms(Dropout(0.25), shape, args.repeats),
            layer_ms(nn.Dropout(0.25), shape, args.repeats),
        )
        layers.append({"shape": list(shape), "zoo_ms": round(ours, 3), "nn_dropout_ms": round(theirs, 3)})
        print(layers[-1], flush=True)
    ours_step, _ = make_step("cnn_bn", channels_last=True, compiled=False)
    theirs_step, net = make_step("cnn_bn", channels_last=True, compiled=False)
    with_torch_dropout(net)
    assert not any(isinstance(m, Dropout) for m in net.modules())
    rounds = {"zoo": [], "nn_dropout": []}
    for _ in range(args.rounds):
        rounds["zoo"].append(throughput(ours_step, args.seconds)["images_per_s"])
        rounds["nn_dropout"].append(throughput(theirs_step, args.seconds)["images_per_s"])
        print({k: v[-1] for k, v in rounds.items()}, flush=True)
    steps = {k: spread(v) for k, v in rounds.items()}
    if args.quick:
        print(steps)
        return
    save(
        "dropout",
        {
            "command": f"python benchmarks/bench_dropout.py --rounds {args.rounds} --seconds {args.seconds:g} "
            f"--repeats {args.repeats}",
            "p": 0.25,
            "layers": layers,
            "cnn_bn_step_images_per_s": steps,
            "step_speedup": round(steps["zoo"]["best"] / steps["nn_dropout"]["best"], 3),
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
            "timing_valid": load_quiet_enough(load_before) and load_quiet_enough(),
        },
    )


if __name__ == "__main__":
    main()
