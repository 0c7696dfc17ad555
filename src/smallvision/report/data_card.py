"""The data card: source, counts per class and split, samples, augmented samples, class mean and std
images, the pixel-variance map, the normaliser and the duplicates, all from ``data_card.npz``.

The run writes that file when its directory is created (:mod:`smallvision.data.card` makes the
arrays), so the card also shows for a run that failed in training. The test column of every count
table is checked against the labels saved in ``predictions.npz``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from smallvision.report import head_figures, image_figures
from smallvision.report.checks import Finding
from smallvision.report.tables import Block, Cell, Image, Table, format_value, kv_table
from smallvision.rundir import Run

MAX_SAMPLE_LABEL_HEADS = 3  # heads named in a sample's title
FLAT_VARIANCE = 1e-4  # a pixel whose variance over the training images is below this is nearly constant


def heads_of(card: Mapping[str, np.ndarray]) -> list[str]:
    """The classification heads the card counted, in file order."""
    return [k.split("/", 1)[1] for k in card if k.startswith("counts/")]


def section(run: Run) -> tuple[list[Block], list[Finding], str | None]:
    """(blocks, findings, note): the data card of ``run``; a note instead when there is none."""
    card = run.data_card
    if card is None:
        why = "could not be read" if run.paths.data_card.is_file() else "not found"
        return (
            [],
            [],
            f"data_card.npz {why}: this run was made before the data card existed, or is a baseline or an ensemble.",
        )
    blocks = [_source_block(card)] + [_counts_block(card, head) for head in heads_of(card)]
    blocks += [b for b in (_samples_block(card), _class_images_block(card), _pixel_block(card)) if b]
    return blocks, findings(run), None


def findings(run: Run) -> list[Finding]:
    """The data card's findings (test counts that disagree with predictions.npz), without its blocks."""
    card = run.data_card
    if card is None:
        return []
    splits = [str(s) for s in card["splits"]]
    return [
        f
        for head in heads_of(card)
        for f in _check_test_counts(run, head, splits, np.asarray(card[f"counts/{head}"], dtype=np.int64))
    ]


def _str(value: np.ndarray) -> str:
    return str(value.item() if np.ndim(value) == 0 else value)


def _source_block(card: Mapping[str, np.ndarray]) -> Block:
    block = Block("Source, splits and normalisation")
    items = {"source": _str(card["source"])} if "source" in card else {}
    if "splits" in card and "sizes" in card:
        items |= {f"{s} images": int(n) for s, n in zip(card["splits"], card["sizes"], strict=True)}
    block.tables.append(kv_table(items, "source and images per split"))
    if "norm_mean" in card:
        rows = [
            [Cell(str(c)), Cell(format_value(float(m)), cls="num"), Cell(format_value(float(s)), cls="num")]
            for c, (m, s) in enumerate(zip(card["norm_mean"], card["norm_std"], strict=True))
        ]
        scale = float(card["norm_scale"]) if "norm_scale" in card else None
        caption = f"normalisation (training split, after scaling by {format_value(scale, 6)})"
        block.tables.append(Table(["channel", "mean", "std"], rows, caption))
    if "duplicate_pairs" in card:
        pairs = [str(p) for p in card["duplicate_pairs"]]
        rows = [
            [Cell(p), Cell(format_value(int(n)), cls="num")]
            for p, n in zip(pairs, card["duplicate_counts"], strict=True)
        ]
        block.tables.append(Table(["splits", "exact duplicates"], rows, "duplicate images found"))
    else:
        block.notes.append("Duplicates were not checked (data.split.duplicates: off).")
    return block


def _counts_block(card: Mapping[str, np.ndarray], head: str) -> Block:
    counts = np.asarray(card[f"counts/{head}"], dtype=np.int64)  # (S, K)
    splits = [str(s) for s in card["splits"]]
    classes = [str(c) for c in card.get(f"classes/{head}", np.arange(counts.shape[1]))]
    rows = [
        [Cell(c)] + [Cell(format_value(int(v)), cls="num") for v in counts[:, k]]
        for k, c in enumerate(classes)
    ]
    rows.append([Cell("all")] + [Cell(format_value(int(v)), cls="num") for v in counts.sum(axis=1)])
    table = Table(["class", *splits], rows, f"images per class and split, head {head}")
    block = Block(f"Counts per class: head {head}")
    if counts.shape[1] > 20:
        block.details.append(table)
    else:
        block.tables.append(table)
    train = counts[splits.index("train")] if "train" in splits else None
    if train is not None and train.sum():
        share = train / train.sum()
        block.notes.append(
            f"training classes: largest {classes[int(share.argmax())]} {share.max():.1%}, smallest "
            f"{classes[int(share.argmin())]} {share.min():.1%} (imbalance {train.max() / max(train.min(), 1):.2f}x)"
        )
    return block


def _check_test_counts(run: Run, head: str, splits: list[str], counts: np.ndarray) -> list[Finding]:
    """A warning when the card's test counts are not those of the labels in predictions.npz."""
    y = run.predictions.head("test", head).get("y_true") if run.predictions else None
    if y is None or "test" not in splits or np.ndim(y) != 1:
        return []
    saved = np.bincount(np.asarray(y, dtype=np.int64), minlength=counts.shape[1])
    card = counts[splits.index("test")]
    if saved.shape == card.shape and np.array_equal(saved, card):
        return []
    return [
        Finding(
            "warning",
            f"{head}: data card and predictions disagree",
            f"data_card.npz counts {card.tolist()} test images per class, predictions.npz's labels "
            f"{saved.tolist()}: the two files are not from the same data.",
        )
    ]


def _sample_titles(card: Mapping[str, np.ndarray], n: int) -> list[str]:
    heads = [h for h in heads_of(card) if f"sample_label/{h}" in card][:MAX_SAMPLE_LABEL_HEADS]
    titles = []
    for i in range(n):
        parts = []
        for h in heads:
            names = card.get(f"classes/{h}")
            label = int(card[f"sample_label/{h}"][i])
            name = str(names[label]) if names is not None and label < len(names) else str(label)
            parts.append(name if len(heads) == 1 else f"{h}: {name}")
        titles.append("\n".join(parts))
    return titles


def _samples_block(card: Mapping[str, np.ndarray]) -> Block | None:
    samples = card.get("samples")
    if samples is None or not len(samples):
        return None
    block = Block("Samples")
    vrange = (0.0, 255.0) if samples.dtype == np.uint8 else None
    png = image_figures.labelled_grid(samples, _sample_titles(card, len(samples)), vrange=vrange)
    if png:
        caption = "training images drawn with the run's seed, balanced over the classes; stored pixel values"
        block.images.append(Image(f"{len(samples)} training samples", png, caption, wide=True))
    augmented = card.get("augmented")
    if augmented is None:
        block.notes.append("No augmentation configured (data.augment is empty).")
        return block
    scale = float(card["norm_scale"]) if "norm_scale" in card else 1.0
    m = augmented.shape[1]
    rows = {"original": samples[:m].astype(np.float64) * scale}
    rows |= {f"draw {r + 1}": augmented[r].astype(np.float64) for r in range(len(augmented))}
    grid = head_figures.image_grid(rows)
    if grid:
        caption = "the run's augmentation pipeline on the first samples (generator seeded with the run's seed); each column on one scale"
        block.images.append(Image("augmented samples", grid, caption, wide=True))
    return block


def _class_images_block(card: Mapping[str, np.ndarray]) -> Block | None:
    block = Block("Mean and standard deviation image per class")
    for head in heads_of(card):
        mean, std = card.get(f"class_mean/{head}"), card.get(f"class_std/{head}")
        if mean is None or not len(mean):
            continue
        names = [str(c) for c in card.get(f"classes/{head}", np.arange(len(mean)))][: len(mean)]
        for what, values in (("mean", mean), ("std", std)):
            v = values.astype(np.float64)
            png = image_figures.labelled_grid(v, names, cols=10, vrange=(0.0, max(float(v.max()), 1e-12)))
            if png:
                caption = f"training images of each class on the [0, 1] scale; one scale for all (0 to {v.max():.3f})"
                block.images.append(Image(f"head {head}: per-class {what}", png, caption))
        total = len(card.get(f"classes/{head}", mean))
        if total > len(mean):
            block.notes.append(f"head {head}: the first {len(mean)} of {total} classes.")
    return block if block.images else None


def _pixel_block(card: Mapping[str, np.ndarray]) -> Block | None:
    mean, var = card.get("pixel_mean"), card.get("pixel_var")
    if mean is None or var is None:
        return None
    c = len(mean)
    maps = {f"mean{'' if c == 1 else f' channel {i}'}": mean[i] for i in range(c)}
    maps |= {f"variance{'' if c == 1 else f' channel {i}'}": var[i] for i in range(c)}
    block = Block("Pixel statistics")
    png = image_figures.heatmaps(maps)
    if png:
        flat = int((var < FLAT_VARIANCE).sum())
        caption = (
            f"every pixel over the training images on the [0, 1] scale; variance from {float(var.min()):.3g} "
            f"to {float(var.max()):.3g}; {flat} of {var.size} pixel values vary less than {FLAT_VARIANCE:g} "
            "(nearly constant: they carry no information)"
        )
        block.images.append(Image("pixel mean and variance", png, caption, wide=True))
    return block
