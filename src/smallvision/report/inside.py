"""Looking inside: feature maps of one stage and saliency maps for a few test images, and for the
dual-stream model its spectra and both streams' activations (:mod:`smallvision.report.streams`).

The model is rebuilt from the run's ``checkpoints/best.pt`` (which carries its config) with
:func:`smallvision.study.inference.load_model`, the code ``smallvision predict`` uses; without a
readable checkpoint the section says so and is skipped. It stays cheap: a handful of images, one
forward pass without gradients for the feature maps and one with input gradients for saliency.
torch is imported here only, when the section is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from smallvision.errors import UserError
from smallvision.report import image_figures
from smallvision.report.tables import Block, Image
from smallvision.rundir import Run

N_IMAGES = 4  # test images looked inside
TOP_CHANNELS = 8  # feature maps shown per image: the most active channels of the stage


@dataclass(frozen=True)
class Inputs:
    """The images looked inside: stored (n, C, H, W), their [0, 1] scale, and a label each."""

    stored: np.ndarray
    unit: np.ndarray
    labels: list[str]


def pick_images(run: Run, n: int = N_IMAGES) -> tuple[np.ndarray, list[str]] | None:
    """The first ``n`` test images (test_images.npz), else the data card's samples; None without either."""
    if run.test_images is not None and len(run.test_images.images):
        return run.test_images.images[:n], [f"test #{i}" for i in range(min(n, len(run.test_images.images)))]
    card = run.data_card
    if card is not None and "samples" in card and len(card["samples"]):
        return card["samples"][:n], [f"train sample {i}" for i in range(min(n, len(card["samples"])))]
    return None


def section(run: Run, stage: str | None = None) -> tuple[list[Block], str | None]:
    """(blocks, note): feature maps, saliency and the dual-stream figures, or why there are none.

    Args:
        run: the run directory.
        stage: the stage whose feature maps are shown (``report.feature_stage``); default the
            middle one of the stages with spatial outputs.
    """
    best = run.paths.best
    if not best.is_file():
        return (
            [],
            f"{best.parent.name}/{best.name} not found: looking inside needs the trained model; skipped.",
        )
    picked = pick_images(run)
    if picked is None:
        return [], "Neither test_images.npz nor data_card.npz is here: no images to look inside; skipped."
    from smallvision.study.inference import load_model

    try:
        loaded = load_model(run.dir)
    except UserError as exc:
        return [], f"the model could not be rebuilt from its checkpoint ({exc}); skipped."
    stored, labels = picked
    import torch

    from smallvision.report import streams

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a handful of images: more threads only add start-up and contention
    try:
        raw = torch.from_numpy(np.ascontiguousarray(stored))
        x = loaded.prep(raw)  # (n, C, H, W) as the model sees it
        inputs = Inputs(stored, loaded.normalizer.to_unit(raw).numpy(), labels)
        blocks = [_features_block(loaded.model, x, inputs, stage), _saliency_block(loaded, x, inputs)]
        blocks += streams.blocks(loaded.model, x, inputs)
    finally:
        torch.set_num_threads(threads)
    return [b for b in blocks if b.images or b.notes or b.tables], None


def model_stages(model: Any) -> list[tuple[str, Any]]:
    """The named stages of a Network, or of the frozen encoder of a features-mode run's model."""
    for part in (model, getattr(model, "encoder", None)):
        if callable(getattr(part, "stages", None)):
            return list(part.stages())
    return []


def stage_outputs(model: Any, x: Any) -> dict[str, Any]:
    """Each stage's output for the batch ``x`` (one forward pass, no gradients), by stage name."""
    import torch

    outputs: dict[str, Any] = {}
    hooks = [
        module.register_forward_hook(lambda _m, _i, out, name=name: outputs.setdefault(name, out))
        for name, module in model_stages(model)
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return outputs


def has_map(out: Any) -> bool:
    """Whether a stage output is a (B, C, h, w) map with a layout (a pooled (B, C, 1, 1) has none)."""
    return getattr(out, "ndim", 0) == 4 and out.shape[-2] * out.shape[-1] > 1


def default_stage(outputs: Mapping[str, Any]) -> str | None:
    """The middle one of the stages whose output is a feature map; None when none is."""
    spatial = [name for name, out in outputs.items() if has_map(out)]
    return spatial[len(spatial) // 2] if spatial else None


def top_channels(maps: np.ndarray, k: int = TOP_CHANNELS) -> np.ndarray:
    """The ``k`` channels of (n, C, h, w) maps with the largest mean absolute activation, largest first."""
    strength = np.abs(maps).mean(axis=(0, 2, 3))
    return np.argsort(-strength, kind="stable")[:k]


def upsample(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(n, C, h, w) -> (n, C, H, W) by nearest neighbour, so a map lines up with its image."""
    import torch
    import torch.nn.functional as F

    return F.interpolate(
        torch.from_numpy(np.asarray(maps, dtype=np.float32)), size=size, mode="nearest"
    ).numpy()


def grey(unit: np.ndarray) -> np.ndarray:
    """(n, C, H, W) -> (n, H, W): the mean over channels (the image itself for one channel)."""
    return np.asarray(unit, dtype=np.float64).mean(axis=1)


def _features_block(model: Any, x: Any, inputs: Inputs, stage: str | None) -> Block:
    block = Block("Feature maps")
    outputs = stage_outputs(model, x)
    chosen = stage or default_stage(outputs)
    if chosen not in outputs or not has_map(outputs[chosen]):
        maps_ok = [n for n, o in outputs.items() if has_map(o)]
        asked = f"report.feature_stage {stage!r} is" if stage else "no stage is"
        block.notes.append(
            f"{asked} not a stage with feature maps (stages with maps: {', '.join(maps_ok) or 'none'})."
        )
        return block
    maps = outputs[chosen].float().numpy()  # (n, C, h, w)
    channels = top_channels(maps)
    up = upsample(maps[:, channels], inputs.unit.shape[2:])
    rows = {
        label: np.concatenate([grey(inputs.unit[i : i + 1]), up[i]], axis=0)
        for i, label in enumerate(inputs.labels)
    }
    titles = ["input"] + [f"channel {c}" for c in channels]
    png = image_figures.panel_grid(rows, titles, {label: "gray" for label in rows})
    if png:
        caption = (
            f"stage {chosen}, output {tuple(maps.shape[1:])} (channels x h x w), the {len(channels)} channels "
            "with the largest mean |activation| over these images; each panel on its own scale"
        )
        block.images.append(Image(f"feature maps of {chosen}", png, caption, wide=True))
    return block


def saliency(model: Any, x: Any) -> dict[str, np.ndarray]:
    """Per head, (n, H, W) |d output / d input|, the largest over channels.

    The output differentiated is the head's largest one for each image: the predicted class's
    logit for classification, the most probable label's for multi-label, the value for a scalar
    regression. Reconstruction heads (whose output is an image) are left out.
    """
    import torch

    x = x.detach().clone().requires_grad_(True)
    out = model(x)
    maps = {}
    for head, y in out.items():
        if y.ndim != 2:
            continue
        chosen = y.gather(1, y.argmax(dim=1, keepdim=True)).sum()
        (grad,) = torch.autograd.grad(chosen, x, retain_graph=True)
        maps[head] = grad.abs().amax(dim=1).numpy()
    return maps


def _saliency_block(loaded: Any, x: Any, inputs: Inputs) -> Block:
    block = Block("Saliency")
    maps = saliency(loaded.model, x)
    if not maps:
        block.notes.append("No head with a per-class or scalar output: no saliency map.")
        return block
    rows = {"input": grey(inputs.unit), **{f"head {h}": m for h, m in maps.items()}}
    cmaps = {f"head {h}": "inferno" for h in maps}
    png = image_figures.panel_grid(rows, inputs.labels, cmaps)
    if png:
        caption = (
            "input gradient: |d output / d pixel|, largest over channels, of each head's largest output "
            "(the predicted class's logit); bright pixels change the prediction most"
        )
        block.images.append(Image("saliency maps", png, caption, wide=True))
    return block
