"""Train / val / test splits: which samples each split holds (seeded, stratified, disjoint).

Every method assigns samples with the same vectorised primitive: a seeded random rank of each sample
within its stratum (its class), then cuts per stratum at rounded cumulative shares. Each split thus
holds every class's share to within one sample, and a prefix of the ranks (label fractions) is
nested across fractions for the same seed. Split sizes can then differ from ``share * N`` by a
sample or two (at most half the number of classes), never a class's share by more than one.

Methods (``data.split.method``):
    auto: ``official`` when the source has ``train`` and ``test`` groups, ``ratio`` otherwise.
    ratio: shares ``train / val / test`` of the whole set (``val: 0`` for an 80/20 split).
    official: the source's ``train`` / ``test`` (/ ``val``) groups; without an official val, val is
        the ``val`` share of the official train set.
    domains: named groups feed each split, e.g. ``{train: TRAIN, val: TEST, test: [TEST, TEST2]}``.
        A domain named by several splits is divided among them in proportion to their ratios, so
        val and test never share a sample. A split listing several domains is their union, and for
        val and test each domain's part is also returned under ``"test:TEST2"``-style keys.
    per_domain: every domain of the source is split on its own into train / val / test by the
        shares, seeded by ``seed`` and the domain's name only; ``domains`` then picks whose train,
        val and test parts each split takes (test: every domain by default). A domain's held-out
        test part is thus the same whichever domains a run trains on (two-step fine-tuning), and
        each domain's test part is returned under ``"test:DOMAIN"``.
    kfold: stratified folds; test is fold ``fold``, val the ``val`` share of the other folds.
"""

from __future__ import annotations

import zlib

import numpy as np

from smallvision.config import SplitConfig
from smallvision.data.dataset import ImageSet
from smallvision.data.duplicates import report_duplicates
from smallvision.errors import UserError

SPLITS = ("train", "val", "test")
_MASK64 = (1 << 64) - 1


class Splits(dict):
    """``{"train", "val", "test"}`` -> sorted int64 indices (plus ``"test:DOMAIN"`` parts), and ``info``.

    A plain dict of index arrays to every caller; ``info`` holds what the run should record: the
    method actually used, the sizes, the label fraction and the duplicate counts.
    """

    def __init__(self, parts: dict[str, np.ndarray], info: dict | None = None) -> None:
        super().__init__(parts)
        self.info = dict(info or {})


def make_splits(data: ImageSet, cfg: SplitConfig) -> Splits:
    """Indices of the train / val / test samples; disjoint, seeded, stratified when asked.

    Args:
        data: the whole dataset (its ``groups`` hold official splits or named domains).
        cfg: the split config (method, ratios, stratify target, domains, fraction, folds, seed).

    Returns:
        A :class:`Splits`: each split a sorted int64 array (val and test may be empty).

    Raises:
        UserError: a bad method for this source, unknown domains, or (``duplicates: error``)
            identical images in two splits.
    """
    strata = _strata(data, cfg.stratify)
    method = cfg.method
    if method == "auto":
        method = "official" if {"train", "test"} <= set(data.groups) else "ratio"
    if method == "ratio":
        total = cfg.train + cfg.val + cfg.test
        if abs(total - 1.0) > 1e-6:
            raise UserError(f"data.split: train + val + test must sum to 1, got {total:g}")
        parts = ratio_split(strata, (cfg.train, cfg.val, cfg.test), cfg.seed)
    elif method == "official":
        parts = _official(data, strata, cfg)
    elif method == "domains":
        parts = _domains(data, strata, cfg)
    elif method == "per_domain":
        parts = _per_domain(data, strata, cfg)
    else:
        parts = kfold_split(strata, cfg.folds, cfg.fold, cfg.val, cfg.seed)
    info: dict = {"method": method, "seed": cfg.seed}
    if cfg.fraction < 1.0:
        info["fraction"] = {"fraction": cfg.fraction, "n_train_full": len(parts["train"])}
        parts["train"] = label_fraction(parts["train"], strata, cfg.fraction, cfg.seed)
    check_disjoint({s: parts[s] for s in SPLITS}, len(data))
    info["sizes"] = {s: len(i) for s, i in parts.items()}
    if cfg.duplicates != "ignore":
        info["duplicates"] = report_duplicates(data, {s: parts[s] for s in SPLITS}, cfg.duplicates)
    return Splits(parts, info)


def _strata(data: ImageSet, stratify: str | None) -> np.ndarray:
    """One stratum id per sample: the stratify target's class, or all zeros."""
    if stratify is None or stratify not in data.targets:
        if stratify is not None and stratify != "label":
            raise UserError(
                f"data.split.stratify {stratify!r}: no such target (targets: {', '.join(data.targets) or 'none'})"
            )
        return np.zeros(len(data), dtype=np.int64)
    if data.info[stratify].kind != "classification":
        raise UserError(f"data.split.stratify {stratify!r}: can only stratify by a classification target")
    return data.targets[stratify].numpy()


def _rng(seed: int, stream: int) -> np.random.Generator:
    """An independent generator per purpose (split, val, fraction) from one config seed."""
    return np.random.default_rng([stream, seed & _MASK64])


def _ranks(strata: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per sample: a random rank within its stratum, the stratum's size, and a rounding offset.

    Counts per stratum are ``floor(size * share + offset)``: within one sample of the share for any
    offset in [0, 1), and monotone in the share (so cuts and fractions nest). The offsets are spread
    evenly over the strata, (k + 0.5) / K in a random order, so that the rounding errors of the
    strata mostly cancel in the totals; with one stratum this is plain rounding.
    """
    _, code, counts = np.unique(strata, return_inverse=True, return_counts=True)
    code = code.reshape(-1)
    order = np.lexsort((rng.random(len(strata)), code))  # by stratum, random within it
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(strata), dtype=np.int64)
    rank[order] = np.arange(len(strata)) - starts[code[order]]
    offset = (rng.permutation(len(counts)) + 0.5) / len(counts)
    return rank, counts[code], offset[code]


def stratified_assign(strata: np.ndarray, shares: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    """The part (0 .. len(shares) - 1) of each sample, each stratum cut by ``shares``.

    Cuts fall at rounded cumulative shares of each stratum, so every part holds its share of every
    stratum to within one sample.
    """
    rank, size, offset = _ranks(strata, rng)
    cum = np.cumsum(np.asarray(shares, dtype=np.float64))
    cum = cum / cum[-1] if cum[-1] > 0 else cum
    bounds = np.floor(size[:, None] * cum[None, :-1] + offset[:, None])  # (N, parts - 1) cut positions
    return (rank[:, None] >= bounds).sum(axis=1)


def ratio_split(strata: np.ndarray, ratios: tuple[float, float, float], seed: int) -> dict[str, np.ndarray]:
    """Split each stratum by ``ratios`` (train, val, test) after a seeded shuffle.

    Every stratum keeps its share in each split to within one sample.
    """
    # test first, so that the test set of a seed does not move when only train/val change
    part = stratified_assign(strata, (ratios[2], ratios[1], ratios[0]), _rng(seed, 0))
    return {s: np.flatnonzero(part == k) for s, k in (("train", 2), ("val", 1), ("test", 0))}


def _carve_val(pool: np.ndarray, strata: np.ndarray, val: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val): a stratified ``val`` share of the index array ``pool`` becomes val."""
    part = stratified_assign(strata[pool], (val, 1.0 - val), _rng(seed, 1))
    return np.sort(pool[part == 1]), np.sort(pool[part == 0])


def _official(data: ImageSet, strata: np.ndarray, cfg: SplitConfig) -> dict[str, np.ndarray]:
    groups = data.groups
    if not {"train", "test"} <= set(groups):
        raise UserError(
            f"data.split.method 'official': {data.name or 'the source'} has no official train/test split "
            f"(groups: {', '.join(groups) or 'none'}); use method ratio, kfold or domains"
        )
    parts = {s: np.sort(np.asarray(groups[s], dtype=np.int64)) for s in SPLITS if s in groups}
    _check_groups_disjoint(data, {s: parts[s] for s in parts})
    if "val" not in parts:
        parts["train"], parts["val"] = _carve_val(parts["train"], strata, cfg.val, cfg.seed)
    return parts


def _check_groups_disjoint(data: ImageSet, groups: dict[str, np.ndarray]) -> None:
    """A UserError naming two groups of the source that share samples."""
    owner = np.full(len(data), -1)
    names = list(groups)
    for k, name in enumerate(names):
        shared = owner[groups[name]]
        if (shared >= 0).any():
            other = names[int(shared[shared >= 0][0])]
            raise UserError(f"{data.name or 'source'}: groups {other!r} and {name!r} share samples")
        owner[groups[name]] = k


def _domains(data: ImageSet, strata: np.ndarray, cfg: SplitConfig) -> dict[str, np.ndarray]:
    spec = _domain_spec(data, cfg)
    _check_groups_disjoint(data, {d: data.groups[d] for d in {d for ds in spec.values() for d in ds}})
    ratio = {"train": cfg.train, "val": cfg.val, "test": cfg.test}
    pieces: dict[tuple[str, str], np.ndarray] = {}
    for stream, domain in enumerate(sorted({d for ds in spec.values() for d in ds})):
        users = [s for s in SPLITS if domain in spec[s]]
        idx = np.asarray(data.groups[domain], dtype=np.int64)
        shares = tuple(ratio[s] for s in users)
        if len(users) > 1 and sum(shares) <= 0:
            raise UserError(
                f"data.split.domains: {domain!r} is in {' and '.join(users)} whose ratios are all 0"
            )
        part = stratified_assign(strata[idx], shares, _rng(cfg.seed, 10 + stream))
        for k, s in enumerate(users):
            pieces[(s, domain)] = np.sort(idx[part == k])
    parts = {
        s: np.sort(np.concatenate([pieces[(s, d)] for d in spec[s]] or [np.zeros(0, np.int64)]))
        for s in SPLITS
    }
    if "val" not in cfg.domains:  # no val domain: carve val from the training domains like `official`
        parts["train"], parts["val"] = _carve_val(parts["train"], strata, cfg.val, cfg.seed)
    for s in ("val", "test"):
        if len(spec[s]) > 1:
            parts.update({f"{s}:{d}": pieces[(s, d)] for d in spec[s]})
    return parts


def _per_domain(data: ImageSet, strata: np.ndarray, cfg: SplitConfig) -> dict[str, np.ndarray]:
    """Each domain cut into train / val / test on its own; ``cfg.domains`` picks the parts used."""
    total = cfg.train + cfg.val + cfg.test
    if abs(total - 1.0) > 1e-6:
        raise UserError(f"data.split: train + val + test must sum to 1 for method per_domain, got {total:g}")
    if not data.groups:
        raise UserError(f"data.split.method 'per_domain': {data.name or 'the source'} has no domains")
    spec = _domain_spec(data, cfg, default_test=list(data.groups))
    if "val" not in (cfg.domains or {}):
        spec["val"] = spec["train"]  # validate on the domains trained on, from their own val parts
    _check_groups_disjoint(data, dict(data.groups))
    pieces: dict[tuple[str, str], np.ndarray] = {}
    for domain in sorted({d for ds in spec.values() for d in ds}):
        idx = np.asarray(data.groups[domain], dtype=np.int64)
        # the stream depends on the domain's name alone, so which other domains a step uses cannot move it
        rng = _rng(cfg.seed, 100 + zlib.crc32(domain.encode()))
        part = stratified_assign(strata[idx], (cfg.test, cfg.val, cfg.train), rng)
        for k, s in enumerate(("test", "val", "train")):
            pieces[(s, domain)] = np.sort(idx[part == k])
    parts = {
        s: np.sort(np.concatenate([pieces[(s, d)] for d in spec[s]] or [np.zeros(0, np.int64)]))
        for s in SPLITS
    }
    parts.update({f"test:{d}": pieces[("test", d)] for d in spec["test"]})
    if len(spec["val"]) > 1:
        parts.update({f"val:{d}": pieces[("val", d)] for d in spec["val"]})
    return parts


def _domain_spec(
    data: ImageSet, cfg: SplitConfig, default_test: list[str] | None = None
) -> dict[str, list[str]]:
    """``cfg.domains`` as split -> list of domain names, every name checked against the source."""
    if not cfg.domains or "train" not in cfg.domains:
        raise UserError(
            f"data.split.domains: method {cfg.method!r} needs at least {{train: DOMAIN}}, e.g. "
            "{train: TRAIN, val: TEST, test: [TEST, TEST2]}"
        )
    spec: dict[str, list[str]] = {s: [] for s in SPLITS}
    spec["test"] = list(default_test or [])
    for split, names in cfg.domains.items():
        if split not in SPLITS:
            raise UserError(f"data.split.domains.{split}: unknown split; expected train, val or test")
        spec[split] = [names] if isinstance(names, str) else list(dict.fromkeys(names))
        for name in spec[split]:
            if name not in data.groups:
                known = ", ".join(data.groups) or "none"
                raise UserError(
                    f"data.split.domains.{split}: unknown domain {name!r} (domains of "
                    f"{data.name or 'the source'}: {known})"
                )
    return spec


def kfold_split(strata: np.ndarray, folds: int, fold: int, val: float, seed: int) -> dict[str, np.ndarray]:
    """Stratified k-fold: test is fold ``fold``; val is a stratified ``val`` share of the other folds.

    Samples are ordered by stratum (random within it) and dealt to folds in turn, so every fold
    holds each class to within one sample and the fold sizes differ by at most one.
    """
    if fold >= folds:
        raise UserError(f"data.split.fold: {fold} is not a fold of {folds} (expected 0 .. {folds - 1})")
    if folds > len(strata):
        raise UserError(f"data.split.folds: {folds} folds for {len(strata)} samples")
    in_test = fold_ids(strata, folds, seed) == fold
    train, val_idx = _carve_val(np.flatnonzero(~in_test), strata, val, seed)
    return {"train": train, "val": val_idx, "test": np.flatnonzero(in_test)}


def fold_ids(strata: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0 .. folds - 1) of every sample, as :func:`kfold_split` deals them."""
    rank, _, _ = _ranks(strata, _rng(seed, 0))
    position = np.empty(len(strata), dtype=np.int64)
    position[np.lexsort((rank, strata))] = np.arange(len(strata))
    return position % folds


def label_fraction(train: np.ndarray, strata: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A stratified ``fraction`` of ``train`` (at least one sample per class), nested across fractions.

    Samples are ranked once per class by a permutation that depends only on ``train`` and ``seed``;
    each fraction keeps a prefix of those ranks, so for one seed the 1% subset lies inside the 10%.
    """
    if fraction >= 1.0 or len(train) == 0:
        return train
    rank, size, offset = _ranks(strata[train], _rng(seed, 2))
    keep = np.maximum(1, np.floor(size * fraction + offset))
    return np.sort(train[rank < keep])


def check_disjoint(splits: dict[str, np.ndarray], n: int) -> None:
    """Raise when two splits share an index or an index is out of range."""
    seen = np.zeros(n, dtype=bool)
    for name, idx in splits.items():
        if len(idx) and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(f"split {name!r} has indices outside 0..{n - 1}")
        if seen[idx].any() or len(np.unique(idx)) != len(idx):
            raise ValueError(f"split {name!r} shares samples with another split")
        seen[idx] = True
