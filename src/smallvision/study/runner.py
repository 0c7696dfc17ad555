"""``smallvision study``: run a study into its directory with N workers, resume it, finish it.

The study directory ``studies/<name>-<stamp>/`` holds everything, so that a run can be resumed
(``study resume DIR``), extended with an edited file (``--dir DIR``), or shared by workers on
several machines (``study work DIR --worker-id ID``):

- ``study.yaml`` the file as given (an earlier one is kept as ``study.<n>.yaml``), ``study.json``
  the command-line overrides, ``study.resolved.yaml`` the cells with their ids;
- ``runs/<cell_id>/`` one run directory per cell; ``claims/`` the workers' claims (``study.claims``);
- ``search/<step>/`` a step's Optuna search: trial runs, ``trials.csv``, ``best.json`` (``study.search``);
- ``selections.json``, ``results.csv``, ``summary.md`` (``study.results``);
- ``report.html`` the study report (``report.study_page``), unless the base sets ``report.enabled: false``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from smallvision.config import read_yaml
from smallvision.errors import UserError
from smallvision.rundir import new_run_dir, write_json
from smallvision.study.claims import DEFAULT_STALE_AFTER
from smallvision.study.search import STORAGE_ENV, check_storage
from smallvision.study.spec import StudySpec, load_study
from smallvision.study.timings import record_timing
from smallvision.study.worker import PlannedCell, Worker, cell_state


@dataclass
class StudyResult:
    """A finished study: its directory and the final state of every cell."""

    dir: Path
    cells: list[PlannedCell]

    @property
    def failed(self) -> list[PlannedCell]:
        return [c for c in self.cells if c.state == "failed"]

    @property
    def unfinished(self) -> list[PlannedCell]:
        """Cells neither done nor failed: a worker process died before the end."""
        return [c for c in self.cells if c.state not in ("done", "failed")]


def run_study(
    path: str | Path | dict,
    overrides: list[str] | None = None,
    workers: int = 1,
    directory: str | Path | None = None,
    stale_after: float = DEFAULT_STALE_AFTER,
    progress: bool = True,
    storage: str | None = None,
) -> StudyResult:
    """Run a study file into a new study directory (or into ``directory``, reusing its finished cells).

    Args:
        path: the study file (or a mapping of one).
        overrides: ``key=value`` overrides of the base run config.
        workers: worker processes; each gets ``max(1, cores // workers)`` torch threads.
        directory: an existing study directory to continue with this (possibly edited) file.
        stale_after: seconds without heartbeat after which a worker's claim is taken over.
        progress: show the progress display (plain lines when stdout is not a terminal).
        storage: a ``postgresql://`` URL the searches share (None: a journal file per search).

    Raises:
        UserError: the study file is invalid or the storage unreachable (nothing has trained), or
            ``directory`` is not a study.
    """
    overrides = list(overrides or [])
    spec = load_study(path, overrides)  # the whole file is checked before anything trains
    check_storage(storage)
    if directory is None:
        study_dir = new_run_dir(spec.output_dir, spec.name)
    else:
        study_dir = _existing(directory)
    _save_file(study_dir, path)
    # the base as read (a relative base file resolved) and the name: resume and workers need no file
    file = None if isinstance(path, dict) else str(path)  # for the exact command (study.results_doc)
    saved = {"overrides": overrides, "name": spec.name, "base": spec.base, "file": file}
    write_json(study_dir / "study.json", saved)
    return execute(spec, study_dir, workers, stale_after, progress, storage)


def resume_study(
    directory: str | Path,
    file: str | Path | None = None,
    workers: int = 1,
    stale_after: float = DEFAULT_STALE_AFTER,
    progress: bool = True,
    storage: str | None = None,
) -> StudyResult:
    """Finish a study directory: skip done cells, continue killed ones, retry failed ones.

    With ``file``, the (edited) study file replaces the directory's: cells with unchanged ids are kept.
    """
    study_dir = _existing(directory)
    if file is not None:
        return run_study(file, load_overrides(study_dir), workers, study_dir, stale_after, progress, storage)
    spec = load_spec(study_dir)
    check_storage(storage)
    return execute(spec, study_dir, workers, stale_after, progress, storage)


def _existing(directory: str | Path) -> Path:
    study_dir = Path(directory)
    if not (study_dir / "study.yaml").is_file():
        raise UserError(
            f"{str(study_dir)!r} is not a study directory (no study.yaml); give studies/<name>-<stamp>"
        )
    return study_dir


def _saved(study_dir: Path) -> dict:
    path = study_dir / "study.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def load_overrides(study_dir: Path) -> list[str]:
    return _saved(study_dir).get("overrides", [])


def load_spec(study_dir: Path) -> StudySpec:
    """The study as its directory defines it: ``study.yaml``, its saved base and overrides.

    The base saved when the study started replaces a ``base:`` file path (relative to a study file
    that may be elsewhere, or edited since); re-applying the overrides to it changes nothing.
    """
    raw, saved = read_yaml(study_dir / "study.yaml"), _saved(study_dir)
    if "base" in saved:
        raw["base"] = saved["base"]
    raw.setdefault("name", saved.get("name"))
    return load_study(raw, saved.get("overrides", []))


def _save_file(study_dir: Path, path: str | Path | dict) -> None:
    """``study.yaml`` as given; a different earlier one is kept as ``study.<n>.yaml``, never lost."""
    text = yaml.safe_dump(path, sort_keys=False) if isinstance(path, dict) else Path(path).read_text()
    target = study_dir / "study.yaml"
    if target.is_file() and target.read_text() != text:
        n = 1
        while (study_dir / f"study.{n}.yaml").exists():
            n += 1
        target.rename(study_dir / f"study.{n}.yaml")
    target.write_text(text)


def retry_failed(study_dir: Path) -> None:
    """Move the failed cells' run directories aside (``runs/<id>.failed-<n>``) so they run again."""
    runs = study_dir / "runs"
    if not runs.is_dir():
        return
    for run_dir in sorted(runs.iterdir()):
        if "." not in run_dir.name and cell_state(study_dir, run_dir.name) == "failed":
            n = 1
            while (runs / f"{run_dir.name}.failed-{n}").exists():
                n += 1
            run_dir.rename(runs / f"{run_dir.name}.failed-{n}")


def threads_per_worker(workers: int) -> int:
    """Torch threads for each of ``workers`` processes so the cores are not oversubscribed."""
    return max(1, (os.cpu_count() or 1) // workers)


def execute(
    spec: StudySpec,
    study_dir: Path,
    workers: int,
    stale_after: float,
    progress: bool,
    storage: str | None = None,
) -> StudyResult:
    """Run every unfinished cell with ``workers`` workers, then write the result files."""
    from smallvision.study.progress import ProgressDisplay

    if workers < 1:
        raise UserError(f"--workers {workers}: expected at least 1")
    retry_failed(study_dir)
    threads = threads_per_worker(workers)
    started, start = time.time(), time.perf_counter()
    # the extra workers start before the display's thread: a process forks cleanly only while it
    # has one thread (start_method)
    display = ProgressDisplay(spec, study_dir, stale_after, enabled=progress)
    procs = start_workers(study_dir, workers - 1, threads, stale_after, storage)
    try:
        display.start()
        plan = _run_workers(spec, study_dir, procs, threads, stale_after, storage)
    except BaseException:
        for p in procs:
            p.terminate()
        raise
    finally:
        display.stop()
    finish_files(spec, study_dir, plan)
    record_timing(study_dir, started, time.perf_counter() - start, workers, plan)
    return StudyResult(study_dir, plan)


def finish_files(spec: StudySpec, study_dir: Path, plan: list[PlannedCell]) -> None:
    """The result files, then the study report (``report.html``) unless the base's
    ``report.enabled`` is false. The results are written first and kept: a report that fails
    is a warning naming the command that rebuilds it, not a lost study."""
    # imported here: the statistics (SciPy) are the writer's, a worker process starts without them
    from smallvision.study.results import write_all

    write_all(spec, study_dir, plan)
    if not (spec.base.get("report") or {}).get("enabled", True):
        return
    from smallvision.report.study_page import build_study_report

    try:
        build_study_report(study_dir)
    except Exception as exc:  # hours of training must not end in a traceback
        print(
            f"warning: the study report failed ({type(exc).__name__}: {exc}); "
            f"rebuild it with: smallvision report {study_dir}",
            file=sys.stderr,
        )


def _run_workers(
    spec: StudySpec,
    study_dir: Path,
    procs: list[WorkerProcess],
    threads: int,
    stale_after: float,
    storage: str | None,
) -> list[PlannedCell]:
    """This process is worker ``w1``, beside the extra workers ``procs`` (``start_workers``).

    The coordinator works too instead of only waiting: it has the data sources and the model code
    imported already. The claim files decide who runs what, so the split between the in-process
    and the other workers needs no coordination.
    """
    from smallvision.study.worker import plan_cells

    Worker(spec, study_dir, "w1", threads, stale_after, storage=storage).run()
    for p in procs:
        p.wait()
    # w1 returns once every cell is finished, but re-read: a worker may still have been writing
    return plan_cells(spec, study_dir)


WORKER_START_ENV = "SMALLVISION_WORKER_START"


def start_method(threads: int) -> str:
    """How the coordinator starts its extra workers: ``fork`` or ``spawn``.

    A forked worker starts in milliseconds with torch and smallvision already imported; a spawned
    one (``smallvision study work`` in a fresh interpreter) pays the imports again, a few seconds
    that a study of short cells feels. Fork is used on Linux when each worker trains on one thread:
    the coordinator forks before it trains or starts any thread of its own, and a child that never
    enters a parallel region is unaffected by the OpenMP pool a fork does not copy. With several
    threads per worker, elsewhere than Linux, or with ``SMALLVISION_WORKER_START=spawn``, workers
    are spawned.
    """
    if os.environ.get(WORKER_START_ENV) in ("fork", "spawn"):
        return os.environ[WORKER_START_ENV]
    return "fork" if sys.platform.startswith("linux") and threads == 1 else "spawn"


class WorkerProcess:
    """An extra worker of this coordinator: a forked process or a spawned ``smallvision study work``."""

    def __init__(self, process: multiprocessing.Process | subprocess.Popen) -> None:
        self.process = process

    def wait(self) -> int | None:
        if isinstance(self.process, subprocess.Popen):
            return self.process.wait()
        self.process.join()
        return self.process.exitcode

    def terminate(self) -> None:
        self.process.terminate()


def start_workers(
    study_dir: Path, n: int, threads: int, stale_after: float, storage: str | None
) -> list[WorkerProcess]:
    """``n`` extra workers on the directory, ids ``w2`` onwards, forked or spawned (``start_method``)."""
    if n < 1:
        return []
    parent = os.getpid()
    if start_method(threads) == "fork":
        context = multiprocessing.get_context("fork")
        procs = []
        for i in range(n):
            args = (str(study_dir), f"w{i + 2}", threads, stale_after, parent, storage)
            process = context.Process(target=_forked_work, args=args, name=f"smallvision worker w{i + 2}")
            process.start()
            procs.append(WorkerProcess(process))
        return procs
    command = [sys.executable, "-m", "smallvision", "study", "work", str(study_dir)]
    common = ["--threads", str(threads), "--stale-after", str(stale_after), "--parent", str(parent)]
    # the URL travels in the environment, not the command line, where ps would show its password
    env = {**os.environ, STORAGE_ENV: storage} if storage else None
    return [
        WorkerProcess(subprocess.Popen([*command, "--worker-id", f"w{i + 2}", *common], env=env))
        for i in range(n)
    ]


def _forked_work(
    directory: str, worker_id: str, threads: int, stale_after: float, parent: int, storage: str | None
) -> None:
    """A forked worker's body: ``work`` as ``smallvision study work --parent`` runs it."""
    work(directory, worker_id, threads, stale_after, parent=parent, storage=storage)


def work(
    directory: str | Path,
    worker_id: str,
    threads: int | None = None,
    stale_after: float = DEFAULT_STALE_AFTER,
    parent: int | None = None,
    storage: str | None = None,
) -> StudyResult:
    """One worker on a study directory (``smallvision study work``), e.g. on another machine.

    The worker started by a coordinator (``parent``) leaves the result files to it; an
    independent one writes them when the study is complete.
    """
    study_dir = _existing(directory)
    spec = load_spec(study_dir)
    check_storage(storage)
    plan = Worker(spec, study_dir, worker_id, threads, stale_after, parent, storage).run()
    if parent is None:
        finish_files(spec, study_dir, plan)
    return StudyResult(study_dir, plan)
