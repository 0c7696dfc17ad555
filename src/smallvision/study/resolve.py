"""How a run's config meets its data: heads resolved against the targets, the device, each head's
targets of a split, the evaluation sets as further splits, and the class names a run records.

Split out of :mod:`smallvision.study.run` (which re-exports them); baselines and frozen-encoder runs
(:mod:`smallvision.study.features`) use the same functions, so every kind of run resolves alike.
"""

from __future__ import annotations

import numpy as np
import torch

from smallvision.config import HeadConfig, RunConfig
from smallvision.data.dataset import ImageSet
from smallvision.data.splits import Splits
from smallvision.errors import UserError
from smallvision.registry import HEAD_KINDS
from smallvision.train.evaluation import Split


def resolve_heads(cfg: RunConfig, data: ImageSet) -> dict[str, HeadConfig]:
    """The config's heads checked against the data, with class counts filled in.

    No ``heads`` in the config means one head per target of the data (a reconstruction head
    named ``image`` when the data has no targets).
    """
    if cfg.heads is None:
        if not data.targets:
            return {"image": HeadConfig(kind="reconstruction")}
        return {
            name: HeadConfig(kind=info.kind, classes=info.num_classes or None)
            for name, info in data.info.items()
        }
    heads = {}
    for name, head in cfg.heads.items():
        kind = HEAD_KINDS.get(head.kind)
        if kind.target_is_input:
            heads[name] = head
            continue
        target = head.target or name
        if target not in data.targets:
            have = ", ".join(data.targets) or "none"
            raise UserError(f"heads.{name}: the data {data.name} has no target {target!r} (targets: {have})")
        info = data.info[target]
        if info.kind != head.kind:
            raise UserError(f"heads.{name}.kind: {head.kind!r} but target {target!r} is {info.kind}")
        heads[name] = kind.resolve(name, head, data.targets[target], info.num_classes or None)
    return heads


def resolve_device(name: str) -> torch.device:
    """``train.device`` as a torch device; asking for CUDA where there is none is a UserError."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device: 'cuda' but torch sees no CUDA device here; use cpu or auto")
    return torch.device(name)


def head_targets(data: ImageSet, heads: dict[str, HeadConfig], index: np.ndarray) -> dict[str, torch.Tensor]:
    idx = torch.as_tensor(index, dtype=torch.long)
    out = {}
    for name, head in heads.items():
        kind = HEAD_KINDS.get(head.kind)
        if not kind.target_is_input:
            out[name] = kind.train_target(data.targets[head.target or name][idx])
    return out


def add_eval_sets(cfg: RunConfig, data: ImageSet, heads: dict, splits: Splits, split_data: dict) -> None:
    """The config's ``eval`` sets as further splits ``eval:NAME`` (indices into the set itself).

    :func:`finish` scores every split but ``train``, so they get the restored best weights, the
    run's normaliser and the same metric code as val and test; training never sees them.
    """
    from smallvision.data.evalsets import load_eval_sets

    targets = [h.target or n for n, h in heads.items() if not HEAD_KINDS.get(h.kind).target_is_input]
    for name, s in load_eval_sets(cfg.eval, data, cfg.data, targets).items():
        splits[name] = np.arange(len(s))
        split_data[name] = Split(s.images, head_targets(s, heads, splits[name]))
    if cfg.eval:  # recorded in metrics.json (data.split.eval) beside the split
        splits.info["eval"] = {
            n: e.model_dump(mode="json", exclude_defaults=True) for n, e in cfg.eval.items()
        }


def class_names(data: ImageSet, head: str, cfg: HeadConfig) -> list[str] | None:
    if not HEAD_KINDS.get(cfg.kind).needs_classes:
        return None
    info = data.info.get(cfg.target or head)
    if info and info.classes and len(info.classes) == cfg.classes:
        return list(info.classes)
    return [str(i) for i in range(cfg.classes or 0)]
