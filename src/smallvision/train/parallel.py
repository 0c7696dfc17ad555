"""The trainer on several ranks: DistributedDataParallel over the in-memory index, no DataLoader.

Every rank holds the whole dataset (in memory, or memory-mapped: one page cache per machine) and
the same seeded permutation of the training split; step k's global batch is a slice of it and each
rank trains on its own part (:func:`~smallvision.train.distributed.shard`). DistributedDataParallel
averages the gradients, so every rank takes the same optimiser step and the weights stay equal.
What is not a weight is made to agree explicitly:

- per step, a rank's non-finite loss stops every rank at the same step (an all-reduced flag);
- per epoch, the training losses are averaged over the ranks, and every rank takes rank 0's
  BatchNorm statistics, EMA shadow and random streams (so a checkpoint, which rank 0 writes,
  is every rank's state);
- validation runs on rank 0 (the whole val set, rank 0's weights) and its figures are broadcast,
  so the early-stopping and ReduceLROnPlateau decisions are the same everywhere;
- at the end every rank hashes its final weights and history, and any difference is an error.

Augmentation, MixUp and dropout draw from per-rank streams derived from the shared one (the same
draws on every rank would give every rank's k-th image the same transform). With one process this
class is the plain Trainer, number for number.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from smallvision.errors import UserError
from smallvision.train import distributed
from smallvision.train.rng import rng_state, set_rng_state
from smallvision.train.trainer import NonFiniteLoss, Split, Trainer


class _Trained(nn.Module):
    """The model plus the loss weighting's log-variances, so that DDP averages their gradients too."""

    def __init__(self, model: nn.Module, weighting: nn.Module) -> None:
        super().__init__()
        self.model, self.weighting = model, weighting

    def forward(self, x: torch.Tensor) -> Any:
        return self.model(x)


class DistributedTrainer(Trainer):
    """A :class:`Trainer` whose batches are sharded over the ranks of the process group.

    Takes the Trainer's arguments; the rank and world size come from the process group
    (:func:`smallvision.train.distributed.world`). The model stays unwrapped in ``self.model``
    (checkpoints hold its plain state dict, loadable on any number of ranks); training batches
    go through ``self.forward_module``, its DistributedDataParallel wrapper.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.world = distributed.world()
        self._steps_per_epoch: int | None = None
        self._trainable: tuple[bool, ...] | None = None
        self.state_sha256: str | None = None  # this rank's final weights and history (distributed)
        self._wrap()

    def _wrap(self) -> None:
        """(Re)build the DDP wrapper when the trainable parameters changed (``train.unfreeze``):
        DDP reduces the gradients of the parameters that required one when it was built."""
        trainable = tuple(p.requires_grad for p in self.model.parameters())
        if not self.world.active or trainable == self._trainable:
            return
        self._trainable = trainable
        wrapped = self.model
        if any(True for _ in self.weighting.parameters()):
            wrapped = _Trained(self.model, self.weighting)
        ids = [self.device.index] if self.device.type == "cuda" else None
        # buffers (BatchNorm statistics) are synchronised once per epoch, not at every forward
        self.forward_module = DistributedDataParallel(wrapped, device_ids=ids, forward_sync_buffers=False)

    # ------------------------------------------------------------------ batches

    def steps_per_epoch(self, train: Split) -> int:
        per_step = self.cfg.batch_size * self.world.size
        if self.world.size > 1 and len(train) < per_step:
            raise UserError(
                f"train.batch_size {self.cfg.batch_size} x {self.world.size} ranks = {per_step} exceeds the "
                f"{len(train)} training images; lower train.batch_size or start fewer processes"
            )
        return max(1, len(train) // per_step)

    def setup(self, train: Split) -> None:
        super().setup(train)
        self._steps_per_epoch = self.steps_per_epoch(train)

    def batches(self, train: Split) -> list[torch.Tensor]:
        """This rank's share of one epoch; the permutation is drawn from the stream every rank shares."""
        self._wrap()  # the epoch's unfreezing has been applied
        if self.world.size == 1:
            return super().batches(train)
        steps = self.steps_per_epoch(train)
        order = torch.randperm(len(train), generator=self.gen)
        mine = distributed.shard(order, steps, self.cfg.batch_size, self.world.rank, self.world.size)
        # from here to the epoch's end each rank draws its own augmentation and dropout; the shared
        # streams come back from rank 0 in epoch_losses(), before anything is saved
        shared = int(torch.randint(0, 2**62, (1,), generator=self.gen))
        self.gen.manual_seed(distributed.rank_seed(shared, self.world.rank))
        torch.manual_seed(distributed.rank_seed(shared + 1, self.world.rank))
        return mine

    # ------------------------------------------------------------------ agreement

    def epoch_losses(self, sums: Mapping[str, float], batches: int) -> dict[str, float]:
        """The epoch's mean training losses over every rank; then every rank holds rank 0's state."""
        if not self.world.active:
            return super().epoch_losses(sums, batches)
        keys = sorted(sums)
        total = torch.tensor([sums[k] for k in keys], dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(total)
        means = {k: float(v) / (batches * self.world.size) for k, v in zip(keys, total.tolist(), strict=True)}
        self._take_rank0_state()
        return {k: means[k] for k in sums}  # the order of the trainer's own keys

    def _comm_device(self) -> torch.device:
        return self.device  # the training device: NCCL for CUDA tensors, gloo for CPU ones

    @torch.no_grad()
    def _take_rank0_state(self) -> None:
        """Rank 0's buffers, EMA shadow and random streams on every rank."""
        tensors = [b for b in self.model.buffers()]
        if self.ema is not None:
            tensors += list(self.ema.shadow.values())
        for t in tensors:
            dist.broadcast(t, src=0)
        state = distributed.broadcast(rng_state(self.gen))
        if not self.world.is_main:
            set_rng_state(self.gen, state)

    def _check_finite(self, losses: Mapping[str, torch.Tensor], phase: str) -> None:
        if self.world.active and phase == "training":  # validation runs on rank 0 alone
            flags = torch.stack([(~torch.isfinite(v.detach())).double() for v in losses.values()])
            flags = flags.to(self._comm_device())
            dist.all_reduce(flags)  # one tiny all-reduce per step: no rank may step while another stops
            bad = [h for h, f in zip(losses, flags.tolist(), strict=True) if f > 0]
            if bad and all(bool(torch.isfinite(v)) for v in losses.values()):
                raise NonFiniteLoss(
                    bad[0], self.epoch + 1, self.step + 1, float("nan"), "training (on another rank)"
                )
        super()._check_finite(losses, phase)

    def validate(self, val: Split) -> dict[str, float]:
        """Rank 0 validates (the whole val set); every rank gets its figures or its error."""
        if not self.world.active:
            return super().validate(val)
        result: tuple[str, Any] = ("ok", None)
        if self.world.is_main:
            try:
                result = ("ok", super().validate(val))
            except NonFiniteLoss as exc:
                result = ("nan", (exc.head, exc.epoch, exc.step, exc.value))
        kind, value = distributed.broadcast(result)
        if kind == "nan":
            raise NonFiniteLoss(*value, phase="validation")
        return value

    def fit(self, train: Split, val: Split | None = None, state: Mapping[str, Any] | None = None) -> None:
        """:meth:`Trainer.fit`, then a check that every rank ended with the same weights and history."""
        super().fit(train, val, state)
        if self.world.active:
            self.state_sha256 = distributed.state_digest(self.model.state_dict(), self.history)
            distributed.check_agreement(distributed.gather(self.state_sha256))

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict[str, Any]:
        """The Trainer's state plus the steps per epoch it was saved with (a resume may use other ranks)."""
        return {
            **super().state_dict(),
            "steps_per_epoch": self._steps_per_epoch,
            "world_size": self.world.size,
        }

    def load_state_dict(self, state: Mapping[str, Any], where: str = "last.pt") -> None:
        """Continue from a state saved on any number of ranks.

        The lr schedule counts optimiser steps, and with another number of ranks an epoch has
        another number of them: the position is moved to the same epoch boundary in this run's
        steps, so the schedule's progress (warmup, cosine) is where it was.
        """
        super().load_state_dict(state, where)
        saved = state.get("steps_per_epoch")
        if saved is not None and self._steps_per_epoch is not None and saved != self._steps_per_epoch:
            self.step = self.epoch * self._steps_per_epoch
            if self.scheduler is not None:
                self.scheduler.last_epoch = self.step
