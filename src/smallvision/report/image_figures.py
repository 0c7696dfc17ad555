"""Figures of images as PNG bytes: panel grids, heat maps, radial profiles, feature strips.

Used by the data card, the worst mistakes and the looking-inside sections. Like
:mod:`smallvision.report.figures` they draw on the Agg canvas, never through pyplot, and keep the
PNGs small (a few images, the report's DPI).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from smallvision.report.figures import _as_images, _figure, _png, _style

MIN_TILE_PIXELS = 48  # narrower tiles are enlarged by a whole factor before the mosaic is drawn


def _scaled(img: np.ndarray, vrange: tuple[float, float] | None) -> np.ndarray:
    """``img`` mapped to [0, 1]: by ``vrange`` when given, else by its own range."""
    img = np.asarray(img, dtype=np.float64)
    lo, hi = vrange if vrange is not None else (float(np.nanmin(img)), float(np.nanmax(img)))
    return np.clip((img - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(img)


def rgb(img: np.ndarray, vrange: tuple[float, float] | None = None, cmap: str = "gray") -> np.ndarray:
    """An (H, W) or (H, W, 3) image as (H, W, 3) colours in [0, 1] (``cmap`` for one channel)."""
    scaled = np.nan_to_num(_scaled(img, vrange))
    if scaled.ndim == 3:
        return scaled
    import matplotlib

    return matplotlib.colormaps[cmap](scaled)[..., :3]


def mosaic(
    tiles: Sequence[Sequence[np.ndarray]],
    titles: Sequence[Sequence[str]] | None = None,
    row_labels: Sequence[str] | None = None,
    col_titles: Sequence[str] | None = None,
    cell_inches: float = 1.15,
) -> bytes | None:
    """Rows of (h, w, 3) colour tiles drawn as one image with text around it.

    One ``imshow`` and a text per label, instead of one matplotlib axes per tile, whose creation and
    layout dominate the drawing time of a large grid (the report's build time).

    Args:
        tiles: rows of tiles (colours in [0, 1], see :func:`rgb`); rows may be shorter.
        titles: a (multi-line) title above each tile, in the same nesting.
        row_labels: a label left of each row.
        col_titles: a title above each column of the first row.
        cell_inches: the width of one tile on the page.
    """
    rows = [list(r) for r in tiles if len(r)]
    if not rows:
        return None
    # small tiles are enlarged (nearest: the picture is the same) so that margins have room
    factor = -(-MIN_TILE_PIXELS // max(t.shape[1] for r in rows for t in r))
    if factor > 1:
        rows = [[t.repeat(factor, axis=0).repeat(factor, axis=1) for t in r] for r in rows]
    h = max(t.shape[0] for r in rows for t in r)
    w = max(t.shape[1] for r in rows for t in r)
    cols = max(len(r) for r in rows)
    pad = max(1, round(w * 0.08))
    unit = cell_inches / (w + pad)  # inches per mosaic pixel
    line = 8.2 / 72 / unit  # one 6-point text line, in mosaic pixels
    lines = [max((str(t).count("\n") + 1 for t in r), default=0) for r in (titles or [])]
    head = [
        (lines[i] if i < len(lines) else 0) + (1 if i == 0 and col_titles else 0) for i in range(len(rows))
    ]
    # a 7-point label is about 0.06 inch a character
    left = round((0.15 + 0.06 * max(len(str(t)) for t in row_labels)) / unit) if row_labels else 0
    heights = [round(n * line) + pad + h for n in head]
    canvas = np.ones((sum(heights) + pad, left + cols * (w + pad) + pad, 3))
    with _style():
        fig = _figure(canvas.shape[1] * unit, canvas.shape[0] * unit, layout=None)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        y = 0
        for i, row in enumerate(rows):
            top = y + heights[i] - h
            for j, tile in enumerate(row):
                x = left + pad + j * (w + pad)
                canvas[top : top + tile.shape[0], x : x + tile.shape[1]] = tile
                text = []
                if i == 0 and col_titles and j < len(col_titles):
                    text.append(str(col_titles[j]))
                if titles and i < len(titles) and j < len(titles[i]):
                    text.append(str(titles[i][j]))
                if text:
                    ax.text(x + w / 2, top - pad / 3, "\n".join(text), ha="center", va="bottom", fontsize=6)
            if row_labels and i < len(row_labels):
                ax.text(left - pad, top + h / 2, str(row_labels[i]), ha="right", va="center", fontsize=7)
            y += heights[i]
        ax.imshow(canvas, interpolation="nearest", extent=(0, canvas.shape[1], canvas.shape[0], 0))
        ax.set_xlim(0, canvas.shape[1])
        ax.set_ylim(canvas.shape[0], 0)
        return _png(fig)


def labelled_grid(
    images: np.ndarray,
    labels: Sequence[str],
    cols: int = 8,
    vrange: tuple[float, float] | None = None,
) -> bytes | None:
    """A grid of images ((N, C, H, W), C in 1 or 3, or (N, H, W)), each titled with its own label.

    Args:
        images: the images.
        labels: one (possibly multi-line) title per image.
        cols: images per row.
        vrange: one intensity scale for every image (``(0, 255)`` for stored uint8); default each
            image on its own range.

    Returns:
        PNG bytes, or None when ``images`` are not images or empty.
    """
    imgs = _as_images(images)
    if imgs is None or not len(imgs):
        return None
    tiles = [rgb(img, vrange) for img in imgs]
    names = [str(labels[i]) if i < len(labels) else "" for i in range(len(tiles))]
    grid = [tiles[i : i + cols] for i in range(0, len(tiles), cols)]
    return mosaic(grid, [names[i : i + cols] for i in range(0, len(names), cols)])


def panel_grid(
    rows: Mapping[str, np.ndarray],
    titles: Sequence[str] | None = None,
    cmaps: Mapping[str, str] | None = None,
) -> bytes | None:
    """One labelled row per entry of ``rows`` ((n, H, W) or (n, C, H, W) arrays).

    Unlike ``head_figures.image_grid`` every panel is on its own scale: the rows hold different
    quantities (an image, its FFT magnitude, its phase, a feature map). ``cmaps`` gives a row's
    colour map (grey by default); ``titles`` label the columns.
    """
    named = {k: _as_images(v) for k, v in rows.items()}
    if not named or any(v is None or not len(v) for v in named.values()):
        return None
    grid = [
        [rgb(img, None, (cmaps or {}).get(label, "gray")) for img in imgs] for label, imgs in named.items()
    ]
    return mosaic(grid, row_labels=list(named), col_titles=titles)


def heatmaps(maps: Mapping[str, np.ndarray], cmap: str = "magma") -> bytes | None:
    """One (H, W) map per entry, side by side, each with its own colour bar (a pixel-variance map)."""
    if not maps:
        return None
    with _style():
        fig = _figure(2.6 * len(maps), 2.4)
        axes = fig.subplots(1, len(maps), squeeze=False)[0]
        for ax, (title, m) in zip(axes, maps.items(), strict=True):
            shown = ax.imshow(np.asarray(m, dtype=np.float64), cmap=cmap)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title, fontsize=8)
            fig.colorbar(shown, ax=ax, shrink=0.85)
        return _png(fig)


def radial_profiles(radius: np.ndarray, profiles: np.ndarray, labels: Sequence[str]) -> bytes:
    """Mean log FFT magnitude against the distance from the centre, one line per image."""
    with _style():
        fig = _figure(4.4, 3.2)
        ax = fig.add_subplot()
        for values, label in zip(profiles, labels, strict=True):
            ax.plot(radius, values, lw=1.2, label=str(label))
        ax.set_xlabel("frequency radius (pixels from centre)")
        ax.set_ylabel("mean log(1 + |FFT|)")
        ax.set_title("radial profile of the spectrum")
        ax.legend(loc="upper right", fontsize=7)
        return _png(fig)


def feature_strips(features: Mapping[str, np.ndarray], labels: Sequence[str]) -> bytes | None:
    """Each stream's pooled features (n, F) as one heat-map row per image (viridis, the stream's own range)."""
    shown = {k: np.asarray(v, dtype=np.float64) for k, v in features.items() if np.size(v)}
    if not shown:
        return None
    width = max(f.shape[1] for f in shown.values())
    rows = []
    for f in shown.values():
        # each image's strip is a few pixels high, so n strips read as rows of one picture
        tall = np.repeat(f, max(1, width // (6 * len(f))), axis=0)
        rows.append([rgb(tall, None, "viridis")])
    names = [f"{k} ({v.shape[1]})" for k, v in shown.items()]
    return mosaic(
        rows, row_labels=names, col_titles=[f"rows: {', '.join(map(str, labels))}"], cell_inches=6.0
    )
