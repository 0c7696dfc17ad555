"""One Registry class for models, sources, augmentations and head kinds.

A family's module registers its entries when imported (timm's habit), so ``list()``
first imports every module named in ``modules`` -- lazily, to keep ``import smallvision`` fast.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from smallvision.errors import UserError


class Registry:
    """A name -> object table whose duplicates are errors.

    Args:
        kind: what the entries are ("model", "source" ...), used in error messages.
        packages: packages whose every module is imported on first lookup, which registers
            the entries (a new family file registers itself by existing).
    """

    def __init__(self, kind: str, packages: Iterable[str] = ()) -> None:
        self.kind = kind
        self._packages = tuple(packages)
        self._entries: dict[str, Any] = {}
        self._loaded = False

    def register(self, name: str | None = None) -> Callable[[Any], Any]:
        """Decorator: ``@MODELS.register("cnn_bn")`` (the object's ``__name__`` when name is None)."""

        def add(obj: Any) -> Any:
            key = name or obj.__name__
            if key in self._entries and self._entries[key] is not obj:
                raise ValueError(f"duplicate {self.kind} name {key!r}: already registered")
            self._entries[key] = obj
            return obj

        return add

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for package in self._packages:
                pkg = importlib.import_module(package)
                for info in pkgutil.iter_modules(pkg.__path__):
                    importlib.import_module(f"{package}.{info.name}")

    def get(self, name: str) -> Any:
        """The entry called ``name``; a UserError with a "did you mean" when it is unknown."""
        self._load()
        if name not in self._entries:
            close = difflib.get_close_matches(name, self._entries, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(sorted(self._entries))
            raise UserError(f"unknown {self.kind} {name!r}{hint} (known: {known})")
        return self._entries[name]

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries

    def list(self, pattern: str = "*") -> list[str]:
        """Sorted names matching a shell-style pattern, e.g. ``list("res*")``."""
        self._load()
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))


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


MODELS = Registry("model", ["smallvision.models"])
SOURCES = Registry("source format", ["smallvision.data.readers"])
BUILTINS = Registry("builtin dataset", ["smallvision.data.builtins"])
AUGMENTATIONS = Registry("augmentation", ["smallvision.data.augment"])
HEAD_KINDS = Registry("head kind", ["smallvision.heads"])
