"""A study step's ``search:``: Optuna trials as runs, a pruner on the validation curve, the best retrained.

Each trial is one run, ``search/<step>/trial-<n>/`` in the study directory, trained from the base
with the step's ``set`` and the sampled values at the step's first seed. Its objective is the
search metric at the epoch whose weights the run keeps (the best epoch); every epoch's value is
reported to the trial so the pruner can stop a poor one early (state PRUNED, ``pruned.json``).

Several workers share one search (see :mod:`smallvision.study.search_storage`): ``trials`` is the
total over all of them, enforced under a lock that spans counting and asking. A trial counts when it
is running, complete, pruned or failed in training; a trial whose worker died (no heartbeat for
``GRACE_SECONDS``) is failed and re-queued with the same values (``RetryHeartbeatStaleTrialCallback``), and
only its retry counts. When the search is over, ``trials.csv`` and ``best.json`` record it and
:func:`best_cells` gives the best values as variant ``search-best`` over the step's seeds.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import warnings
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smallvision.errors import UserError
from smallvision.study.search_records import (
    STORABLE,
    VARIANT,
    SearchResult,
    best_cells,
    read_best,
    record_unrunnable,
    search_cells,
    search_dir,
    write_records,
)
from smallvision.study.search_storage import (
    GRACE_SECONDS,
    HEARTBEAT_SECONDS,
    AskLock,
    StorageInfo,
    check_reachable,
    journal_heartbeat,
    open_storage,
    record_storage,
    retry_callback,
    storage_info,
)
from smallvision.study.spec import Cell, SearchParam, SearchSpec, Step, StudySpec, cell_config
from smallvision.study.spec_refs import higher_is_better
from smallvision.train.events import Callback

__all__ = [
    "VARIANT",
    "Search",
    "SearchResult",
    "best_cells",
    "check_storage",
    "read_best",
    "record_unrunnable",
    "search_cells",
    "search_dir",
    "study_name",
    "write_records",
]

POLL_SECONDS = 0.5
STORAGE_ENV = "SMALLVISION_STORAGE"  # what --storage defaults to (keeps a password off the command line)
SCHEMA_LOCK = "smallvision.optuna-schema"  # one database-wide lock around table creation


def study_name(study_dir: str | Path, step: str) -> str:
    """The Optuna study name: the study directory's name (``<name>-<stamp>``) and the step.

    The stamp keeps two runs of one study file apart in a shared database; workers of one study
    directory (shared, or copied to another machine) agree on it.
    """
    return f"{Path(study_dir).resolve().name}.{step}"


def check_storage(url: str | None) -> None:
    """Refuse a bad or unreachable ``--storage`` before anything trains (one-line UserError)."""
    if url is not None:
        check_reachable(storage_info(url, Path(".")))


@dataclass
class Search:
    """One worker on the search of ``step`` (any number of them may run at once).

    Args:
        spec: the study.
        step: a step with a ``search``.
        study_dir: the study directory.
        overrides: the step's ``set`` with its references resolved (the runner resolves them).
        storage: a ``postgresql://`` URL, or None for the journal file in the study directory.
        worker_id: recorded with each trial; also varies the sampler's seed between workers.
        threads: ``train.threads`` for trials that do not set it.
    """

    spec: StudySpec
    step: Step
    study_dir: Path
    overrides: Mapping[str, Any]
    storage: str | None = None
    worker_id: str = "w1"
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.step.search is None:
            raise UserError(f"{self.spec.origin}: step {self.step.name!r} has no search")
        self.search: SearchSpec = self.step.search
        self.dir = search_dir(self.study_dir, self.step.name)
        self.name = study_name(self.study_dir, self.step.name)
        self.info: StorageInfo = storage_info(self.storage, self.dir)

    def run(self) -> SearchResult:
        """Run trials until the search has its total, wait for other workers' trials, record it."""
        check_reachable(self.info)  # before anything trains
        record_storage(self.info, self.dir)
        lock = AskLock(self.info, self.name, self.dir)
        try:
            study = self._open_study(lock)
            while True:
                with lock:
                    self._fail_stale(study)
                    action = next_action(study, self.search.trials)
                    if action == "run":
                        # the objective releases the lock once its trial exists: training runs outside it
                        study.optimize(lambda t: self._objective(t, lock), n_trials=1, catch=(Exception,))
                if action == "done":
                    break
                if action == "wait":  # other workers' trials are still running (or may die)
                    time.sleep(POLL_SECONDS)
        finally:
            lock.close()
        return write_records(study, self.dir, self.step.name, self.search)

    def _open_study(self, lock: AskLock) -> Any:
        # workers that create Optuna's tables in a new database at once collide (duplicate key)
        setup = AskLock(self.info, SCHEMA_LOCK, self.dir) if self.info.kind == "postgresql" else lock
        try:
            with setup:
                return self._study()
        finally:
            if setup is not lock:
                setup.close()

    def _study(self) -> Any:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        seed = self.search.seed
        if self.worker_id != "w1":  # equal seeds would make every worker sample the same values
            seed = (seed + zlib.crc32(self.worker_id.encode())) % 2**32
        sampler = (
            optuna.samplers.TPESampler(seed=seed, constant_liar=True)
            if self.search.sampler == "tpe"
            else optuna.samplers.RandomSampler(seed=seed)
        )
        pruner = (
            optuna.pruners.MedianPruner() if self.search.pruner == "median" else optuna.pruners.NopPruner()
        )
        self._storage = open_storage(self.info)
        return optuna.create_study(
            storage=self._storage,
            study_name=self.name,
            direction="maximize" if higher_is_better(self.search.metric) else "minimize",
            sampler=sampler,
            pruner=pruner,
            load_if_exists=True,
        )

    def _fail_stale(self, study: Any) -> None:
        """Fail (and re-queue) running trials whose worker stopped beating; RDB does it in Optuna."""
        import optuna
        from optuna.trial import TrialState

        if self.info.kind != "journal":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            return
        now = time.time()
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            beat = t.user_attrs.get("heartbeat", t.datetime_start.timestamp() if t.datetime_start else now)
            # the storage addresses trials by their id, which FrozenTrial keeps private (as Optuna's own
            # fail_stale_trials uses it); False means another worker failed it first
            if now - beat > GRACE_SECONDS and self._storage.set_trial_state_values(
                t._trial_id, TrialState.FAIL
            ):
                retry_callback()(study, self._storage.get_trial(t._trial_id))

    def _objective(self, trial: Any, lock: AskLock) -> float:
        lock.release()
        stop = threading.Event()
        if self.info.kind == "journal":
            journal_heartbeat(trial)
            threading.Thread(target=_beat, args=(trial, stop), daemon=True).start()
        run_dir = self.dir / f"trial-{trial.number}"
        trial.set_user_attr("worker", self.worker_id)
        trial.set_user_attr("run_dir", str(run_dir.relative_to(self.study_dir)))
        try:
            params = {p.key: suggest(trial, p) for p in self.search.params.values()}
            return self._train(trial, params, run_dir)
        except Exception as exc:
            import optuna

            if not isinstance(exc, optuna.TrialPruned):
                message = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
                trial.set_user_attr("error", message)  # a failure in training counts as a trial
                print(f"[{self.worker_id}] trial {trial.number} failed: {message}", file=sys.stderr)
            raise
        finally:
            stop.set()

    def _train(self, trial: Any, params: dict[str, Any], run_dir: Path) -> float:
        from smallvision.study.run import run_config

        seed = self.step.seeds[0] if self.step.seeds else 0
        overrides = {**self.overrides, **params, "seed": seed, "seeds": None}
        if self.threads is not None and "train.threads" not in overrides:
            overrides["train.threads"] = self.threads
        cell = Cell(self.step.name, f"trial-{trial.number}", None, params, seed, overrides)
        cfg = cell_config(self.spec, cell, overrides)
        reporter = ReportToTrial(trial, self.search.metric)
        try:
            run_config(cfg, run_dir=run_dir, callbacks=[reporter])
        except Exception as exc:
            import optuna

            if isinstance(exc, optuna.TrialPruned):
                pruned = {"status": "pruned", "epoch": reporter.epoch, "value": reporter.last}
                (run_dir / "pruned.json").write_text(json.dumps(pruned, indent=2) + "\n")
            raise
        if reporter.value is None:
            raise UserError(f"trial {trial.number}: {self.search.metric} was never logged; see {run_dir}")
        return reporter.value


def _beat(trial: Any, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        journal_heartbeat(trial)


class ReportToTrial(Callback):
    """Trainer callback: report each epoch's search metric to the trial; prune when the pruner says.

    ``value`` is the metric at the best epoch so far (the weights the run keeps), the objective.
    """

    def __init__(self, trial: Any, metric: str) -> None:
        self.trial, self.metric = trial, metric
        self.value: float | None = None
        self.last: float | None = None
        self.epoch = 0

    def after_epoch(self, trainer: Any, record: Any) -> None:
        import optuna

        row = record.row()
        if self.metric not in row:
            logged = ", ".join(k for k in row if k.startswith("val/")) or "none"
            raise UserError(f"search.metric {self.metric!r} is not logged per epoch (logged: {logged})")
        self.last, self.epoch = float(row[self.metric]), record.epoch
        if record.is_best or self.value is None:
            self.value = self.last
        self.trial.report(self.last, record.epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"epoch {record.epoch}: {self.metric} = {self.last:.6g}")


def suggest(trial: Any, p: SearchParam) -> Any:
    """The trial's value of one searched key (a choice that Optuna cannot store goes by its JSON)."""
    if p.kind == "categorical":
        if all(isinstance(c, STORABLE) for c in p.choices):
            return trial.suggest_categorical(p.key, list(p.choices))
        names = [json.dumps(c, sort_keys=True) for c in p.choices]
        return p.choices[names.index(trial.suggest_categorical(p.key, names))]
    if p.kind == "int":
        return trial.suggest_int(p.key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
    return trial.suggest_float(p.key, float(p.low), float(p.high), step=p.step, log=p.log)


def counted(trial: Any) -> bool:
    """Whether a trial uses up one of the search's ``trials``: not one whose worker died (it is retried)."""
    from optuna.trial import TrialState

    live = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED)
    return trial.state in live or (trial.state == TrialState.FAIL and "error" in trial.user_attrs)


def next_action(study: Any, total: int) -> str:
    """``run`` (a retry waits, or fewer than ``total`` trials count), ``wait`` (others run), or ``done``."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    if any(t.state == TrialState.WAITING for t in trials) or sum(map(counted, trials)) < total:
        return "run"
    return "wait" if any(t.state == TrialState.RUNNING for t in trials) else "done"
