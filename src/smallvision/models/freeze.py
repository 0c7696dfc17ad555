"""Freeze named stages of a Network for transfer learning (studies 001, 003, 004).

A frozen stage keeps its weights *and* its batch-norm statistics: ``freeze`` sets
``requires_grad=False`` on its parameters (optimisers skip parameters without gradients) and
records the stage in ``network.frozen_stages``; ``Network.train()`` puts the batch-norm layers
of those stages back in eval mode every time it is called, so the usual
``net.train()`` at the start of each epoch cannot make their running mean and variance drift
(Keras does the same for a non-trainable BatchNormalization layer). Dropout inside a frozen
stage stays active in training, as in Keras.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable

from smallvision.errors import UserError
from smallvision.models.base import Network


def stage_names(network: Network) -> list[str]:
    """The network's stage names, input side first."""
    return [name for name, _ in network.stages()]


def resolve_stages(network: Network, names: Iterable[str], where: str = "freeze") -> list[str]:
    """Stage names matching ``names`` (exact names or shell patterns such as ``layer*``), in stage order.

    Raises:
        UserError: naming ``where`` and the first name or pattern that matches no stage.
    """
    known = stage_names(network)
    chosen: set[str] = set()
    for name in names:
        matches = fnmatch.filter(known, name)
        if not matches:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UserError(f"{where}: no stage named {name!r}{hint} (stages: {', '.join(known)})")
        chosen.update(matches)
    return [n for n in known if n in chosen]


def freeze(network: Network, names: Iterable[str], where: str = "freeze") -> list[str]:
    """Fix the weights and batch-norm statistics of the named stages.

    Args:
        network: the model; its heads are never frozen here.
        names: stage names or shell patterns (``["stem", "layer1"]``, ``["spatial_*"]``).
        where: the config key to name in errors.

    Returns:
        The stages now frozen by this call, in stage order.

    Raises:
        UserError: a name or pattern matches no stage.
    """
    chosen = resolve_stages(network, names, where)
    stages = dict(network.stages())
    for name in chosen:
        for p in stages[name].parameters():
            p.requires_grad_(False)
    frozen = set(network.frozen_stages) | set(chosen)
    network.frozen_stages = tuple(n for n in stage_names(network) if n in frozen)
    network.train(network.training)  # apply eval mode to the frozen BN layers right away
    return chosen


def unfreeze(network: Network, names: Iterable[str] | None = None, where: str = "unfreeze") -> list[str]:
    """Undo ``freeze`` for the named stages (every stage when ``names`` is None)."""
    chosen = stage_names(network) if names is None else resolve_stages(network, names, where)
    stages = dict(network.stages())
    for name in chosen:
        for p in stages[name].parameters():
            p.requires_grad_(True)
    network.frozen_stages = tuple(n for n in network.frozen_stages if n not in chosen)
    network.train(network.training)  # BN layers of the released stages follow the network's mode again
    return chosen
