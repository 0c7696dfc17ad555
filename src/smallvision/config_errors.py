"""Config errors as one line: ``key.path: what is wrong; what was expected``, with "did you mean".

Kept apart from the schema (``config.py``) so that each stays one concern; nothing here knows the
schema's classes: the root model is passed in.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

_TYPE_WORDS = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
    "model_type": "a mapping",
}


def explain(exc: ValidationError, root: type[BaseModel]) -> str:
    """The first validation error of a ``root`` model as ``key.path: what is wrong; what was expected``."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    key = ".".join(loc) or "(top)"
    if err["type"] == "extra_forbidden":
        return f"{key}: unknown key{_did_you_mean(loc, root)}"
    value = err.get("input")
    shown = repr(value) if not isinstance(value, dict) else "a mapping"
    if err["type"] in _TYPE_WORDS:
        return f"{key}: expected {_TYPE_WORDS[err['type']]}, got {shown}"
    if err["type"] == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{key}: got {shown}, expected one of {expected}"
    msg = err["msg"].removeprefix("Value error, ")
    sub, sep, rest = msg.partition(": ")
    if sep and not loc:  # a check across sections names its own key path
        return msg
    if sep and isinstance(value, dict) and sub in value:  # a check of a whole mapping names its key
        return f"{key}.{sub}: {rest}"
    return f"{key}: {msg} (got {shown})"


def _did_you_mean(loc: list[str], root: type[BaseModel]) -> str:
    """Suggest the closest valid field of ``root`` for an unknown key at ``loc``."""
    model: Any = root
    skip_key = False
    for part in loc[:-1]:
        if skip_key:  # a key of ``dict[str, Model]`` (e.g. a head's name)
            skip_key = False
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return ""
        skip_key = "dict[" in str(field.annotation)
        model = field_model(field.annotation)
    names = list(getattr(model, "model_fields", {}))
    close = difflib.get_close_matches(loc[-1], names, n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; expected one of: {', '.join(names)}" if names else ""


def field_model(annotation: Any) -> Any:
    """The pydantic model inside ``X``, ``X | None`` or ``dict[str, X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = field_model(arg)
        if found is not None:
            return found
    return None
