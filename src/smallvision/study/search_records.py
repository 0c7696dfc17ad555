"""What a finished search leaves in ``search/<step>/``: ``trials.csv``, ``best.json``, and its cells.

``trials.csv`` has one row per trial as Optuna records it (number, state, value, the last reported
value and its epoch, duration, worker, run directory, one ``params.<key>`` column per searched key,
error); ``best.json`` the metric, its direction, the count of each state and the best trial.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smallvision.study.spec import Cell, SearchParam, SearchSpec, Step, StudySpec

VARIANT = "search-best"
STORABLE = (type(None), bool, int, float, str)  # what Optuna stores as a categorical choice


@dataclass(frozen=True)
class SearchResult:
    """A finished search: its best trial's values and figure (None when no trial completed)."""

    step: str
    best_params: dict[str, Any] | None
    best_value: float | None
    best_number: int | None
    trials: list[dict[str, Any]]


def search_dir(study_dir: str | Path, step: str) -> Path:
    """``search/<step>/`` of a study directory: trial runs, journal, ``trials.csv``, ``best.json``."""
    return Path(study_dir) / "search" / step


def write_records(study: Any, directory: Path, step: str, search: SearchSpec) -> SearchResult:
    """``trials.csv`` (every trial Optuna holds) and ``best.json``; returns the result."""
    rows = [_row(t, search) for t in study.get_trials(deepcopy=False)]
    keys = [f"params.{k}" for k in search.params]
    fields = [
        "number",
        "state",
        "value",
        "last_value",
        "epochs",
        "duration_s",
        "worker",
        "run_dir",
        *keys,
        "error",
    ]
    tmp = directory / f"trials.csv.{os.getpid()}"
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows({k: _cell(r.get(k)) for k in fields} for r in rows)
    tmp.replace(directory / "trials.csv")  # workers finishing together each write the same file whole
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    best = study.best_trial if done else None
    params = {k: _decode(best.params[k], search.params[k]) for k in search.params} if best else None
    record = {
        "step": step,
        "metric": search.metric,
        "direction": study.direction.name.lower(),
        "trials": search.trials,
        "states": {s: sum(r["state"] == s for r in rows) for s in ("COMPLETE", "PRUNED", "FAIL")},
        "best": None if best is None else {"number": best.number, "value": best.value, "params": params},
    }
    tmp = directory / f"best.json.{os.getpid()}"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(directory / "best.json")
    return SearchResult(step, params, best.value if best else None, best.number if best else None, rows)


def _row(t: Any, search: SearchSpec) -> dict[str, Any]:
    steps = sorted(t.intermediate_values)
    return {
        "number": t.number,
        "state": t.state.name,
        "value": t.value,
        "last_value": t.intermediate_values[steps[-1]] if steps else None,
        "epochs": steps[-1] if steps else None,
        "duration_s": round(t.duration.total_seconds(), 3) if t.duration else None,
        "worker": t.user_attrs.get("worker"),
        "run_dir": t.user_attrs.get("run_dir"),
        "error": t.user_attrs.get("error"),
        **{f"params.{k}": _decode(v, search.params[k]) for k, v in t.params.items() if k in search.params},
    }


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else ("" if value is None else value)


def _decode(value: Any, p: SearchParam) -> Any:
    """A stored choice back to its value (choices Optuna cannot store are kept as their JSON)."""
    if p.kind != "categorical" or all(isinstance(c, STORABLE) for c in p.choices):
        return value
    return p.choices[[json.dumps(c, sort_keys=True) for c in p.choices].index(value)]


def read_best(study_dir: str | Path, step: str) -> dict[str, Any] | None:
    """The ``best.json`` of a finished search (None while it has not finished)."""
    path = search_dir(study_dir, step) / "best.json"
    return json.loads(path.read_text()) if path.is_file() else None


def search_cells(spec: StudySpec, step: Step, searched: Mapping[str, Any] | None) -> list[Cell]:
    """A search step's ``search-best`` cells: the best values once ``best.json`` has them, else none yet.

    Before the search ends (``searched`` None) or when it found nothing, the cells carry no values:
    the runner shows them waiting, then failed with the search's reason.
    """
    if step.search is None:
        return []
    best = (searched or {}).get("best")
    return best_cells(spec, step, best["params"] if best else {})


def record_unrunnable(study_dir: str | Path, step: Step, error: str) -> None:
    """``best.json`` of a search that cannot start (its ``set`` names a result that does not exist)."""
    directory = search_dir(study_dir, step.name)
    directory.mkdir(parents=True, exist_ok=True)
    record = {"step": step.name, "metric": step.search.metric, "best": None, "error": error}
    (directory / "best.json").write_text(json.dumps(record, indent=2) + "\n")


def best_cells(spec: StudySpec, step: Step, params: Mapping[str, Any]) -> list[Cell]:
    """The best trial's values as variant ``search-best``, one cell per seed of the step.

    The cells start, like the trials, from the step's ``set`` (references unresolved, as in any
    cell), so the runner plans, names and compares them like a variant of the step's grid.
    """
    fixed = dict(step.set or {})
    reset = {"seeds": None} if spec.base.get("seeds") is not None else {}
    return [
        Cell(
            step.name,
            f"{VARIANT} seed={s}",
            VARIANT,
            dict(params),
            s,
            {**fixed, **params, "seed": s, **reset},
        )
        for s in step.seeds
    ]
