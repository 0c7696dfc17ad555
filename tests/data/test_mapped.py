"""Memory-mapped images (``data.options.mmap``): the same data and the same run as loaded images."""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import smallvision
from smallvision.data.load import load_source
from smallvision.data.mapped import MappedImages, map_file, take_rows
from smallvision.data.normalize import fit_normalizer
from smallvision.errors import UserError


def write_idx(path, arr: np.ndarray) -> None:
    path.write_bytes(bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes())


@pytest.fixture
def idx_dir(tmp_path):
    rng = np.random.default_rng(0)
    for part, n in (("train", 50), ("t10k", 20)):
        write_idx(tmp_path / f"{part}-images-idx3-ubyte", rng.integers(0, 256, (n, 6, 5), dtype=np.uint8))
        write_idx(tmp_path / f"{part}-labels-idx1-ubyte", rng.integers(0, 4, n, dtype=np.uint8))
    return tmp_path


def test_mapped_idx_holds_the_loaded_images_and_split(idx_dir):
    loaded = load_source(f"idx:{idx_dir}")
    mapped = load_source(f"idx:{idx_dir}", {"mmap": True})
    assert isinstance(mapped.images, MappedImages) and len(mapped.images.parts) == 2  # train, t10k
    assert mapped.images.shape == loaded.images.shape and mapped.images.dtype == torch.uint8
    assert torch.equal(mapped.images[:], loaded.images)
    assert torch.equal(mapped.targets["label"], loaded.targets["label"])
    assert {g: list(i) for g, i in mapped.groups.items()} == {g: list(i) for g, i in loaded.groups.items()}
    assert mapped.fingerprint() == loaded.fingerprint()  # chunked digest == whole digest


def test_gathering_rows_across_files_and_through_an_index(idx_dir):
    loaded = load_source(f"idx:{idx_dir}").images
    mapped = load_source(f"idx:{idx_dir}", {"mmap": True}).images
    index = torch.tensor([69, 0, 49, 50, 3, 3, -1])  # both files, repeats, a negative index
    assert torch.equal(mapped[index], loaded[index])
    assert torch.equal(mapped[5], loaded[5]) and torch.equal(mapped[10:60:7], loaded[10:60:7])
    sub = take_rows(mapped, np.array([60, 2, 55]))  # a split: an index, not a copy
    assert isinstance(sub, MappedImages) and len(sub) == 3
    assert torch.equal(sub[torch.tensor([2, 0])], loaded[[55, 60]])
    with pytest.raises(IndexError):
        mapped[torch.tensor([70])]


def test_mapped_batches_are_writable_fresh_tensors(idx_dir):
    mapped = load_source(f"idx:{idx_dir}", {"mmap": True}).images
    batch = mapped[torch.arange(4)]
    batch += 1  # the file's pages are read-only; a batch is the trainer's own copy
    assert not torch.equal(batch, mapped[torch.arange(4)])


def test_statistics_in_chunks_equal_the_loaded_ones(idx_dir):
    loaded = load_source(f"idx:{idx_dir}").images
    mapped = load_source(f"idx:{idx_dir}", {"mmap": True}).images
    assert fit_normalizer(mapped, "standardize") == fit_normalizer(loaded, "standardize")


def test_pages_are_released_every_few_rows_and_drop_from_the_resident_set(tmp_path, monkeypatch):
    arr = np.arange(64 * 3 * 8 * 8, dtype=np.uint8).reshape(64, 3, 8, 8)
    (tmp_path / "x.bin").write_bytes(arr.tobytes())
    images = MappedImages([map_file(tmp_path / "x.bin", np.uint8, arr.shape, 0)], release_rows=10)
    released = []
    monkeypatch.setattr(MappedImages, "release", lambda self: released.append(len(self)))
    assert torch.equal(images[torch.arange(25)], torch.from_numpy(arr[:25]))  # pieces of 10, 10, 5
    assert released == [64, 64, 64]
    assert len(images.take(np.arange(30))[torch.arange(30)]) == 30 and len(released) == 6
    monkeypatch.undo()
    if Path("/proc/self/smaps").is_file():  # Linux: the mapping's resident pages are gone
        images[torch.arange(64)]
        assert _mapped_kb(tmp_path / "x.bin") == 0


def _mapped_kb(path) -> int:
    """Resident kB of the mappings of ``path`` in this process (from /proc/self/smaps)."""
    total, current = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if "-" in line.split(" ", 1)[0] and not line.startswith(("Rss", "Pss")):
            current = line.rstrip().endswith(str(path))
        elif current and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


def test_npy_with_mmap_including_channels_last_and_splits(tmp_path):
    rng = np.random.default_rng(1)
    np.save(tmp_path / "x_train.npy", rng.integers(0, 256, (30, 7, 6, 3), dtype=np.uint8))  # NHWC
    np.save(tmp_path / "x_test.npy", rng.integers(0, 256, (10, 7, 6, 3), dtype=np.uint8))
    np.save(tmp_path / "y_train.npy", rng.integers(0, 3, 30))
    np.save(tmp_path / "y_test.npy", rng.integers(0, 3, 10))
    loaded = load_source(f"npy:{tmp_path}")
    mapped = load_source(f"npy:{tmp_path}", {"mmap": True})
    assert isinstance(mapped.images, MappedImages) and mapped.images.shape == (40, 3, 7, 6)
    assert torch.equal(mapped.images[:], loaded.images)
    assert torch.equal(mapped.targets["label"], loaded.targets["label"])
    assert set(mapped.groups) == {"train", "test"}


def test_mmap_refusals_name_the_file_and_the_fix(idx_dir, tmp_path):
    gz = tmp_path / "gz"
    gz.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (gz / f"{name}.gz").write_bytes(gzip.compress((idx_dir / name).read_bytes()))
    with pytest.raises(UserError, match="gzipped files cannot be memory-mapped.*gunzip"):
        load_source(f"idx:{gz}", {"mmap": True})
    np.save(tmp_path / "x.npy", np.zeros((4, 5, 5), dtype=np.int64))
    with pytest.raises(UserError, match=r"x.npy: option mmap reads uint8 or float32.*int64"):
        load_source(f"npy:{tmp_path / 'x.npy'}", {"mmap": True})
    np.save(tmp_path / "f.npy", np.asfortranarray(np.zeros((4, 5, 5), dtype=np.uint8)))
    with pytest.raises(UserError, match="Fortran-ordered"):
        load_source(f"npy:{tmp_path / 'f.npy'}", {"mmap": True})
    with pytest.raises(UserError, match="option mmap: expected true or false, got 'yes'"):
        load_source(f"idx:{idx_dir}", {"mmap": "yes"})


def test_mmap_with_a_resize_is_refused(idx_dir, tiny_config):
    cfg = {**tiny_config, "data": {"source": f"idx:{idx_dir}", "options": {"mmap": True}, "size": [8, 8]}}
    with pytest.raises(
        UserError, match=r"data.size \[8, 8\]: option mmap reads the images as stored \(6x5\)"
    ):
        smallvision.run(cfg)


def test_a_mapped_run_gives_the_metrics_of_a_loaded_run(tmp_path, tiny_config):
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 240)
    images = rng.integers(0, 60, (240, 8, 8), dtype=np.uint8)
    images[np.arange(240), labels * 2, :] = 255  # a learnable stripe per class
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "labels.npy", labels)
    metrics = {}
    for mmap in (False, True):
        cfg = {**tiny_config, "data": {**tiny_config["data"], "source": f"npy:{tmp_path / 'images.npy'}"}}
        cfg["data"]["options"] = {"mmap": mmap}
        result = smallvision.run(cfg)
        metrics[mmap] = {s: result.metrics.splits[s] for s in ("val", "test")}
    assert metrics[True] == metrics[False]
    assert metrics[True]["test"]["label"]["accuracy"] > 0.6  # it learned: the comparison means something


def test_a_mapped_source_inside_multi_is_read_into_the_concatenation(idx_dir):
    domains = {"A": {"source": f"idx:{idx_dir}", "options": {"mmap": True}}, "B": f"idx:{idx_dir}"}
    data = load_source("multi:", {"domains": domains}, seed=0)
    loaded = load_source(f"idx:{idx_dir}").images
    assert isinstance(data.images, torch.Tensor) and len(data) == 2 * len(loaded)
    assert torch.equal(data.images[torch.as_tensor(data.groups["A"])], loaded)


GROWTH = """
import os, sys
import numpy as np
from smallvision.data.mapped import pin_malloc_threshold

def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

pinned = pin_malloc_threshold() if sys.argv[1] == "pin" else None
big = np.ones(16 << 20, np.uint8)
del big  # a freed 16 MB mapping raises glibc's dynamic mmap threshold past the batches below
before = rss_mb()
held, kept = [], []
for _ in range(16):  # a step's 4 MB batch buffers, with smaller long-lived blocks between them
    held.append(np.ones(4 << 20, np.uint8))
    kept.append(np.ones(64 << 10, np.uint8))
del held
print(pinned, rss_mb() - before)
"""


@pytest.mark.skipif(not Path("/proc/self/statm").is_file(), reason="reads the resident set from /proc")
def test_pinned_malloc_threshold_returns_freed_batch_buffers_to_the_system():
    def growth(mode, **env):
        env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"} | env
        out = subprocess.run(
            [sys.executable, "-c", GROWTH, mode], capture_output=True, text=True, check=True, env=env
        )
        pinned, mb = out.stdout.split()
        return pinned, float(mb)

    pinned, with_pin = growth("pin")
    if pinned != "True":
        pytest.skip("not glibc: no mallopt to pin")
    _, without = growth("none")
    assert with_pin < 8 and without > 48  # 64 MB of freed buffers: given back, or kept in the heap
    assert growth("pin", MALLOC_MMAP_THRESHOLD_="67108864")[0] == "False"  # the user's setting stands
