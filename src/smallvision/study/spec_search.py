"""The ``search:`` of a study step: Optuna ranges over config keys, parsed and checked here.

The runner runs the search; this module only guarantees that every range is well formed, every
key exists and the objective is a validation metric, before anything trains.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smallvision.errors import UserError
from smallvision.study.spec_check import key_problem

_SEARCH_KEYS = ("params", "trials", "metric", "sampler", "pruner", "seed")
_PARAM_KEYS = ("low", "high", "log", "step", "choices")
SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "none")


@dataclass(frozen=True)
class SearchParam:
    """One searched key: a float/int range (``low``..``high``, optional ``log`` or ``step``) or ``choices``."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple | None = None

    @property
    def kind(self) -> str:
        """``categorical``, ``int`` (integer bounds and step) or ``float``."""
        if self.choices is not None:
            return "categorical"
        ints = all(isinstance(v, int) for v in (self.low, self.high) if v is not None)
        return "int" if ints and (self.step is None or isinstance(self.step, int)) else "float"


@dataclass(frozen=True)
class SearchSpec:
    """An Optuna search declared for a step (run by the runner, checked here)."""

    params: dict[str, SearchParam]
    metric: str
    trials: int = 20
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0


def parse_search(raw: Any, where: str) -> SearchSpec:
    """The ``search:`` mapping of a step as a SearchSpec (keys and ranges checked)."""
    if not isinstance(raw, Mapping):
        raise UserError(f"{where}: search: expected a mapping with params, trials, metric ...")
    _unknown(raw, _SEARCH_KEYS, f"{where}: search")
    params = raw.get("params")
    if not isinstance(params, Mapping) or not params:
        raise UserError(f"{where}: search.params: expected a mapping key -> {{low, high}} or {{choices}}")
    metric = raw.get("metric")
    if metric is None:
        raise UserError(f"{where}: search.metric: missing; give a validation metric, e.g. val/loss")
    trials, seed = raw.get("trials", 20), raw.get("seed", 0)
    for key, value, low in (("trials", trials, 1), ("seed", seed, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise UserError(f"{where}: search.{key}: expected an integer >= {low}, got {value!r}")
    sampler, pruner = raw.get("sampler", "tpe"), raw.get("pruner", "median")
    if sampler not in SAMPLERS:
        raise UserError(f"{where}: search.sampler: got {sampler!r}, expected one of {', '.join(SAMPLERS)}")
    if pruner not in PRUNERS:
        raise UserError(f"{where}: search.pruner: got {pruner!r}, expected one of {', '.join(PRUNERS)}")
    parsed = {str(k): _param(str(k), v, f"{where}: search.params.{k}") for k, v in params.items()}
    return SearchSpec(parsed, str(metric), trials, sampler, pruner, seed)


def _param(key: str, raw: Any, where: str) -> SearchParam:
    problem = (
        key_problem(key) if key not in ("seed", "seeds", "baseline") else "searched keys are run config keys"
    )
    if problem:
        raise UserError(f"{where}: {problem}")
    if not isinstance(raw, Mapping):
        raise UserError(f"{where}: expected {{low: .., high: ..}} or {{choices: [...]}}, got {raw!r}")
    _unknown(raw, _PARAM_KEYS, where)
    if "choices" in raw:
        choices = raw["choices"]
        if not isinstance(choices, list) or not choices or len(raw) > 1:
            raise UserError(f"{where}: choices: expected a non-empty list and no low/high/log/step beside it")
        return SearchParam(key, choices=tuple(choices))
    low, high, log, step = raw.get("low"), raw.get("high"), raw.get("log", False), raw.get("step")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)):
        raise UserError(f"{where}: low and high: expected two numbers, got {low!r} and {high!r}")
    if not low < high:
        raise UserError(f"{where}: low must be below high, got {low!r} and {high!r}")
    if not isinstance(log, bool):
        raise UserError(f"{where}: log: expected true or false, got {log!r}")
    if log and low <= 0:
        raise UserError(f"{where}: log: needs low > 0, got {low!r}")
    if step is not None and (log or not isinstance(step, int | float) or isinstance(step, bool) or step <= 0):
        raise UserError(f"{where}: step: expected a positive number and no log beside it, got {step!r}")
    return SearchParam(key, low=low, high=high, log=log, step=step)


def _unknown(raw: Mapping, allowed: tuple[str, ...], where: str) -> None:
    for key in raw:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; expected one of: {', '.join(allowed)}"
            raise UserError(f"{where}: unknown key {key!r}{hint}")
