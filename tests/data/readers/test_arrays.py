"""npz:, npy: and stl10: readers on files the tests write themselves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from smallvision.data.load import load_source
from smallvision.data.readers.stl10 import STL10_CLASSES
from smallvision.errors import UserError

RNG = np.random.default_rng(1)


# ---------------------------------------------------------------- npz / npy


@pytest.mark.parametrize(
    ("shape", "dtype", "expected"),
    [
        ((6, 5, 4), np.uint8, (6, 1, 5, 4)),
        ((6, 5, 4, 3), np.float64, (6, 3, 5, 4)),
        ((6, 3, 5, 4), np.float32, (6, 3, 5, 4)),
    ],
)
def test_npz_layouts_and_dtypes(tmp_path, shape, dtype, expected):
    x = (RNG.random(shape) * 255).astype(dtype)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(6) % 3)
    data = load_source(f"npz:{tmp_path / 'd.npz'}")
    assert data.images.shape == expected
    assert data.images.dtype == (torch.uint8 if dtype == np.uint8 else torch.float32)
    assert data.info["label"].classes == ("0", "1", "2")
    flat = x.transpose(0, 3, 1, 2) if len(shape) == 4 and shape[3] == 3 else x.reshape(expected)
    np.testing.assert_allclose(data.images.numpy(), flat.astype(np.float32 if dtype != np.uint8 else dtype))


def test_npz_named_targets_kinds_and_classes(tmp_path):
    x = RNG.integers(0, 256, (8, 4, 4), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", img=x, a=np.arange(8) % 2, b=RNG.random(8), c=RNG.random((8, 2)))
    data = load_source(
        f"npz:{tmp_path / 'd.npz'}",
        {"images_key": "img", "targets": {"A": "a", "B": "b", "C": "c"}, "classes": {"A": ["cat", "dog"]}},
    )
    assert data.info["A"].classes == ("cat", "dog") and data.targets["A"].dtype == torch.int64
    assert data.info["B"].kind == "regression" and data.targets["B"].dtype == torch.float32
    assert data.targets["C"].shape == (8, 2)
    forced = load_source(
        f"npz:{tmp_path / 'd.npz'}",
        {"images_key": "img", "targets": {"A": "a"}, "kinds": {"A": "regression"}},
    )
    assert forced.info["A"].kind == "regression"


def test_npz_keras_style_splits_become_groups(tmp_path):
    np.savez(
        tmp_path / "mnist.npz",
        x_train=np.zeros((5, 4, 4), np.uint8),
        y_train=np.arange(5),
        x_test=np.ones((3, 4, 4), np.uint8),
        y_test=np.arange(3),
    )
    data = load_source(f"npz:{tmp_path / 'mnist.npz'}")
    assert set(data.groups) == {"train", "test"} and len(data) == 8
    assert data.images[data.groups["test"]].float().mean() == 1


def test_npz_without_labels_is_unlabeled_and_missing_key_is_named(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 4, 4), np.uint8))
    assert load_source(f"npz:{tmp_path / 'd.npz'}").targets == {}
    with pytest.raises(UserError, match=r"d.npz key 'z': no such array; found x"):
        load_source(f"npz:{tmp_path / 'd.npz'}", {"targets": {"label": "z"}})


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_npz_corrupt_or_truncated_file_is_named(tmp_path, damage):
    path = tmp_path / "d.npz"
    np.savez(path, x=RNG.random((20, 8, 8)), y=np.arange(20))
    raw = path.read_bytes()
    path.write_bytes(b"not a zip at all" * 10 if damage == "garbage" else raw[: len(raw) // 2])
    with pytest.raises(UserError, match="d.npz"):
        load_source(f"npz:{path}")


def test_npz_wrong_shape_and_length(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 4, 4, 7)), y=np.arange(3))
    with pytest.raises(UserError, match=r"d.npz key 'x': images of shape \(3, 4, 4, 7\)"):
        load_source(f"npz:{tmp_path / 'd.npz'}")
    np.savez(tmp_path / "e.npz", x=np.zeros((3, 4, 4)), y=np.arange(4))
    with pytest.raises(UserError, match="e.npz key 'y': 4 values for 3 images"):
        load_source(f"npz:{tmp_path / 'e.npz'}")


def test_npz_nan_image_and_label_outside_classes(tmp_path):
    x = RNG.random((6, 4, 4))
    y = np.array([0, 1, 2, 5, 1, 0])
    np.savez(tmp_path / "labels.npz", x=x, y=y)
    with pytest.raises(UserError, match="labels.npz key 'y' index 3: label 5 outside the 3 declared classes"):
        load_source(f"npz:{tmp_path / 'labels.npz'}", {"classes": {"label": ["a", "b", "c"]}})
    x[4, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", x=x, y=y)
    with pytest.raises(UserError, match="nan.npz key 'x' index 4: image has NaN"):
        load_source(f"npz:{tmp_path / 'nan.npz'}", {"classes": {"label": 3}})
    data = load_source(f"npz:{tmp_path / 'nan.npz'}", {"classes": {"label": 3}, "skip_bad": True})
    assert len(data) == 4 and data.meta["skipped"] == 2
    np.testing.assert_array_equal(data.targets["label"].numpy(), [0, 1, 2, 0])


def test_npy_folder_and_single_file(tmp_path):
    x = RNG.integers(0, 256, (5, 6, 6, 3), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.array([0, 1, 0, 1, 1]))
    np.save(tmp_path / "angle.npy", RNG.random(5).astype(np.float32))
    data = load_source(f"npy:{tmp_path}")
    assert data.images.shape == (5, 3, 6, 6) and data.targets["label"].tolist() == [0, 1, 0, 1, 1]
    single = load_source(f"npy:{tmp_path / 'x.npy'}", {"targets": {"label": "y", "angle": "angle"}})
    assert single.info["angle"].kind == "regression" and torch.equal(single.images, data.images)


def test_npy_truncated_file_is_named(tmp_path):
    np.save(tmp_path / "x.npy", RNG.random((10, 8, 8)))
    raw = (tmp_path / "x.npy").read_bytes()
    (tmp_path / "x.npy").write_bytes(raw[:-100])
    with pytest.raises(UserError, match=r"x.npy: corrupt or truncated array"):
        load_source(f"npy:{tmp_path}")


# ---------------------------------------------------------------- STL-10


@pytest.fixture
def stl_dir(tmp_path):
    """STL-10 binaries with 4 train, 3 test and 2 unlabeled 96x96 RGB images."""
    images = {}
    for part, n in (("train", 4), ("test", 3), ("unlabeled", 2)):
        x = RNG.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8)
        # the files store each channel column-major: write (N, C, W, H) in C order
        (tmp_path / f"{part}_X.bin").write_bytes(x.transpose(0, 1, 3, 2).tobytes())
        if part != "unlabeled":
            (tmp_path / f"{part}_y.bin").write_bytes(np.arange(1, n + 1, dtype=np.uint8).tobytes())
        images[part] = x
    return tmp_path, images


def test_stl10_reads_column_major_images_and_shifts_labels(stl_dir):
    folder, images = stl_dir
    data = load_source(f"stl10:{folder}")
    assert data.images.shape == (7, 3, 96, 96) and set(data.groups) == {"train", "test"}
    np.testing.assert_array_equal(data.images[:4].numpy(), images["train"])
    assert data.targets["label"].tolist() == [0, 1, 2, 3, 0, 1, 2]
    assert data.info["label"].classes == STL10_CLASSES


def test_stl10_class_names_file_unlabeled_and_limit(stl_dir):
    folder, images = stl_dir
    (folder / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    assert load_source(f"stl10:{folder}").info["label"].classes[0] == "c0"
    data = load_source(f"stl10:{folder}", {"splits": ["unlabeled", "train"], "max_per_split": 1})
    assert data.targets == {} and len(data) == 2 and list(data.groups) == ["unlabeled", "train"]
    np.testing.assert_array_equal(data.images[0].numpy(), images["unlabeled"][0])


def test_stl10_truncated_images_name_file_and_offset(stl_dir):
    folder, _ = stl_dir
    path = folder / "test_X.bin"
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(UserError, match=r"test_X.bin byte offset 55296: truncated"):
        load_source(f"stl10:{folder}")
    data = load_source(f"stl10:{folder}", {"skip_bad": True})
    assert len(data) == 6 and data.meta["skipped"] == 1


def test_stl10_label_outside_1_to_10(stl_dir):
    folder, _ = stl_dir
    (folder / "train_y.bin").write_bytes(bytes([1, 11, 2, 3]))
    with pytest.raises(UserError, match=r"train_y.bin byte offset 1: label 11 outside 1..10"):
        load_source(f"stl10:{folder}")
    (folder / "train_y.bin").write_bytes(bytes([1, 2]))
    with pytest.raises(UserError, match=r"train_y.bin byte offset 2: truncated, 2 labels for 4 images"):
        load_source(f"stl10:{folder}")


@pytest.mark.parametrize("images, labels", [("images", "labels"), ("X", "y"), ("data", "targets")])
def test_npz_usual_names_of_images_and_labels(tmp_path, images, labels):
    x = RNG.integers(0, 256, (6, 5, 5), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", **{images: x, labels: np.array([0, 1, 2, 0, 1, 2])})
    data = load_source(f"npz:{tmp_path / 'd.npz'}")
    assert data.images.shape == (6, 1, 5, 5) and data.targets["label"].tolist() == [0, 1, 2, 0, 1, 2]
    np.testing.assert_array_equal(data.images[:, 0].numpy(), x)


def test_npz_usual_names_with_splits_and_npy_folder(tmp_path):
    np.savez(
        tmp_path / "d.npz",
        images_train=np.zeros((4, 3, 3), np.uint8),
        labels_train=np.arange(4),
        images_test=np.ones((2, 3, 3), np.uint8),
        labels_test=np.arange(2),
    )
    data = load_source(f"npz:{tmp_path / 'd.npz'}")
    assert set(data.groups) == {"train", "test"} and data.targets["label"].tolist() == [0, 1, 2, 3, 0, 1]
    (tmp_path / "f").mkdir()
    np.save(tmp_path / "f" / "images.npy", np.zeros((3, 4, 4), np.uint8))
    np.save(tmp_path / "f" / "labels.npy", np.array([1, 0, 1]))
    assert load_source(f"npy:{tmp_path / 'f'}").targets["label"].tolist() == [1, 0, 1]
    single = load_source(f"npy:{tmp_path / 'f' / 'images.npy'}")
    assert single.targets["label"].tolist() == [1, 0, 1]


def test_npz_ambiguous_or_unknown_names_list_the_arrays(tmp_path):
    np.savez(tmp_path / "two.npz", images=np.zeros((2, 3, 3)), data=np.zeros((2, 3, 3)), y=np.zeros(2))
    with pytest.raises(UserError) as err:
        load_source(f"npz:{tmp_path / 'two.npz'}")
    msg = str(err.value)
    assert "\n" not in msg and "arrays images, data" in msg and "found images, data, y" in msg
    assert "x/y, X/y, images/labels, data/targets" in msg and "images_key" in msg
    np.savez(tmp_path / "none.npz", pixels=np.zeros((2, 3, 3)))
    with pytest.raises(
        UserError, match=r"no array has a usual images name; found pixels; expected one of x/y"
    ):
        load_source(f"npz:{tmp_path / 'none.npz'}")
    # naming the images key still reads any file
    assert len(load_source(f"npz:{tmp_path / 'none.npz'}", {"images_key": "pixels"})) == 2
