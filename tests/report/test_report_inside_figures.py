"""The data-card, worst-mistakes and looking-inside figures and numbers, on fixed inputs.

Each figure function returns PNG bytes (the same bytes for the same arrays, None for what is not
an image); each number is checked against a direct computation with numpy / scikit-learn / SciPy.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import xlogy
from sklearn.metrics import log_loss, mean_squared_error

from smallvision.registry import HEAD_KINDS
from smallvision.report import image_figures, inside, mistakes, streams

PNG = b"\x89PNG\r\n\x1a\n"


def _size(png: bytes) -> tuple[int, int]:
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (12, 1, 8, 8), dtype=np.uint8)


def test_labelled_grid(images):
    png = image_figures.labelled_grid(
        images, [f"true {i}\npred {i + 1}" for i in range(12)], cols=6, vrange=(0, 255)
    )
    assert png.startswith(PNG)
    assert png == image_figures.labelled_grid(
        images, [f"true {i}\npred {i + 1}" for i in range(12)], cols=6, vrange=(0, 255)
    )
    wide, _ = _size(image_figures.labelled_grid(images, [""] * 12, cols=12))
    assert wide > _size(png)[0]  # 12 columns are wider than 6
    rgb = np.random.default_rng(1).random((3, 3, 8, 8))
    assert image_figures.labelled_grid(rgb, ["a", "b", "c"]).startswith(PNG)
    assert image_figures.labelled_grid(np.zeros((2, 5)), ["a", "b"]) is None


def test_panel_grid_and_mosaic(images):
    rows = {"image": images[:4, 0], "phase": np.random.default_rng(2).uniform(-3, 3, (4, 8, 8))}
    png = image_figures.panel_grid(rows, ["a", "b", "c", "d"], {"phase": "twilight"})
    assert png.startswith(PNG)
    width, height = _size(png)
    assert width > height  # four columns, two rows
    assert image_figures.panel_grid({"x": np.zeros(3)}) is None
    assert image_figures.mosaic([]) is None
    tiles = [[image_figures.rgb(images[i, 0]) for i in range(3)], [image_figures.rgb(images[3, 0], (0, 255))]]
    assert image_figures.mosaic(tiles, [["a", "b", "c"], ["d"]], row_labels=["one", "two"]).startswith(PNG)


def test_rgb_scales_and_colours():
    grey = image_figures.rgb(np.array([[0.0, 5.0], [10.0, 10.0]]))
    assert grey.shape == (2, 2, 3)
    np.testing.assert_allclose(grey[..., 0], [[0, 0.5], [1, 1]], atol=1 / 255)  # a 256-entry colour map
    fixed = image_figures.rgb(np.array([[0.0, 255.0]]), (0, 510))
    np.testing.assert_allclose(fixed[0, :, 0], [0, 0.5], atol=1 / 255)
    constant = image_figures.rgb(np.full((2, 2), 3.0))
    assert not constant.any()


def test_heatmaps_radial_profiles_and_feature_strips():
    rng = np.random.default_rng(3)
    assert image_figures.heatmaps({"mean": rng.random((8, 8)), "variance": rng.random((8, 8))}).startswith(
        PNG
    )
    assert image_figures.heatmaps({}) is None
    radii, profiles = streams.radial_profile(rng.random((3, 16, 16)))
    assert image_figures.radial_profiles(radii, profiles, ["a", "b", "c"]).startswith(PNG)
    png = image_figures.feature_strips(
        {"spatial": rng.random((4, 64)), "frequency": rng.random((4, 32))}, list("abcd")
    )
    assert png.startswith(PNG)
    assert image_figures.feature_strips({"spatial": np.zeros((0, 4))}, []) is None


def test_radial_profile_is_the_mean_over_each_ring():
    maps = np.random.default_rng(4).random((2, 9, 12))
    radii, profiles = streams.radial_profile(maps)
    h, w = 9, 12
    for m, profile in zip(maps, profiles, strict=True):
        for r, value in zip(radii, profile, strict=True):
            ring = [
                m[y, x] for y in range(h) for x in range(w) if round(np.hypot(y - h // 2, x - w // 2)) == r
            ]
            assert value == pytest.approx(np.mean(ring))
    assert radii[0] == 0 and radii[-1] == min(h, w) // 2


def test_spectrum_is_the_centred_fft():
    x = np.random.default_rng(5).random((2, 8, 8))
    magnitude, phase = streams.spectrum(x)
    f = np.fft.fftshift(np.fft.fft2(x[1]))
    np.testing.assert_allclose(magnitude[1], np.log1p(np.abs(f)))
    np.testing.assert_allclose(phase[1], np.angle(f))
    # the zero frequency sits at the centre: the image's sum
    assert np.expm1(magnitude[0, 4, 4]) == pytest.approx(x[0].sum())


def test_fusion_shares_split_the_squared_weights():
    w = np.random.default_rng(6).normal(size=(5, 7))
    shares = streams.fusion_shares(w, {"spatial": 4, "frequency": 3})
    assert shares["spatial"] == pytest.approx((w[:, :4] ** 2).sum() / (w**2).sum())
    assert shares["spatial"] + shares["frequency"] == pytest.approx(1.0)


def test_top_losses_and_top_channels():
    losses = np.array([0.5, 2.0, np.nan, 2.0, 1.0])
    assert mistakes.top_losses(losses, 3).tolist() == [1, 3, 4]  # ties in position order
    assert mistakes.top_losses(losses, 10)[-1] == 2  # NaN last
    maps = np.zeros((2, 4, 3, 3))
    maps[:, 2] = -5.0
    maps[:, 0] = 1.0
    assert inside.top_channels(maps, 2).tolist() == [2, 0]
    up = inside.upsample(np.arange(4.0).reshape(1, 1, 2, 2), (4, 4))
    np.testing.assert_array_equal(up[0, 0, :2, :2], np.zeros((2, 2)))
    assert up[0, 0, 3, 3] == 3.0


def test_worst_mistake_title_joins_probabilities():
    fields = {"true": "cat", "predicted": "dog", "p(predicted)": 0.9, "p(true)": 0.03}
    assert mistakes.title(fields) == "true cat (0.030)\npredicted dog (0.900)"
    assert mistakes.title({"true": 1.5, "predicted": [0.25, 2.0]}) == "true 1.500\npredicted 0.250, 2.000"


def test_sample_losses_of_every_kind_match_scikit_learn():
    rng = np.random.default_rng(7)
    prob = rng.dirichlet(np.ones(4), size=20)
    y = rng.integers(0, 4, 20)
    cls = HEAD_KINDS.get("classification").sample_losses({"y_true": y, "prob": prob})
    direct = [log_loss([y[i]], prob[i : i + 1], labels=range(4)) for i in range(20)]
    np.testing.assert_allclose(cls, direct, rtol=1e-10)
    fields = HEAD_KINDS.get("classification").sample_fields({"y_true": y, "prob": prob}, 3, list("abcd"))
    assert fields["true"] == "abcd"[y[3]] and fields["p(predicted)"] == prob[3].max()

    t = rng.integers(0, 2, (20, 3)).astype(np.float32)
    p = rng.random((20, 3))
    multi = HEAD_KINDS.get("multilabel").sample_losses({"y_true": t, "prob": p})
    np.testing.assert_allclose(multi, -(xlogy(t, p) + xlogy(1 - t, 1 - p)).mean(axis=1))

    target, pred = rng.normal(size=(20, 2)), rng.normal(size=(20, 2))
    reg = HEAD_KINDS.get("regression").sample_losses({"y_true": target, "y_pred": pred})
    direct = [mean_squared_error(target[i], pred[i]) for i in range(20)]
    np.testing.assert_allclose(reg, direct)
    recon = HEAD_KINDS.get("reconstruction").sample_losses(
        {"y_true": rng.random((3, 1, 4, 4)), "y_pred": np.zeros((3, 1, 4, 4))}
    )
    assert recon.shape == (3,)
