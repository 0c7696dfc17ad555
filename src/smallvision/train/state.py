"""The trainer's complete state at an epoch boundary, and putting it back exactly.

A resumed run must produce the same numbers as one never interrupted, so the state holds
everything that influences what comes next: weights, optimiser moments, the lr schedule (and
ReduceLROnPlateau's counters), the EMA shadow, the uncertainty log-variances, the early-stopping
record with the best weights, the history, and every random stream (torch's global RNG, the
trainer's shuffling/augmentation generator, NumPy's and Python's global RNGs, CUDA's when used).
Everything is tensors and plain containers, so it loads with ``weights_only=True``.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from smallvision.errors import UserError

FORMAT = 2
REQUIRED = (
    "format",
    "model",
    "optimizer",
    "scheduler",
    "weighting",
    "epoch",
    "step",
    "history",
    "early_stopping",
    "rng",
)


def rng_state(gen: torch.Generator) -> dict:
    """Every random stream a run draws from, as tensors and plain values."""
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


def capture_state(t: Any) -> dict:
    """Everything needed to continue training exactly where it stopped (an epoch boundary)."""
    return {
        "format": FORMAT,
        "model": t.model.state_dict(),
        "optimizer": t.optimizer.state_dict(),
        "scheduler": t.scheduler.state_dict() if t.scheduler is not None else None,
        "plateau": t.plateau.state_dict() if t.plateau is not None else None,
        "weighting": t.weighting.state_dict(),
        "ema": t.ema.state_dict() if t.ema is not None else None,
        "epoch": t.epoch,
        "step": t.step,
        "elapsed": t.elapsed,
        "history": t.history,
        "early_stopping": {
            "best_value": t.best_value,
            "best_epoch": t.best_epoch,
            "best_state": t.best_state,
            "stop": t.stop,
        },
        "rng": rng_state(t.gen),
    }


def check_complete(state: dict, where: str) -> None:
    """A UserError when ``state`` lacks a part (an older format, or not a trainer state at all)."""
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise UserError(
            f"checkpoint {where} is incomplete: missing {', '.join(missing)}; it cannot be resumed"
        )
    if state["format"] != FORMAT:
        raise UserError(
            f"checkpoint {where} has format {state['format']}, this version reads format {FORMAT}"
        )


def load_model_state(model: torch.nn.Module, weights: dict, where: str) -> None:
    """``model.load_state_dict`` with a one-line UserError when the checkpoint is another model's."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        first = str(exc).split("\n")[1].strip() if "\n" in str(exc) else str(exc)
        raise UserError(
            f"checkpoint {where} does not fit this model ({type(model).__name__}): {first}"
        ) from None


def restore_state(t: Any, state: dict, where: str = "last.pt") -> None:
    """Load a :func:`capture_state` dict into trainer ``t`` (built from the same config)."""
    check_complete(state, where)
    if (state["ema"] is None) != (t.ema is None):
        raise UserError(f"checkpoint {where}: train.ema differs between the checkpoint and the config")
    load_model_state(t.model, state["model"], where)
    t.optimizer.load_state_dict(state["optimizer"])
    if state["scheduler"] is not None:
        t.scheduler.load_state_dict(state["scheduler"])
    if state["plateau"] is not None and t.plateau is not None:
        t.plateau.load_state_dict(state["plateau"])
    t.weighting.load_state_dict(state["weighting"])
    if t.ema is not None:
        t.ema.load_state_dict(state["ema"])
    t.epoch, t.step, t.elapsed = int(state["epoch"]), int(state["step"]), float(state.get("elapsed", 0.0))
    t.history = [dict(row) for row in state["history"]]
    es = state["early_stopping"]
    t.best_value, t.best_epoch, t.stop = es["best_value"], int(es["best_epoch"]), bool(es["stop"])
    t.best_state = es["best_state"]
    set_rng_state(t.gen, state["rng"])
