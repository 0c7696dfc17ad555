"""Split properties (hypothesis), official splits, named domains, label fractions, k-fold, duplicates."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from smallvision.config import SplitConfig
from smallvision.data.dataset import ImageSet, TargetInfo
from smallvision.data.duplicates import DuplicateImagesWarning, find_duplicates, image_hashes
from smallvision.data.splits import (
    SPLITS,
    check_disjoint,
    fold_ids,
    kfold_split,
    label_fraction,
    make_splits,
    ratio_split,
)
from smallvision.errors import UserError

labels_st = st.lists(st.integers(0, 5), min_size=1, max_size=300).map(lambda v: np.asarray(v, dtype=np.int64))
ratios_st = st.sampled_from(
    [(0.7, 0.2, 0.1), (0.8, 0.1, 0.1), (0.8, 0.0, 0.2), (0.6, 0.2, 0.2), (1.0, 0.0, 0.0)]
)
seed_st = st.integers(0, 2**32)
SETTINGS = settings(max_examples=60, deadline=None)


def unique_images(n: int, c: int = 1, h: int = 4, w: int = 4) -> torch.Tensor:
    """n distinct uint8 images (the sample index written into the first bytes)."""
    x = torch.zeros(n, c * h * w, dtype=torch.uint8)
    x[:, 0] = torch.arange(n) % 256
    x[:, 1] = torch.arange(n) // 256
    return x.view(n, c, h, w)


def image_set(labels, groups=None, images=None) -> ImageSet:
    labels = np.asarray(labels, dtype=np.int64)
    k = int(labels.max()) + 1 if len(labels) else 1
    return ImageSet(
        images if images is not None else unique_images(len(labels)),
        {"label": torch.from_numpy(labels)},
        {"label": TargetInfo("classification", tuple(str(i) for i in range(k)))},
        groups={g: np.asarray(i, dtype=np.int64) for g, i in (groups or {}).items()},
        name="toy",
    )


def assert_partition(parts: dict[str, np.ndarray], n: int) -> None:
    check_disjoint(parts, n)
    assert sum(len(v) for v in parts.values()) == n


# ---------------------------------------------------------------- ratio


@SETTINGS
@given(labels=labels_st, ratios=ratios_st, seed=seed_st)
def test_ratio_split_is_a_stratified_partition(labels, ratios, seed):
    parts = ratio_split(labels, ratios, seed)
    assert_partition(parts, len(labels))
    for cls in np.unique(labels):
        n_c = int((labels == cls).sum())
        for name, share in zip(SPLITS, ratios, strict=True):
            got = int((labels[parts[name]] == cls).sum())
            assert abs(got - n_c * share) <= 1, (name, cls, got, n_c * share)
    for idx in parts.values():
        assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)


@SETTINGS
@given(labels=labels_st, ratios=ratios_st, seed=seed_st)
def test_same_seed_same_split(labels, ratios, seed):
    a, b = ratio_split(labels, ratios, seed), ratio_split(labels, ratios, seed)
    assert all(np.array_equal(a[s], b[s]) for s in SPLITS)


def test_different_seeds_give_different_splits():
    labels = np.repeat(np.arange(5), 100)
    a, b = ratio_split(labels, (0.7, 0.2, 0.1), 0), ratio_split(labels, (0.7, 0.2, 0.1), 1)
    assert not np.array_equal(a["test"], b["test"])


def test_make_splits_ratio_and_its_info():
    data = image_set(np.repeat(np.arange(4), 50))
    parts = make_splits(data, SplitConfig(method="ratio", train=0.8, val=0.0, test=0.2))
    assert len(parts["train"]) == 160 and len(parts["val"]) == 0 and len(parts["test"]) == 40
    assert parts.info["method"] == "ratio" and parts.info["sizes"] == {"train": 160, "val": 0, "test": 40}
    assert parts.info["duplicates"]["train/test"] == 0


def test_stratify_errors_name_the_key():
    data = image_set([0, 1, 0, 1])
    with pytest.raises(UserError, match="data.split.stratify 'digit'"):
        make_splits(data, SplitConfig(stratify="digit"))
    data.targets["angle"] = torch.rand(4)
    data.info["angle"] = TargetInfo("regression")
    with pytest.raises(UserError, match="classification target"):
        make_splits(data, SplitConfig(stratify="angle"))


def test_unstratified_and_unlabeled_data_split_by_count():
    data = ImageSet(unique_images(100), {}, {}, name="unlabeled")
    parts = make_splits(data, SplitConfig(stratify=None))
    assert [len(parts[s]) for s in SPLITS] == [70, 10, 20]


# ---------------------------------------------------------------- label fractions


@SETTINGS
@given(labels=labels_st, seed=seed_st, fractions=st.lists(st.floats(0.01, 1.0), min_size=2, max_size=4))
def test_label_fractions_are_nested_and_stratified(labels, seed, fractions):
    train = np.flatnonzero(np.arange(len(labels)) % 3 != 0)  # any fixed training set
    kept = [label_fraction(train, labels, f, seed) for f in sorted(fractions)]
    for small, large in zip(kept, kept[1:], strict=False):
        assert np.isin(small, large).all()
    for f, idx in zip(sorted(fractions), kept, strict=True):
        assert np.isin(idx, train).all()
        for cls in np.unique(labels[train]):
            n_c = int((labels[train] == cls).sum())
            got = int((labels[idx] == cls).sum())
            assert 1 <= got and abs(got - n_c * f) <= 1


def test_make_splits_fraction_keeps_val_and_test():
    data = image_set(np.repeat(np.arange(10), 100))
    full = make_splits(data, SplitConfig(seed=4))
    one, ten = (make_splits(data, SplitConfig(seed=4, fraction=f)) for f in (0.01, 0.1))
    assert len(one["train"]) == 10 and len(ten["train"]) == 70
    assert np.isin(one["train"], ten["train"]).all() and np.isin(ten["train"], full["train"]).all()
    assert np.array_equal(one["test"], full["test"]) and np.array_equal(one["val"], full["val"])
    assert ten.info["fraction"] == {"fraction": 0.1, "n_train_full": 700}


# ---------------------------------------------------------------- k-fold


@SETTINGS
@given(labels=labels_st, seed=seed_st, folds=st.integers(2, 6))
def test_kfold_folds_partition_the_data(labels, seed, folds):
    if folds > len(labels):
        return
    tests = [kfold_split(labels, folds, k, 0.0, seed)["test"] for k in range(folds)]
    assert np.array_equal(np.sort(np.concatenate(tests)), np.arange(len(labels)))
    sizes = [len(t) for t in tests]
    assert max(sizes) - min(sizes) <= 1
    ids = fold_ids(labels, folds, seed)
    for cls in np.unique(labels):
        per_fold = np.bincount(ids[labels == cls], minlength=folds)
        assert per_fold.max() - per_fold.min() <= 1
    parts = kfold_split(labels, folds, folds - 1, 0.25, seed)
    assert_partition(parts, len(labels))


def test_kfold_config_and_errors():
    data = image_set(np.repeat(np.arange(3), 20))
    parts = make_splits(data, SplitConfig(method="kfold", folds=3, fold=1, val=0.25))
    assert len(parts["test"]) == 20 and len(parts["val"]) == 10 and len(parts["train"]) == 30
    with pytest.raises(UserError, match="data.split.fold: 3 is not a fold of 3"):
        make_splits(data, SplitConfig(method="kfold", folds=3, fold=3))


# ---------------------------------------------------------------- official splits


def test_official_split_is_kept_and_val_carved_from_train():
    labels = np.repeat(np.arange(4), 30)
    data = image_set(labels, groups={"train": np.arange(80), "test": np.arange(80, 120)})
    for method in ("official", "auto"):
        parts = make_splits(data, SplitConfig(method=method, train=0.55, val=0.25, test=0.2))
        assert parts.info["method"] == "official"
        assert np.array_equal(parts["test"], np.arange(80, 120))
        assert np.array_equal(np.sort(np.concatenate([parts["train"], parts["val"]])), np.arange(80))
        assert abs(len(parts["val"]) - 20) <= 1  # classes of 30, 30, 20: 7.5 + 7.5 + 5


def test_official_val_is_used_when_present():
    data = image_set(
        np.zeros(30), groups={"train": np.arange(20), "val": np.arange(20, 25), "test": np.arange(25, 30)}
    )
    parts = make_splits(data, SplitConfig(method="official"))
    assert [parts[s].tolist() for s in SPLITS] == [list(range(20)), list(range(20, 25)), list(range(25, 30))]


def test_official_errors():
    with pytest.raises(UserError, match="no official train/test split"):
        make_splits(image_set(np.zeros(10)), SplitConfig(method="official"))
    overlapping = image_set(np.zeros(10), groups={"train": np.arange(6), "test": np.arange(5, 10)})
    with pytest.raises(UserError, match="groups 'train' and 'test' share samples"):
        make_splits(overlapping, SplitConfig(method="official"))


def test_auto_without_groups_is_ratio():
    parts = make_splits(image_set(np.zeros(10)), SplitConfig())
    assert parts.info["method"] == "ratio"


# ---------------------------------------------------------------- named domains


def domain_set() -> ImageSet:
    labels = np.tile(np.arange(3), 60)  # 180 samples, 3 domains of 60
    return image_set(
        labels, groups={"TRAIN": np.arange(60), "TEST": np.arange(60, 120), "TEST2": np.arange(120, 180)}
    )


def test_domains_train_on_a_validate_on_b_test_on_b_and_c():
    data = domain_set()
    cfg = SplitConfig(method="domains", domains={"train": "TRAIN", "val": "TEST", "test": ["TEST", "TEST2"]})
    parts = make_splits(data, cfg)
    assert np.array_equal(parts["train"], np.arange(60))
    # TEST is shared by val and test: divided 1 : 2 (val 0.1, test 0.2), never both
    assert len(parts["val"]) == 20 and len(parts["test:TEST"]) == 40
    assert np.array_equal(np.sort(np.concatenate([parts["val"], parts["test:TEST"]])), np.arange(60, 120))
    assert np.array_equal(parts["test:TEST2"], np.arange(120, 180))
    assert np.array_equal(parts["test"], np.sort(np.concatenate([parts["test:TEST"], parts["test:TEST2"]])))
    assert sorted(np.bincount(data.targets["label"].numpy()[parts["val"]])) == [6, 7, 7]  # 20/3 each


def test_domains_single_domains_and_val_carved_from_train():
    data = domain_set()
    parts = make_splits(
        data, SplitConfig(method="domains", val=0.2, domains={"train": "TRAIN", "test": "TEST2"})
    )
    assert np.array_equal(np.sort(np.concatenate([parts["train"], parts["val"]])), np.arange(60))
    assert len(parts["val"]) == 12 and np.array_equal(parts["test"], np.arange(120, 180))
    assert not any(":" in k for k in parts)


def test_domain_errors():
    data = domain_set()
    with pytest.raises(UserError, match="data.split.domains.test: unknown domain 'TEST3'"):
        make_splits(data, SplitConfig(method="domains", domains={"train": "TRAIN", "test": "TEST3"}))
    with pytest.raises(UserError, match="needs at least"):
        make_splits(data, SplitConfig(method="domains", domains={"test": "TEST"}))
    with pytest.raises(UserError, match="data.split.domains.tset: unknown split"):
        make_splits(data, SplitConfig(method="domains", domains={"train": "TRAIN", "tset": "TEST"}))


def test_per_domain_keeps_each_domains_held_out_part_whatever_a_step_trains_on():
    data = domain_set()
    step1 = make_splits(data, SplitConfig(method="per_domain", domains={"train": "TRAIN"}))
    step2 = make_splits(data, SplitConfig(method="per_domain", domains={"train": ["TEST"], "val": ["TEST2"]}))
    for domain in ("TRAIN", "TEST", "TEST2"):  # every domain is tested in both steps, on the same samples
        assert np.array_equal(step1[f"test:{domain}"], step2[f"test:{domain}"])
        assert len(step1[f"test:{domain}"]) == 12  # 0.2 of 60, stratified: 4 per class
        assert sorted(np.bincount(data.targets["label"].numpy()[step1[f"test:{domain}"]])) == [4, 4, 4]
    assert np.array_equal(step1["test"], np.sort(np.concatenate([step1[f"test:{d}"] for d in data.groups])))
    # each step trains only on the train parts of its domains, never on any held-out test sample
    assert set(step1["train"]) <= set(range(60)) and len(step1["train"]) == 42
    assert set(step2["train"]) <= set(range(60, 120)) and not set(step2["train"]) & set(step1["test"])
    assert set(step1["val"]) <= set(range(60)) and set(step2["val"]) <= set(range(120, 180))
    moved = make_splits(data, SplitConfig(method="per_domain", seed=1, domains={"train": "TRAIN"}))
    assert not np.array_equal(moved["test:TEST"], step1["test:TEST"])


def test_per_domain_errors():
    with pytest.raises(UserError, match="has no domains"):
        make_splits(image_set(np.zeros(10)), SplitConfig(method="per_domain", domains={"train": "A"}))
    with pytest.raises(UserError, match="must sum to 1 for method per_domain"):
        make_splits(domain_set(), SplitConfig(method="per_domain", train=0.5, domains={"train": "TRAIN"}))


# ---------------------------------------------------------------- disjointness and duplicates


def test_check_disjoint_rejects_shared_and_out_of_range_indices():
    check_disjoint({"train": np.array([0, 1]), "test": np.array([2])}, 3)
    with pytest.raises(ValueError, match="shares samples"):
        check_disjoint({"train": np.array([0, 1]), "test": np.array([1])}, 3)
    with pytest.raises(ValueError, match="outside"):
        check_disjoint({"train": np.array([0, 3])}, 3)


def test_hashes_tell_near_identical_images_apart():
    x = torch.zeros(4, 3, 5, 5, dtype=torch.uint8)  # 75 bytes: padded to whole words
    x[1, 2, 4, 4] = 1  # differs from image 0 in the very last byte
    x[3] = x[1]
    h = image_hashes(x, np.arange(4))
    assert (h[0] != h[1]).any() and (h[1] == h[3]).all() and (h[0] == h[2]).all()
    floats = torch.rand(3, 1, 3, 3)
    floats[2] = floats[0]
    hf = image_hashes(floats, np.arange(3))
    assert (hf[0] == hf[2]).all() and (hf[0] != hf[1]).any()


def test_find_duplicates_counts_across_and_within_splits():
    x = unique_images(20)
    x[15] = x[2]  # test duplicates train
    x[16] = x[3]  # test duplicates train
    x[11] = x[4]  # val duplicates train
    x[1] = x[0]  # within train
    counts = find_duplicates(x, {"train": np.arange(10), "val": np.arange(10, 14), "test": np.arange(14, 20)})
    assert counts["train/test"] == 2 and counts["train/val"] == 1 and counts["val/test"] == 0
    assert counts["within"] == 1
    i, si, j, sj = counts["example"]
    assert si != sj and torch.equal(x[i], x[j])


def test_duplicates_error_warn_ignore():
    images = unique_images(100)
    images[50:] = images[:50]  # every image twice: a ratio split must put some pairs apart
    data = image_set(np.zeros(100), images=images)
    with pytest.raises(
        UserError, match=r"exact duplicates.*train/test: \d+.*e\.g\. sample \d+ in \w+ == sample \d+"
    ):
        make_splits(data, SplitConfig(duplicates="error"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parts = make_splits(data, SplitConfig(duplicates="warn"))
    assert any(issubclass(w.category, DuplicateImagesWarning) for w in caught)
    assert parts.info["duplicates"]["train/test"] > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parts = make_splits(data, SplitConfig(duplicates="ignore"))
    assert "duplicates" not in parts.info
