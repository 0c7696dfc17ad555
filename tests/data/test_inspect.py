"""describe (``smallvision data show``) and read_images (``smallvision predict``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from smallvision.data.dataset import ImageSet, TargetInfo
from smallvision.data.inspect import describe, read_images
from smallvision.errors import UserError

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


def save_png(path, shape, mode="L"):
    pixels = RNG.integers(0, 256, shape if mode == "L" else (*shape, 3), dtype=np.uint8)
    Image.fromarray(pixels, mode).save(path)
    return pixels


def test_read_images_files_folders_and_npy(tmp_path):
    a = save_png(tmp_path / "a.png", (8, 8))
    (tmp_path / "dir").mkdir()
    save_png(tmp_path / "dir" / "b.png", (8, 8), "RGB")
    save_png(tmp_path / "dir" / "c.jpg", (16, 12), "RGB")
    np.save(tmp_path / "one.npy", RNG.integers(0, 256, (8, 8), dtype=np.uint8))
    np.save(tmp_path / "stack.npy", RNG.integers(0, 256, (3, 8, 8, 1), dtype=np.uint8))
    paths = [
        str(tmp_path / "a.png"),
        str(tmp_path / "dir"),
        str(tmp_path / "one.npy"),
        str(tmp_path / "stack.npy"),
    ]
    x, names = read_images(paths, size=8, channels=1)
    assert x.shape == (7, 1, 8, 8) and x.dtype == torch.uint8
    assert names == ["a.png", "b.png", "c.jpg", "one.npy", "stack.npy[0]", "stack.npy[1]", "stack.npy[2]"]
    np.testing.assert_array_equal(x[0, 0].numpy(), a)  # already the right size: untouched
    rgb, _ = read_images([str(tmp_path / "a.png")], size=(4, 6), channels=3)
    assert rgb.shape == (1, 3, 4, 6) and torch.equal(rgb[0, 0], rgb[0, 2])


def test_read_images_float_npy_and_channel_first(tmp_path):
    np.save(tmp_path / "f.npy", RNG.random((3, 5, 5)).astype(np.float64))  # (C, H, W) when channels=3
    x, names = read_images([str(tmp_path / "f.npy")], channels=3)
    assert x.shape == (1, 3, 5, 5) and x.dtype == torch.float32 and names == ["f.npy"]
    stack, names = read_images([str(tmp_path / "f.npy")], channels=1)  # 3 gray images otherwise
    assert stack.shape == (3, 1, 5, 5) and names[2] == "f.npy[2]"


def test_read_images_errors_name_the_file(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match=r"bad.png: not a readable image"):
        read_images([str(tmp_path / "bad.png")])
    with pytest.raises(UserError, match=r"missing.png: no such file"):
        read_images([str(tmp_path / "missing.png")])
    (tmp_path / "cut.npy").write_bytes(b"\x93NUMPY")
    with pytest.raises(UserError, match=r"cut.npy: not a readable .npy"):
        read_images([str(tmp_path / "cut.npy")])
    save_png(tmp_path / "s.png", (4, 4))
    save_png(tmp_path / "t.png", (5, 5))
    with pytest.raises(UserError, match=r"t.png: shape .* differs .* give a size"):
        read_images([str(tmp_path / "s.png"), str(tmp_path / "t.png")])
