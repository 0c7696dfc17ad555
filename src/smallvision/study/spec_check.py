"""Whole-study checks before anything trains: keys, every cell's types, references, metrics, search.

Every cell's config is built with ``build_config``; a reference is replaced by a stand-in of the
type it will have: a directory reference by its own text (any string is a path), a value reference
by each value that key takes among the referenced step's cells. So a wrong type in the last step is
an error now, and names the step, the cell and the key.
"""

from __future__ import annotations

import difflib
import json
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from smallvision.config import HeadConfig, RunConfig
from smallvision.errors import UserError
from smallvision.registry import HEAD_KINDS
from smallvision.study.spec_refs import Ref, config_value, references, substitute

if TYPE_CHECKING:
    from smallvision.study.spec import Cell, StudySpec


# ---------------------------------------------------------------- keys of the run config


def key_problem(dotted: str) -> str | None:
    """Why ``dotted`` is no key of a run config (with a did-you-mean), or None when it is one.

    ``model.params``, ``data.options`` and ``data.augment`` are open mappings; under ``heads``
    any name is a head, and the key after it must be a HeadConfig field.
    """
    if dotted == "baseline":
        return None
    parts = dotted.split(".")
    model: Any = RunConfig
    i = 0
    while i < len(parts):
        fields = model.model_fields
        part = parts[i]
        if part not in fields:
            close = difflib.get_close_matches(part, list(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; expected one of: {', '.join(fields)}"
            return f"unknown key{hint}"
        annotation = str(fields[part].annotation)
        nested = _model_of(fields[part].annotation)
        if nested is HeadConfig and "dict[" in annotation:
            i += 2  # heads.<name>: any name, then a HeadConfig field
            model = HeadConfig
            if i >= len(parts):
                return None
            continue
        if "dict[" in annotation:
            return None  # an open mapping: its keys belong to the model, reader or augmentation
        if nested is None:
            return None if i == len(parts) - 1 else f"{'.'.join(parts[: i + 1])} is a value, not a mapping"
        model, i = nested, i + 1
    return None


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


# ---------------------------------------------------------------- metrics that are logged


def kind_metric_names(kind: str) -> frozenset[str]:
    """The scalar validation metrics of a head kind: its rows of the metric table, and its losses."""
    from smallvision.evaluate.metrics import METRICS
    from smallvision.registry import HEAD_KINDS

    HEAD_KINDS.list()  # a kind's own file may add metrics
    names = {m.name for m in METRICS.for_kind(kind)}
    return frozenset(names | {"loss", "weighted_loss"})  # the trainer adds each head's loss terms


def metric_problem(metric: str, cfg: RunConfig) -> str | None:
    """Why ``metric`` cannot select among runs of ``cfg``, or None when it is a logged val metric."""
    if not isinstance(metric, str) or not metric.startswith("val/"):
        return f"{metric!r}: selection must use a validation metric (val/...), never test or train figures"
    if metric == "val/loss":
        return None
    parts = metric.split("/")
    if len(parts) != 3:
        return f"{metric!r}: expected val/loss or val/<head>/<metric>"
    _, head, name = parts
    if cfg.heads is None:  # one head per target of the data: the names are known once data is read
        known = frozenset().union(*(kind_metric_names(k) for k in HEAD_KINDS.list()))
    elif head not in cfg.heads:
        return f"{metric!r}: no head {head!r} (heads: {', '.join(cfg.heads)})"
    else:
        known = kind_metric_names(cfg.heads[head].kind)
    if name not in known:
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; logged: {', '.join(sorted(known))}"
        return f"{metric!r}: this metric is never logged{hint}"
    return None


# ---------------------------------------------------------------- the whole study


def check_study(spec: StudySpec) -> None:
    """Check every step and cell of ``spec``; the first problem is a one-line UserError."""
    from smallvision.evaluate.baselines import BASELINES

    configs: dict[str, list[RunConfig]] = {}  # step -> the stand-in configs of its cells
    cells_of: dict[str, list[tuple[Cell, list[RunConfig]]]] = {}
    order = {s.name: i for i, s in enumerate(spec.steps)}
    for index, step in enumerate(spec.steps):
        where = f"{spec.origin}: step {step.name!r}"
        for key in step.set or {}:
            _key_ok(key, where)
        for cell in step.cells:
            here = f"{where}, cell {cell.label!r}"
            for key, value in cell.overrides.items():
                _key_ok(key, here)
                if key == "baseline" and value not in BASELINES:
                    raise UserError(
                        f"{here}: baseline: got {value!r}, expected one of {', '.join(BASELINES)}"
                    )
                for ref in references(value):
                    _ref_ok(spec, ref, index, order, configs, here, key, cell.seed)
            built = _stand_ins(spec, cell, cells_of)
            for cfg in built:
                if cell.baseline is None:
                    _registries_ok(cfg, here)
                else:
                    _baseline_ok(cfg, cell.baseline, here)
            cells_of.setdefault(step.name, []).append((cell, built))
        if not step.cells:  # a search-only step starts its trials from the base and its set:
            for key, value in (step.set or {}).items():
                for ref in references(value):
                    _ref_ok(spec, ref, index, order, configs, f"{where}: set", key)
            configs[step.name] = [_search_start(spec, step, cells_of)]
        else:
            configs[step.name] = [c for _, built in cells_of[step.name] for c in built]
        if step.select is not None:
            _metric_ok(step.select, configs[step.name], f"{where}: select")
        if step.search is not None:
            _search_ok(spec, step, configs[step.name][0], where)


def _key_ok(key: str, where: str) -> None:
    problem = key_problem(key)
    if problem:
        raise UserError(f"{where}: {key}: {problem}")


def _ref_ok(
    spec, ref: Ref, index: int, order: dict, configs: dict, where: str, key: str, seed: int | None = None
) -> None:
    at = f"{where}: {key}: reference {ref.text!r}"
    if ref.step not in order:
        close = difflib.get_close_matches(ref.step, list(order), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (steps: {', '.join(order)})"
        raise UserError(f"{at}: no step {ref.step!r}{hint}")
    if order[ref.step] >= index:
        which = "is this step" if order[ref.step] == index else "comes later"
        raise UserError(f"{at}: step {ref.step!r} {which}; a reference must name an earlier step")
    target = spec.steps[order[ref.step]]
    if ref.best:
        metric = ref.metric or target.select
        if metric is None:
            raise UserError(f"{at}: step {ref.step!r} declares no select:, so write best(val/<metric>)")
        _metric_ok(metric, configs[ref.step], at)
        if ref.same_seed and seed is not None and target.cells and seed not in target.seeds:
            raise UserError(
                f"{at}: same_seed: this cell's seed {seed} is not among the seeds of step {ref.step!r}, "
                f"{list(target.seeds)}"
            )
    elif len(target.cells) != 1:
        raise UserError(
            f"{at}: step {ref.step!r} has {len(target.cells)} cells; use @{ref.step}.best(val/<metric>) "
            "or give it one variant and one seed"
        )
    if ref.path is not None:
        problem = key_problem(ref.path)
        if problem:
            raise UserError(f"{at}: {ref.path}: {problem}")


def _metric_ok(metric: str, cfgs: list[RunConfig], where: str) -> None:
    for cfg in cfgs:
        problem = metric_problem(metric, cfg)
        if problem:
            raise UserError(f"{where}: {problem}")


def _stand_ins(spec, cell: Cell, cells_of: dict) -> list[RunConfig]:
    """Configs of ``cell`` with each value reference taking, in turn, each of its possible values."""
    from smallvision.study.spec import cell_config

    refs = [r for v in cell.overrides.values() for r in references(v) if r.path is not None]
    options = {r.text: _candidates(r, cells_of) for r in refs}
    first = {text: values[0] for text, values in options.items()}
    trials = [first] + [{**first, t: v} for t, values in options.items() for v in values[1:]]
    built = []
    for chosen in trials:
        over = {
            k: substitute(v, lambda r, c=chosen: c.get(r.text, r.text)) for k, v in cell.overrides.items()
        }
        built.append(cell_config(spec, cell, over))
    return built


def _candidates(ref: Ref, cells_of: dict) -> list[Any]:
    """The distinct values ``ref.path`` takes among the referenced step's cells."""
    seen: dict[str, Any] = {}
    for _, cfgs in cells_of.get(ref.step, []):
        for cfg in cfgs:
            value = config_value(cfg, ref.path)
            seen.setdefault(json.dumps(value, sort_keys=True, default=str), value)
    return list(seen.values()) or [None]


def _search_start(spec, step, cells_of: dict) -> RunConfig:
    """The trials' start (base and set), references standing in as for cells (the first stand-in)."""
    from smallvision.study.spec import Cell

    start = Cell(step.name, "search", None, {}, 0, dict(step.set or {}))
    return _stand_ins(spec, start, cells_of)[0]


def _search_ok(spec, step, start: RunConfig, where: str) -> None:
    """The search metric is a logged val metric and each end of every range builds a valid config."""
    from smallvision.config import apply_overrides, build_config

    _metric_ok(step.search.metric, [start], f"{where}: search.metric")
    raw = start.model_dump(mode="json")
    for key, param in step.search.params.items():
        values = list(param.choices) if param.choices is not None else [param.low, param.high]
        for value in values:
            cfg = build_config(
                apply_overrides(raw, {key: value}), origin=f"{where}: search.params.{key}={value!r}"
            )
            _registries_ok(cfg, f"{where}: search.params.{key}={value!r}")


def _registries_ok(cfg: RunConfig, where: str) -> None:
    try:
        _check_registered(cfg.model.name, json.dumps(cfg.model.params, sort_keys=True, default=str))
        _check_augment(json.dumps(cfg.data.augment, default=str))
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None


def _baseline_ok(cfg: RunConfig, baseline: str, where: str) -> None:
    """The baseline takes the cell's ``model.params`` (its estimator's parameters)."""
    from smallvision.evaluate.baselines import baseline_params

    try:
        baseline_params(cfg, baseline)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None


@cache
def _check_registered(name: str, params_json: str) -> None:
    """The model is registered and takes these params (cached: a grid repeats the same few)."""
    from smallvision.registry import MODELS, check_params

    check_params(MODELS.get(name).__init__, json.loads(params_json), "model.params", skip=("input_shape",))


@cache
def _check_augment(augment_json: str) -> None:
    from smallvision.data.augment.pipeline import build_augment

    build_augment(json.loads(augment_json))
