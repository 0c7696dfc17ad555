"""Read a run directory: one typed :class:`Run` for single runs, seed groups and ensembles.

Nothing here imports torch, the trainer or the data readers, so the report and the study
runner can read hundreds of directories cheaply, including runs that failed half-way.

Each file is read when first asked for. :func:`load_run` is strict: a missing or unreadable file
raises a one-line UserError naming it. :func:`read_run` is tolerant, for the report ("render what
it can"): every file is read at once and each one missing or unreadable becomes a line in
``Run.problems`` while its accessor gives None.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from smallvision.config import RunConfig, load_config
from smallvision.errors import UserError
from smallvision.rundir.arrays import StoredTestImages, load_test_images, read_npz
from smallvision.rundir.layout import RunPaths
from smallvision.rundir.predictions import Predictions, load_predictions
from smallvision.rundir.record import MetricsRecord

# column name -> one float per epoch (NaN for an empty cell), in file order
History = dict[str, np.ndarray]


@dataclass(eq=False)
class Run:
    """One run directory (or seed-group or ensemble directory) as typed records.

    Attributes:
        dir: the directory.
        tolerant: False: a missing/unreadable file raises UserError; True: it is listed in
            ``problems`` and its accessor gives None.
        problems: one line per file that was missing or could not be read (tolerant mode).
    """

    dir: Path
    tolerant: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def paths(self) -> RunPaths:
        """Every path of this directory."""
        return RunPaths(self.dir)

    def _fail(self, path: Path, why: str) -> None:
        if not self.tolerant:
            raise UserError(f"{path} {why}")
        self.problems.append(f"{path.name} {why}")

    @cached_property
    def config_text(self) -> str | None:
        """``config.yaml`` verbatim (None when absent)."""
        path = self.paths.config
        if not path.is_file():
            self._fail(path, "not found")
            return None
        return path.read_text(errors="replace")

    @cached_property
    def config(self) -> RunConfig | None:
        """``config.yaml`` as the validated RunConfig the run used."""
        if self.config_text is None:
            return None
        try:
            return load_config(self.paths.config)
        except UserError as exc:
            self._fail(self.paths.config, f"is not a valid config ({exc}); shown as text")
            return None

    @cached_property
    def env(self) -> dict[str, Any] | None:
        """``env.json``: versions, commit, seed, data fingerprint, start time, command."""
        return self._json(self.paths.env)

    @cached_property
    def metrics(self) -> MetricsRecord | None:
        """``metrics.json`` as a typed record (any schema version so far)."""
        data = self._json(self.paths.metrics)
        if data is None:
            return None
        try:
            return MetricsRecord.from_dict(data, where=str(self.paths.metrics))
        except UserError as exc:
            if not self.tolerant:
                raise
            self.problems.append(str(exc))
            return None

    @cached_property
    def history(self) -> History | None:
        """``history.csv``: column -> per-epoch values."""
        path = self.paths.history
        if not path.is_file():
            if self.paths.metrics.is_file() and self.metrics and self.metrics.baseline is not None:
                return None  # a scikit-learn baseline has no epochs: nothing is missing
            self._fail(path, "not found")
            return None
        try:
            history = _read_history(path)
        except (UnicodeDecodeError, csv.Error) as exc:  # a corrupt or binary file, not a crash
            self._fail(path, f"is not a readable CSV file ({exc})")
            return None
        if not history:
            self._fail(path, "is empty")
            return None
        return history

    @cached_property
    def predictions(self) -> Predictions | None:
        """``predictions.npz``: split -> head -> field -> array, and each split's sample indices."""
        path = self.paths.predictions
        if not path.is_file():
            self._fail(path, "not found")
            return None
        try:
            predictions = load_predictions(path)
        except UserError as exc:
            self._fail(path, str(exc).removeprefix(f"{path} "))
            return None
        for key in predictions.ignored:
            self.problems.append(f"predictions.npz: key {key!r} is not <split>/<head>/<field>; ignored")
        return predictions

    @cached_property
    def data_card(self) -> dict[str, np.ndarray] | None:
        """``data_card.npz``: key -> array (:mod:`smallvision.rundir.arrays`); None when absent.

        Absent is not a problem (runs from before it existed, baselines, ensembles); unreadable is.
        """
        return self._optional(self.paths.data_card, read_npz)

    @cached_property
    def test_images(self) -> StoredTestImages | None:
        """``test_images.npz``: the stored test images in ``test/index`` order; None when absent."""
        return self._optional(self.paths.test_images, load_test_images)

    def _optional(self, path: Path, read: Callable[[Path], Any]) -> Any:
        if not path.is_file():
            return None
        try:
            return read(path)
        except UserError as exc:
            self._fail(path, str(exc).removeprefix(f"{path} ").removeprefix(f"{path}: "))
            return None

    @property
    def status(self) -> str:
        """``completed``, ``failed``, ``interrupted``, or ``unknown`` while there is no metrics.json
        (still running, or killed before it could write one)."""
        if not self.paths.metrics.is_file():
            return "unknown"
        return self.metrics.status if self.metrics else "unknown"

    @property
    def name(self) -> str:
        """The run's name from its config, else the directory name."""
        if self.config is not None:
            return self.config.name
        try:
            raw = yaml.safe_load(self.config_text or "")
        except yaml.YAMLError:
            raw = None
        name = raw.get("name") if isinstance(raw, dict) else None
        return str(name) if name else self.dir.name

    @property
    def is_group(self) -> bool:
        """A seed group's directory: a config with ``seeds`` and no run of its own (no env.json)."""
        return not self.paths.env.exists() and self.config is not None and bool(self.config.seeds)

    def members(self) -> list[Run]:
        """The member runs of a seed group (``seed-<s>/`` per seed of its config), read the same way."""
        seeds = self.config.seeds if self.config is not None else None
        return [Run(self.paths.member(s), self.tolerant) for s in seeds or []]

    def ensemble(self) -> Run:
        """A seed group's ``ensemble/`` directory, read the same way."""
        return Run(self.paths.ensemble, self.tolerant)

    def _json(self, path: Path) -> dict[str, Any] | None:
        if not path.is_file():
            self._fail(path, "not found")
            return None
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            self._fail(path, f"is not valid JSON ({exc})")
            return None
        if not isinstance(data, dict):
            self._fail(path, f"expected a JSON object, got {type(data).__name__}")
            return None
        return data


def _directory(run_dir: str | Path) -> Path:
    path = Path(run_dir)
    if not path.is_dir():
        raise UserError(f"run directory {str(path)!r} not found: give the directory a run wrote")
    return path


def load_run(run_dir: str | Path) -> Run:
    """A run directory, read strictly: ``config.yaml`` now, every other file when first used.

    Args:
        run_dir: a run, seed-group or ensemble directory (an ensemble's has no config.yaml).

    Returns:
        The Run; ``run.metrics``, ``run.history``... raise a one-line UserError naming the file
        when it is missing or unreadable.

    Raises:
        UserError: not a directory, neither config.yaml nor metrics.json in it, or an invalid
            config.yaml.
    """
    run = Run(_directory(run_dir))
    if run.paths.config.is_file():
        _ = run.config  # a bad config fails here, not later in the middle of a study
    elif not run.paths.metrics.is_file():
        raise UserError(f"{run.dir} is not a run directory: it has neither config.yaml nor metrics.json")
    return run


def read_run(run_dir: str | Path) -> Run:
    """A run directory read tolerantly and at once: what is missing or unreadable is in ``problems``.

    Raises:
        UserError: ``run_dir`` does not exist or is not a directory.
    """
    run = Run(_directory(run_dir), tolerant=True)
    for name in ("config", "env", "metrics", "history", "predictions"):
        getattr(run, name)
    return run


def _read_history(path: Path) -> History:
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        rows = [row for row in reader if row]
    if not header:
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
