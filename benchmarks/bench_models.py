"""Training throughput, parameters and FLOPs of every model family at 28x28x1 (issues 4 and 13).

Each training step is what the trainer does: a random shift of every image (a batched
``affine_grid`` + ``grid_sample``, +-2 px), forward, loss, backward, Adam step; batch 128.
Throughput is images/s in steady state: warm-up steps first (oneDNN picks and caches its
kernels on the first calls), then as many steps as fit in ``--seconds``.

First the settings are compared on ``cnn_bn``: intra-op threads, channels_last memory format,
``torch.compile`` (whose compile time is measured too) and, for information only, bf16 autocast
(it changes the numerics, so it is the trainer's opt-in); the fastest eager fp32 setting is then
used for every family, and ``torch.compile`` is chosen instead only when it is at least 20% faster
and compiles in under a minute.

Machines differ, so each family's throughput is also given as achieved GFLOP/s (the training
step's FLOPs counted by ``FlopCounterMode`` times steps/s) and as a fraction of the fp32 matmul
peak measured in the same run: peak and model are measured alternately for ``--rounds`` rounds
and the best round of each is reported with the spread. Target: ``cnn_bn`` at >= 70% of the
matmul peak. Beside it, the ceiling its convolutions set: the same step with every batch norm,
ReLU and dropout replaced by the identity (convolutions, pooling, dense layer, loss and Adam
left), interleaved with the peak in the same way; no work on the other layers can take
``cnn_bn`` past that figure. And a bound for a perfect fused batch norm + ReLU: that ceiling's
step plus the time of the fewest memory passes such a layer needs over its activations (8: the
statistics read, the normalising read and write; backward two reads for the sums, then two reads
and a write), each pass timed on this machine as half a ``clone`` of a warm tensor of that shape
(optimistic: warm in cache). Writes benchmarks/results/models.json.

    python benchmarks/bench_models.py [--seconds 3] [--rounds 3] [--models '*'] [--no-compile] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F
from common import interleaved, load_quiet_enough, save, spread
from torch.utils.flop_counter import FlopCounterMode

from smallvision.config import HeadConfig
from smallvision.models.build import build_model
from smallvision.registry import MODELS

SHAPE = (1, 28, 28)
BATCH = 128
TARGET = ("cnn_bn", 0.70)  # fraction of the measured matmul peak the issue asks of cnn_bn training


def heads_for(name: str) -> dict[str, HeadConfig]:
    """A 10-class head; autoencoders train their decoder (their own task) instead."""
    if name.startswith("autoencoder"):
        return {"image": HeadConfig(kind="reconstruction")}
    return {"label": HeadConfig(kind="classification", classes=10)}


def random_shift(x: torch.Tensor, gen: torch.Generator, pixels: float = 2.0) -> torch.Tensor:
    """Shift every image by its own random offset of up to ``pixels`` (batched, zero fill)."""
    n, _, h, w = x.shape
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    offsets = (torch.rand(n, 2, generator=gen) * 2 - 1) * pixels
    theta[:, 0, 2] = offsets[:, 0] * 2 / w  # affine_grid works in [-1, 1] coordinates
    theta[:, 1, 2] = offsets[:, 1] * 2 / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)


def replace_modules(net: torch.nn.Module, kinds, make) -> torch.nn.Module:
    """``net`` with every submodule that is one of ``kinds`` replaced by ``make(it)``, in place."""
    for module in list(net.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, kinds):
                setattr(module, child_name, make(child))
    return net


def convolutions_only(net: torch.nn.Module) -> torch.nn.Module:
    """``net`` with every BatchNorm2d, ReLU and Dropout replaced by the identity, in place."""
    kinds = (torch.nn.BatchNorm2d, torch.nn.ReLU, torch.nn.Dropout)
    return replace_modules(net, kinds, lambda _: torch.nn.Identity())


def make_step(name: str, channels_last: bool, compiled: bool, bf16: bool = False, convs_only: bool = False):
    """A closure running one training step on a fixed random batch, and the network.

    ``convs_only``: the network stripped by :func:`convolutions_only` (the ceiling of its convolutions).
    """
    torch.manual_seed(0)
    net = build_model(name, {}, SHAPE, heads_for(name)).train()
    if convs_only:
        net = convolutions_only(net)
    memory = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=memory)
    if compiled:
        import torch._inductor.config as inductor

        inductor.force_disable_caches = True  # time a cold compile, as a user's first run sees it
    forward = torch.compile(net) if compiled else net
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(BATCH, *SHAPE)
    labels = torch.randint(0, 10, (BATCH,), generator=gen)

    def step() -> None:
        x = random_shift(images, gen).contiguous(memory_format=memory)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = forward(x)
            if "image" in out:
                loss = F.mse_loss(out["image"].float(), x)
            else:
                loss = F.cross_entropy(out["label"].float(), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step, net


def busy_elsewhere(interval: float = 0.5) -> float | None:
    """Fraction of the machine's CPU time other processes used over ``interval`` (we sleep meanwhile).

    Read from /proc/stat (Linux); None elsewhere.
    """

    def sample() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as f:
                values = [int(v) for v in f.readline().split()[1:]]
        except OSError:
            return None
        return values[3] + values[4], sum(values)  # idle + iowait, total

    a = sample()
    time.sleep(interval)
    b = sample()
    if a is None or b is None or b[1] == a[1]:
        return None
    return round(1 - (b[0] - a[0]) / (b[1] - a[1]), 2)


WAIT_BUDGET = [90.0]  # seconds of waiting for quiet moments left to the whole run (keeps it under ~5 min)


def wait_for_quiet(limit: float = 0.15, max_wait: float = 20.0) -> float | None:
    """Wait until other processes use under ``limit`` of the CPU; the last reading.

    This machine is shared: a measurement taken while something else runs says more about the
    other job than about the model, so each one starts in a quiet moment when there is one
    within ``max_wait`` s (and within what is left of ``WAIT_BUDGET``).
    """
    start = time.perf_counter()
    deadline = start + min(max_wait, WAIT_BUDGET[0])
    busy = busy_elsewhere()
    while busy is not None and busy >= limit and time.perf_counter() < deadline:
        busy = busy_elsewhere()
    WAIT_BUDGET[0] -= time.perf_counter() - start
    return busy


def throughput(step, seconds: float, warmup: int = 3, min_steps: int = 3) -> dict[str, float]:
    """Images/s after ``warmup`` steps, over the steps that fit in ``seconds``; first-step time too.

    The headline figure uses the median step time, which other processes briefly taking a core
    (this machine is shared) barely move; the mean over all steps is reported beside it, and
    ``cpu_share`` / ``busy_elsewhere_before`` say how much the machine was shared.
    """
    quiet = wait_for_quiet()
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0  # includes compilation for torch.compile
    for _ in range(warmup - 1):
        step()
    times: list[float] = []
    start, cpu0 = time.perf_counter(), time.process_time()
    while len(times) < min_steps or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    wall = time.perf_counter() - start
    cpu_share = round((time.process_time() - cpu0) / (wall * torch.get_num_threads()), 2)
    return {
        "images_per_s": round(BATCH / statistics.median(times), 1),
        "images_per_s_mean": round(BATCH * len(times) / sum(times), 1),
        "steps": len(times),
        "first_step_s": round(first, 2),
        # CPU time this process got per wall second and thread: well under 1 means it was starved
        "cpu_share": cpu_share,
        "busy_elsewhere_before": quiet,
        "contended": cpu_share < 0.8 or (quiet is not None and quiet >= 0.15),
    }


def flops_per_image(name: str, channels_last: bool) -> dict[str, int]:
    """Forward and training-step FLOPs per image counted by FlopCounterMode (matmuls and convs).

    The training step (augmentation, forward, loss, backward) is counted as it runs; 3x the
    forward is given beside it, because FlopCounterMode's convolution backward formula ignores
    ``groups`` and overcounts depthwise convs (dualstream's) by about their channel count.
    """
    net = build_model(name, {}, SHAPE, heads_for(name)).train()
    with FlopCounterMode(display=False) as forward:
        net(torch.randn(2, *SHAPE))
    per_image = forward.get_total_flops() // 2
    step, _ = make_step(name, channels_last, compiled=False)
    with FlopCounterMode(display=False) as train:
        step()
    return {
        "forward_flops": per_image,
        "train_flops": train.get_total_flops() // BATCH,
        "train_flops_estimate": 3 * per_image,
    }


def measure_family(name: str, chosen: dict, seconds: float, rounds: int) -> dict:
    """One family: parameters, FLOPs, and training throughput interleaved with the machine's peak."""
    flops = flops_per_image(name, chosen["channels_last"])  # before the timed model exists
    step, net = make_step(name, chosen["channels_last"], chosen["compile"])
    row = {"model": name, "params": sum(p.numel() for p in net.parameters()), **flops}
    peak, tries = interleaved(lambda: throughput(step, seconds), rounds)
    best = max(tries, key=lambda t: t["images_per_s"])
    row.update(best)
    row["images_per_s_spread"] = spread([t["images_per_s"] for t in tries])
    # the counted figure, except where the counter is known to overcount (grouped convs)
    per_image = min(flops["train_flops"], flops["train_flops_estimate"] * 4 // 3)
    row["achieved_gflops"] = round(best["images_per_s"] * per_image / 1e9, 1)
    row["peak"] = peak
    row["fraction_of_matmul_peak"] = round(row["achieved_gflops"] / peak["matmul_gflops"]["best"], 3)
    row["fraction_of_conv_peak"] = round(row["achieved_gflops"] / peak["conv_gflops"]["best"], 3)
    row["inference_images_per_s"] = inference_throughput(name, chosen["channels_last"])
    if name == TARGET[0]:
        row["convolutions_only"] = ceiling(name, chosen, per_image, seconds, rounds)
    return row


def ceiling(name: str, chosen: dict, per_image: int, seconds: float, rounds: int) -> dict:
    """The same training step with batch norm, ReLU and dropout gone, as a fraction of the peak.

    The FLOPs are the full network's (FlopCounterMode counts only the convolutions and the dense
    layer, which both versions keep), so the two fractions compare directly.
    """
    step, _ = make_step(name, chosen["channels_last"], chosen["compile"], convs_only=True)
    peak, tries = interleaved(lambda: throughput(step, seconds), rounds)
    best = max(tries, key=lambda t: t["images_per_s"])
    gflops = best["images_per_s"] * per_image / 1e9
    passes_s = norm_passes_s(name, chosen["channels_last"])
    fused = BATCH / (BATCH / best["images_per_s"] + passes_s)
    return {
        "what": "BatchNorm2d, ReLU and Dropout replaced by the identity",
        "images_per_s": best["images_per_s"],
        "images_per_s_spread": spread([t["images_per_s"] for t in tries]),
        "contended": best["contended"],
        "achieved_gflops": round(gflops, 1),
        "peak": peak,
        "fraction_of_matmul_peak": round(gflops / peak["matmul_gflops"]["best"], 3),
        "fused_bn_relu_bound": {
            "memory_passes_per_layer": NORM_PASSES,
            "passes_ms_per_step": round(passes_s * 1000, 2),
            "images_per_s": round(fused, 1),
            "fraction_of_matmul_peak": round(fused * per_image / 1e9 / peak["matmul_gflops"]["best"], 3),
        },
    }


NORM_PASSES = (
    8  # forward: statistics read, normalise read + write; backward: 2 reads for the sums, 2 reads + 1 write
)


def norm_passes_s(name: str, channels_last: bool, repeats: int = 20) -> float:
    """Seconds a training step of ``name`` would spend on NORM_PASSES memory passes over each BN input.

    A pass is half a ``clone`` (one read, one write) of a tensor of that layer's shape, the best of
    ``repeats`` on a warm tensor: the least any batch norm + ReLU kernel could spend there.
    """
    net = build_model(name, {}, SHAPE, heads_for(name)).train()
    memory = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=memory)
    shapes: list[torch.Size] = []
    hooks = [
        m.register_forward_hook(lambda _m, inputs, _out: shapes.append(inputs[0].shape))
        for m in net.modules()
        if isinstance(m, torch.nn.BatchNorm2d)
    ]
    with torch.no_grad():
        net(torch.randn(BATCH, *SHAPE).contiguous(memory_format=memory))
    for hook in hooks:
        hook.remove()
    total = 0.0
    for shape in shapes:
        x = torch.randn(shape).contiguous(memory_format=memory)
        x.clone()
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            x.clone()
            best = min(best, time.perf_counter() - t0)
        total += NORM_PASSES * best / 2
    return total


def inference_throughput(name: str, channels_last: bool, passes: int = 5) -> float:
    """Eval-mode images/s at batch 128 (study 002 reports inference time per sample).

    Batch 128 rather than larger: at 512 the activations of the wide full-resolution models
    (~100 MB) fall out of cache and throughput drops.
    """
    memory = torch.channels_last if channels_last else torch.contiguous_format
    net = build_model(name, {}, SHAPE, heads_for(name)).eval().to(memory_format=memory)
    x = torch.randn(BATCH, *SHAPE).contiguous(memory_format=memory)
    with torch.inference_mode():
        net(x)
        times = []
        for _ in range(passes):
            t0 = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - t0)
    return round(BATCH / statistics.median(times), 1)


def trial(threads: int, channels_last: bool, compiled: bool, bf16: bool, seconds: float) -> dict:
    """One setting measured on cnn_bn."""
    torch.set_num_threads(threads)
    step, _ = make_step(TARGET[0], channels_last, compiled, bf16)
    row = {"threads": threads, "channels_last": channels_last, "compile": compiled}
    row.update({"precision": "bf16" if bf16 else "fp32", **throughput(step, seconds)})
    print(row, flush=True)
    return row


def compare_settings(seconds: float, try_compile: bool) -> list[dict]:
    """cnn_bn under threads x memory format, then torch.compile and bf16 autocast on the best of those."""
    rows = [trial(t, cl, False, False, seconds) for t in (1, 2) for cl in (False, True)]
    best = max(rows, key=lambda r: r["images_per_s"])
    if try_compile:
        rows.append(trial(best["threads"], best["channels_last"], True, False, seconds))
    # bf16 changes the numerics, so it is reported for the trainer's `precision: bf16`, never chosen here
    rows.append(trial(best["threads"], best["channels_last"], False, True, seconds))
    return rows


def choose(rows: list[dict]) -> tuple[dict, str]:
    """The setting to use for all families, and why, from the measured rows."""
    fp32 = [r for r in rows if r["precision"] == "fp32"]
    eager = max((r for r in fp32 if not r["compile"]), key=lambda r: r["images_per_s"])
    compiled = [r for r in fp32 if r["compile"]]
    why = f"fastest eager setting ({eager['images_per_s']} img/s)"
    if compiled:
        c = compiled[0]
        gain = c["images_per_s"] / eager["images_per_s"]
        if gain >= 1.2 and c["first_step_s"] < 60:
            return c, f"torch.compile is {gain:.2f}x faster and compiles in {c['first_step_s']} s"
        why += f"; torch.compile gave {gain:.2f}x after {c['first_step_s']} s of compilation, not worth it"
    return eager, why


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measured time per setting/model")
    parser.add_argument("--rounds", type=int, default=3, help="peak/model rounds per family")
    parser.add_argument("--models", default="*", help="shell pattern of models to measure")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile trial")
    parser.add_argument("--quick", action="store_true", help="smoke test: cnn_bn only, short, not saved")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds, args.models, args.no_compile = 0.3, 2, TARGET[0], True
        WAIT_BUDGET[0] = 0.0
    load_before = os.getloadavg()
    t_start = time.perf_counter()
    if args.quick:  # the setting the full run chooses on every machine measured so far
        settings = [{"threads": 2, "channels_last": True, "compile": False, "precision": "fp32"}]
    else:
        settings = compare_settings(args.seconds, not args.no_compile)
    chosen, why = choose(settings) if not args.quick else (settings[0], "quick run: not compared")
    torch.set_num_threads(chosen["threads"])
    families = []
    for name in MODELS.list(args.models):
        families.append(measure_family(name, chosen, args.seconds, args.rounds))
        print(families[-1], flush=True)
    target = next((r for r in families if r["model"] == TARGET[0]), None)
    payload = {
        "command": "python benchmarks/bench_models.py "
        + " ".join(
            [f"--seconds {args.seconds:g}", f"--rounds {args.rounds}", f"--models '{args.models}'"]
            + (["--no-compile"] if args.no_compile else [])
        ),
        "input": "28x28x1",
        "batch": BATCH,
        "augmentation": "random shift +-2 px per image (affine_grid + grid_sample)",
        "heads": "10-class classification; autoencoders: reconstruction (MSE)",
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "timing_valid": load_quiet_enough(load_before) and load_quiet_enough(),
        "settings_on_cnn_bn": settings,
        "chosen": {k: chosen[k] for k in ("threads", "channels_last", "compile", "precision")},
        "why": why,
        "target": {
            "model": TARGET[0],
            "fraction_of_matmul_peak": TARGET[1],
            "measured": target and target["fraction_of_matmul_peak"],
            "met": target is not None and target["fraction_of_matmul_peak"] >= TARGET[1],
            "convolutions_only": target and target["convolutions_only"]["fraction_of_matmul_peak"],
            "fused_bn_relu_bound": target
            and target["convolutions_only"]["fused_bn_relu_bound"]["fraction_of_matmul_peak"],
        },
        "families": families,
        "wall_s": round(time.perf_counter() - t_start, 1),
    }
    if args.quick:
        print(payload)
        return
    save("models", payload)


if __name__ == "__main__":
    main()
