"""The data card's arrays (``data_card.npz``) against direct numpy computations on the run's data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from smallvision.config import build_config
from smallvision.data.card import AUGMENT_DRAWS, AUGMENT_SOURCES, SAMPLES, class_moments, sample_rows
from smallvision.rundir import read_npz, write_npz
from smallvision.study.data_card import data_card_arrays
from smallvision.study.run import prepare

TINY_MODEL = {"name": "cnn_small", "params": {"channels": [4, 8], "hidden": 8}}


@pytest.fixture(scope="module")
def prepared():
    cfg = build_config(
        {
            "seed": 5,
            "data": {
                "source": "builtin:digits",
                "augment": {"rotate": {"degrees": 20}, "noise": {"std": 0.05}},
            },
            "model": TINY_MODEL,
            "eval": {"INV": {"source": "builtin:digits", "shift": {"invert": True}}},
        }
    )
    p = prepare(cfg)
    return p, data_card_arrays(p)


def test_counts_per_class_and_split_are_bincounts_of_the_labels(prepared):
    p, card = prepared
    labels = p.data.targets["label"].numpy()
    splits = [str(s) for s in card["splits"]]
    assert splits == ["train", "val", "test", "eval:INV"]
    for row, split in zip(card["counts/label"], splits, strict=True):
        y = p.split_data[split].targets["label"].numpy()
        if split != "eval:INV":
            y = labels[p.splits[split]]
        assert row.tolist() == np.bincount(y, minlength=10).tolist()
    assert card["sizes"].tolist() == [len(p.splits[s]) for s in splits]
    assert card["classes/label"].tolist() == [str(i) for i in range(10)]


def test_class_mean_std_and_pixel_variance_match_numpy(prepared):
    p, card = prepared
    train = p.data.images[torch.as_tensor(p.splits["train"])].numpy().astype(np.float64) / 255.0
    y = p.data.targets["label"].numpy()[p.splits["train"]]
    for k in range(10):
        np.testing.assert_allclose(card["class_mean/label"][k], train[y == k].mean(axis=0), atol=1e-3)
        np.testing.assert_allclose(card["class_std/label"][k], train[y == k].std(axis=0), atol=2e-3)
    np.testing.assert_allclose(card["pixel_var"], train.var(axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(card["pixel_mean"], train.mean(axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(card["norm_mean"], [train.mean()], rtol=1e-9)
    np.testing.assert_allclose(card["norm_std"], [train.std()], rtol=1e-9)
    assert card["class_mean/label"].dtype == np.float16


def test_samples_are_stored_training_images_balanced_over_classes(prepared):
    p, card = prepared
    assert card["samples"].dtype == np.uint8 and len(card["samples"]) == SAMPLES
    index = card["sample_index"]
    assert set(index) <= set(p.splits["train"].tolist())
    np.testing.assert_array_equal(card["samples"], p.data.images[torch.as_tensor(index)].numpy())
    labels = p.data.targets["label"].numpy()[index]
    np.testing.assert_array_equal(card["sample_label/label"], labels)
    assert np.bincount(labels, minlength=10).min() >= SAMPLES // 10  # every class three times or more
    assert labels[:10].tolist() == list(range(10))  # each class's first sample first


def test_augmented_samples_are_the_pipeline_with_a_seeded_generator(prepared):
    p, card = prepared
    aug = card["augmented"]
    assert aug.shape == (AUGMENT_DRAWS, AUGMENT_SOURCES, 1, 8, 8) and aug.dtype == np.float16
    x = torch.from_numpy(card["samples"][:AUGMENT_SOURCES]).float() / 255.0
    gen = torch.Generator().manual_seed(5)  # the run's seed
    for r in range(AUGMENT_DRAWS):
        np.testing.assert_allclose(aug[r], p.augment(x, gen).numpy(), atol=1e-3)
    assert not np.allclose(aug[0], aug[1])  # each draw is a new one


def test_duplicates_and_source_are_recorded(prepared):
    p, card = prepared
    assert str(card["source"]) == "builtin:digits"
    recorded = p.splits.info["duplicates"]
    pairs = [str(s) for s in card["duplicate_pairs"]]
    assert pairs == [k for k, v in recorded.items() if isinstance(v, int)]
    assert card["duplicate_counts"].tolist() == [recorded[k] for k in pairs]


def test_card_round_trips_through_the_run_directory_without_pickle(prepared, tmp_path):
    _, card = prepared
    write_npz(tmp_path / "data_card.npz", card)
    back = read_npz(tmp_path / "data_card.npz")
    assert set(back) == set(card)
    for key in card:
        np.testing.assert_array_equal(back[key], card[key])


def test_sample_rows_without_labels_and_class_moments_of_one_group():
    rows = sample_rows(None, 10, seed=1, count=4)
    assert rows.tolist() == np.random.default_rng(1).permutation(10)[:4].tolist()
    images = torch.arange(24, dtype=torch.uint8).reshape(6, 1, 2, 2)
    counts, mean, std = class_moments(images, np.array([0, 1, 0, 1, 0, 2]), 4, 1.0)
    x = images.numpy().astype(np.float64)
    assert counts.tolist() == [3, 2, 1, 0]
    np.testing.assert_allclose(mean[1], x[[1, 3]].mean(axis=0))
    np.testing.assert_allclose(std[0], x[[0, 2, 4]].std(axis=0))
    assert not mean[3].any() and not std[3].any()  # a class without images


@pytest.mark.slow
def test_mnist_data_card_stays_small(tmp_path):
    cfg = build_config(
        {"data": {"source": "builtin:mnist-5k", "augment": {"rotate": {}}}, "model": TINY_MODEL}
    )
    write_npz(tmp_path / "data_card.npz", data_card_arrays(prepare(cfg)))
    assert (tmp_path / "data_card.npz").stat().st_size < 300_000
