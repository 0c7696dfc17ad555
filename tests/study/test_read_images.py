"""read_images (``smallvision predict``): image files, folders and ``.npy`` files as one batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from smallvision.errors import UserError
from smallvision.study.inference import read_images

RNG = np.random.default_rng(4)


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
