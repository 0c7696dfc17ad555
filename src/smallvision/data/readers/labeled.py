"""``labeled:`` an image folder plus a labels CSV (``file,A,B,C``): several targets per image.

This is study 000's layout (one image, three heads). Each column other than the file column is
a target; its kind is declared (``kinds: {C: regression}``) or inferred: text or whole numbers
are classes, any other number is regression.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from smallvision.data.dataset import ImageSet
from smallvision.data.readers.common import BadItems, check_choice, image_set, parse_size
from smallvision.data.readers.decode import IMAGE_SUFFIXES, decode_all, decode_image, stack_images
from smallvision.data.readers.tabular import column_target, read_lines
from smallvision.errors import UserError
from smallvision.registry import SOURCES


def _labels_path(folder: Path, labels: str) -> Path:
    """The labels CSV: absolute, or inside the image folder, or beside it."""
    given = Path(labels)
    candidates = [given] if given.is_absolute() else [folder / given, folder.parent / given]
    for path in candidates:
        if path.is_file():
            return path
    raise UserError(f"labeled:{folder}: no labels file; looked for {' and '.join(map(str, candidates))}")


def _table(path: Path, file_column: str) -> tuple[list[str], list[list[str]], list[int]]:
    """(header, rows, 1-based line numbers) of the labels CSV."""
    lines = read_lines(path)
    numbered = [(line, i + 1) for i, line in enumerate(lines) if line.strip()]
    if not numbered:
        raise UserError(f"{path}: empty labels file")
    rows = list(csv.reader([line for line, _ in numbered]))
    header = [h.strip() for h in rows[0]]
    if file_column not in header:
        raise UserError(f"{path} line {numbered[0][1]}: no column {file_column!r} in header {header}")
    return header, rows[1:], [n for _, n in numbered[1:]]


def _cells(
    path: Path, header: list[str], rows: list[list[str]], lines: list[int], file_column: str, bad: BadItems
) -> tuple[dict[str, list[str]], np.ndarray]:
    """Column -> its cells, and the rows that have every cell and a file name."""
    keep = np.array([len(r) == len(header) for r in rows], dtype=bool)
    for i in np.flatnonzero(~keep):
        bad.add(
            f"{path} line {lines[i]}", f"{len(rows[i])} cells, expected {len(header)} ({','.join(header)})"
        )
    cells = {
        h: [r[j].strip() if ok else "" for r, ok in zip(rows, keep, strict=True)]
        for j, h in enumerate(header)
    }
    for i in np.flatnonzero(keep & ~np.array([bool(f) for f in cells[file_column]], dtype=bool)):
        bad.add(f"{path} line {lines[i]}", f"empty {file_column!r} cell")
        keep[i] = False
    return cells, keep


@SOURCES.register("labeled")
def read_labeled(
    location: str,
    *,
    labels: str = "labels.csv",
    file_column: str = "file",
    targets: list[str] | None = None,
    kinds: dict[str, str] | None = None,
    classes: dict[str, list[str] | int] | None = None,
    size: int | list[int] | None = None,
    mode: str = "auto",
    fit: str = "stretch",
    skip_bad: bool = False,
    workers: int | None = None,
) -> ImageSet:
    """Images listed in a labels CSV, one target per column.

    Args:
        location: the image folder; the CSV's file names are relative to it.
        labels: the CSV, looked for inside ``location`` and then beside it.
        file_column: the column of file names.
        targets: the columns to read (default every other column).
        kinds: column -> "classification" / "regression"; default inferred (text or whole
            numbers -> classes, other numbers -> regression).
        classes: column -> class names (or their number); values outside are errors.
        size, mode, fit, workers: as for ``folder:``.
        skip_bad: skip rows with a missing cell, a bad value or an unreadable image.

    Images in the folder that the CSV does not list are counted in ``meta["unlisted"]``.
    """
    folder, bad = Path(location), BadItems(skip_bad)
    size = parse_size(size)
    check_choice(mode, "mode", ("auto", "L", "RGB"))
    check_choice(fit, "fit", ("stretch", "crop"))
    if not folder.is_dir():
        raise UserError(f"labeled:{location}: no such folder")
    path = _labels_path(folder, labels)
    header, rows, lines = _table(path, file_column)
    columns = [h for h in header if h != file_column] if targets is None else list(targets)
    for name in columns:
        if name not in header or name == file_column:
            raise UserError(f"option targets: {path} has no column {name!r}; columns are {header}")
    cells, keep = _cells(path, header, rows, lines, file_column, bad)
    values, info = {}, {}
    for name in columns:
        kind, names = (kinds or {}).get(name), (classes or {}).get(name)
        values[name], info[name], ok = column_target(
            cells[name], name, kind, names, str(path), lines, bad, ~keep
        )
        keep &= ok
    paths = [folder / f for f in cells[file_column]]
    wanted = np.flatnonzero(keep)
    decoded = decode_all([paths[i] for i in wanted], lambda p: decode_image(p, size, mode, fit), workers)
    located = [f"{paths[i]} ({path.name} line {lines[i]})" for i in wanted]
    images, ok = stack_images(decoded, located, bad, {"L": 1, "RGB": 3}.get(mode))
    keep[wanted[~ok]] = False
    full = np.zeros((len(rows), *images.shape[1:]), dtype=images.dtype)
    full[keep] = images
    listed = {p.resolve() for p in paths}
    unlisted = sum(p.suffix.lower() in IMAGE_SUFFIXES and p.resolve() not in listed for p in folder.iterdir())
    meta = {"unlisted": unlisted}
    return image_set(full, values, info, f"labeled:{location}", bad, keep=keep, meta=meta)
