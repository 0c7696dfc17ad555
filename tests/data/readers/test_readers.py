"""The shared reader rules, the contract every registered reader keeps, and the IDX reader."""

from __future__ import annotations

import gzip
import inspect
import struct

import numpy as np
import pytest
import torch

from smallvision.data.load import load_source
from smallvision.data.readers.common import BadItems, as_image_array, parse_size, to_nchw
from smallvision.errors import UserError
from smallvision.registry import SOURCES


def write_idx(path, arr: np.ndarray, gz: bool = False) -> None:
    """``arr`` (uint8) as an IDX file, the way MNIST ships it."""
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


@pytest.fixture
def mnist_dir(tmp_path):
    """A tiny MNIST: 12 train images (gzipped) and 5 test images (plain), 5x4 pixels."""
    rng = np.random.default_rng(0)
    parts = {}
    for part, n, gz in (("train", 12, True), ("t10k", 5, False)):
        x = rng.integers(0, 256, (n, 5, 4), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        y[0] = 9  # so the inferred classes are 0..9
        suffix = ".gz" if gz else ""
        write_idx(tmp_path / f"{part}-images-idx3-ubyte{suffix}", x, gz)
        write_idx(tmp_path / f"{part}-labels-idx1-ubyte{suffix}", y, gz)
        parts[part] = (x, y)
    return tmp_path, parts


# ---------------------------------------------------------------- contract


@pytest.mark.parametrize("scheme", SOURCES.list())
def test_every_reader_takes_location_and_explicit_keyword_options(scheme):
    params = list(inspect.signature(SOURCES.get(scheme)).parameters.values())
    assert params[0].name == "location"
    options = params[1:]
    assert options and all(p.kind is p.KEYWORD_ONLY and p.default is not p.empty for p in options)
    assert "skip_bad" in {p.name for p in options}


@pytest.mark.parametrize("scheme", SOURCES.list())
def test_every_reader_names_a_missing_location(scheme, tmp_path):
    missing = tmp_path / "nothing-here"
    with pytest.raises(UserError, match="nothing-here"):
        load_source(f"{scheme}:{missing}")


def test_unknown_option_is_a_user_error(mnist_dir):
    with pytest.raises(UserError, match="data.options.skipbad: unknown parameter; did you mean 'skip_bad'"):
        load_source(f"idx:{mnist_dir[0]}", {"skipbad": True})


# ---------------------------------------------------------------- shared helpers


def test_bad_items_raise_first_or_count_and_name():
    with pytest.raises(UserError, match="f.png: broken .*skip_bad"):
        BadItems().add("f.png", "broken")
    bad = BadItems(skip_bad=True)
    for i in range(25):
        bad.add(f"f{i}.png", "broken", count=2)
    assert bad.meta()["skipped"] == 50 and len(bad.meta()["skipped_files"]) == 20


def test_parse_size():
    assert parse_size(28) == (28, 28) and parse_size([32, 48]) == (32, 48) and parse_size(None) is None
    for wrong in (0, [1, 2, 3], "28", True):
        with pytest.raises(UserError, match="option size"):
            parse_size(wrong)


def test_to_nchw_layouts():
    assert to_nchw(np.zeros((2, 5, 6)), "x").shape == (2, 1, 5, 6)
    assert to_nchw(np.zeros((2, 5, 6, 3)), "x").shape == (2, 3, 5, 6)
    assert to_nchw(np.zeros((2, 3, 5, 6)), "x").shape == (2, 3, 5, 6)
    assert to_nchw(np.zeros((2, 3, 5, 3)), "x", layout="NCHW").shape == (2, 3, 5, 3)
    with pytest.raises(UserError, match=r"x: images of shape \(2, 5, 6, 7\)"):
        to_nchw(np.zeros((2, 5, 6, 7)), "x")


def test_image_dtypes_kept_or_made_float32():
    assert as_image_array(np.zeros(3, np.uint8), "x").dtype == np.uint8
    assert as_image_array(np.array([0, 255], np.int64), "x").dtype == np.uint8
    assert as_image_array(np.array([0, 300], np.int64), "x").dtype == np.float32
    assert as_image_array(np.zeros(3, np.float64), "x").dtype == np.float32


# ---------------------------------------------------------------- IDX


def test_idx_reads_gzipped_and_plain_files_with_the_official_split(mnist_dir):
    folder, parts = mnist_dir
    data = load_source(f"idx:{folder}")
    assert data.images.shape == (17, 1, 5, 4) and data.images.dtype == torch.uint8
    assert list(data.groups) == ["train", "test"]
    np.testing.assert_array_equal(data.groups["test"], np.arange(12, 17))
    np.testing.assert_array_equal(data.images[12:, 0].numpy(), parts["t10k"][0])
    np.testing.assert_array_equal(data.targets["label"][:12].numpy(), parts["train"][1])
    assert data.info["label"].classes == tuple(str(i) for i in range(10))
    assert data.meta["skipped"] == 0


def test_idx_reads_a_file_prefix_and_class_names(tmp_path):
    x, y = np.zeros((3, 2, 2), np.uint8), np.array([0, 1, 2], np.uint8)
    write_idx(tmp_path / "emnist-train-images-idx3-ubyte", x)
    write_idx(tmp_path / "emnist-train-labels-idx1-ubyte", y)
    data = load_source(f"idx:{tmp_path}/emnist-", {"classes": ["a", "b", "c"]})
    assert len(data) == 3 and list(data.groups) == ["train"] and data.info["label"].classes == ("a", "b", "c")


def test_idx_truncated_file_names_file_and_offset(mnist_dir):
    folder, _ = mnist_dir
    path = folder / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-7])  # the last image loses 7 of its 20 bytes
    with pytest.raises(UserError, match=r"t10k-images-idx3-ubyte: truncated: .* ends at byte offset 109"):
        load_source(f"idx:{folder}")
    data = load_source(f"idx:{folder}", {"skip_bad": True})
    assert len(data) == 16 and data.meta["skipped"] == 1 and len(data.groups["test"]) == 4
    assert "t10k-images-idx3-ubyte" in data.meta["skipped_files"][0]


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (0, 0x08, "byte offset 0: bytes 0800 are not an IDX magic"),
        (2, 0x42, "byte offset 2: unknown IDX data type"),
    ],
)
def test_idx_corrupt_header_names_file_and_offset(mnist_dir, offset, value, message):
    folder, _ = mnist_dir
    path = folder / "t10k-labels-idx1-ubyte"
    data = bytearray(path.read_bytes())
    data[offset] = value
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match=f"t10k-labels-idx1-ubyte {message}"):
        load_source(f"idx:{folder}")


def test_idx_corrupt_gzip_names_file(mnist_dir):
    folder, _ = mnist_dir
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(UserError, match="train-images-idx3-ubyte.gz: corrupt or truncated gzip"):
        load_source(f"idx:{folder}")


def test_idx_wrong_dimensions_and_counts(mnist_dir):
    folder, _ = mnist_dir
    write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros((5, 2), np.uint8))
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte byte offset 3: 2 dimensions, expected 1"):
        load_source(f"idx:{folder}")
    write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(UserError, match="declares 5 images but .* declares 4 labels"):
        load_source(f"idx:{folder}")


def test_idx_label_outside_declared_classes(mnist_dir):
    folder, parts = mnist_dir
    y = parts["t10k"][1].copy()
    y[3] = 12
    write_idx(folder / "t10k-labels-idx1-ubyte", y)
    with pytest.raises(
        UserError, match="t10k-labels-idx1-ubyte byte offset 11: label 12 outside the 10 declared"
    ):
        load_source(f"idx:{folder}", {"classes": 10})
    data = load_source(f"idx:{folder}", {"classes": 10, "skip_bad": True})
    assert data.meta["skipped"] == 1 and len(data) == 16 and int(data.targets["label"].max()) == 9
    np.testing.assert_array_equal(data.groups["test"], [12, 13, 14, 15])  # re-indexed past the gap
    np.testing.assert_array_equal(data.targets["label"][12:].numpy(), np.delete(y, 3))


def test_idx_missing_labels_file(mnist_dir):
    folder, _ = mnist_dir
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(UserError, match="but not .*t10k-labels-idx1-ubyte"):
        load_source(f"idx:{folder}")
