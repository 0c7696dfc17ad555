"""One study worker: plan the cells from the study directory, claim one, run it, repeat.

Every decision is read from the directory, so any number of workers (processes, machines sharing
the folder) can run one study: a cell is *done* when ``runs/<id>/metrics.json`` says completed,
*failed* when ``runs/<id>/error.json`` exists, *running* while a live claim holds it (see
``study.claims``), else *pending*. A step is planned only once every cell of the steps it depends
on is done or failed, because its cells' configs (and so their ids) come from those results.
"""

from __future__ import annotations

import csv
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from smallvision.config import RunConfig, apply_overrides, build_config
from smallvision.errors import UserError
from smallvision.evaluate.metrics import scalar_metrics
from smallvision.rundir import MetricsRecord, Run, write_json
from smallvision.study.claims import Claim, Claims
from smallvision.study.search import VARIANT, Search, read_best, record_unrunnable, search_cells
from smallvision.study.spec import (
    Cell,
    CellOutcome,
    Selection,
    StudySpec,
    cell_config,
    cell_id,
    resolve_overrides,
)
from smallvision.train.events import Callback

POLL_SECONDS = 0.5


def read_run_metrics(run_dir: Path) -> MetricsRecord | None:
    """A run's ``metrics.json`` as a typed record, or None while it is missing or unreadable.

    Read tolerantly (:class:`smallvision.rundir.Run`): a cell still training has no record yet.
    """
    path = Path(run_dir)
    return Run(path, tolerant=True).metrics if path.is_dir() else None


def flat_metrics(run_dir: Path, metrics: MetricsRecord | None) -> dict[str, float]:
    """``<split>/<head>/<metric>`` of every scored split (val, test, domain parts such as
    ``test:B``, evaluation sets ``eval:NAME``) and the best epoch's val losses from history."""
    if metrics is None:
        return {}
    flat = {}
    for split, scores in metrics.splits.items():
        if split != "train":
            flat.update({f"{split}/{k}": v for k, v in scalar_metrics(scores or {}).items()})
    best = metrics.best_epoch
    for row in read_history(run_dir):
        if best is not None and row.get("epoch") == str(best):
            flat.update(
                {k: float(v) for k, v in row.items() if k.startswith("val/") and k.endswith("loss") and v}
            )
    return flat


def read_history(run_dir: Path) -> list[dict]:
    """The rows of a run's ``history.csv`` ([] before its first epoch)."""
    try:
        with (Path(run_dir) / "history.csv").open(newline="") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


@dataclass
class PlannedCell:
    """A cell of the study as planned now: its resolved config and id, or why it cannot run."""

    cell: Cell
    key: str | None = None
    config: RunConfig | None = None
    baseline: str | None = None
    overrides: dict | None = None  # the cell's overrides with every reference resolved
    selections: list[Selection] = field(default_factory=list)  # what its best(...) references chose
    error: str | None = None  # the resolution failed (e.g. best() over a step without results)
    state: str = "waiting"  # waiting | pending | running | done | failed

    @property
    def name(self) -> str:
        return self.key or f"{self.cell.step}/{self.cell.label}/seed{self.cell.seed}"


def cell_state(study_dir: Path, key: str) -> str:
    """done | failed | started | new, from the cell's run directory alone."""
    run_dir = study_dir / "runs" / key
    metrics = read_run_metrics(run_dir)
    if metrics is not None and metrics.status == "completed":
        return "done"
    if (run_dir / "error.json").is_file():
        return "failed"
    return "started" if run_dir.exists() else "new"


def plan_cells(spec: StudySpec, study_dir: Path, claims: Claims | None = None) -> list[PlannedCell]:
    """Every cell of the study, steps in order, resolved where the steps they depend on are finished."""
    planned: list[PlannedCell] = []
    outcomes: dict[str, list[CellOutcome]] = {}
    finished: set[str] = set()
    for step in spec.steps:
        searched = read_best(study_dir, step.name) if step.search else None
        cells = [PlannedCell(c) for c in step.cells + search_cells(spec, step, searched)]
        planned += cells
        if not all(d in finished for d in step.depends_on) or (step.search and searched is None):
            continue  # the search-best cells wait for their search like cells wait for earlier steps
        for pc in cells:
            if pc.cell.variant == VARIANT and not searched.get("best"):
                pc.error, pc.state = searched.get("error") or "the search completed no trial", "failed"
                continue
            _resolve(spec, pc, outcomes.__getitem__)
            if pc.key is not None:
                state = cell_state(study_dir, pc.key)
                live = claims is not None and claims.holder(pc.key) is not None
                pc.state = {"done": "done", "failed": "failed"}.get(state, "running" if live else "pending")
        outcomes[step.name] = [outcome(study_dir, pc) for pc in cells if pc.state == "done"]
        if all(pc.state in ("done", "failed") for pc in cells):
            finished.add(step.name)
    return planned


def _resolve(spec: StudySpec, pc: PlannedCell, lookup) -> None:
    pc.baseline = pc.cell.baseline
    try:
        pc.overrides, pc.selections = resolve_overrides(spec, pc.cell, lookup)
        pc.config = cell_config(spec, pc.cell, pc.overrides)
    except UserError as exc:  # e.g. best() over a step whose cells all failed
        pc.error, pc.state = str(exc), "failed"
        return
    pc.key = cell_id(pc.config, pc.baseline)


def outcome(study_dir: Path, pc: PlannedCell) -> CellOutcome:
    run_dir = study_dir / "runs" / pc.key
    return CellOutcome(pc.cell, run_dir, pc.config, flat_metrics(run_dir, read_run_metrics(run_dir)))


class ClaimLost(Exception):
    """This worker stalled past the heartbeat timeout and another took its cell over."""


class ClaimGuard(Callback):
    """Trainer callback: stop training a cell whose claim this worker no longer holds."""

    def __init__(self, claim: Claim) -> None:
        self.claim = claim

    def after_batch(self, trainer, batch) -> None:
        if self.claim.lost:
            raise ClaimLost(self.claim.path.name)


@dataclass
class Worker:
    """A worker loop over one study directory.

    Args:
        spec: the study as loaded from the directory's ``study.yaml`` and overrides.
        study_dir: the study directory.
        worker_id: written into this worker's claims.
        threads: ``train.threads`` for cells that do not set it (None: leave torch's default).
        stale_after: heartbeat timeout in seconds before a claim is taken over.
        parent: exit when this process id is no longer our parent (a killed coordinator).
        storage: the searches' Optuna storage (a ``postgresql://`` URL; None: journal files).
    """

    spec: StudySpec
    study_dir: Path
    worker_id: str
    threads: int | None = None
    stale_after: float = 60.0
    parent: int | None = None
    storage: str | None = None

    def __post_init__(self) -> None:
        self.claims = Claims(self.study_dir / "claims", self.worker_id, self.stale_after)
        self.reported: set[str] = set()

    def run(self) -> list[PlannedCell]:
        """Work until every cell is done or failed; returns the final plan."""
        if self.parent is not None:
            threading.Thread(target=self._watch_parent, daemon=True).start()
        while True:
            plan = plan_cells(self.spec, self.study_dir, self.claims)
            self._report_resolution_errors(plan)
            if self._search(plan):
                continue
            if not any(self._try(pc) for pc in plan if pc.state == "pending"):
                if all(pc.state in ("done", "failed") for pc in plan):
                    return plan
                time.sleep(POLL_SECONDS)

    def _search(self, plan: list[PlannedCell]) -> bool:
        """Join the first unfinished search whose earlier steps are finished; True when one ran."""
        for step in self.spec.steps:
            if step.search is None or read_best(self.study_dir, step.name) is not None:
                continue
            if any(pc.state not in ("done", "failed") for pc in plan if pc.cell.step in step.depends_on):
                continue
            done = {s: [outcome(self.study_dir, pc) for pc in plan if pc.cell.step == s and pc.state == "done"]
                    for s in step.depends_on}  # fmt: skip
            try:  # the step's set may name earlier results (@pretrain, best(...)), as its cells do
                start = Cell(step.name, "search", None, {}, 0, dict(step.set or {}))
                overrides, _ = resolve_overrides(self.spec, start, done.__getitem__)
            except UserError as exc:
                record_unrunnable(self.study_dir, step, str(exc))
                print(f"[{self.worker_id}] search {step.name!r} failed: {exc}", file=sys.stderr, flush=True)
                return True
            Search(
                self.spec, step, self.study_dir, overrides, self.storage, self.worker_id, self.threads
            ).run()
            return True
        return False

    def _try(self, pc: PlannedCell) -> bool:
        """Claim and run one cell; True when this worker ran it (the plan must then be redone)."""
        claim = self.claims.try_claim(pc.key)
        if claim is None:
            return False
        try:
            if cell_state(self.study_dir, pc.key) in ("done", "failed"):
                return False  # finished by another worker between our plan and our claim
            self._execute(pc, claim)
        finally:
            claim.release()
        return True

    def _execute(self, pc: PlannedCell, claim: Claim) -> None:
        run_dir = self.study_dir / "runs" / pc.key
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            run_cell(pc, run_dir, self.threads, [ClaimGuard(claim)])
        except ClaimLost:
            print(
                f"[{self.worker_id}] {pc.key}: claim taken over by another worker; left to it",
                file=sys.stderr,
            )
        except Exception as exc:  # any failure stays with its cell; the other cells go on
            message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, UserError) else str(exc)
            write_json(run_dir / "error.json", {
                "status": "failed", "error": message, "worker": self.worker_id,
                "traceback": traceback.format_exc(), "time": time.time(),
            })  # fmt: skip
            print(f"[{self.worker_id}] cell {pc.key} failed: {message}", file=sys.stderr, flush=True)
        else:
            print_cell_digest(self.worker_id, pc.key, run_dir)

    def _report_resolution_errors(self, plan: list[PlannedCell]) -> None:
        for pc in plan:
            if pc.error and pc.name not in self.reported:
                self.reported.add(pc.name)
                print(f"[{self.worker_id}] cell {pc.name} failed: {pc.error}", file=sys.stderr, flush=True)

    def _watch_parent(self) -> None:
        while os.getppid() == self.parent:
            time.sleep(1.0)
        os._exit(137)  # the coordinator died (SIGKILL, power loss): stop like it did


def print_cell_digest(worker_id: str, key: str, run_dir: Path) -> None:
    """``cell KEY done``, the cell's test headline, then one line per warning of its report.

    Printed as each cell finishes (stdout, as ``smallvision run`` prints them), so a study's
    degenerate cells show up in the log while the others still train.
    """
    from smallvision.report.digest import headline, warnings

    print(f"[{worker_id}] cell {key} done", flush=True)
    metrics = read_run_metrics(run_dir)
    line = headline(metrics) if metrics is not None else ""
    if line:
        print(f"[{worker_id}] cell {key} test: {line}", flush=True)
    try:
        found = warnings(run_dir)
    except Exception as exc:  # the cell is done either way; say why its checks are missing
        print(f"[{worker_id}] cell {key}: its report's checks failed: {type(exc).__name__}: {exc}",
              file=sys.stderr, flush=True)  # fmt: skip
        return
    for text in found:
        print(f"[{worker_id}] cell {key} warning: {text}", flush=True)


def with_threads(cfg: RunConfig, threads: int | None) -> RunConfig:
    """``cfg`` with ``train.threads`` set to ``threads`` unless the cell sets it itself."""
    if threads is None or cfg.train.threads is not None:
        return cfg
    return build_config(apply_overrides(cfg.model_dump(mode="json"), {"train.threads": threads}))


def run_cell(pc: PlannedCell, run_dir: Path, threads: int | None, callbacks: list) -> None:
    """Train (or continue, or fit the baseline of) one cell in its run directory."""
    from smallvision.study.resume import resume_run
    from smallvision.study.run import run_config

    cfg = with_threads(pc.config, threads)
    if pc.baseline is not None:
        from smallvision.evaluate.baselines import run_baseline  # built by the baselines work

        run_baseline(cfg, pc.baseline, run_dir)
    elif (run_dir / "config.yaml").is_file():
        from smallvision.rundir import load_run

        resume_run(load_run(run_dir), callbacks)  # killed mid-training: continue from checkpoints/last.pt
    else:
        run_config(cfg, run_dir=run_dir, callbacks=callbacks)
