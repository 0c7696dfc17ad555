"""One run on several processes or machines: torch.distributed as torchrun starts it.

``torchrun --nproc-per-node N -m smallvision run FILE`` starts N processes (ranks) with RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT set; :func:`init` joins them into one process
group (NCCL for CUDA tensors, gloo for CPU ones). There is no launcher of ours: every process
runs the same command, and these helpers make them agree on what only one of them should decide.

- :func:`from_rank0`: rank 0 does something (create the run directory, read a checkpoint) and
  every rank gets its result, or its error.
- :func:`shard`: one epoch's indices, the same seeded permutation on every rank, cut per step into
  one slice per rank.
- :func:`state_digest` / :func:`check_agreement`: every rank hashes its final weights and history;
  they must be equal, or the run is an error rather than silently wrong.

The trainer side (gradients through DistributedDataParallel, losses and decisions all-reduced,
validation on rank 0) is :class:`smallvision.train.parallel.DistributedTrainer`.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from smallvision.errors import UserError

T = TypeVar("T")
# what torchrun (and any launcher following torch.distributed's env:// convention) sets
ENV_KEYS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class World:
    """Where this process stands: its rank, how many ranks, its rank on this machine, the backend."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None  # None: not distributed

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes files and prints."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """A process group is initialised (even with one rank: torchrun --nproc-per-node 1)."""
        return self.backend is not None


def launched() -> bool:
    """Whether this process was started by torchrun (the env:// variables are all set)."""
    return all(k in os.environ for k in ENV_KEYS)


def world() -> World:
    """This process's place in the process group (rank 0 of 1 when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(
        dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), dist.get_backend()
    )


def init() -> World:
    """Join the process group torchrun described in the environment; a no-op without torchrun.

    Idempotent: a run, its resume and every member of a seed group share one group. The group
    has gloo for CPU tensors and, where CUDA is available, NCCL for GPU tensors (each collective
    goes to the backend of its tensors' device), so it can be joined before the run's config (and
    its ``train.device``) is read; :func:`use_device` then picks this rank's GPU.
    """
    if not launched() or (dist.is_available() and dist.is_initialized()):
        return world()
    if not dist.is_available():
        raise UserError("torchrun started this run but this torch build has no torch.distributed")
    dist.init_process_group(backend="cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
    atexit.register(_shutdown)
    return world()


def use_device(device: torch.device) -> None:
    """On CUDA, make ``cuda`` mean GPU ``LOCAL_RANK`` of this machine (call before building the model)."""
    w = world()
    if not w.active or device.type != "cuda":
        return
    if w.local_rank >= torch.cuda.device_count():
        raise UserError(
            f"LOCAL_RANK {w.local_rank}: this machine has {torch.cuda.device_count()} CUDA device(s); "
            "start at most that many processes per node (--nproc-per-node)"
        )
    torch.cuda.set_device(w.local_rank)


def _shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def broadcast(obj: T) -> T:
    """Rank 0's ``obj`` on every rank (pickled; meant for small things: paths, logs, states)."""
    if not world().active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, device=torch.device("cpu"))  # through gloo
    return box[0]


def from_rank0(fn: Callable[[], T]) -> T:
    """``fn()`` run on rank 0 only; every rank returns its result, or raises its error.

    An error on rank 0 is raised on every rank (a UserError as such, anything else as a
    RuntimeError naming it), so that no rank waits forever for one that gave up.
    """
    w = world()
    if not w.active:
        return fn()
    if not w.is_main:
        kind, value = broadcast(None)
        if kind == "user":
            raise UserError(value)
        if kind == "error":
            raise RuntimeError(f"rank 0 failed: {value}")
        return value
    try:
        value = fn()
    except UserError as exc:
        broadcast(("user", str(exc)))
        raise
    except Exception as exc:
        broadcast(("error", f"{type(exc).__name__}: {exc}"))
        raise
    broadcast(("ok", value))
    return value


def shard(order: torch.Tensor, steps: int, batch_size: int, rank: int, size: int) -> list[torch.Tensor]:
    """This rank's batches of one epoch: step k's global batch is ``order[k*B*N:(k+1)*B*N]``
    (B = ``batch_size``, N = ``size``), and rank r takes its r-th slice of B.

    With one rank this is ``order[:steps*B].split(B)``: the one-process batches exactly. With N
    ranks the global batches are those of one process with batch size B*N.
    """
    return list(order[: steps * batch_size * size].view(steps, size, batch_size)[:, rank])


def rank_seed(seed: int, rank: int) -> int:
    """A seed for rank ``rank``'s own random draws, derived from one shared ``seed``."""
    import numpy as np

    return int(np.random.SeedSequence([seed, rank]).generate_state(1, np.uint64)[0] >> 1)


def state_digest(weights: Mapping[str, torch.Tensor], history: Sequence[Mapping[str, float]]) -> str:
    """sha256 of the weights' bytes and the history's figures (wall times left out: they differ)."""
    h = hashlib.sha256()
    for key in sorted(weights):
        h.update(key.encode())
        h.update(weights[key].detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    rows = [{k: v for k, v in row.items() if k != "seconds"} for row in history]
    h.update(json.dumps(rows, sort_keys=True).encode())
    return h.hexdigest()


def gather(obj: T) -> list[T]:
    """``obj`` of every rank, in rank order (``[obj]`` without a process group)."""
    w = world()
    if not w.active:
        return [obj]
    out: list[Any] = [None] * w.size
    dist.all_gather_object(out, obj)  # pickled objects go through gloo (host memory)
    return out


def check_agreement(digests: Sequence[str]) -> str:
    """The common digest of every rank's final state; a RuntimeError naming the ranks that differ."""
    differ = [r for r, d in enumerate(digests) if d != digests[0]]
    if differ:
        raise RuntimeError(
            f"ranks {', '.join(map(str, differ))} finished with other weights or history than rank 0 "
            f"(sha256 {digests[differ[0]][:12]} vs {digests[0][:12]}): the processes diverged"
        )
    return digests[0]
