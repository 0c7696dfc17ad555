"""Further evaluation sets (``eval: {NAME: {source, options, shift}}``): other sources a run is scored on.

Each set is read like the run's own source (the data seed, ``data.skip_bad``), converted to the
run's channels and size (``prepare.conform``), optionally shifted (``shifts.py``), and its labels
mapped by class *name* onto the run's classes. It never touches training: the finished run scores
it with its own normaliser and the same metric code as val and test, as split ``eval:NAME``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from smallvision.config import DataConfig, EvalSetConfig
from smallvision.data.dataset import ImageSet
from smallvision.data.load import load_source
from smallvision.data.prepare import conform
from smallvision.data.shifts import apply_shift
from smallvision.errors import UserError

PREFIX = "eval:"  # the split name of an evaluation set: "eval:TEST2"


def load_eval_sets(
    sets: Mapping[str, EvalSetConfig], data: ImageSet, cfg: DataConfig, targets: Iterable[str]
) -> dict[str, ImageSet]:
    """Each evaluation set, ready to score against a run trained on ``data``.

    Args:
        sets: the config's ``eval`` mapping.
        data: the run's data (after size and channels): the shape, dtype and classes to match.
        cfg: the run's ``data`` section (seed and skip_bad for reading).
        targets: the targets the run's heads predict; every set needs each of them.

    Returns:
        Split name (``eval:NAME``) -> ImageSet, images at the run's shape, labels in the run's indices.
    """
    out = {}
    for name, spec in sets.items():
        where = f"eval.{name}"
        if not name or any(c in name for c in ":/ "):
            raise UserError(f"eval: set name {name!r} must be non-empty, without ':', '/' or spaces")
        raw = load_source(spec.source, spec.options, seed=cfg.split.seed, skip_bad=cfg.skip_bad)
        images = conform(raw.images, tuple(data.images.shape[2:]), data.shape[0])
        if spec.shift:
            images = apply_shift(images, spec.shift, f"{where}.shift")
        if images.dtype != data.images.dtype:
            raise UserError(
                f"{where}: {spec.source} has {images.dtype} images but the run's data has "
                f"{data.images.dtype}; the run's normaliser expects the same kind of pixels"
            )
        mapped = {t: _target(raw, data, t, where) for t in targets}
        info = {t: data.info[t] for t in targets}
        out[PREFIX + name] = ImageSet(images, mapped, info, name=spec.source, meta=raw.meta)
    return out


def _target(raw: ImageSet, data: ImageSet, target: str, where: str) -> torch.Tensor:
    """The set's ``target`` in the run's label indices (classification: by class name)."""
    if target not in raw.targets:
        have = ", ".join(raw.targets) or "none"
        raise UserError(
            f"{where}: {raw.name} has no target {target!r} that the run predicts (targets: {have})"
        )
    info, own = data.info[target], raw.info[target]
    if own.kind != info.kind:
        raise UserError(f"{where}: target {target!r} is {own.kind} there but {info.kind} in the run's data")
    if info.kind != "classification":
        return raw.targets[target]
    index = {c: i for i, c in enumerate(info.classes or ())}
    names = own.classes or ()
    used = [names[i] for i in torch.unique(raw.targets[target]).tolist()]
    unknown = [c for c in used if c not in index]  # declared but absent classes do not matter
    if unknown:
        raise UserError(
            f"{where}: classes {', '.join(unknown[:5])} of {target!r} are not among the run's classes "
            f"({', '.join((info.classes or ())[:10])}); an evaluation set can only use classes the run learned"
        )
    table = torch.tensor([index.get(c, -1) for c in names], dtype=torch.int64)
    return table[raw.targets[target]]
