"""A run's data card: :func:`smallvision.data.card.data_card` fed from the prepared run.

Written into ``data_card.npz`` when the run directory is created (``study.run``), so the report can
show the data without reading it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from smallvision.data.card import data_card
from smallvision.registry import HEAD_KINDS

if TYPE_CHECKING:
    from smallvision.study.run import Prepared


def data_card_arrays(p: Prepared) -> dict[str, np.ndarray]:
    """The arrays of ``data_card.npz`` for the prepared run ``p`` (keys: :mod:`smallvision.data.card`).

    Every single-label head (one integer class per image) is counted per class and split and gets
    its class mean and std images; regression, reconstruction and multi-label heads are not.
    """
    from smallvision.data.mapped import take_rows
    from smallvision.data.normalize import fit_normalizer
    from smallvision.study.resolve import class_names

    labels = {
        h: (class_names(p.data, h, c) or [], {s: d.targets[h].numpy() for s, d in p.split_data.items()})
        for h, c in p.heads.items()
        if HEAD_KINDS.get(c.kind).needs_classes and p.split_data["train"].targets[h].ndim == 1
    }
    # the images themselves: in features mode the splits' inputs are features, their normaliser theirs
    if p.cfg.features is None:
        train, normalizer = p.split_data["train"].images, p.normalizer
    else:
        train = take_rows(p.data.images, p.splits["train"])
        normalizer = fit_normalizer(train, p.cfg.data.normalize)
    return data_card(
        source=p.cfg.data.source,
        train_images=train,
        labels=labels,
        sizes={s: len(i) for s, i in p.splits.items()},
        normalizer=normalizer,
        augment=p.augment,
        duplicates=p.splits.info.get("duplicates"),
        seed=p.cfg.seed,
        train_index=p.splits["train"],
    )
