"""``smallvision resume RUN_DIR``: continue a killed or interrupted run in its own directory.

The run is rebuilt from its ``config.yaml`` exactly as it started (same data, split, statistics
and initial weights), then ``checkpoints/last.pt`` puts back the trainer's whole state at the last
completed epoch: weights, optimiser, schedule, EMA, early stopping, history and every random
stream. The epochs after it are recomputed, so the finished run's metrics are identical to those
of the same run never interrupted. A group directory (``seeds``) resumes each unfinished member,
starts the missing ones, and recomputes the ensemble.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from smallvision.errors import UserError
from smallvision.rundir import Run, load_run, write_json
from smallvision.study.group import GroupResult, finish_group, group_record, member_config
from smallvision.study.run import RunResult, make_trainer, prepare, run_config, train_and_finish
from smallvision.train import distributed
from smallvision.train.checkpoint import check_config, load_checkpoint
from smallvision.train.events import Callback


def resume(run_dir: str | Path) -> RunResult | GroupResult:
    """Continue the run (or seed group) in ``run_dir`` and finish it there.

    Returns:
        The RunResult of the finished run, or a GroupResult for a group directory.

    Raises:
        UserError: not a run directory, already completed, failed, data or checkpoint mismatch.
    """
    run_dir = Path(run_dir)
    distributed.init()  # under torchrun: join the other ranks (a no-op otherwise)
    if not (run_dir / "config.yaml").is_file():
        raise UserError(f"{str(run_dir)!r} is not a run directory (no config.yaml); give runs/<name>-<stamp>")
    run = load_run(run_dir)
    return resume_group(run) if run.is_group else resume_run(run)


def resume_run(run: Run, callbacks: Sequence[Callback] = ()) -> RunResult:
    """Continue one run from its ``last.pt`` (or from the start when it has none yet).

    Under torchrun, on any number of ranks: every rank reads the directory's config and records,
    rank 0 reads the checkpoint and sends it to the others.
    """
    run_dir, paths = run.dir, run.paths
    status = run.status
    if status == "completed":
        raise UserError(f"run {run_dir} is already completed; nothing to resume")
    if status == "failed":
        raise UserError(
            f"run {run_dir} failed ({run.metrics.error or 'unknown error'}); resuming would repeat it: "
            "start a new run with the cause fixed"
        )
    p = prepare(run.config)
    if p.model is None:  # a scikit-learn head on features: no epochs to continue, it is fitted again
        return run_config(run.config, run_dir=run_dir, prepared=p)
    env_path = paths.env
    env = run.env if env_path.is_file() else {}
    fingerprint = p.data.fingerprint()
    if env.get("data_fingerprint") not in (None, fingerprint):
        raise UserError(
            f"run {run_dir}: its data changed since it started (fingerprint {env['data_fingerprint'][:12]} "
            f"then, {fingerprint[:12]} now); a resumed run would not be the same run"
        )
    last = paths.last
    state = distributed.from_rank0(lambda: load_checkpoint(last) if last.is_file() else None)
    if state is not None:
        check_config(state, p.cfg.model_dump(mode="json"), str(last))
    if env and distributed.world().is_main:
        resumed = {
            "time": time.time(),
            "from_epoch": int(state["epoch"]) if state else 0,
            "command": sys.argv,
        }
        write_json(env_path, {**env, "resumed": [*env.get("resumed", []), resumed]})
    return train_and_finish(p, make_trainer(p, run_dir, callbacks), run_dir, state=state)


def resume_group(group: Run) -> GroupResult:
    """Finish every member of a seed group (resume, start or keep), then recompute the ensemble."""
    cfg = group.config
    members = []
    with group_record(group.dir):
        for seed, member in zip(cfg.seeds or [], group.members(), strict=True):
            if member.status == "completed":
                members.append(_finished(member))
            elif member.paths.config.is_file():
                members.append(resume_run(member))
            else:
                members.append(run_config(member_config(cfg, seed), run_dir=member.dir))
        return finish_group(group.dir, members, cfg)


def _finished(run: Run) -> RunResult:
    """A RunResult for a run that already finished (its best model loaded from ``best.pt``)."""
    from smallvision.study.inference import load_model

    if run.config.features is not None and run.config.features.head != "mlp":
        return RunResult(run.dir, run.metrics, None, run.config)  # a scikit-learn fit keeps no model
    return RunResult(run.dir, run.metrics, load_model(run.dir).model, run.config)
