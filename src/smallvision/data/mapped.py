"""Images that stay on disk: memory-mapped uint8 arrays read a batch at a time (``data.options.mmap``).

A set larger than memory cannot be one tensor in RAM, but it can be a file the kernel pages in on
demand. :class:`MappedImages` stands where an (N, C, H, W) tensor stands in an ImageSet or a split:
``len``, ``shape``, ``dtype``, and indexing with a slice or an index tensor, which gathers only
those rows into a fresh tensor. So the trainer's batch slicing (``split.images[index]``), batched
prediction (``images[start:stop]``) and the chunked statistics work on it unchanged, and taking a
split composes indices instead of copying images (:func:`take_rows`).

Pages a process has read count in its resident set (RSS) for as long as they stay mapped, which
after one epoch would be the whole file -- sooner, since the kernel maps a whole large folio of
the page cache around each row a batch touches. After every RELEASE_ROWS rows gathered (fewer for
large rows: RELEASE_BYTES), the mapping's pages are dropped from the process with
``madvise(MADV_DONTNEED)``: they stay in the kernel's page cache (a later read is a minor fault,
not disk I/O, and processes on one machine share them), but the RSS stays bounded by a few
folios per release, whatever the file's size.

The batches gathered from the mapping are fresh buffers of a few MB that live for one step. glibc
serves such a buffer from its own mmap and gives it back on free, until a freed one raises its
dynamic threshold: from then on the buffers come from the heap, which keeps what it grew to, and
the resident set climbs by hundreds of MB over a run. :func:`pin_malloc_threshold` fixes the
threshold (``mallopt(M_MMAP_THRESHOLD)``, which also turns the dynamic adjustment off) once per
process, when a mapped set is made, unless ``MALLOC_MMAP_THRESHOLD_`` is set: memory is what a
mapped set is for, and it costs speed (each batch buffer is faulted in afresh).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from smallvision.errors import UserError

# drop the mapped pages from the process's RSS after every so many rows read (or bytes, for large
# rows): the kernel maps a whole large folio of the page cache (up to 2 MB) around each row a batch
# touches, so rows scattered over the file map far more than they read (a random batch of 256
# 96x96x3 images mapped a 550 MB file whole), and dropping costs next to nothing
RELEASE_ROWS = 32
RELEASE_BYTES = 8 << 20
CHUNK_BYTES = 32 << 20  # what one pass over a whole set (statistics, fingerprint) holds at a time
_TORCH_DTYPES = {np.dtype(np.uint8): torch.uint8, np.dtype(np.float32): torch.float32}


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter (malloc.h)
MALLOC_MMAP_THRESHOLD = 1 << 20  # allocations from 1 MB up get their own mapping, returned on free
MALLOC_ENV = "MALLOC_MMAP_THRESHOLD_"  # glibc's variable: set, it is obeyed and nothing is pinned
_malloc_pinned: bool | None = None


def pin_malloc_threshold(threshold: int = MALLOC_MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes for this process (once); True when set.

    A no-op returning False elsewhere than Linux with glibc, or when the environment sets glibc's
    own ``MALLOC_MMAP_THRESHOLD_`` (the user's choice stands). Allocations from ``threshold`` up are
    then always separate mappings that free returns to the system, so a training loop's batch
    buffers do not pile up in the heap (see the module's docstring). The price is speed: each such
    buffer is mapped and faulted in afresh, every batch (docs/scale.md has the figures).
    """
    global _malloc_pinned
    if _malloc_pinned is None:
        _malloc_pinned = False
        if sys.platform.startswith("linux") and MALLOC_ENV not in os.environ:
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mallopt = libc.mallopt
            except (OSError, AttributeError):  # musl has no mallopt
                return False
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            _malloc_pinned = mallopt(M_MMAP_THRESHOLD, threshold) == 1
    return _malloc_pinned


def map_file(path: Path, dtype: np.dtype, shape: tuple[int, ...], offset: int) -> np.ndarray:
    """A read-only array over ``shape`` items of ``dtype`` at byte ``offset`` of ``path``, memory-mapped.

    Raises:
        UserError: the file cannot be read or is shorter than ``shape`` needs.
    """
    count = int(np.prod(shape))
    need = offset + count * np.dtype(dtype).itemsize
    try:
        with open(path, "rb") as f:
            size = Path(path).stat().st_size
            if size < need:
                raise UserError(f"{path}: {size} bytes, but {shape} items of {np.dtype(dtype)} need {need}")
            # the mapping outlives the file object: mmap keeps its own duplicate of the descriptor
            mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:  # ValueError: an empty file cannot be mapped
        raise UserError(f"{path}: cannot memory-map ({getattr(exc, 'strerror', None) or exc})") from None
    return np.frombuffer(mapping, dtype=dtype, count=count, offset=offset).reshape(shape)


class MappedImages:
    """(N, C, H, W) images gathered on demand from memory-mapped arrays, optionally through an index.

    Args:
        parts: (n_i, C, H, W) arrays (views of memory maps from :func:`map_file`, possibly strided,
            e.g. an NHWC file transposed) whose rows, in order, are the images; train and test
            files are two parts. Their mappings' pages are released as reads add up.
        index: which rows of the parts' concatenation this set holds, in order (None: all).
        release_rows, release_bytes: rows, or bytes for large rows, gathered between two
            releases of the mapped pages.
    """

    def __init__(
        self,
        parts: Sequence[np.ndarray],
        index: np.ndarray | None = None,
        release_rows: int = RELEASE_ROWS,
        release_bytes: int = RELEASE_BYTES,
    ) -> None:
        shapes = {p.shape[1:] for p in parts}
        if not parts or len(shapes) != 1 or parts[0].ndim != 4:
            raise ValueError(f"MappedImages needs (n, C, H, W) parts of one shape, got {sorted(shapes)}")
        if parts[0].dtype not in _TORCH_DTYPES:
            raise ValueError(f"MappedImages holds uint8 or float32 images, not {parts[0].dtype}")
        pin_malloc_threshold()
        self.parts = list(parts)
        self.mappings = [m for p in parts if (m := _mapping_of(p)) is not None]
        self.starts = np.cumsum([0] + [len(p) for p in parts])  # part k holds rows starts[k]:starts[k+1]
        self.index = None if index is None else np.asarray(index, dtype=np.int64)
        self.release_rows, self.release_bytes = release_rows, release_bytes
        self.dtype = _TORCH_DTYPES[parts[0].dtype]

    def __len__(self) -> int:
        return int(self.starts[-1]) if self.index is None else len(self.index)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self), *self.parts[0].shape[1:]))

    @property
    def ndim(self) -> int:
        return 4

    def element_size(self) -> int:
        return self.parts[0].itemsize

    def rows(self, key: slice | int | np.ndarray | torch.Tensor) -> np.ndarray:
        """Row numbers in the parts' concatenation for ``key`` (an index into this set)."""
        if isinstance(key, slice):
            key = np.arange(len(self))[key]
        key = np.asarray(key, dtype=np.int64).reshape(-1)
        if len(key) and (key.min() < -len(self) or key.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} images")
        key = np.where(key < 0, key + len(self), key)
        return key if self.index is None else self.index[key]

    def __getitem__(self, key: slice | int | np.ndarray | torch.Tensor) -> torch.Tensor:
        """The images at ``key`` as a fresh (B, C, H, W) tensor (an int gives one (C, H, W) image)."""
        rows = self.rows(key)
        out = np.empty((len(rows), *self.parts[0].shape[1:]), dtype=self.parts[0].dtype)
        row_bytes = out[0].nbytes if len(out) else 1
        step = max(1, min(self.release_rows, self.release_bytes // row_bytes))
        for start in range(0, len(rows), step):
            piece = rows[start : start + step]
            part_of = np.searchsorted(self.starts, piece, side="right") - 1
            for k in np.unique(part_of):
                here = part_of == k
                out[start : start + step][here] = self.parts[k][piece[here] - self.starts[k]]
            self.release()
        x = torch.from_numpy(out)
        return x[0] if isinstance(key, (int, np.integer)) else x

    def release(self) -> None:
        """Drop the pages read so far from this process's resident set (they stay in the page cache)."""
        advice = getattr(mmap, "MADV_DONTNEED", None)  # Linux and the BSDs; elsewhere RSS just grows
        if advice is not None:
            for m in self.mappings:
                m.madvise(advice)

    def take(self, index: np.ndarray | torch.Tensor) -> MappedImages:
        """The images at ``index`` as another MappedImages over the same mappings (no image is read)."""
        return MappedImages(self.parts, self.rows(index), self.release_rows, self.release_bytes)

    def load(self) -> torch.Tensor:
        """Every image in memory as one tensor (what ``mmap: false`` would have given)."""
        return self[:]

    def __repr__(self) -> str:
        return f"MappedImages({tuple(self.shape)}, {self.dtype}, {len(self.parts)} file(s))"


def chunk_rows(images: torch.Tensor | MappedImages, bytes_per_value: int | None = None) -> int:
    """Rows per chunk so that a chunk of ``images`` takes about CHUNK_BYTES, at least one row.

    Args:
        images: (N, C, H, W), in memory or mapped.
        bytes_per_value: the size of a value in the chunk as processed (8 when it is made float64);
            default the stored size.
    """
    values = int(np.prod(images.shape[1:])) or 1
    return max(1, CHUNK_BYTES // (values * (bytes_per_value or images.element_size())))


def _mapping_of(arr: np.ndarray) -> mmap.mmap | None:
    """The memory map under a view (its ``base`` chain), or None for an array in memory."""
    base = arr
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):  # np.frombuffer keeps a memoryview of the mapping
        base = base.obj
    return base if isinstance(base, mmap.mmap) else None


def take_rows(
    images: torch.Tensor | MappedImages, index: np.ndarray | torch.Tensor
) -> torch.Tensor | MappedImages:
    """``images[index]``: a tensor copy for images in memory, an index (no copy) for mapped ones."""
    if isinstance(images, MappedImages):
        return images.take(index)
    return images[torch.as_tensor(np.asarray(index), dtype=torch.long)]


def in_memory(images: torch.Tensor | MappedImages) -> torch.Tensor:
    """``images`` as one tensor in memory: mapped images are read (for code that concatenates sets)."""
    return images.load() if isinstance(images, MappedImages) else images


def npy_header(path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """(dtype, shape, data offset) of a ``.npy`` file, read from its header alone.

    Raises:
        UserError: not a ``.npy`` file, or a Fortran-ordered array (whose rows are not contiguous).
    """
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read(f)
            offset = f.tell()
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a readable .npy file ({exc})") from None
    if fortran:
        raise UserError(
            f"{path}: a Fortran-ordered array cannot be memory-mapped by rows; save it in C order"
        )
    return np.dtype(dtype), tuple(shape), offset
