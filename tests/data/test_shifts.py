"""Shifts of a whole image stack (a further domain): what each does, exactly, and its seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from smallvision.data.shifts import apply_shift
from smallvision.errors import UserError


def digits() -> torch.Tensor:
    return torch.randint(
        0, 256, (5, 1, 12, 12), generator=torch.Generator().manual_seed(0), dtype=torch.uint8
    )


def test_invert_mirrors_the_value_range_with_a_strength():
    x = digits()
    assert torch.equal(apply_shift(x, {"invert": True}), 255 - x)
    half = apply_shift(x, {"invert": 0.5})
    assert half.dtype == torch.uint8 and set(half.unique().tolist()) <= {127, 128}
    floats = torch.rand(3, 1, 4, 4) * 2 - 1
    low, high = float(floats.min()), float(floats.max())
    assert torch.allclose(apply_shift(floats, {"invert": 1.0}), low + high - floats)


def test_dilate_thickens_a_stroke_by_twice_the_radius():
    x = torch.zeros(2, 1, 9, 9, dtype=torch.uint8)
    x[:, :, 4, 2:7] = 200  # a horizontal stroke one pixel thick
    out = apply_shift(x, {"dilate": 1})
    assert (out[0, 0] > 0).sum(dim=0).max() == 3 and torch.equal(
        out[0, 0, 3:6, 1:8], torch.full((3, 7), 200, dtype=torch.uint8)
    )
    assert torch.equal(out, torch.from_numpy(ndimage.grey_dilation(x.numpy(), size=(1, 1, 3, 3))))


@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_blur_is_scipys_gaussian_filter(sigma):
    x = torch.rand(3, 2, 16, 16, generator=torch.Generator().manual_seed(1)) * 255
    out = apply_shift(x, {"blur": sigma})
    ref = ndimage.gaussian_filter(
        x.numpy().astype(np.float64), sigma=(0, 0, sigma, sigma), mode="mirror", truncate=3.0
    )
    assert np.allclose(out.numpy(), ref, atol=1e-3)


def test_noise_has_the_asked_sigma_and_a_fixed_seed():
    x = torch.full((50, 1, 20, 20), 128, dtype=torch.uint8)
    a, b = apply_shift(x, {"noise": 0.05}), apply_shift(x, {"noise": 0.05})
    assert torch.equal(a, b) and not torch.equal(a, apply_shift(x, {"noise": 0.05, "seed": 1}))
    assert abs(float((a.float() - 128).std()) - 0.05 * 255) < 0.3


def test_shifts_apply_in_the_order_written():
    x = digits()
    assert torch.equal(
        apply_shift(x, {"invert": True, "dilate": 1}),
        apply_shift(apply_shift(x, {"invert": True}), {"dilate": 1}),
    )
    assert not torch.equal(
        apply_shift(x, {"invert": True, "dilate": 1}), apply_shift(x, {"dilate": 1, "invert": True})
    )


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"sharpen": 1}, r"shift\.sharpen: unknown shift; expected one of invert, dilate, blur, noise"),
        ({"blur": -1}, r"shift\.blur: expected a sigma > 0, got -1"),
        ({"dilate": 1.5}, r"shift\.dilate: expected a radius in pixels"),
        ({"invert": 2}, r"shift\.invert: expected true or a strength in \(0, 1\]"),
        ({"seed": 3}, r"only a seed given"),
        ("blur", r"expected a mapping of shifts"),
    ],
)
def test_bad_shifts_are_one_line_errors(spec, message):
    with pytest.raises(UserError, match=message):
        apply_shift(digits(), spec)
