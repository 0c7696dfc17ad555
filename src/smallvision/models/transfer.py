"""Transfer learning: start a backbone from an earlier run's weights, and freeze stages.

Only ``backbone.*`` weights are taken: the heads belong to the new task (other classes, other
targets), so they are always freshly initialised.
"""

from __future__ import annotations

from pathlib import Path

from smallvision.errors import UserError
from smallvision.models.base import Network
from smallvision.models.freeze import freeze
from smallvision.train.checkpoint import load_checkpoint


def checkpoint_path(source: str | Path) -> Path:
    """A run directory means its ``checkpoints/best.pt``; a file is taken as it is."""
    path = Path(source)
    return path / "checkpoints" / "best.pt" if path.is_dir() else path


def load_backbone(model: Network, source: str | Path, where: str = "model.init") -> int:
    """Copy the backbone weights of the checkpoint at ``source`` into ``model``.

    Returns:
        The number of tensors loaded.

    Raises:
        UserError: the file is missing or corrupt, or its backbone does not match this model
            (another family, other widths, another input shape).
    """
    path = checkpoint_path(source)
    if not path.is_file():
        raise UserError(
            f"{where} {str(source)!r}: no checkpoint there (expected a run directory or a .pt file)"
        )
    state = load_checkpoint(path)["model"]
    backbone = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    own = model.backbone.state_dict()
    missing = sorted(set(own) - set(backbone))
    extra = sorted(set(backbone) - set(own))
    wrong = [k for k in own if k in backbone and backbone[k].shape != own[k].shape]
    if missing or extra or wrong:
        first = (missing or extra or wrong)[0]
        kind = "missing" if missing else "unexpected" if extra else "of another shape"
        raise UserError(
            f"{where} {str(path)!r}: its backbone does not fit model {type(model.backbone).__name__} "
            f"({len(missing)} missing, {len(extra)} unexpected, {len(wrong)} mis-shaped tensors; "
            f"e.g. {first!r} is {kind}); use a run of the same model, params and input size"
        )
    model.backbone.load_state_dict(backbone)
    return len(backbone)


def apply_transfer(model: Network, init: str | None, stages: list[str]) -> None:
    """``model.init`` then ``model.freeze`` of a config, in that order."""
    if init:
        load_backbone(model, init)
    if stages:
        freeze(model, stages, where="model.freeze")
