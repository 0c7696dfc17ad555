"""One MLflow run per training run: params, each epoch's history columns, the final figures and
the run directory's files as artifacts.

The store defaults to a local SQLite file beside the folder of run directories
(``sqlite:///mlruns.db`` for ``runs/``; ``<study dir>/mlruns.db`` for a study's cells) with its
artifacts in ``mlartifacts/`` beside it; ``mlflow ui --backend-store-uri sqlite:///mlruns.db``
shows them. The client API is used (no global active run), so runs in one process never mix.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

from smallvision.rundir import MetricsRecord, RunPaths, write_json
from smallvision.track.base import Tracker, final_metrics
from smallvision.track.config import MLflowConfig
from smallvision.train.events import EpochRecord

# MLflow's limits per log_batch call and on a parameter's value
PARAMS_PER_BATCH, METRICS_PER_BATCH, PARAM_LENGTH = 100, 1000, 6000
# the run directory's files kept with the MLflow run (not the checkpoints: they can be large)
ARTIFACTS = ("config", "env", "history", "metrics", "predictions", "report")
_STATUS = {"failed": "FAILED", "interrupted": "KILLED"}


def _client(uri: str):
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # nothing leaves the machine
    from mlflow.tracking import MlflowClient

    # creating or upgrading a store's tables is logged at INFO on every new store: not our user's news
    for name in ("mlflow.store.db.utils", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if not uri.startswith("sqlite:///"):
        return MlflowClient(tracking_uri=uri)
    # a study's workers open one new SQLite store together: one creates its tables, the others wait
    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)  # the store is created on first use
    return client


def default_uri(run_dir: Path) -> str:
    """``sqlite:///<dir>/mlruns.db``, ``<dir>`` holding the folder of run directories."""
    return f"sqlite:///{(Path(run_dir).resolve().parent.parent / 'mlruns.db').as_posix()}"


def _key(name: str) -> str:
    """A name MLflow accepts (letters, digits, ``_ - . / : space``); others become ``_``."""
    return re.sub(r"[^\w\-./ :]", "_", name)


class MLflowLogger(Tracker):
    """Logs one run through :class:`mlflow.tracking.MlflowClient`; a resumed run logs on in the same run.

    Args:
        cfg: ``track.mlflow`` (store URI, experiment name).
        run_dir: the run directory (its files become artifacts; ``tracking.json`` records the run id).
        name: the experiment when ``cfg.experiment`` is not set (the run's name).
        params: the run's settings, logged as MLflow params.
    """

    def __init__(self, cfg: MLflowConfig, run_dir: Path, name: str, params: dict[str, Any]) -> None:
        self.paths = RunPaths(Path(run_dir))
        self.uri = cfg.uri or default_uri(run_dir)
        self.experiment = cfg.experiment or name
        self.params = params
        self.client = None
        self.run_id: str | None = None

    def start(self) -> None:
        self.client = _client(self.uri)
        saved = self._saved_run()
        if saved is not None:  # resumed: the MLflow run of the first session goes on
            self.run_id = saved
            self.client.update_run(saved, status="RUNNING")
            return
        run = self.client.create_run(self._experiment_id(), run_name=self.paths.dir.name,
                                     tags={"smallvision.run_dir": str(self.paths.dir.resolve())})  # fmt: skip
        self.run_id = run.info.run_id
        write_json(self.paths.tracking, {"mlflow": {"uri": self.uri, "run_id": self.run_id}})
        self._log_params()

    def _saved_run(self) -> str | None:
        try:
            saved = json.loads(self.paths.tracking.read_text())["mlflow"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return saved.get("run_id") if saved.get("uri") == self.uri else None

    def _experiment_id(self) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        location = None
        if self.uri.startswith("sqlite:///"):  # the artifacts beside the store, not in the working directory
            location = (Path(self.uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()
        try:
            return self.client.create_experiment(self.experiment, artifact_location=location)
        except MlflowException:  # another worker created it first
            found = self.client.get_experiment_by_name(self.experiment)
            if found is None:
                raise
            return found.experiment_id

    def _log_params(self) -> None:
        from mlflow.entities import Param

        items = [Param(_key(k), str(v)[:PARAM_LENGTH]) for k, v in self.params.items()]
        for i in range(0, len(items), PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + PARAMS_PER_BATCH])

    def _log_metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        items = [Metric(_key(k), float(v), stamp, step) for k, v in values.items()]
        for i in range(0, len(items), METRICS_PER_BATCH):
            self.client.log_batch(self.run_id, metrics=items[i : i + METRICS_PER_BATCH])

    def after_epoch(self, trainer, record: EpochRecord) -> None:
        self._log_metrics({k: v for k, v in record.row().items() if k != "epoch"}, record.epoch)

    def finish(self, run_dir: Path, metrics: MetricsRecord) -> None:
        self._log_metrics(final_metrics(metrics), metrics.epochs_run or 0)
        for name in ARTIFACTS:
            path = getattr(self.paths, name)
            if path.is_file():
                self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id, "FINISHED")

    def abort(self, status: str) -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, _STATUS.get(status, "FAILED"))
