"""Seed groups: ``seeds: [42, 43, 44]`` -> one run per seed in one directory, then their ensemble.

Layout (see :class:`smallvision.rundir.RunPaths`): ``<output_dir>/<name>-<stamp>/`` holds the
group's ``config.yaml`` and ``metrics.json`` (kind ``group``: status and members), one run
directory per seed (``seed-42/`` ...) and ``ensemble/`` with ``metrics.json`` (kind
``ensemble``) and ``predictions.npz``, and ``report.html``, the group page.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from smallvision.config import RunConfig, to_yaml
from smallvision.errors import UserError
from smallvision.rundir import MetricsRecord, RunPaths, new_run_dir, write_json, write_text
from smallvision.rundir.layout import check_output_dir
from smallvision.study.ensemble import ensemble_runs
from smallvision.study.run import RunResult, check_monitor, prepare, run_config
from smallvision.train import distributed


@dataclass
class GroupResult:
    """A finished seed group.

    Attributes:
        dir: the group directory (``<output_dir>/<name>-<stamp>``).
        members: one RunResult per seed, in the order of ``seeds``.
        metrics: ``ensemble/metrics.json``: ``splits`` (the ensemble's val and test metrics,
            shaped like a run's), ``members`` (each member's scalar test metrics), ``gain`` (per
            head and metric: a Gain), ``heads``, ``train_seconds``.
        config: the group's config (with ``seeds``).
    """

    dir: Path
    members: list[RunResult]
    metrics: MetricsRecord
    config: RunConfig


def member_config(cfg: RunConfig, seed: int) -> RunConfig:
    """The config of the member run for ``seed``: the group's, with that seed and no seed list."""
    return cfg.model_copy(update={"seed": seed, "seeds": None})


def run_group(cfg: RunConfig) -> GroupResult:
    """Train one run per seed of ``cfg.seeds`` in a new group directory, then their ensemble.

    The first member is prepared and checked before the group directory is made, so a config
    that is rejected leaves nothing behind.
    """
    check_output_dir(cfg.output_dir)
    seeds = list(cfg.seeds or [])
    first = prepare(member_config(cfg, seeds[0])) if seeds else None
    if first is not None:
        check_monitor(first)
    # under torchrun every rank trains each member; rank 0 writes the group's own files
    parent = distributed.from_rank0(lambda: _new_group_dir(cfg))
    with group_record(parent):
        members = [
            run_config(member_config(cfg, s), RunPaths(parent).member(s), prepared=first if i == 0 else None)
            for i, s in enumerate(seeds)
        ]
        return finish_group(parent, members, cfg)


def _new_group_dir(cfg: RunConfig) -> Path:
    parent = new_run_dir(cfg.output_dir, cfg.name)
    write_text(parent / "config.yaml", to_yaml(cfg))
    return parent


def finish_group(parent: Path, members: list[RunResult], cfg: RunConfig) -> GroupResult:
    """The ensemble of finished members, the group's own ``metrics.json`` (kind ``group``) and,
    unless ``report.enabled`` is false, its ``report.html`` (:mod:`smallvision.report.group_page`).

    Under torchrun rank 0 computes and writes them, and the other ranks get its ensemble record.
    """
    ensemble = distributed.from_rank0(lambda: _write_ensemble(parent, members))
    if cfg.report.enabled and distributed.world().is_main:
        from smallvision.report.group_page import build_group_report

        build_group_report(parent)
    return GroupResult(parent, members, ensemble, cfg)


def _write_ensemble(parent: Path, members: list[RunResult]) -> MetricsRecord:
    ensemble = ensemble_runs([m.dir for m in members], RunPaths(parent).ensemble)
    record = MetricsRecord(
        "completed",
        kind="group",
        train_seconds=ensemble.train_seconds,
        heads=ensemble.heads,
        members=ensemble.members,
    )
    write_json(RunPaths(parent).metrics, record.to_dict())
    return ensemble


@contextlib.contextmanager
def group_record(parent: Path) -> Iterator[None]:
    """Within the block, a member that fails or is interrupted also marks the group's metrics.json."""
    paths = RunPaths(parent)
    if not distributed.world().is_main:  # under torchrun rank 0 keeps the record
        yield
        return
    try:
        yield
    except KeyboardInterrupt:
        write_json(
            paths.metrics,
            MetricsRecord("interrupted", kind="group", resume=f"smallvision resume {parent}").to_dict(),
        )
        raise
    except UserError as exc:
        write_json(paths.metrics, MetricsRecord("failed", kind="group", error=str(exc)).to_dict())
        raise
