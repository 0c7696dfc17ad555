"""A step's grid: variants × axes × zip rows × seeds expanded into :class:`Cell` objects in a fixed
order, with the checks on each part (names, value lists, a key varied twice). :mod:`.spec` reads
the study file and builds its steps from these.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smallvision.errors import UserError

# a step, variant or study name: what references and folder names use
NAME = re.compile(r"^[A-Za-z_][\w-]*$")


@dataclass(frozen=True)
class Cell:
    """One run of a study: a step's variant, axis and zip values and a seed.

    Attributes:
        step: the step's name.
        label: readable and unique within the step, e.g. ``resnet model.params.width=32 seed=0``.
        variant: the variant's name, if the step has variants.
        values: axis and zip key -> value of this cell (not the seed).
        seed: the run's seed.
        overrides: dotted key -> value applied on top of the base (step ``set``, variant, axes,
            zip, seed, in that order); values may still hold references (``@step...``) and the
            special key ``baseline`` (a scikit-learn model the runner trains instead of the network).
    """

    step: str
    label: str
    variant: str | None
    values: dict[str, Any]
    seed: int
    overrides: dict[str, Any]

    @property
    def group(self) -> str:
        """The label without its seed: the cells of one group differ only in seed."""
        return self.label.removesuffix(f" seed={self.seed}")

    @property
    def baseline(self) -> str | None:
        """The scikit-learn baseline this cell runs, or None for a network."""
        return self.overrides.get("baseline")


def expand(
    step: str,
    fixed: dict,
    variants: list[tuple[str | None, dict]],
    axes: dict[str, list],
    zipped: dict[str, list],
    seeds: list[int],
    reset: dict,
) -> list[Cell]:
    """Cells in the order variants × axes (first key outermost) × zip rows × seeds."""
    axis_rows = [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]
    n_zip = len(next(iter(zipped.values()))) if zipped else 1
    zip_rows = [{k: v[i] for k, v in zipped.items()} for i in range(n_zip)]
    cells = []
    for (variant, v_over), a_row, z_row, seed in itertools.product(variants, axis_rows, zip_rows, seeds):
        values = {**a_row, **z_row}
        parts = ([variant] if variant else []) + [f"{k}={_show(v)}" for k, v in values.items()]
        label = f"{' '.join(parts) or step} seed={seed}"
        overrides = {**fixed, **v_over, **values, "seed": seed, **reset}
        cells.append(Cell(step, label, variant, values, seed, overrides))
    return cells


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def flat_mapping(value: Any, where: str, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys, so that ``{train: {epochs: 3}}`` merges into the base."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UserError(f"{where}: expected a mapping of dotted keys to values, got {value!r}")
    out: dict[str, Any] = {}
    for key, v in value.items():
        dotted = f"{prefix}{key}"
        if key in ("seed", "seeds") and not prefix:
            raise UserError(f"{where}: {key}: seeds are the step's seeds: list, not an override")
        if isinstance(v, Mapping) and v:
            out.update(flat_mapping(v, where, f"{dotted}."))
        else:
            out[dotted] = v
    return out


def parse_variants(value: Any, where: str) -> list[tuple[str | None, dict]]:
    if value is None:
        return [(None, {})]
    if not isinstance(value, Mapping) or not value:
        raise UserError(f"{where}: variants: expected a mapping name -> overrides, got {value!r}")
    out = []
    for name, over in value.items():
        if not isinstance(name, str) or not NAME.match(name):
            raise UserError(f"{where}: variants: name {name!r}: expected letters, digits, _ or -")
        out.append((name, flat_mapping(over, f"{where}: variant {name!r}")))
    return out


def value_lists(value: Any, where: str) -> dict[str, list]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UserError(f"{where}: expected a mapping of dotted keys to lists of values, got {value!r}")
    out = {}
    for key, values in value.items():
        if key in ("seed", "seeds"):
            raise UserError(f"{where}.{key}: vary seeds with the step's seeds: list, not an axis")
        if not isinstance(values, list) or not values:
            raise UserError(f"{where}.{key}: expected a non-empty list of values, got {values!r}")
        out[str(key)] = values
    return out


def check_overlap(where: str, **groups: list[str]) -> None:
    """A key varied in two places would silently overwrite one of them."""
    seen: dict[str, str] = {}
    for group, keys in groups.items():
        for key in dict.fromkeys(keys):
            if key in seen and seen[key] != group:
                raise UserError(f"{where}: {key}: varied in both {seen[key]} and {group}; vary it in one")
            seen[key] = group
