"""folder:, npyfolder: and images: readers on image trees the tests write themselves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from smallvision.data.load import load_source
from smallvision.errors import UserError

RNG = np.random.default_rng(2)


def save_image(path, shape=(6, 5), mode="L", fmt=None) -> np.ndarray:
    """A random image file; returns its pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = RNG.integers(0, 256, shape if mode == "L" else (*shape, 3), dtype=np.uint8)
    Image.fromarray(pixels, mode).save(path, format=fmt)
    return pixels


@pytest.fixture
def tree(tmp_path):
    """cat/ (3 PNGs), dog/ (2 BMPs), 6x5 gray."""
    pixels = {}
    for cls, n, ext in (("cat", 3, "png"), ("dog", 2, "bmp")):
        for i in range(n):
            pixels[f"{cls}/{i}.{ext}"] = save_image(tmp_path / cls / f"{i}.{ext}")
    return tmp_path, pixels


def test_folder_classes_are_sorted_subfolders_and_pixels_exact(tree):
    root, pixels = tree
    data = load_source(f"folder:{root}")
    assert data.images.shape == (5, 1, 6, 5) and data.images.dtype == torch.uint8
    assert data.info["label"].classes == ("cat", "dog") and data.targets["label"].tolist() == [0, 0, 0, 1, 1]
    np.testing.assert_array_equal(data.images[3, 0].numpy(), pixels["dog/0.bmp"])
    assert data.meta["skipped"] == 0 and data.groups == {}


def test_folder_auto_mode_turns_gray_to_rgb_when_any_is_colour_and_resizes(tree):
    root, pixels = tree
    save_image(root / "dog" / "9.jpg", shape=(12, 10), mode="RGB")
    (root / "dog" / "notes.txt").write_text("not an image")
    data = load_source(f"folder:{root}", {"size": [8, 7]})
    assert data.images.shape == (6, 3, 8, 7)
    gray = data.images[0]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    assert data.meta["ignored"] == 1 and data.meta["ignored_files"][0].endswith("notes.txt")
    assert load_source(f"folder:{root}", {"size": 8, "mode": "L"}).images.shape == (6, 1, 8, 8)


def test_folder_crop_fit_keeps_aspect(tmp_path):
    wide = np.zeros((10, 30), np.uint8)
    wide[:, 10:20] = 255  # only the centre third is white
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        Image.fromarray(wide).save(tmp_path / cls / "w.png")
    data = load_source(f"folder:{tmp_path}", {"size": 10, "fit": "crop"})
    assert data.images.float().mean() > 250  # the crop is the white centre square


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_folder_corrupt_and_truncated_files_are_named(tree, damage):
    root, _ = tree
    path = root / "cat" / "1.png"
    raw = path.read_bytes()
    path.write_bytes(b"\x00garbage" * 20 if damage == "garbage" else raw[: len(raw) // 2])
    with pytest.raises(UserError, match=r"cat/1.png: not a readable image"):
        load_source(f"folder:{root}")
    data = load_source(f"folder:{root}", {"skip_bad": True})
    assert (
        len(data) == 4 and data.meta["skipped"] == 1 and data.meta["skipped_files"][0].endswith("cat/1.png")
    )
    assert data.targets["label"].tolist() == [0, 0, 1, 1]


def test_folder_size_mismatch_and_undeclared_class(tree):
    root, _ = tree
    save_image(root / "dog" / "big.png", shape=(9, 9))
    with pytest.raises(UserError, match=r"big.png: size \(9, 9\) differs from \(6, 5\).*set option size"):
        load_source(f"folder:{root}")
    with pytest.raises(UserError, match=r"dog: class folder 'dog' is not among the declared classes"):
        load_source(f"folder:{root}", {"classes": ["cat"], "size": 6})
    data = load_source(f"folder:{root}", {"classes": ["cat"], "size": 6, "skip_bad": True})
    assert len(data) == 3 and data.meta["skipped"] == 3


def test_folder_without_class_folders_or_with_an_empty_one(tmp_path):
    save_image(tmp_path / "a.png")
    with pytest.raises(UserError, match="expected a folder per class"):
        load_source(f"folder:{tmp_path}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="empty: class folder has no"):
        load_source(f"folder:{tmp_path}")


def test_folder_bad_option_values():
    with pytest.raises(UserError, match="option mode: expected one of auto, L, RGB"):
        load_source("folder:.", {"mode": "gray"})


# ---------------------------------------------------------------- npyfolder


@pytest.fixture
def domains(tmp_path):
    """TRAIN / TEST / TEST2, each with classes a, b, c of 4x4 float arrays (TEST2 lacks c)."""
    for domain, n in (("TRAIN", 3), ("TEST", 2), ("TEST2", 1)):
        for cls in ("a", "b", "c") if domain != "TEST2" else ("a", "b"):
            (tmp_path / domain / cls).mkdir(parents=True)
            for i in range(n):
                np.save(tmp_path / domain / cls / f"{i}.npy", RNG.random((4, 4)).astype(np.float32))
    return tmp_path


def test_npyfolder_detects_domains_as_groups(domains):
    data = load_source(f"npyfolder:{domains}")
    assert list(data.groups) == ["TEST", "TEST2", "TRAIN"] and data.info["label"].classes == ("a", "b", "c")
    assert [len(g) for g in data.groups.values()] == [6, 2, 9] and data.images.dtype == torch.float32
    assert data.targets["label"][data.groups["TEST2"]].tolist() == [0, 1]
    one = load_source(f"npyfolder:{domains / 'TRAIN'}")
    assert len(one) == 9 and one.groups == {} and one.images.shape == (9, 1, 4, 4)
    with pytest.raises(UserError, match="TEST: class folder has no .npy files"):  # domains read as classes
        load_source(f"npyfolder:{domains}", {"domains": False})


def test_npyfolder_uint8_channels_and_resize(tmp_path):
    for cls in ("x", "y"):
        (tmp_path / cls).mkdir()
        np.save(tmp_path / cls / "0.npy", RNG.integers(0, 256, (3, 8, 8), dtype=np.uint8))  # (C, H, W)
        np.save(tmp_path / cls / "1.npy", RNG.integers(0, 256, (16, 16, 3), dtype=np.uint8))  # (H, W, C)
    data = load_source(f"npyfolder:{tmp_path}", {"size": 8})
    assert data.images.shape == (4, 3, 8, 8) and data.images.dtype == torch.uint8
    with pytest.raises(UserError, match=r"1.npy: size \(16, 16\) differs"):
        load_source(f"npyfolder:{tmp_path}")


@pytest.mark.parametrize("damage", ["truncated", "shape"])
def test_npyfolder_bad_file_is_named(domains, damage):
    path = domains / "TEST" / "b" / "1.npy"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:-9])
    else:
        np.save(path, np.zeros(16))
    with pytest.raises(
        UserError,
        match="TEST/b/1.npy: " + ("not a readable .npy" if damage == "truncated" else "array of shape"),
    ):
        load_source(f"npyfolder:{domains}")
    data = load_source(f"npyfolder:{domains}", {"skip_bad": True})
    assert data.meta["skipped"] == 1 and len(data.groups["TEST"]) == 5


# ---------------------------------------------------------------- images (unlabeled)


def test_images_reads_an_unlabeled_folder_resized(tmp_path):
    for i, shape in enumerate([(30, 40), (50, 20), (16, 16)]):
        save_image(tmp_path / f"{i:06d}.jpg", shape=shape, mode="RGB")
    data = load_source(f"images:{tmp_path}", {"size": 16})
    assert data.images.shape == (3, 3, 16, 16) and data.targets == {} and data.info == {}
    assert load_source(f"images:{tmp_path}", {"size": 16, "limit": 2}).images.shape[0] == 2


def test_images_corrupt_file_named_or_skipped(tmp_path):
    for i in range(3):
        save_image(tmp_path / f"{i}.png")
    (tmp_path / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    with pytest.raises(UserError, match=r"1.png: not a readable image"):
        load_source(f"images:{tmp_path}")
    data = load_source(f"images:{tmp_path}", {"skip_bad": True})
    assert len(data) == 2 and data.meta["skipped_files"] == [str(tmp_path / "1.png")]
