"""The study file: a base run config, steps of variants × axes × zip × seeds, and references.

:func:`load_study` reads the file, expands every step into cells in a fixed order and checks the
whole study (keys, types of every cell, references, selection metrics, search ranges) before
anything trains, so a typo in the last step fails in a second instead of after hours.
The format is documented in docs/studies.md.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smallvision.config import RunConfig, apply_overrides, build_config, parse_override, read_yaml
from smallvision.errors import UserError
from smallvision.study.claims_check import parse_claims
from smallvision.study.spec_grid import (
    NAME,
    Cell,
    check_overlap,
    expand,
    flat_mapping,
    parse_variants,
    value_lists,
)
from smallvision.study.spec_refs import (
    CellOutcome,
    Ref,
    Selection,
    cell_id,
    references,
    resolve_cell,
    resolve_overrides,
    select_best,
)
from smallvision.study.spec_search import SearchParam, SearchSpec, parse_search

# the study-file API in one import (the grid, references and search live in spec_grid / spec_refs / spec_search)
__all__ = [
    "Cell",
    "CellOutcome",
    "Ref",
    "SearchParam",
    "SearchSpec",
    "Selection",
    "Step",
    "StudySpec",
    "cell_config",
    "cell_id",
    "load_study",
    "references",
    "resolve_cell",
    "resolve_overrides",
    "select_best",
]

TOP_KEYS = ("name", "description", "base", "output_dir", "seeds", "steps", "claims")
STEP_KEYS = ("name", "description", "set", "axes", "zip", "variants", "seeds", "select", "search", "ensemble")
# run-config keys a command-line override of a study may start with (the rest are study keys)
_RUN_KEYS = ("data", "model", "heads", "train", "report")


@dataclass(frozen=True)
class Step:
    """One step of a study.

    Attributes:
        name: the step's name (what references use).
        cells: its cells in expansion order (empty for a step that only searches).
        select: the metric a bare ``@name.best`` uses, if declared.
        search: the step's Optuna search, if declared.
        depends_on: the earlier steps its references name, in order of first use.
        set: its fixed overrides (flattened dotted keys), the start of every cell and trial.
        seeds: its seeds (a search trains its trials at the first, its best at each).
        ensemble: also soft-vote each group's seeds (``study.ensembles``).
    """

    name: str
    cells: list[Cell]
    select: str | None
    search: SearchSpec | None
    depends_on: list[str]
    set: dict[str, Any] | None = None
    seeds: tuple[int, ...] = ()
    ensemble: bool = False


@dataclass(frozen=True)
class StudySpec:
    """A whole study, expanded and checked.

    Attributes:
        name: the study's name.
        path: the study file, or None when given as a mapping.
        raw: the file as given.
        base: the base run config as a raw mapping, with command-line overrides applied.
        steps: the steps in order.
        output_dir: where study directories go.
        origin: how errors name the study (its path, or ``study <name>``).
        claims: what the study sets out to test (``study.claims_check``), checked against its groups.
    """

    name: str
    path: Path | None
    raw: dict
    base: dict
    steps: list[Step]
    output_dir: str = "studies"
    origin: str = "study"
    claims: tuple = ()

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        for s in self.steps:
            if s.name == name:
                return s
        raise UserError(f"{self.origin}: no step {name!r} (steps: {', '.join(s.name for s in self.steps)})")


def load_study(path_or_mapping: str | Path | Mapping, overrides: list[str] | dict | None = None) -> StudySpec:
    """Read, expand and check a study file before anything trains.

    Args:
        path_or_mapping: a YAML study file, or the study as a mapping.
        overrides: ``key=value`` strings or a mapping. Run keys (``train.epochs=1``) and
            ``base.<key>`` change the base config; ``steps.<step>.<run key>`` is added to that
            step's ``set`` (so it wins over the step's own value); ``name``, ``output_dir`` and
            ``seeds`` change the study (``seeds`` replaces the seeds of every step).

    Raises:
        UserError: one line naming the study, step, cell and key of the first problem.
    """
    from smallvision.study.spec_check import check_study

    if isinstance(path_or_mapping, Mapping):
        path, raw = None, _copy(dict(path_or_mapping))
    else:
        path = Path(path_or_mapping)
        raw = read_yaml(path)
    origin = str(path) if path else f"study {raw.get('name', '')!r}".replace(" ''", "")
    doc, base_over, all_seeds, step_over = _apply_study_overrides(_copy(raw), overrides, origin)
    _check_keys(doc, TOP_KEYS + (() if "steps" in doc else STEP_KEYS), origin, "study")
    base = _load_base(doc, path, origin, base_over)
    base_cfg = build_config(base, origin=f"{origin}: base")
    seeds = _seeds(doc.get("seeds"), f"{origin}: seeds") or base_cfg.seeds or [base_cfg.seed]
    raw_steps = _step_overrides(_raw_steps(doc, origin), step_over, origin)
    if all_seeds is not None:
        raw_steps = [{**s, "seeds": seeds} for s in raw_steps]
    steps = [_parse_step(s, i, seeds, base_cfg, origin) for i, s in enumerate(raw_steps)]
    names = [s.name for s in steps]
    for i, n in enumerate(names):
        if n in names[:i]:
            raise UserError(f"{origin}: step {n!r}: two steps have this name; names must be unique")
    spec = StudySpec(
        name=_name(doc, path, origin),
        path=path,
        raw=raw,
        base=base,
        steps=steps,
        output_dir=str(doc.get("output_dir") or "studies"),
        origin=origin,
        claims=parse_claims(doc.get("claims"), steps, origin),
    )
    check_study(spec)
    return spec


def cell_config(spec: StudySpec, cell: Cell, overrides: Mapping[str, Any]) -> RunConfig:
    """The run config of ``cell`` with ``overrides`` (its own, references resolved) on the base."""
    runnable = {k: v for k, v in overrides.items() if k != "baseline"}
    raw = apply_overrides(spec.base, runnable)
    return build_config(raw, origin=f"{spec.origin}: step {cell.step!r}, cell {cell.label!r}")


# ---------------------------------------------------------------- reading the file


def _apply_study_overrides(
    doc: dict, overrides: list[str] | dict | None, origin: str
) -> tuple[dict, dict[str, Any], Any, dict[str, dict[str, Any]]]:
    """Command-line ``key=value``: run keys go to the base (returned), study keys into ``doc``.

    Returns the study mapping, the base overrides, the ``seeds`` override (None when absent) and
    the step overrides (``steps.<step>.<run key>``: step -> dotted key -> value).
    """
    pairs = (
        [(k.split("."), v) for k, v in overrides.items()]
        if isinstance(overrides, dict)
        else [parse_override(o) for o in overrides or []]
    )
    base_over: dict[str, Any] = {}
    step_over: dict[str, dict[str, Any]] = {}
    seeds = None
    for parts, value in pairs:
        if parts[0] == "base" and len(parts) > 1:
            base_over[".".join(parts[1:])] = value
        elif parts[0] == "steps" and len(parts) > 2 and parts[2] in _RUN_KEYS:
            step_over.setdefault(parts[1], {})[".".join(parts[2:])] = value
        elif parts[0] in _RUN_KEYS:
            base_over[".".join(parts)] = value
        elif parts[0] in ("name", "output_dir") and len(parts) == 1:
            doc[parts[0]] = value
        elif parts[0] == "seeds" and len(parts) == 1:
            doc["seeds"] = seeds = value
        else:
            raise UserError(
                f"{origin}: override {'.'.join(parts)!r}: expected a run key (train.epochs=1), "
                "base.<key>, steps.<step>.<run key>, name, output_dir or seeds"
            )
    return doc, base_over, seeds, step_over


def _step_overrides(steps: list[dict], over: dict[str, dict[str, Any]], origin: str) -> list[dict]:
    """``steps.<step>.<key>=value`` added to that step's ``set`` (after its own keys, so they win)."""
    names = [s.get("name") for s in steps]
    for name, keys in over.items():
        if name not in names:
            raise UserError(
                f"{origin}: override steps.{name}...: no step {name!r} (steps: {', '.join(map(str, names))})"
            )
        step = steps[names.index(name)]
        step["set"] = {**flat_mapping(step.get("set"), f"{origin}: step {name!r}: set"), **keys}
    return steps


def _load_base(doc: dict, path: Path | None, origin: str, overrides: dict[str, Any]) -> dict:
    base = doc.get("base")
    if base is None:
        raise UserError(
            f"{origin}: base: missing; give a run config file (relative to the study) or a mapping"
        )
    if isinstance(base, str):
        file = Path(base) if Path(base).is_absolute() or path is None else path.parent / base
        if not file.is_file():
            raise UserError(
                f"{origin}: base: run config {str(file)!r} not found (paths are relative to the study)"
            )
        base = read_yaml(file)
    elif not isinstance(base, Mapping):
        raise UserError(f"{origin}: base: expected a path or a mapping, got {base!r}")
    base = apply_overrides(_copy(dict(base)), overrides)
    found = references(base)
    if found:
        raise UserError(f"{origin}: base: reference {found[0].text!r}: references belong in a step")
    return base


def _raw_steps(doc: dict, origin: str) -> list[dict]:
    if "steps" not in doc:
        return [{"name": "main", **{k: doc[k] for k in STEP_KEYS if k in doc and k not in ("name", "seeds")}}]
    steps = doc["steps"]
    if not isinstance(steps, list) or not steps:
        raise UserError(f"{origin}: steps: expected a non-empty list of steps, got {steps!r}")
    for i, s in enumerate(steps):
        if not isinstance(s, Mapping):
            raise UserError(f"{origin}: steps[{i}]: expected a mapping with name, axes ..., got {s!r}")
    return [dict(s) for s in steps]


def _name(doc: dict, path: Path | None, origin: str) -> str:
    name = doc.get("name") or (path.stem if path else "study")
    if not isinstance(name, str) or not NAME.match(name):
        raise UserError(f"{origin}: name: expected letters, digits, _ or -, got {name!r}")
    return name


def _check_keys(doc: Mapping, allowed: tuple[str, ...], origin: str, what: str) -> None:
    for key in doc:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; expected one of: {', '.join(allowed)}"
            raise UserError(f"{origin}: {what}: unknown key {key!r}{hint}")


def _seeds(value: Any, where: str) -> list[int] | None:
    if value is None:
        return None
    ok = (
        isinstance(value, list)
        and value
        and all(isinstance(s, int) and not isinstance(s, bool) for s in value)
    )
    if not ok:
        raise UserError(f"{where}: expected a non-empty list of integers, e.g. [0, 1, 2], got {value!r}")
    if len(set(value)) != len(value):
        raise UserError(f"{where}: seed repeated in {value!r}")
    return list(value)


# ---------------------------------------------------------------- one step


def _parse_step(raw: dict, index: int, seeds: list[int], base: RunConfig, origin: str) -> Step:
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise UserError(f"{origin}: steps[{index}]: name: expected letters, digits, _ or -, got {name!r}")
    where = f"{origin}: step {name!r}"
    _check_keys(raw, STEP_KEYS, origin, f"step {name!r}")
    fixed = flat_mapping(raw.get("set"), f"{where}: set")
    variants = parse_variants(raw.get("variants"), where)
    axes = value_lists(raw.get("axes"), f"{where}: axes")
    zipped = value_lists(raw.get("zip"), f"{where}: zip")
    lengths = {k: len(v) for k, v in zipped.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        raise UserError(f"{where}: zip: keys vary together so their lists need equal lengths ({shown})")
    check_overlap(where, axes=list(axes), zip=list(zipped), variants=[k for _, o in variants for k in o])
    step_seeds = _seeds(raw.get("seeds"), f"{where}: seeds") or seeds
    select = raw.get("select")
    if select is not None and not isinstance(select, str):
        raise UserError(f"{where}: select: expected a metric name such as val/loss, got {select!r}")
    search = parse_search(raw.get("search"), where) if raw.get("search") is not None else None
    ensemble = raw.get("ensemble", False)
    if not isinstance(ensemble, bool):
        raise UserError(f"{where}: ensemble: expected true or false, got {ensemble!r}")
    grid = any(raw.get(k) for k in ("variants", "axes", "zip"))
    reset = {"seeds": None} if base.seeds is not None else {}
    cells = (
        []
        if search is not None and not grid
        else expand(name, fixed, variants, axes, zipped, step_seeds, reset)
    )
    labels = [c.label for c in cells]
    for i, label in enumerate(labels):
        if label in labels[:i]:
            raise UserError(f"{where}, cell {label!r}: two cells have the same values; remove the repeat")
    found = [r.step for c in cells for r in references(c.overrides)] + [r.step for r in references(fixed)]
    depends = list(dict.fromkeys(found))
    return Step(name, cells, select, search, depends, fixed, tuple(step_seeds), ensemble)


def _copy(d: Any) -> Any:
    if isinstance(d, Mapping):
        return {k: _copy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_copy(v) for v in d]
    return d
