"""Read a run directory as plain files: the report never imports the trainer or the data readers.

Every reader is forgiving: a missing or unreadable file becomes a one-line entry in
``RunFiles.problems`` and the report renders whatever else exists, because a failed or interrupted
run is exactly the one somebody needs to look at.
"""

from __future__ import annotations

import csv
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from smallvision.errors import UserError

# split -> head -> field ("y_true", "prob", "y_pred") -> array
Predictions = dict[str, dict[str, dict[str, np.ndarray]]]


@dataclass
class RunFiles:
    """Everything a run directory holds that the report shows.

    Attributes:
        path: the run directory.
        config_text: ``config.yaml`` verbatim, or None when absent.
        config: ``config.yaml`` parsed ({} when absent or not valid YAML).
        env: ``env.json`` parsed, or None.
        history: ``history.csv`` as column name -> float array (NaN for empty cells), in file order.
        metrics: ``metrics.json`` parsed, or None.
        predictions: ``predictions.npz`` as split -> head -> field -> array.
        indices: split -> sample indices (``<split>/index``).
        problems: one line per file that is missing or could not be read.
    """

    path: Path
    config_text: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] | None = None
    history: dict[str, np.ndarray] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None
    predictions: Predictions = field(default_factory=dict)
    indices: dict[str, np.ndarray] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The run's name from its config, else the directory name."""
        name = self.config.get("name") if isinstance(self.config, dict) else None
        return str(name) if name else self.path.name

    @property
    def status(self) -> str:
        """``completed``, ``failed``, or ``unknown`` when metrics.json is missing or says nothing."""
        if not self.metrics:
            return "unknown"
        return str(self.metrics.get("status", "unknown"))


def load_run(run_dir: str | Path) -> RunFiles:
    """Read every file of a run directory that the report uses.

    Args:
        run_dir: the run directory (``runs/<name>-<timestamp>/``).

    Returns:
        The files' contents; what is missing or unreadable is listed in ``problems``.

    Raises:
        UserError: ``run_dir`` does not exist or is not a directory.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise UserError(f"run directory {str(path)!r} not found: give the directory a run wrote")
    run = RunFiles(path=path)
    run.config_text, run.config = _read_config(path / "config.yaml", run.problems)
    run.env = _read_json(path / "env.json", run.problems)
    run.metrics = _read_json(path / "metrics.json", run.problems)
    run.history = _read_history(path / "history.csv", run.problems)
    run.predictions, run.indices = _read_predictions(path / "predictions.npz", run.problems)
    return run


def _read_config(path: Path, problems: list[str]) -> tuple[str | None, dict[str, Any]]:
    if not path.is_file():
        problems.append(f"{path.name} not found")
        return None, {}
    text = path.read_text(errors="replace")
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problems.append(f"{path.name} is not valid YAML ({getattr(exc, 'problem', exc)}); shown as text")
        return text, {}
    return text, parsed if isinstance(parsed, dict) else {}


def _read_json(path: Path, problems: list[str]) -> dict[str, Any] | None:
    if not path.is_file():
        problems.append(f"{path.name} not found")
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        problems.append(f"{path.name} is not valid JSON ({exc})")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path.name}: expected a JSON object, got {type(data).__name__}")
        return None
    return data


def _read_history(path: Path, problems: list[str]) -> dict[str, np.ndarray]:
    if not path.is_file():
        problems.append(f"{path.name} not found")
        return {}
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        rows = [row for row in reader if row]
    if not header:
        problems.append(f"{path.name} is empty")
        return {}
    columns: dict[str, list[float]] = {name: [] for name in header}
    for row in rows:
        for name, cell in zip(header, row, strict=False):
            columns[name].append(_to_float(cell))
        for name in header[len(row) :]:  # a short row (interrupted write) leaves gaps, not a crash
            columns[name].append(math.nan)
    return {name: np.asarray(values, dtype=np.float64) for name, values in columns.items()}


def _to_float(cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        return math.nan


def _read_predictions(path: Path, problems: list[str]) -> tuple[Predictions, dict[str, np.ndarray]]:
    predictions: Predictions = {}
    indices: dict[str, np.ndarray] = {}
    if not path.is_file():
        problems.append(f"{path.name} not found")
        return predictions, indices
    try:
        # allow_pickle=False: a run directory may come from elsewhere; never execute its contents
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        problems.append(f"{path.name} could not be read ({exc})")
        return predictions, indices
    for key, array in arrays.items():
        parts = key.split("/")
        if len(parts) == 2 and parts[1] == "index":
            indices[parts[0]] = array
        elif len(parts) >= 3:
            split, head, name = parts[0], "/".join(parts[1:-1]), parts[-1]
            predictions.setdefault(split, {}).setdefault(head, {})[name] = array
        else:
            problems.append(f"{path.name}: key {key!r} is not <split>/<head>/<field>; ignored")
    return predictions, indices
