"""Every random stream a run draws from: seeding them, saving them, putting them back.

One seed gives every stream. Weights are initialised from torch's global RNG, and training draws
from two streams: the trainer's own ``torch.Generator`` (shuffling, augmentation, MixUp/CutMix,
masking) and torch's global RNG (dropout). NumPy's and Python's global RNGs are seeded and saved
too, so that a library drawing from them behind the trainer's back still repeats.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's (CPU and CUDA), NumPy's and Python's global RNGs; return a new generator with ``seed``.

    Called when a run builds its model (the same weights for the same seed, whatever ran before in
    the process) and when its trainer starts (the same dropout masks and batches for the same seed,
    however many numbers the model's initialisation drew).
    """
    torch.manual_seed(seed)  # also seeds every CUDA device
    np.random.seed(seed % 2**32)
    random.seed(seed)
    return torch.Generator().manual_seed(seed)


def rng_state(gen: torch.Generator) -> dict:
    """Every random stream a run draws from, as tensors and plain values (``weights_only`` loads it)."""
    np_state = np.random.get_state(legacy=False)
    version, words, gauss = random.getstate()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    return {
        "torch": torch.get_rng_state(),
        "generator": gen.get_state(),
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": {"version": version, "words": list(words), "gauss": gauss},
        "cuda": cuda,
    }


def set_rng_state(gen: torch.Generator, state: dict) -> None:
    """Put back the streams saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    gen.set_state(state["generator"])
    n = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["words"]), p["gauss"]))
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
