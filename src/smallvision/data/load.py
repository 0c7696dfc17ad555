"""The data path every command shares: source string -> reader or builtin -> prepared ImageSet.

A source string is ``scheme:location``: ``builtin:mnist-5k``, ``idx:data/mnist/``, ``folder:imgs/``.
``builtin`` looks the name up in BUILTINS (the modules of :mod:`smallvision.data.builtins`);
``multi:`` combines several sources as named domains (:mod:`smallvision.data.multi`); every other
scheme is a file reader in SOURCES (:mod:`smallvision.data.readers`).

:func:`load_data` is what ``run``, ``resume``, ``lr-find`` and ``data preview`` load a config's data
with, so that they all see the same images; ``data show`` calls :func:`load_source` alone (raw data).
"""

from __future__ import annotations

import inspect
from typing import Any

from smallvision.config import DataConfig
from smallvision.data.dataset import ImageSet
from smallvision.data.prepare import prepare_images
from smallvision.errors import UserError
from smallvision.registry import BUILTINS, SOURCES


def load_source(
    spec: str, options: dict[str, Any] | None = None, seed: int = 0, skip_bad: bool = False
) -> ImageSet:
    """The ImageSet named by ``spec`` (``builtin:NAME`` or ``FORMAT:PATH``).

    Args:
        spec: the source string.
        options: keyword arguments for the reader or builtin (e.g. ``{"size": 28}``).
        seed: seed for builtins that generate or jitter images.
        skip_bad: let a file reader skip corrupt samples (counted in ``meta["skipped"]``)
            instead of stopping at the first; ``options.skip_bad`` wins when both are given.
    """
    from smallvision.registry import check_params

    options = dict(options or {})
    if ":" not in spec:
        raise UserError(
            f"data.source {spec!r}: expected SCHEME:LOCATION, e.g. builtin:mnist-5k or idx:path/to/mnist"
        )
    scheme, location = spec.split(":", 1)
    if scheme == "multi":
        from smallvision.data.multi import read_multi

        check_params(read_multi, options, "data.options", skip=("location", "seed", "skip_bad"))
        return read_multi(location, seed=seed, skip_bad=skip_bad, **options)
    if scheme == "builtin":
        fn = BUILTINS.get(location)
        check_params(fn, options, "data.options", skip=("seed",))
        data = fn(seed=seed, **options)
    else:
        fn = SOURCES.get(scheme)
        if skip_bad and "skip_bad" in inspect.signature(fn).parameters:
            options.setdefault("skip_bad", True)
        check_params(fn, options, "data.options", skip=("location",))
        data = fn(location, **options)
    data.name = data.name or spec
    return data


def load_data(cfg: DataConfig) -> ImageSet:
    """The data a run trains on: the source read with ``skip_bad``, sized and converted as configured.

    Seeded builtins follow ``data.split.seed``, not the run's ``seed``, so that the runs of a seed
    group (and the preview of any of them) see the same images and the same test set.

    Args:
        cfg: the ``data`` section of a run config.

    Returns:
        The whole dataset (before splitting), images (N, C, H, W) of the configured size and channels.
    """
    options = dict(cfg.options)
    if cfg.source.startswith("multi:"):  # data.size / data.channels are the domains' common shape too
        options.setdefault("size", list(cfg.size) if cfg.size else None)
        options.setdefault("channels", cfg.channels)
    data = load_source(cfg.source, options, seed=cfg.split.seed, skip_bad=cfg.skip_bad)
    return prepare_images(data, cfg.size, cfg.channels)
