"""Which settings change what training computes: the view, flat keys, fingerprint and first
difference of a run config without the fields marked ``NOT_TRAINING`` (:mod:`smallvision.config`).

A checkpoint resumes only under a config equal in these keys; a study cell's id hashes them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from smallvision.config import RunConfig
from smallvision.config_errors import field_model


def affects_training(field: FieldInfo) -> bool:
    """False for a field marked ``json_schema_extra=NOT_TRAINING``, True for every other."""
    extra = field.json_schema_extra
    return not (isinstance(extra, dict) and extra.get("affects_training") is False)


def training_view(raw: Mapping[str, Any], model: type[BaseModel] = RunConfig) -> dict[str, Any]:
    """A config dump (``model_dump(mode="json")`` or a loaded ``config.yaml``) without the keys that do
    not change training; a key this schema does not know is kept, so that a comparison shows it."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        field = model.model_fields.get(key)
        if field is not None and not affects_training(field):
            continue
        sub = field_model(field.annotation) if field is not None else None
        if sub is None or not isinstance(value, dict):
            out[key] = value
        elif "dict[" in str(field.annotation):  # e.g. heads: {name: HeadConfig}
            out[key] = {k: training_view(v, sub) if isinstance(v, dict) else v for k, v in value.items()}
        else:
            out[key] = training_view(value, sub)
    return out


def training_keys(cfg: RunConfig) -> dict[str, Any]:
    """Every setting that changes what training computes, flat: ``{"train.optimizer.lr": 0.001, ...}``.

    Mappings (``data.options``, ``model.params``, ``heads`` ...) are flattened too, lists stay
    values. ``seed`` is among them; ``name``, ``output_dir``, ``seeds``, ``report``,
    ``train.progress`` and ``train.threads`` are not.
    """

    def flat(node: Mapping[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    return flat(training_view(cfg.model_dump(mode="json")), "")


def training_fingerprint(cfg: RunConfig) -> str:
    """SHA-256 (hex) of the settings that change training: equal exactly for configs that train alike."""
    text = json.dumps(training_view(cfg.model_dump(mode="json")), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def training_difference(saved: Mapping[str, Any], current: Mapping[str, Any]) -> tuple[str, Any, Any] | None:
    """The first ``(key.path, saved value, current value)`` where two config dumps differ in a setting
    that changes training, or None (keys in sorted order, depth first)."""
    return _first_difference(training_view(saved), training_view(current), "")


def _first_difference(a: Mapping, b: Mapping, prefix: str) -> tuple[str, Any, Any] | None:
    for key in sorted(set(a) | set(b), key=str):
        path, x, y = f"{prefix}{key}", a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            found = _first_difference(x, y, f"{path}.")
            if found:
                return found
        elif x != y:
            return path, x, y
    return None
