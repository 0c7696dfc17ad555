"""``multi:``: several sources as named domains of one ImageSet, at one shape, with one label map.

```yaml
data:
  source: "multi:"
  options:
    size: [28, 28]          # the common shape (default data.size, else the first domain's)
    channels: 1             # (default data.channels, else the first domain's)
    domains:
      A: builtin:mnist-5k
      B: {source: builtin:digits-28}
      C: {source: builtin:mnist-5k, shift: {invert: true}}
```

Each domain becomes a group, so ``data.split.method: domains`` and the per-domain ``test:DOMAIN``
scores work as for a reader's domain folders. Rules:

- **Labels.** Every domain must have the same targets of the same kinds. A classification target's
  classes are those of the first domain, in its order, then any new names of later domains in the
  order they appear; each domain's labels are mapped by class *name*, so "3" is one index in every
  domain. A domain lacking some classes simply has no images of them (named in
  ``meta["domains"][NAME]["classes_missing"]``).
- **Disjoint bases.** Domains built from the same base (same ``source`` and ``options``; a shift
  does not count) are dealt disjoint parts of it, stratified by the first classification target and
  seeded by the data seed: A and its shift C never hold the same underlying image, so no image
  can be in the training split of one and the test split of the other. ``share: 0.2`` sets a
  domain's fraction of its base (domains without one divide what is left equally). ``overlap: true``
  lets a domain use the whole base instead (the same images as the others: only for evaluating a
  shift of exactly the images another domain trains on, which is then leakage you asked for).
- Images are converted to the common channels, then resized (``data/prepare.py``), then shifted
  (``data/shifts.py``); all domains must be uint8, or all float.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from smallvision.data.dataset import ImageSet, TargetInfo
from smallvision.data.mapped import in_memory
from smallvision.data.prepare import conform
from smallvision.data.readers.common import parse_size
from smallvision.data.shifts import apply_shift, check_shift
from smallvision.data.splits import stratified_assign
from smallvision.errors import UserError

WHERE = "data.options.domains"
ENTRY_KEYS = ("source", "options", "shift", "share", "overlap")


def read_multi(
    location: str,
    domains: dict[str, Any] | None = None,
    size: object = None,
    channels: int | None = None,
    seed: int = 0,
    skip_bad: bool = False,
) -> ImageSet:
    """The ImageSet of several sources, one group per domain (see the module docstring).

    Args:
        location: must be empty (``multi:``): the domains are in ``domains``.
        domains: name -> a source string, or ``{source, options, shift, share, overlap}``.
        size: the common (H, W) (an int for squares); None: the first domain's.
        channels: the common channels, 1 or 3; None: the first domain's.
        seed: the data seed (builtins' randomness and the disjoint parts of shared bases).
        skip_bad: passed to each file reader.
    """
    from smallvision.data.load import load_source  # load.py dispatches here: import at call time

    if location:
        raise UserError(f"data.source 'multi:{location}': write just 'multi:' and list data.options.domains")
    entries = _entries(domains)
    if channels not in (None, 1, 3):
        raise UserError(f"data.options.channels: expected 1 or 3, got {channels!r}")
    hw = parse_size(size, "data.options.size")
    bases: dict[str, ImageSet] = {}
    for e in entries.values():
        if e["base"] not in bases:
            bases[e["base"]] = load_source(e["source"], e["options"], seed=seed, skip_bad=skip_bad)
    picks = partition_bases(entries, bases, seed)
    parts = {}
    for name, e in entries.items():
        part = bases[e["base"]].subset(picks[name])
        first = next(iter(parts.values()), part)
        # the domains are concatenated in memory: a memory-mapped source (option mmap) is read here
        images = conform(
            in_memory(part.images), hw or tuple(first.images.shape[2:]), channels or first.shape[0]
        )
        if e["shift"]:
            images = apply_shift(images, e["shift"], f"{WHERE}.{name}.shift")
        parts[name] = ImageSet(images, part.targets, part.info, name=e["source"], meta=part.meta)
    return _concatenate(parts, entries)


def _entries(domains: Any) -> dict[str, dict[str, Any]]:
    """Each domain entry as a full mapping, checked, with its base key."""
    if not isinstance(domains, dict) or not domains:
        raise UserError(f"{WHERE}: expected a mapping of domain name -> source, e.g. {{A: builtin:mnist-5k}}")
    out = {}
    for name, spec in domains.items():
        where = f"{WHERE}.{name}"
        if not isinstance(name, str) or not name or any(c in name for c in ":/ "):
            raise UserError(f"{WHERE}: domain name {name!r} must be non-empty, without ':', '/' or spaces")
        spec = {"source": spec} if isinstance(spec, str) else spec
        if not isinstance(spec, dict) or not isinstance(spec.get("source"), str):
            raise UserError(f"{where}: expected a source string or a mapping with a 'source' string")
        unknown = sorted(set(spec) - set(ENTRY_KEYS))
        if unknown:
            raise UserError(f"{where}.{unknown[0]}: unknown key; expected one of {', '.join(ENTRY_KEYS)}")
        if spec["source"].startswith("multi:"):
            raise UserError(f"{where}.source: a multi: source cannot hold another multi: source")
        options = spec.get("options") or {}
        if not isinstance(options, dict):
            raise UserError(f"{where}.options: expected a mapping, got {options!r}")
        share = spec.get("share")
        if share is not None and (
            isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1
        ):
            raise UserError(f"{where}.share: expected a fraction in (0, 1], got {share!r}")
        if not isinstance(spec.get("overlap", False), bool):
            raise UserError(f"{where}.overlap: expected true or false, got {spec['overlap']!r}")
        out[name] = {
            "source": spec["source"],
            "options": options,
            "shift": check_shift(spec["shift"], f"{where}.shift") if "shift" in spec else {},
            "share": share,
            "overlap": spec.get("overlap", False),
            "base": spec["source"] + json.dumps(options, sort_keys=True, default=str),
        }
    return out


def partition_bases(entries: dict[str, dict], bases: dict[str, ImageSet], seed: int) -> dict[str, np.ndarray]:
    """Domain -> indices into its base; domains sharing a base get disjoint parts of it.

    A domain with ``overlap: true`` takes the whole base. The others of one base are dealt parts,
    stratified by the base's first classification target: ``share`` where given, an equal split of
    the rest otherwise (any remainder is used by no domain).
    """
    picks: dict[str, np.ndarray] = {}
    for stream, (key, base) in enumerate(bases.items()):
        names = [n for n, e in entries.items() if e["base"] == key and not e["overlap"]]
        picks.update(
            {n: np.arange(len(base)) for n, e in entries.items() if e["base"] == key and e["overlap"]}
        )
        if len(names) == 1 and entries[names[0]]["share"] is None:
            picks[names[0]] = np.arange(len(base))
            continue
        if not names:
            continue
        given = sum(entries[n]["share"] or 0.0 for n in names)
        open_ = [n for n in names if entries[n]["share"] is None]
        if given > 1 + 1e-9 or (open_ and given >= 1):
            raise UserError(
                f"{WHERE}: shares of the domains built from {entries[names[0]]['source']} sum to {given:g}, leaving nothing for {', '.join(open_) or 'the rest'}"
            )
        rest = (1.0 - given) / len(open_) if open_ else 0.0
        shares = [entries[n]["share"] or rest for n in names] + [max(0.0, 1.0 - given - rest * len(open_))]
        strata = _strata(base)
        part = stratified_assign(strata, tuple(shares), np.random.default_rng([20, stream, seed]))
        for k, name in enumerate(names):
            picks[name] = np.flatnonzero(part == k)
            if len(picks[name]) == 0:
                raise UserError(f"{WHERE}.{name}: its share of {entries[name]['source']} holds no images")
    return picks


def _strata(data: ImageSet) -> np.ndarray:
    for key, info in data.info.items():
        if info.kind == "classification":
            return data.targets[key].numpy()
    return np.zeros(len(data), dtype=np.int64)


def _concatenate(parts: dict[str, ImageSet], entries: dict[str, dict]) -> ImageSet:
    """One ImageSet of the domains, labels mapped by class name, one group per domain."""
    names = list(parts)
    first = parts[names[0]]
    for name in names[1:]:
        p = parts[name]
        kinds, want = _kinds(p), _kinds(first)
        if kinds != want:
            raise UserError(
                f"{WHERE}.{name}: targets {kinds} differ from those of {names[0]} ({want}); "
                "every domain needs the same targets"
            )
        if p.images.dtype != first.images.dtype:
            raise UserError(
                f"{WHERE}.{name}: images are {p.images.dtype} but {names[0]}'s are {first.images.dtype}; "
                "mix only 8-bit sources or only float ones"
            )
    targets, info, missing = {}, {}, {n: {} for n in names}
    for key, tinfo in first.info.items():
        if tinfo.kind == "classification":
            targets[key], info[key] = _map_classes(parts, key, missing)
        else:
            targets[key] = torch.cat([parts[n].targets[key] for n in names])
            info[key] = tinfo
    sizes = np.cumsum([0] + [len(parts[n]) for n in names])
    groups = {n: np.arange(sizes[k], sizes[k + 1], dtype=np.int64) for k, n in enumerate(names)}
    meta = {
        "skipped": sum(parts[n].meta.get("skipped", 0) for n in names),
        "domains": {
            n: {
                "source": entries[n]["source"],
                "n": len(parts[n]),
                "shift": entries[n]["shift"],
                **missing[n],
            }
            for n in names
        },
    }
    images = torch.cat([parts[n].images for n in names])
    return ImageSet(images, targets, info, groups, name="multi:" + "+".join(names), meta=meta)


def _kinds(data: ImageSet) -> str:
    return ", ".join(f"{k} ({i.kind})" for k, i in sorted(data.info.items())) or "none"


def _map_classes(parts: dict[str, ImageSet], key: str, missing: dict) -> tuple[torch.Tensor, TargetInfo]:
    """The target ``key`` of every domain on the union of class names (first domain's order first)."""
    classes: list[str] = []
    for p in parts.values():
        classes += [c for c in p.info[key].classes or () if c not in classes]
    index = {c: i for i, c in enumerate(classes)}
    mapped = []
    for name, p in parts.items():
        own = p.info[key].classes or ()
        table = torch.tensor([index[c] for c in own], dtype=torch.int64)
        mapped.append(table[p.targets[key]])
        absent = [c for c in classes if c not in own]
        if absent:
            missing[name].setdefault("classes_missing", {})[key] = absent
    return torch.cat(mapped), TargetInfo("classification", tuple(classes))
