"""Batched inference over in-memory images: outputs per head, as numpy arrays."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def predict(
    model: nn.Module,
    images: torch.Tensor,
    prepare: Callable[[torch.Tensor], torch.Tensor],
    heads: Sequence[str],
    batch_size: int = 1000,
) -> dict[str, np.ndarray]:
    """Run ``model`` in eval mode over ``images`` in batches.

    Args:
        model: a Network (``forward`` returns {head: tensor}).
        images: (N, C, H, W) as stored (uint8 or float).
        prepare: stored batch -> model input (the run's normalisation).
        heads: the heads to collect.
        batch_size: images per forward pass.

    Returns:
        {head: raw output (N, ...)}: logits for classification; see :func:`to_outputs`.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    chunks: dict[str, list[torch.Tensor]] = {h: [] for h in heads}
    for start in range(0, len(images), batch_size):
        out = model(prepare(images[start : start + batch_size].to(device)))
        for h in heads:
            chunks[h].append(out[h].float().cpu())
    model.train(was_training)
    return {h: torch.cat(c).numpy() for h, c in chunks.items()}


def to_outputs(raw: Mapping[str, np.ndarray], kinds: Mapping[str, str]) -> dict[str, np.ndarray]:
    """Raw outputs -> what is saved and scored, by each head's kind (``HeadKind.to_output``):
    probabilities (softmax) for classification, (N,) values for single-output regression,
    images as they are for reconstruction."""
    from smallvision.registry import HEAD_KINDS

    return {h: HEAD_KINDS.get(kind).to_output(raw[h]) for h, kind in kinds.items()}


INFERENCE_IMAGES = 256  # the batch of held-out images a run's inference time is measured on


def network_inference(
    model: nn.Module,
    images: torch.Tensor,
    prepare: Callable[[torch.Tensor], torch.Tensor],
    heads: Sequence[str],
    batch_size: int,
    split: str,
) -> dict[str, object]:
    """:func:`time_inference` of :func:`predict` on the first 256 of ``images`` (of ``split``)."""
    images = images[:INFERENCE_IMAGES]
    return time_inference(
        lambda: predict(model, images, prepare, heads, batch_size), len(images),
        batch_size=min(batch_size, len(images)), threads=torch.get_num_threads(), split=split,
    )  # fmt: skip


def time_inference(
    run_batch: Callable[[], object], images: int, repeats: int = 5, **record: object
) -> dict[str, object]:
    """Inference time per image of one batch, measured on its own (not during evaluation).

    ``run_batch`` predicts the same ``images`` images from stored pixels to outputs (input
    preparation included). It is called once to warm up (first-call allocations, lazy kernels),
    then ``repeats`` times; the minimum is the figure (the least disturbed by other processes, as
    ``timeit`` advises), the median is kept beside it.

    Args:
        run_batch: predicts the batch; its result is discarded.
        images: the number of images it predicts.
        repeats: timed calls after the warm-up.
        record: further fields of the record (batch_size, threads, split ...).

    Returns:
        ``{"seconds_per_image", "median_seconds_per_image", "images", "repeats", **record}``.
    """
    import time

    run_batch()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_batch()
        times.append(time.perf_counter() - start)
    return {
        "seconds_per_image": min(times) / images,
        "median_seconds_per_image": float(np.median(times)) / images,
        "images": images,
        "repeats": repeats,
        **record,
    }
