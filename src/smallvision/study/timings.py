"""``timings.json`` of a study directory: one entry per command that ran it (start, wall seconds,
workers, this machine), so that the results page (``study.results_doc``) can state its wall time."""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime
from pathlib import Path

from smallvision.rundir import write_json
from smallvision.study.worker import PlannedCell


def record_timing(
    study_dir: Path, started: float, seconds: float, workers: int, plan: list[PlannedCell]
) -> None:
    """One more invocation in ``timings.json``: its start, wall seconds, workers and this machine.

    A resumed or extended study adds one entry per command, so its wall time is their sum.
    """
    path = study_dir / "timings.json"
    runs = json.loads(path.read_text()) if path.is_file() else []
    runs.append({
        "started": datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        "wall_seconds": seconds, "workers": workers, "cpus": os.cpu_count(), "host": platform.node(),
        "processor": _processor(), "cells_done": sum(pc.state == "done" for pc in plan), "cells": len(plan),
    })  # fmt: skip
    write_json(path, runs)


def _processor() -> str:
    """The CPU model (``/proc/cpuinfo``'s model name where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
