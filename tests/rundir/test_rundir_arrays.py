"""``data_card.npz`` and ``test_images.npz``: atomic writes, strict and tolerant reading."""

from __future__ import annotations

import numpy as np
import pytest

from smallvision.errors import UserError
from smallvision.rundir import (
    RunPaths,
    load_test_images,
    read_npz,
    read_run,
    save_test_images,
    write_npz,
)


def test_test_images_round_trip_and_alignment(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 1, 4, 4), dtype=np.uint8)
    index = np.array([7, 3, 9, 1, 4])
    path = RunPaths(tmp_path).test_images
    save_test_images(path, index, images)
    stored = load_test_images(path)
    np.testing.assert_array_equal(stored.images, images)
    assert stored.images.dtype == np.uint8
    assert stored.aligned(index) and not stored.aligned(index[::-1]) and not stored.aligned(index[:3])
    assert not list(tmp_path.glob("*.tmp*"))  # written through a temporary file, moved into place
    with pytest.raises(ValueError, match="5 indices for 4"):
        save_test_images(path, index, images[:4])


def test_bad_test_images_are_one_line_errors(tmp_path):
    path = tmp_path / "test_images.npz"
    np.savez(path, images=np.zeros((2, 1, 3, 3)))
    with pytest.raises(UserError, match="expected index and images"):
        load_test_images(path)
    np.savez(path, images=np.zeros((2, 3, 3)), index=np.arange(2))
    with pytest.raises(UserError, match=r"expected \(N, C, H, W\)"):
        load_test_images(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="could not be read"):
        read_npz(path)
    with pytest.raises(UserError, match="not found"):
        read_npz(tmp_path / "nope.npz")


def test_run_reads_optional_arrays_tolerantly(tmp_path):
    (tmp_path / "config.yaml").write_text("name: x\n")
    run = read_run(tmp_path)
    assert run.data_card is None and run.test_images is None
    assert not any("data_card" in p or "test_images" in p for p in run.problems)  # absent is no problem

    write_npz(RunPaths(tmp_path).data_card, {"source": np.array("builtin:digits")})
    (tmp_path / "test_images.npz").write_bytes(b"PK\x03\x04 half a zip")
    run = read_run(tmp_path)
    assert str(run.data_card["source"]) == "builtin:digits"
    assert run.test_images is None
    assert any(p.startswith("test_images.npz could not be read") for p in run.problems)
