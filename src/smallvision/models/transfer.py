"""Transfer learning: start a backbone from an earlier run's weights, and freeze stages.

Only backbone weights are taken (a smallvision run's ``backbone.*``, or a torchvision / timm state
dict mapped by key name, :mod:`smallvision.models.weights`): the heads belong to the new task (other
classes, other targets), so they are always freshly initialised. Nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path

from smallvision.errors import UserError
from smallvision.models.base import Network
from smallvision.models.freeze import freeze
from smallvision.models.weights import fit_weights, read_weights


def checkpoint_path(source: str | Path) -> Path:
    """A run directory means its ``checkpoints/best.pt``; a file is taken as it is."""
    path = Path(source)
    return path / "checkpoints" / "best.pt" if path.is_dir() else path


def load_backbone(model: Network, source: str | Path, where: str = "model.init") -> int:
    """Copy backbone weights from ``source`` into ``model`` (see :mod:`smallvision.models.weights`).

    Args:
        model: the network whose backbone receives the weights; its heads are left as built.
        source: a run directory, a smallvision checkpoint, or a torchvision / timm state dict file.
        where: the config key to name in errors.

    Returns:
        The number of tensors loaded.

    Raises:
        UserError: the file is missing, not a PyTorch file, holds something other than weights, or
            its keys or shapes do not match this backbone (another family, other widths, another stem).
    """
    path = checkpoint_path(source)
    if not path.is_file():
        raise UserError(
            f"{where} {str(source)!r}: no checkpoint there (expected a run directory, a .pt checkpoint "
            "or a state-dict .pth file)"
        )
    weights, kind = read_weights(path, where)
    state, loaded = fit_weights(model.backbone, weights, f"{where} {str(path)!r} ({kind})")
    model.backbone.load_state_dict(state)
    return loaded


def apply_transfer(model: Network, init: str | None, stages: list[str]) -> None:
    """``model.init`` then ``model.freeze`` of a config, in that order."""
    if init:
        load_backbone(model, init)
    if stages:
        freeze(model, stages, where="model.freeze")
