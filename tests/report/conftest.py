"""Fake run directories, written the way the run code writes them, for the report tests.

metrics.json is computed here with scikit-learn, independently of the report's own numpy code,
so the report's recomputation is checked against a second implementation.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    mean_absolute_error,
    mean_squared_error,
    precision_recall_fscore_support,
    r2_score,
)

CLASSES = ["cat", "dog", "bird", "fish"]
BEST_EPOCH = 4


def _classifier(rng: np.random.Generator, n: int, degenerate: bool) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, prob): mostly right, or class 0 for everything."""
    k = len(CLASSES)
    y = np.arange(n) % k
    pred = np.zeros(n, dtype=np.int64) if degenerate else y.copy()
    if not degenerate:
        wrong = rng.random(n) < 0.1
        pred[wrong] = rng.integers(0, k, wrong.sum())
    logits = rng.normal(0, 0.3, (n, k))
    logits[np.arange(n), pred] += 3.0
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, prob.astype(np.float32)


def _class_metrics(y: np.ndarray, prob: np.ndarray) -> dict:
    pred = prob.argmax(axis=1)
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=range(len(CLASSES)), zero_division=0)
    return {
        "accuracy": accuracy_score(y, pred),
        "macro_f1": float(f.mean()),
        "macro_precision": float(p.mean()),
        "macro_recall": float(r.mean()),
        "per_class": {"precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist(), "support": s.tolist()},
    }


def _reg_metrics(t: np.ndarray, p: np.ndarray) -> dict:
    return {
        "mae": mean_absolute_error(t, p),
        "rmse": float(np.sqrt(mean_squared_error(t, p))),
        "r2": r2_score(t, p),
    }


def _write_history(path: Path, val: dict, epochs: int = 6) -> None:
    header = ["epoch", "lr", "seconds", "train/loss", "train/label/loss", "train/value/loss"]
    header += ["val/loss", "val/label/loss", "val/value/loss", "val/label/accuracy", "val/label/macro_f1"]
    header += ["val/value/mae", "val/value/rmse", "val/value/r2"]
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for e in range(1, epochs + 1):
            loss = 2.0 / e
            row = [
                e,
                1e-3 * (1 - e / (epochs + 1)),
                1.5,
                loss,
                loss * 0.9,
                loss * 0.1,
                loss * 1.1,
                loss,
                loss * 0.1,
            ]
            if e == BEST_EPOCH:  # the best epoch logs exactly what the saved val predictions give
                row += [val["label"]["accuracy"], val["label"]["macro_f1"]]
                row += [val["value"]["mae"], val["value"]["rmse"], val["value"]["r2"]]
            else:
                row += [0.5, 0.4, 0.2, 0.25, 0.3]
            writer.writerow([repr(float(v)) if isinstance(v, float | np.floating) else v for v in row])


def write_run(
    root: Path,
    *,
    degenerate: bool = False,
    n: int = 200,
    seed: int = 0,
) -> Path:
    """A completed run with a classification head ``label`` and a regression head ``value``."""
    rng = np.random.default_rng(seed)
    run = root / "run-1"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("name: fake-run\nseed: 42\ntrain:\n  epochs: 6\n")
    env = {"python": "3.11.9", "platform": "Linux", "packages": {"torch": "2.13.0", "numpy": "2.4"}}
    env |= {"git_commit": "abc123", "seed": 42, "data_fingerprint": "f00d", "threads": 2}
    env |= {"started": "2025-01-01T00:00:00", "command": "smallvision run x.yaml"}
    (run / "env.json").write_text(json.dumps(env))
    arrays, metrics = {}, {"test": {}, "val": {}}
    for split in ("test", "val"):
        y, prob = _classifier(rng, n, degenerate)
        t = rng.random(n).astype(np.float32)
        p = np.clip(t + rng.normal(0, 0.05, n), 0, 1).astype(np.float32)
        arrays |= {f"{split}/index": np.arange(n), f"{split}/label/y_true": y, f"{split}/label/prob": prob}
        arrays |= {f"{split}/value/y_true": t, f"{split}/value/y_pred": p}
        metrics[split] = {"label": _class_metrics(y, prob), "value": _reg_metrics(t, p)}
    np.savez(run / "predictions.npz", **arrays)
    _write_history(run / "history.csv", metrics["val"])
    metrics |= {"status": "completed", "best_epoch": BEST_EPOCH, "epochs_run": 6, "stopped_early": False}
    metrics |= {
        "train_seconds": 9.5,
        "eval_seconds": 0.4,
        "params": {"stem": 320, "head": 1290, "total": 1610},
    }
    metrics["heads"] = {"label": {"kind": "classification", "classes": CLASSES}}
    metrics["heads"]["value"] = {"kind": "regression", "classes": None}
    metrics["data"] = {"source": "builtin:fake", "n_train": 600, "n_val": n, "n_test": n}
    metrics["data"] |= {"input_shape": [1, 28, 28], "normalization": {"mean": [0.13], "std": [0.31]}}
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


@pytest.fixture
def make_run(tmp_path: Path):
    """``make_run(**kwargs)`` -> a fresh fake run directory under tmp_path."""
    counter = iter(range(1000))

    def make(**kwargs) -> Path:
        return write_run(tmp_path / f"r{next(counter)}", **kwargs)

    return make


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> tuple[Path, str]:
    """A good run rendered once per module: (run directory, report.html text)."""
    from smallvision.report import write_report

    run = write_run(tmp_path_factory.mktemp("good"))
    return run, write_report(run).read_text()
