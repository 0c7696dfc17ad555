"""Shared fixtures: tiny, fast configurations for end-to-end runs."""

from __future__ import annotations

import os

import pytest
import torch

# two worker processes on a 2-core CI machine: one intra-op thread each avoids oversubscription
torch.set_num_threads(int(os.environ.get("SMALLVISION_TEST_THREADS", "1")))


@pytest.fixture
def tiny_config(tmp_path):
    """A run on scikit-learn's 8x8 digits that finishes in a few seconds."""
    return {
        "name": "tiny",
        "seed": 3,
        "output_dir": str(tmp_path / "runs"),
        "data": {"source": "builtin:digits", "split": {"train": 0.6, "val": 0.2, "test": 0.2}},
        "model": {"name": "cnn_small", "params": {"channels": [8, 16], "hidden": 32}},
        "train": {
            "epochs": 3,
            "batch_size": 64,
            "optimizer": {"lr": 0.01},
            "early_stopping": {"monitor": "val/label/accuracy"},
            "progress": False,
        },
        "report": {"enabled": False},
    }


def pytest_terminal_summary(terminalreporter):
    """List the files tests kept for a person to look at (``record_property("artifact", path)``)."""
    reports = [r for key in ("passed", "failed") for r in terminalreporter.stats.get(key, [])]
    kept = [
        (r.nodeid, v) for r in reports if r.when == "call" for k, v in r.user_properties if k == "artifact"
    ]
    if kept:
        terminalreporter.section("artifacts")
        for nodeid, path in kept:
            terminalreporter.write_line(f"{nodeid}: {path}")
