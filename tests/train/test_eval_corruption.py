"""A denoising or masked autoencoder is validated and tested on inputs corrupted like its training
batches (a fixed seed, the same in every run and epoch), against the clean image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import smallvision
from smallvision.data.augment.pipeline import build_augment
from smallvision.data.normalize import Normalizer
from smallvision.train.evaluation import Split, evaluation_split
from smallvision.train.inputs import InputPrep


def ae_config(tiny_config, augment, seed=3, lr=0.01, masked_only=False):
    return {
        **tiny_config,
        "seed": seed,
        "data": {**tiny_config["data"], "augment": augment},
        "model": {"name": "autoencoder_dense", "params": {"hidden": [32], "bottleneck": 8}},
        "heads": {"image": {"kind": "reconstruction", "masked_only": masked_only}},
        "train": {**tiny_config["train"], "epochs": 2, "optimizer": {"lr": lr}, "early_stopping": {}},
    }


def test_corrupted_inputs_are_fixed_whatever_the_batch_size_and_mask_what_training_masks():
    images = torch.randint(0, 256, (600, 1, 8, 8), dtype=torch.uint8)
    norm = Normalizer(1 / 255, (0.3,), (0.4,))
    prep = InputPrep(norm, build_augment({"mask_pixels": {"ratio": 0.5}}), corrupt=True)
    x, mask = prep.corrupted(images)
    again, mask2 = prep.corrupted(images)
    assert torch.equal(x, again) and torch.equal(mask, mask2)
    assert mask.float().mean().item() == pytest.approx(0.5, abs=0.01)  # 32 of 64 pixels per image
    clean = prep(images)
    assert torch.equal(x[~mask.expand_as(x)], clean[~mask.expand_as(x)])  # untouched where not masked
    assert torch.allclose(x[mask.expand_as(x)], torch.tensor((0.0 - 0.3) / 0.4))  # value 0, standardised
    head = prep.corrupted(images[:300])  # a shorter split shares its first images' corruption
    assert torch.equal(head[0], x[:300])
    assert InputPrep(norm, build_augment({"mask_pixels": {"ratio": 0.5}})).corrupted(images) is None
    split = evaluation_split(Split(images), prep)
    assert torch.equal(split.inputs, x) and evaluation_split(split, prep) is split


@pytest.mark.slow
def test_two_masked_autoencoders_are_scored_on_the_same_corrupted_images_against_the_clean_ones(tiny_config):
    augment = {"mask_pixels": {"ratio": 0.5}}
    a = smallvision.run(ae_config(tiny_config, augment, seed=3, lr=0.01, masked_only=True))
    b = smallvision.run(ae_config(tiny_config, augment, seed=7, lr=0.003, masked_only=True))
    ra, rb = smallvision.load_run(a.dir), smallvision.load_run(b.dir)
    for split in ("val", "test"):
        ha, hb = ra.predictions.head(split, "image"), rb.predictions.head(split, "image")
        np.testing.assert_array_equal(ha["corrupted"], hb["corrupted"])  # another seed and variant
        np.testing.assert_array_equal(ha["y_true"], hb["y_true"])  # scored against the clean image
        assert not np.array_equal(ha["corrupted"], ha["y_true"])
    # the best epoch's validation figure is the final one: the same corrupted inputs, the same code
    best = ra.metrics.best_epoch
    assert ra.history["val/image/mse"][best - 1] == pytest.approx(ra.metrics.val["image"]["mse"], rel=1e-5)
    # masked_only: the validation loss is over the masked pixels alone (mask rebuilt independently)
    norm = Normalizer.from_dict(ra.metrics.data.normalization)
    images = _split_images(a, "val")
    _, mask = InputPrep(norm, build_augment(augment), corrupt=True).corrupted(images)
    h = ra.predictions.head("val", "image")
    sq = (h["y_pred"].astype(np.float64) - h["y_true"]) ** 2
    m = np.broadcast_to(mask.numpy(), sq.shape)
    assert ra.history["val/image/loss"][best - 1] == pytest.approx(sq[m].mean(), rel=1e-4)
    assert not sq[m].mean() == pytest.approx(sq.mean(), rel=1e-3)  # all pixels would differ


def _split_images(result, split: str) -> torch.Tensor:
    from smallvision.study.run import prepare_data

    d = prepare_data(result.config)
    return d.data.images[torch.as_tensor(d.splits[split])]


@pytest.mark.slow
def test_a_denoising_autoencoder_sees_noise_at_evaluation_and_a_classifier_does_not(tiny_config):
    noisy = smallvision.run(ae_config(tiny_config, {"noise": {"std": 0.1}}))
    run = smallvision.load_run(noisy.dir)
    h = run.predictions.head("test", "image")
    std = np.asarray(run.metrics.data.normalization["std"])
    diff = (h["corrupted"] - h["y_true"]) * std  # back on the [0, 1] scale
    assert 0.05 < diff.std() < 0.1  # sigma 0.1, less where clipping to [0, 1] cuts it
    classifier = {**tiny_config, "data": {**tiny_config["data"], "augment": {"noise": {"std": 0.1}}}}
    clf = smallvision.load_run(smallvision.run(classifier).dir)
    assert "corrupted" not in clf.predictions.head("test", "label")
