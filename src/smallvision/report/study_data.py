"""A study directory read back tolerantly, for its report: steps, cells, their runs, selections.

The cells come from ``study.resolved.yaml`` (typed axis values, steps and their order), else from
``results.csv``, else from the run directories under ``runs/``; each cell's state is what its run
directory says (``metrics.json``, ``error.json``), else what the study files recorded. Every study
file or run file that is missing or unreadable becomes one line of ``StudyDir.problems``, named by
its path inside the study directory, and the rest is still read. Nothing here imports the runner
or the trainer: a report reads directories only.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from smallvision.errors import UserError
from smallvision.rundir import Run, read_run

# the files every finished study has (study/results.py, study/runner.py), in the order shown
STUDY_FILES = ("study.yaml", "study.json", "study.resolved.yaml", "selections.json", "results.csv")
_STATES = {"done": "completed"}
_FIXED = ("step", "cell_id", "label", "variant")


@dataclass
class StudyCell:
    """One cell of the study as its directory records it.

    Attributes:
        step, id, label, variant: as in results.csv (``id`` empty for a cell never resolved).
        values: axis and zip key -> value (typed where study.resolved.yaml gives them).
        seed: the run's seed (None when unknown).
        status: ``completed``, ``failed``, ``pending``, ``waiting``, ``running`` or ``unknown``.
        error: why the cell failed ("" otherwise).
        baseline: the scikit-learn baseline the cell ran instead of a network, if any.
        run: its run directory read tolerantly (None when there is none).
    """

    step: str
    id: str
    label: str
    variant: str
    values: dict[str, Any]
    seed: int | None
    status: str = "unknown"
    error: str = ""
    baseline: str | None = None
    run: Run | None = None

    @property
    def group(self) -> str:
        """The label without its seed: the cells of a group differ only in their seed."""
        return self.label.removesuffix(f" seed={self.seed}")

    @property
    def report(self) -> str | None:
        """The relative link to the cell's run report, when it has one."""
        if self.run is not None and self.run.paths.report.is_file():
            return f"runs/{self.id}/report.html"
        return None


@dataclass
class StudyStep:
    """One step: its cells in study order, what it depends on, its selections and search record."""

    name: str
    depends_on: list[str] = field(default_factory=list)
    cells: list[StudyCell] = field(default_factory=list)
    selections: list[dict] = field(default_factory=list)
    search: dict | None = None


@dataclass
class StudyDir:
    """A study directory: its name, steps, the study file's text, overrides and problems."""

    dir: Path
    name: str
    steps: list[StudyStep]
    study_text: str | None
    overrides: list[str]
    problems: list[str]

    @property
    def cells(self) -> list[StudyCell]:
        return [c for s in self.steps for c in s.cells]


def is_study(path: Path) -> bool:
    """A study directory: ``study.yaml``, or ``results.csv`` beside ``runs/``."""
    return (path / "study.yaml").is_file() or ((path / "results.csv").is_file() and (path / "runs").is_dir())


def read_study(study_dir: str | Path) -> StudyDir:
    """Read a study directory, listing what is missing or unreadable instead of raising.

    Raises:
        UserError: the directory does not exist or is no study directory.
    """
    path = Path(study_dir)
    if not path.is_dir() or not is_study(path):
        raise UserError(
            f"{str(path)!r} is not a study directory (no study.yaml, no results.csv beside runs/); "
            "give studies/<name>-<stamp>"
        )
    problems: list[str] = []
    text = _text(path / "study.yaml", problems)
    saved = _json(path / "study.json", problems, dict) or {}
    resolved = _yaml(path / "study.resolved.yaml", problems)
    rows = _csv(path / "results.csv", problems)
    selections = _json(path / "selections.json", problems, list) or []
    steps = _steps(path, resolved, rows)
    for step in steps:
        ids = {c.id for c in step.cells}
        step.selections = [
            s
            for s in selections
            if isinstance(s, dict) and s.get("step") == step.name and s.get("cell") in ids
        ]
        step.search = _json(path / "search" / step.name / "best.json", problems, dict, required=False)
        for cell in step.cells:
            _attach_run(path, cell, problems)
    name = saved.get("name") or (resolved or {}).get("name") or path.name
    return StudyDir(path, str(name), steps, text, list(saved.get("overrides") or []), problems)


def _text(path: Path, problems: list[str]) -> str | None:
    if not path.is_file():
        problems.append(f"{path.name} not found")
        return None
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path.name} could not be read ({exc})")
        return None


def _where(path: Path) -> str:
    """A path as the page names it: relative to the study directory (search/<step>/best.json)."""
    parts = path.parts
    return "/".join(parts[-3:]) if len(parts) >= 3 and parts[-3] == "search" else path.name


def _json(path: Path, problems: list[str], kind: type, required: bool = True) -> Any:
    if not path.is_file():
        if required:
            problems.append(f"{_where(path)} not found")
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"{_where(path)} is not valid JSON ({exc})")
        return None
    if not isinstance(data, kind):
        problems.append(f"{_where(path)}: expected a JSON {kind.__name__}, got {type(data).__name__}")
        return None
    return data


def _yaml(path: Path, problems: list[str]) -> dict | None:
    text = _text(path, problems)
    if text is None:
        return None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problems.append(f"{path.name} is not valid YAML ({str(exc).splitlines()[0]})")
        return None
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        problems.append(f"{path.name}: expected a mapping with a list of steps")
        return None
    return data


def _csv(path: Path, problems: list[str]) -> list[dict] | None:
    text = _text(path, problems)
    if text is None:
        return None
    try:
        rows = list(csv.DictReader(text.splitlines()))
    except csv.Error as exc:
        problems.append(f"{path.name} is not a readable CSV file ({exc})")
        return None
    if rows and not all(k in rows[0] for k in _FIXED):
        problems.append(f"{path.name}: expected the columns {', '.join(_FIXED)}; ignored")
        return None
    return rows


def _steps(path: Path, resolved: dict | None, rows: list[dict] | None) -> list[StudyStep]:
    by_id = {r.get("cell_id"): r for r in rows or [] if r.get("cell_id")}
    if resolved is not None:
        steps = [_resolved_step(s, by_id) for s in resolved["steps"] if isinstance(s, dict)]
        return [s for s in steps if s is not None]
    if rows:
        return _csv_steps(rows)
    return _run_dir_steps(path)


def _resolved_step(raw: dict, by_id: dict[str, dict]) -> StudyStep | None:
    name = raw.get("name")
    if not isinstance(name, str):
        return None
    step = StudyStep(name, [str(d) for d in raw.get("depends_on") or []])
    for c in raw.get("cells") or []:
        if not isinstance(c, dict):
            continue
        row = by_id.get(c.get("id") or "", {})
        overrides = c.get("overrides") if isinstance(c.get("overrides"), dict) else {}
        step.cells.append(
            StudyCell(
                name,
                str(c.get("id") or ""),
                str(c.get("label", "")),
                str(c.get("variant") or ""),
                dict(c.get("values") or {}),
                _int(c.get("seed")),
                status=row.get("status") or _STATES.get(str(c.get("state")), str(c.get("state", "unknown"))),
                error=row.get("error") or str(c.get("error") or ""),
                baseline=overrides.get("baseline"),
            )
        )
    return step


def _csv_steps(rows: list[dict]) -> list[StudyStep]:
    steps: dict[str, StudyStep] = {}
    columns = list(rows[0])
    axes = columns[columns.index("variant") + 1 : columns.index("seed")] if "seed" in columns else []
    for r in rows:
        step = steps.setdefault(r["step"], StudyStep(r["step"]))
        values = {k: _scalar(r[k]) for k in axes if r.get(k) not in (None, "")}
        cell = StudyCell(r["step"], r["cell_id"], r["label"], r["variant"], values, _int(r.get("seed")))
        cell.status, cell.error = r.get("status") or "unknown", r.get("error") or ""
        step.cells.append(cell)
    return list(steps.values())


def _run_dir_steps(path: Path) -> list[StudyStep]:
    """The last resort: one step of every run directory under runs/ (not the failed attempts)."""
    runs = path / "runs"
    dirs = sorted(d for d in runs.iterdir() if d.is_dir() and "." not in d.name) if runs.is_dir() else []
    step = StudyStep("(unknown step)")
    for d in dirs:
        env = Run(d, tolerant=True).env or {}
        seed = _int(env.get("seed"))
        label = d.name if seed is None else f"{d.name} seed={seed}"
        step.cells.append(StudyCell(step.name, d.name, label, "", {}, seed))
    return [step] if dirs else []


def _attach_run(path: Path, cell: StudyCell, problems: list[str]) -> None:
    """The cell's run directory, its actual state and error, and its files' problems."""
    run_dir = path / "runs" / cell.id
    if not cell.id or not run_dir.is_dir():
        if cell.status == "completed":
            problems.append(f"runs/{cell.id}/ not found (results.csv says the cell completed)")
        return
    run = cell.run = read_run(run_dir)
    error = _json(run_dir / "error.json", [], dict, required=False)
    recorded = cell.status
    if run.metrics is not None and run.metrics.status == "completed":
        cell.status = "completed"
    elif error is not None or (run.metrics is not None and run.metrics.status == "failed"):
        cell.status = "failed"
        reason = (error or {}).get("error") or (run.metrics.error if run.metrics is not None else None)
        cell.error = cell.error or str(reason or "")
    if cell.baseline is None and run.metrics is not None and run.metrics.baseline:
        cell.baseline = str(run.metrics.baseline.get("name"))
    if "completed" in (recorded, cell.status):  # a failed or pending cell lacks files by nature
        problems += [f"runs/{cell.id}/{p}" for p in run.problems]


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _scalar(text: str) -> Any:
    """A results.csv cell as the value it was (0.01 -> float, 16 -> int, text stays text)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, int | float | str | bool) else text
