"""References between study steps (``@step``, ``@step.best(val/loss).model.params.x``) and cell ids.

A later step names an earlier one's result instead of copying it by hand: the run directory of a
one-cell step, the run directory of a step's best cell on a *validation* metric, or a config value of
that cell. This module parses references, picks the best cell from finished outcomes and hashes a
resolved config into the id that lets an edited study reuse every unchanged cell.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smallvision.config import RunConfig
from smallvision.config_training import training_view
from smallvision.errors import UserError
from smallvision.evaluate.metrics import higher_is_better

if TYPE_CHECKING:
    from smallvision.study.spec import Cell

# @step | @step.best | @step.best(metric) | @step.best(metric, same_seed) | any of these followed by
# .dotted.config.path
_REF = re.compile(
    r"^@(?P<step>[A-Za-z_][\w-]*)"
    r"(?P<best>\.best(?:\((?P<metric>[^()]*)\))?(?=\.|$))?"
    r"(?:\.(?P<path>[A-Za-z_][\w-]*(?:\.[\w-]+)*))?$"
)


@dataclass(frozen=True)
class Ref:
    """One parsed reference.

    Attributes:
        text: the reference as written.
        step: the step it refers to.
        best: True for ``@step.best...`` (pick the best cell), False for a one-cell step.
        metric: the selection metric of ``best(metric)``; None for a bare ``.best`` (the step's
            ``select:``) or a one-cell reference.
        path: the dotted config path of a value reference; None for a run directory.
        same_seed: ``best(metric, same_seed)``: the best group's run with the referring cell's own
            seed, instead of the group's best seed (fine-tuning seed s starts from source seed s,
            so each seed's before/after pair shares its start).
    """

    text: str
    step: str
    best: bool = False
    metric: str | None = None
    path: str | None = None
    same_seed: bool = False

    @property
    def is_directory(self) -> bool:
        return self.path is None


def parse_ref(text: str) -> Ref | None:
    """The Ref written as ``text``; None when it is no reference (``@@x`` is the literal ``@x``)."""
    if not isinstance(text, str) or not text.startswith("@") or text.startswith("@@"):
        return None
    m = _REF.match(text)
    if m is None:
        raise UserError(
            f"reference {text!r}: expected @step, @step.best(val/<metric>) or @step.best(val/<metric>).a.b"
        )
    metric, same_seed = None, False
    if m["metric"] is not None:
        metric, *more = (part.strip() for part in m["metric"].split(","))
        if more not in ([], ["same_seed"]):
            raise UserError(
                f"reference {text!r}: expected best(val/<metric>) or best(val/<metric>, same_seed), "
                f"got {', '.join(more)!r} after the metric"
            )
        same_seed = bool(more)
        if not metric:
            raise UserError(f"reference {text!r}: best() needs a metric, e.g. best(val/loss)")
    return Ref(
        text, m["step"], best=m["best"] is not None, metric=metric, path=m["path"], same_seed=same_seed
    )


def references(value: Any) -> list[Ref]:
    """Every reference inside ``value`` (a string, or lists and mappings of them), in order."""
    if isinstance(value, str):
        ref = parse_ref(value)
        return [ref] if ref else []
    if isinstance(value, Mapping):
        return [r for v in value.values() for r in references(v)]
    if isinstance(value, list | tuple):
        return [r for v in value for r in references(v)]
    return []


def substitute(value: Any, replace: Callable[[Ref], Any]) -> Any:
    """``value`` with each reference replaced by ``replace(ref)`` and ``@@x`` unescaped to ``@x``."""
    if isinstance(value, str):
        ref = parse_ref(value)
        if ref is not None:
            return replace(ref)
        return value[1:] if value.startswith("@@") else value
    if isinstance(value, Mapping):
        return {k: substitute(v, replace) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [substitute(v, replace) for v in value]
    return value


@dataclass
class CellOutcome:
    """A finished cell as the runner hands it back for selection.

    Attributes:
        cell: the cell that ran.
        run_dir: its run directory.
        config: its resolved config.
        metrics: flat figures, ``val/loss``, ``val/label/accuracy``, ``test/...``.
    """

    cell: Cell
    run_dir: Path
    config: RunConfig
    metrics: dict[str, float]


@dataclass(frozen=True)
class Selection:
    """Which cell a ``best(...)`` reference chose, for the study's record.

    Attributes:
        step: the step chosen from.
        metric: the validation metric.
        group: the chosen cell's label without its seed.
        mean: that cell's mean of ``metric`` over its finished seeds.
        seeds: how many seeds the mean is over.
        outcome: the chosen cell's best seed (its run directory and config); with ``same_seed``,
            its run with the referring cell's seed.
        means: every candidate's mean, by group, in the step's order.
        same_seed: the run was chosen by the referring cell's seed, not as the group's best.
    """

    step: str
    metric: str
    group: str
    mean: float
    seeds: int
    outcome: CellOutcome
    means: dict[str, float]
    same_seed: bool = False


def select_best(
    step: str, outcomes: Sequence[CellOutcome], metric: str, seed: int | None = None
) -> Selection:
    """The best cell of ``outcomes`` on ``metric``: best mean over seeds, then its best seed (its
    run with ``seed`` when one is given: ``best(metric, same_seed)``).

    Outcomes without a finite value of ``metric`` (failed cells) take no part; ties go to the
    first cell in the step's order, so the choice is deterministic.
    """
    sign = 1.0 if higher_is_better(metric) else -1.0  # the metric table's direction
    groups: dict[str, list[CellOutcome]] = {}
    for o in outcomes:
        value = o.metrics.get(metric)
        if value is not None and math.isfinite(value):
            groups.setdefault(o.cell.group, []).append(o)
    if not groups:
        raise UserError(f"step {step!r}: no finished cell logged {metric!r}, so best({metric}) has no answer")
    means = {g: sum(o.metrics[metric] for o in runs) / len(runs) for g, runs in groups.items()}
    group = max(means, key=lambda g: sign * means[g])  # max keeps the first of equal values
    if seed is None:
        best_run = max(groups[group], key=lambda o: sign * o.metrics[metric])
    else:
        own = [o for o in groups[group] if o.cell.seed == seed]
        if not own:
            raise UserError(
                f"step {step!r}: the best group {group!r} on {metric} has no finished run with seed {seed}, "
                "which best(..., same_seed) needs"
            )
        best_run = own[0]
    return Selection(step, metric, group, means[group], len(groups[group]), best_run, means, seed is not None)


def config_value(cfg: RunConfig | Mapping, path: str) -> Any:
    """The value at dotted ``path`` of a config (as YAML would write it)."""
    node: Any = cfg.model_dump(mode="json") if isinstance(cfg, RunConfig) else cfg
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise UserError(f"{path}: the referenced config has no such key")
        node = node[part]
    return node


Lookup = Callable[[str], Sequence[CellOutcome]]


def resolve_ref(
    ref: Ref, select: str | None, lookup: Lookup, seed: int | None = None
) -> tuple[Any, Selection | None]:
    """The value of one reference from the referenced step's outcomes (and the selection made);
    ``seed`` is the referring cell's, which ``best(metric, same_seed)`` picks."""
    outcomes = list(lookup(ref.step))
    if ref.best:
        metric = ref.metric or select
        if metric is None:
            raise UserError(
                f"reference {ref.text!r}: step {ref.step!r} declares no select:, write best(val/...)"
            )
        chosen = select_best(ref.step, outcomes, metric, seed if ref.same_seed else None)
        outcome = chosen.outcome
    else:
        if len(outcomes) != 1:
            raise UserError(
                f"reference {ref.text!r}: step {ref.step!r} has {len(outcomes)} finished cells, expected one"
            )
        chosen, outcome = None, outcomes[0]
    if ref.is_directory:
        return str(outcome.run_dir), chosen
    return config_value(outcome.config, ref.path), chosen


def resolve_overrides(spec: Any, cell: Cell, lookup: Lookup) -> tuple[dict[str, Any], list[Selection]]:
    """The cell's overrides with every reference replaced, and the selections that made them."""
    selects = {s.name: s.select for s in spec.steps}
    made: list[Selection] = []

    def replace(ref: Ref) -> Any:
        value, chosen = resolve_ref(ref, selects.get(ref.step), lookup, cell.seed)
        if chosen is not None:
            made.append(chosen)
        return value

    return {k: substitute(v, replace) for k, v in cell.overrides.items()}, made


def resolve_cell(spec: Any, cell: Cell, lookup: Lookup) -> RunConfig:
    """The cell's run config with references replaced by the earlier steps' results.

    Args:
        spec: the StudySpec the cell belongs to.
        cell: the cell.
        lookup: ``lookup(step_name)`` -> the finished outcomes of that step.
    """
    from smallvision.study.spec import cell_config

    overrides, _ = resolve_overrides(spec, cell, lookup)
    return cell_config(spec, cell, overrides)


def result_config(cfg: RunConfig) -> dict:
    """The config as a JSON mapping without the keys the schema marks as not affecting training
    (``name``, ``output_dir``, ``seeds``, ``report``, ``train.progress``, ``train.threads``)."""
    return training_view(cfg.model_dump(mode="json"))


def cell_id(cfg: RunConfig, baseline: str | None = None) -> str:
    """A stable 12-hex id of what decides a run's results: the resolved config and its seed.

    Args:
        cfg: the resolved run config.
        baseline: the scikit-learn baseline a cell runs instead of the network, if any.
    """
    payload = {"config": result_config(cfg), "baseline": baseline}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
