"""``smallvision resume RUN_DIR``: continue a killed or interrupted run in its own directory.

The run is rebuilt from its ``config.yaml`` exactly as it started (same data, split, statistics
and initial weights), then ``checkpoints/last.pt`` puts back the trainer's whole state at the last
completed epoch: weights, optimiser, schedule, EMA, early stopping, history and every random
stream. The epochs after it are recomputed, so the finished run's metrics are identical to those
of the same run never interrupted. A group directory (``seeds``) resumes each unfinished member,
starts the missing ones, and recomputes the ensemble.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from smallvision.config import load_config
from smallvision.errors import UserError
from smallvision.study.ensemble import GroupResult, ensemble_runs, member_config
from smallvision.study.run import RunResult, make_trainer, prepare, run_config, train_and_finish
from smallvision.study.rundir import write_json
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
    if not (run_dir / "config.yaml").is_file():
        raise UserError(f"{str(run_dir)!r} is not a run directory (no config.yaml); give runs/<name>-<stamp>")
    if is_group(run_dir):
        return resume_group(run_dir)
    return resume_run(run_dir)


def is_group(run_dir: Path) -> bool:
    """A seed group's directory: a config with ``seeds`` and no run of its own (no env.json)."""
    return not (run_dir / "env.json").exists() and bool(load_config(run_dir / "config.yaml").seeds)


def run_status(run_dir: Path) -> dict:
    """The run's ``metrics.json`` (``{"status": "completed" | "failed" | "interrupted", ...}``), or {}."""
    path = run_dir / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def resume_run(run_dir: Path, callbacks: Sequence[Callback] = ()) -> RunResult:
    """Continue one run from its ``last.pt`` (or from the start when it has none yet)."""
    status = run_status(run_dir)
    if status.get("status") == "completed":
        raise UserError(f"run {run_dir} is already completed; nothing to resume")
    if status.get("status") == "failed":
        raise UserError(
            f"run {run_dir} failed ({status.get('error', 'unknown error')}); resuming would repeat it: "
            "start a new run with the cause fixed"
        )
    p = prepare(load_config(run_dir / "config.yaml"))
    env_path = run_dir / "env.json"
    env = json.loads(env_path.read_text()) if env_path.is_file() else {}
    fingerprint = p.data.fingerprint()
    if env.get("data_fingerprint") not in (None, fingerprint):
        raise UserError(
            f"run {run_dir}: its data changed since it started (fingerprint {env['data_fingerprint'][:12]} "
            f"then, {fingerprint[:12]} now); a resumed run would not be the same run"
        )
    last = run_dir / "checkpoints" / "last.pt"
    state = None
    if last.is_file():
        state = load_checkpoint(last)
        check_config(state, p.cfg.model_dump(mode="json"), str(last))
    if env:
        resumed = {
            "time": time.time(),
            "from_epoch": int(state["epoch"]) if state else 0,
            "command": sys.argv,
        }
        write_json(env_path, {**env, "resumed": [*env.get("resumed", []), resumed]})
    return train_and_finish(p, make_trainer(p, run_dir, callbacks), run_dir, state=state)


def resume_group(parent: Path) -> GroupResult:
    """Finish every member of a seed group (resume, start or keep), then recompute the ensemble."""
    cfg = load_config(parent / "config.yaml")
    members = []
    for seed in cfg.seeds or []:
        member = parent / f"seed-{seed}"
        if run_status(member).get("status") == "completed":
            members.append(_finished(member))
        elif (member / "config.yaml").is_file():
            members.append(resume_run(member))
        else:
            members.append(run_config(member_config(cfg, seed), run_dir=member))
    return GroupResult(parent, members, ensemble_runs([m.dir for m in members], parent / "ensemble"), cfg)


def _finished(run_dir: Path) -> RunResult:
    """A RunResult for a run that already finished (its best model loaded from ``best.pt``)."""
    from smallvision.study.inference import load_run

    return RunResult(
        run_dir, run_status(run_dir), load_run(run_dir).model, load_config(run_dir / "config.yaml")
    )
