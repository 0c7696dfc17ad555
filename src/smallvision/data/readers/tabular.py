"""The reader of tables of pixels: ``csv:`` (the FER2013 layout and "label + one column per pixel"),
and the CSV helpers ``labeled:`` (an image folder with a labels CSV) shares.

Errors name the file and its line number (the header is line 1).
"""

from __future__ import annotations

import csv
import math
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from smallvision.data.dataset import ImageSet, TargetInfo
from smallvision.data.readers.common import BadItems, as_image_array, image_set, to_nchw
from smallvision.errors import UserError
from smallvision.registry import SOURCES

FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


def read_lines(path: Path) -> list[str]:
    """The file's lines (a UserError naming it when it is missing or not text)."""
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a readable text CSV ({exc})") from None


def _numbers(cell: str, sep: str) -> np.ndarray | None:
    """The numbers of one cell (whole numbers as int32, else float64), None if one is not a number."""
    for dtype in (np.int32, np.float64):  # int32 first: parsing whole numbers is ~2x faster
        try:
            return np.fromstring(cell, dtype=dtype, sep=sep)
        except (ValueError, DeprecationWarning):
            continue
    return None


def parse_cells(cells: list[str], sep: str) -> list[np.ndarray | None]:
    """The numbers of each cell (None for a cell holding a non-number).

    One C-level ``np.fromstring`` per row: 10,000 FER rows (23M values) parse in about a second.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns, not raises, when it stops at a non-number
        return [_numbers(cell, sep) for cell in cells]


def pixel_rows(
    cells: list[str],
    sep: str,
    expected: int | None,
    where: str,
    lines: list[int],
    bad: BadItems,
    dropped: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(N, P) pixel values from one string per row, and the mask of rows kept.

    ``expected`` pixels per row; None takes the most common count. Rows in ``dropped`` were
    reported already and are not reported again.
    """
    parsed = parse_cells(cells, sep)
    counts = np.array([-1 if v is None else len(v) for v in parsed], dtype=np.int64)
    if expected is None:
        expected = Counter(counts[counts > 0].tolist()).most_common(1)[0][0] if (counts > 0).any() else 0
    keep = counts == expected
    for i in np.flatnonzero(~keep & ~_mask(dropped, len(cells))):
        found = "a value that is not a number" if counts[i] < 0 else f"{counts[i]} pixel values"
        bad.add(f"{where} line {lines[i]}", f"{found}, expected {expected}")
    kept = [parsed[i] for i in np.flatnonzero(keep)]
    full = np.zeros((len(cells), expected), dtype=np.result_type(np.int32, *{v.dtype for v in kept}))
    if kept:
        full[keep] = np.stack(kept)
    return full, keep


def image_shape(pixels: int, shape: object, where: str) -> tuple[int, ...]:
    """(H, W), (H, W, C) or (C, H, W) of a row of ``pixels`` values: the option, or a square."""
    if shape is not None:
        if not isinstance(shape, (list, tuple)) or len(shape) not in (2, 3) or math.prod(shape) != pixels:
            raise UserError(f"option shape: {shape!r} does not hold the {pixels} pixel values of {where}")
        return tuple(int(s) for s in shape)
    for channels in (1, 3):
        side = math.isqrt(pixels // channels)
        if side * side * channels == pixels:
            return (side, side) if channels == 1 else (side, side, 3)
    raise UserError(f"{where}: {pixels} pixels per row is not a square image; set option shape: [H, W]")


def _mask(dropped: np.ndarray | None, n: int) -> np.ndarray:
    return np.zeros(n, dtype=bool) if dropped is None else dropped


def column_target(
    cells: list[str],
    name: str,
    kind: str | None,
    classes,
    where: str,
    lines: list[int],
    bad: BadItems,
    dropped: np.ndarray | None = None,
) -> tuple[np.ndarray, TargetInfo, np.ndarray]:
    """One CSV column as a target: declared ``kind``, or inferred (text or whole numbers ->
    classes; other numbers -> regression). Returns (values, info, mask of rows kept).

    Rows in ``dropped`` were reported already: they are neither reported nor used to infer.
    """
    dropped = _mask(dropped, len(cells))
    full = len(cells)
    rows = np.flatnonzero(~dropped)
    cells, lines = [cells[i] for i in rows], [lines[i] for i in rows]
    if kind not in (None, "classification", "regression"):
        raise UserError(f"option kinds.{name}: expected classification or regression, got {kind!r}")
    if isinstance(classes, int) and not isinstance(classes, bool):
        classes = [str(i) for i in range(classes)]
    cells = [c.strip() for c in cells]
    numbers = np.full(len(cells), np.nan)
    for i, c in enumerate(cells):
        try:
            numbers[i] = float(c)
        except ValueError:
            pass
    numeric = np.isfinite(numbers)
    if kind is None:
        whole = numeric & (numbers == np.round(numbers))
        kind = "classification" if classes is not None or not numeric.all() or whole.all() else "regression"
    if kind == "regression":
        for i in np.flatnonzero(~numeric):
            bad.add(f"{where} line {lines[i]}", f"column {name!r}: {cells[i]!r} is not a number")
        values = np.where(numeric, numbers, 0).astype(np.float32)
        return _spread(values, rows, full), TargetInfo("regression"), _spread(numeric, rows, full)
    keep = np.ones(len(cells), dtype=bool)
    names = [str(c) for c in classes] if classes is not None else _class_names(cells, numbers)
    labels, keep = _label_indices(cells, numbers, names)
    for i in np.flatnonzero(~keep):
        bad.add(
            f"{where} line {lines[i]}",
            f"column {name!r}: {cells[i]!r} is not one of the classes {names[:10]}",
        )
    info = TargetInfo("classification", tuple(str(c) for c in names))
    return _spread(labels, rows, full), info, _spread(keep, rows, full)


def _label_indices(cells: list[str], numbers: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Label index per cell, and which cells are valid.

    A column holds either class names or label indices 0..K-1. Which one: names when the names
    themselves are numbers ("1", "2" mean themselves), else whichever more cells match.
    """
    index = {c: i for i, c in enumerate(names)}
    by_name = np.array([index.get(c, -1) for c in cells], dtype=np.int64)
    whole = np.isfinite(numbers) & (numbers == np.round(numbers)) & (numbers >= 0) & (numbers < len(names))
    by_index = np.where(whole, np.nan_to_num(numbers), -1).astype(np.int64)
    names_are_numbers = all(not _not_number(c) for c in names)
    use_names = names_are_numbers or (by_name >= 0).sum() >= whole.sum()
    labels = by_name if use_names else by_index
    return np.maximum(labels, 0), labels >= 0


def _spread(values: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """``values`` of ``rows`` placed back among ``n`` rows (the others zero / False)."""
    out = np.zeros(n, dtype=values.dtype)
    out[rows] = values
    return out


def _class_names(cells: list[str], numbers: np.ndarray) -> list[str]:
    """0..max for whole numbers (so label i keeps index i), else the sorted distinct texts."""
    ok = np.isfinite(numbers)
    if ok.all() and (numbers >= 0).all() and (numbers == np.round(numbers)).all():
        return [str(i) for i in range(int(numbers.max()) + 1 if len(numbers) else 1)]
    return sorted({c for c in cells if c})


def _split_label(lines: list[str], column: int, ncols: int) -> tuple[list[str], list[str]]:
    """(label cells, the rest of each line) for a "label + pixel columns" CSV."""
    if column == 0:
        parts = [line.partition(",") for line in lines]
        return [p[0] for p in parts], [p[2] for p in parts]
    if column == ncols - 1:
        parts = [line.rpartition(",") for line in lines]
        return [p[2] for p in parts], [p[0] for p in parts]
    cells = [line.split(",") for line in lines]
    labels = [c[column] if len(c) > column else "" for c in cells]
    return labels, [",".join(c[:column] + c[column + 1 :]) for c in cells]


@SOURCES.register("csv")
def read_csv(
    location: str,
    *,
    layout: str = "auto",
    label_column: str | None = "auto",
    pixels_column: str = "pixels",
    split_column: str = "Usage",
    shape: list[int] | None = None,
    classes: list[str] | int | None = None,
    skip_bad: bool = False,
) -> ImageSet:
    """Images stored as rows of pixel values.

    Two layouts ("auto" picks "fer" when the header has ``pixels_column``):

    - "fer" (FER2013): ``emotion,pixels,Usage``; pixels space-separated; Usage Training /
      PublicTest / PrivateTest become groups train / val / test; classes default to the
      seven FER emotions when the label column is ``emotion``.
    - "columns": a label column plus one column per pixel (Kaggle MNIST ``train.csv``).

    Args:
        location: the CSV file.
        layout: "auto", "fer" or "columns".
        label_column: the label's column; "auto" = emotion / label / the first column;
            None for unlabeled rows (Kaggle ``test.csv``).
        pixels_column, split_column: the FER layout's column names.
        shape: [H, W], [H, W, C] or [C, H, W] of a row; default a square (gray, else RGB).
        classes: class names (or their number) in label order.
        skip_bad: skip rows with a wrong pixel count, a non-number, or an unknown label.
    """
    path, bad = Path(location), BadItems(skip_bad)
    lines = read_lines(path)
    if not lines:
        raise UserError(f"{path}: empty file")
    header = next(csv.reader([lines[0]]))
    if layout == "auto":
        layout = "fer" if pixels_column in header else "columns"
    if layout == "fer":
        return _read_fer(path, lines, header, label_column, pixels_column, split_column, shape, classes, bad)
    if layout != "columns":
        raise UserError(f"option layout: expected auto, fer or columns, got {layout!r}")
    return _read_columns(path, lines, header, label_column, shape, classes, bad)


def _body(lines: list[str], first: int) -> tuple[list[str], list[int]]:
    """The non-blank lines from index ``first`` and their 1-based line numbers."""
    numbered = [(line, i + 1) for i, line in enumerate(lines[first:], start=first) if line.strip()]
    return [n[0] for n in numbered], [n[1] for n in numbered]


def _read_fer(
    path, lines, header, label_column, pixels_column, split_column, shape, classes, bad
) -> ImageSet:
    if pixels_column not in header:
        raise UserError(f"{path} line 1: no column {pixels_column!r} in header {header}")
    if label_column == "auto":
        label_column = "emotion" if "emotion" in header else header[0]
    if label_column is not None and label_column not in header:
        raise UserError(f"{path} line 1: no label column {label_column!r} in header {header}")
    if classes is None and label_column == "emotion":
        classes = list(FER_CLASSES)
    body, numbers = _body(lines, 1)
    rows = [r if len(r) == len(header) else None for r in csv.reader(body)]
    keep = np.array([r is not None for r in rows], dtype=bool)
    for i in np.flatnonzero(~keep):
        bad.add(f"{path} line {numbers[i]}", f"expected {len(header)} cells ({','.join(header)})")
    columns = {h: [r[j] if r else "" for r in rows] for j, h in enumerate(header)}
    expected = math.prod(shape) if isinstance(shape, (list, tuple)) else None
    pixels, ok = pixel_rows(columns[pixels_column], " ", expected, str(path), numbers, bad, ~keep)
    keep &= ok
    targets, info = {}, {}
    if label_column is not None:
        cells = columns[label_column]
        y, info["label"], ok = column_target(
            cells, label_column, "classification", classes, str(path), numbers, bad, ~keep
        )
        targets["label"], keep = y, keep & ok
    groups = {}
    if split_column in columns:
        usage = np.array([FER_SPLITS.get(u, u.lower()) for u in columns[split_column]])
        groups = {g: np.flatnonzero(usage == g) for g in dict.fromkeys(usage[keep].tolist())}
    return _pixel_set(pixels, shape, path, targets, info, groups, keep, bad)


def _read_columns(path, lines, header, label_column, shape, classes, bad) -> ImageSet:
    has_header = any(_not_number(h) for h in header)
    names = header if has_header else [str(j) for j in range(len(header))]
    if label_column == "auto":
        label_column = "label" if "label" in names else names[0]
    if label_column is not None and label_column not in names:
        raise UserError(f"{path} line 1: no label column {label_column!r} in header {names[:5]}...")
    body, numbers = _body(lines, 1 if has_header else 0)
    targets, info, keep = {}, {}, np.ones(len(body), dtype=bool)
    if label_column is not None:
        labels, body = _split_label(body, names.index(label_column), len(names))
        y, info["label"], keep = column_target(
            labels, label_column, "classification", classes, str(path), numbers, bad
        )
        targets["label"] = y
    width = len(names) - (label_column is not None)
    pixels, ok = pixel_rows(body, ",", width, str(path), numbers, bad, ~keep)
    return _pixel_set(pixels, shape, path, targets, info, {}, keep & ok, bad)


def _pixel_set(pixels, shape, path, targets, info, groups, keep, bad) -> ImageSet:
    dims = image_shape(pixels.shape[1], shape, str(path))
    images = as_image_array(pixels, str(path))
    images = images.reshape(len(images), *dims)  # (N, H, W[, C]) or (N, C, H, W)
    return image_set(to_nchw(images, str(path)), targets, info, f"csv:{path}", bad, groups, keep)


def _not_number(text: str) -> bool:
    try:
        float(text)
        return False
    except ValueError:
        return True
