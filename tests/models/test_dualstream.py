"""The dual-stream network: FFT normalisation on known inputs, stream switches."""

from __future__ import annotations

import math

import pytest
import torch

from smallvision.config import HeadConfig
from smallvision.errors import UserError
from smallvision.models.build import build_model
from smallvision.models.dualstream import fft_magnitude

HEADS = {"label": HeadConfig(classes=10)}


@pytest.mark.parametrize("log", [True, False])
def test_constant_image_has_only_the_dc_term(log: bool) -> None:
    """A constant image's spectrum is one DC spike at the centre; its z-score sqrt(N-1) clips to 3."""
    x = torch.full((2, 3, 8, 8), 0.7)
    out = fft_magnitude(x, log=log)
    n = 64
    expected = torch.full((8, 8), 0.5 - 1 / (6 * math.sqrt(n - 1)))
    expected[4, 4] = 1.0  # clipped at +3 -> 3 / 6 + 0.5
    torch.testing.assert_close(out, expected.expand(2, 3, 8, 8), atol=1e-5, rtol=0)


def test_cosine_peaks_sit_at_its_frequency() -> None:
    h, w, k = 16, 16, 3
    cols = torch.arange(w, dtype=torch.float32)
    x = torch.cos(2 * math.pi * k * cols / w).expand(1, 1, h, w)
    out = fft_magnitude(x)[0, 0]
    peaks = {(int(i), int(j)) for i, j in (out == out.max()).nonzero()}
    assert peaks == {(h // 2, w // 2 - k), (h // 2, w // 2 + k)}


def test_range_zero_image_and_shift_invariance() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 1, 28, 28) * 5
    out = fft_magnitude(x)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    torch.testing.assert_close(fft_magnitude(torch.roll(x, (3, -5), dims=(2, 3))), out, atol=1e-4, rtol=0)
    zero = fft_magnitude(torch.zeros(1, 1, 8, 8))
    assert torch.equal(zero, torch.full_like(zero, 0.5)), "no NaN for a blank image"


def test_streams_can_be_switched_off() -> None:
    both = build_model("dualstream", {}, (1, 32, 32), HEADS)
    spatial = build_model("dualstream", {"frequency": False}, (1, 32, 32), HEADS)
    freq = build_model("dualstream", {"spatial": False}, (1, 32, 32), HEADS)
    names = [n for n, _ in both.stages()]
    assert "frequency" in names and "spatial_stage4" in names and names[-1] == "fusion"
    assert "frequency" not in [n for n, _ in spatial.stages()]
    assert [n for n, _ in freq.stages()] == ["frequency", "fusion"]
    assert both.backbone.fusion[0].in_features == 192  # 128 spatial + 64 frequency, as in study 000
    assert spatial.backbone.fusion[0].in_features == 128 and freq.backbone.fusion[0].in_features == 64
    for net in (both, spatial, freq):
        assert net.eval()(torch.randn(2, 1, 32, 32))["label"].shape == (2, 10)
    with pytest.raises(UserError, match="switch at least one stream on"):
        build_model("dualstream", {"spatial": False, "frequency": False}, (1, 32, 32), HEADS)


def test_frequency_stream_ignores_a_circular_shift() -> None:
    """With the spatial stream off the whole network sees only |FFT|, which a circular shift keeps."""
    torch.manual_seed(0)
    net = build_model("dualstream", {"spatial": False}, (1, 32, 32), HEADS).eval()
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net(torch.roll(x, 7, dims=3))["label"], net(x)["label"], atol=1e-4, rtol=0)
