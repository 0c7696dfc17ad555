"""Shared helpers for benchmark scripts: machine facts and writing results as JSON."""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "date": datetime.now().isoformat(timespec="seconds"),
    }


def save(name: str, results: dict) -> Path:
    """Write ``results`` (plus machine facts) to benchmarks/results/<name>.json and print it."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "machine": machine(), **results}
    path.write_text(json.dumps(payload, indent=2))
    print(json.dumps(payload, indent=2))
    return path
