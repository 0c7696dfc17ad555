"""Build a Network from the model config, the head configs and the data's image shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smallvision.config import HeadConfig
from smallvision.errors import UserError
from smallvision.models.base import Network
from smallvision.registry import MODELS, check_params


def build_model(
    name: str, params: Mapping[str, Any], input_shape: tuple[int, int, int], heads: Mapping[str, HeadConfig]
) -> Network:
    """The registered backbone ``name`` built for ``input_shape`` with ``heads`` attached."""
    cls = MODELS.get(name)
    check_params(cls.__init__, params, "model.params", skip=("input_shape",))
    try:
        backbone = cls(input_shape=tuple(input_shape), **params)
    except (TypeError, ValueError) as exc:
        raise UserError(f"model {name!r} with params {dict(params)}: {exc}") from None
    return Network(backbone, heads)
