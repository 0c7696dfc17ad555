"""Build a Network from the model config, the head configs and the data's image shape."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from typing import Any

from smallvision.config import HeadConfig
from smallvision.errors import UserError
from smallvision.models.base import Network
from smallvision.registry import MODELS


def check_params(fn: Any, params: Mapping[str, Any], where: str, skip: tuple[str, ...] = ()) -> None:
    """A UserError naming ``where.<key>`` for a keyword ``fn`` does not take (with a did-you-mean)."""
    sig = inspect.signature(fn)
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    names = [n for n in sig.parameters if n not in ("self", *skip)]
    for key in params:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; expected one of: {', '.join(names)}"
            raise UserError(f"{where}.{key}: unknown parameter{hint}")


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
