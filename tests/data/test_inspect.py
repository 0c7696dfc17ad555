"""describe: the summary ``smallvision data show`` prints."""

from __future__ import annotations

import numpy as np
import torch

from smallvision.data.dataset import ImageSet, TargetInfo
from smallvision.data.inspect import describe

RNG = np.random.default_rng(4)


def test_describe_counts_per_class_and_group_and_pixel_stats():
    images = torch.zeros(6, 1, 4, 4, dtype=torch.uint8)
    images[:3] = 255
    data = ImageSet(
        images,
        {"label": torch.tensor([0, 1, 1, 0, 1, 1]), "angle": torch.tensor([0.0, 0.5, 1.0, 0.25, 0.5, 0.75])},
        {"label": TargetInfo("classification", ("cat", "dog")), "angle": TargetInfo("regression")},
        groups={"train": np.array([0, 1, 2, 3]), "test": np.array([4, 5])},
        name="toy",
        meta={"skipped": 2, "skipped_files": ["a.png", "b.png"]},
    )
    text = describe(data)
    assert "toy: 6 images, 1x4x4 (C x H x W), uint8" in text
    assert "range [0, 255], mean 127.5, std 127.5" in text
    assert "groups: train 4, test 2" in text
    rows = {
        line.split()[1]: line.split()[2:] for line in text.splitlines() if line.strip()[:2] in ("0 ", "1 ")
    }
    assert rows == {"cat": ["2", "2", "0"], "dog": ["4", "2", "2"]}  # all, train, test
    assert "target 'angle': regression" in text and "test     n=2 min 0.5 max 0.75" in text
    assert "skipped: 2 bad samples, e.g. a.png, b.png" in text


def test_describe_unlabeled_rgb_per_channel():
    images = torch.stack([torch.full((4, 4), v, dtype=torch.float32) for v in (0.0, 1.0, 2.0)])[None]
    text = describe(ImageSet(images.repeat(2, 1, 1, 1), {}, {}, name="rgb"))
    assert "targets: none (unlabeled)" in text and "mean 0, 1, 2" in text and "float32" in text
