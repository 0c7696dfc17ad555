"""Callbacks for the trainer's named events: history file, checkpoints, progress bar."""

from __future__ import annotations

import csv
import os
import sys
import threading
from pathlib import Path

from smallvision.train.checkpoint import serialize, write_atomic
from smallvision.train.events import Callback, EpochRecord
from smallvision.train.trainer import Trainer


class HistoryCSV(Callback):
    """Rewrites ``history.csv`` after every epoch (one row per epoch; a killed run keeps its rows)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def after_epoch(self, trainer: Trainer, record: EpochRecord) -> None:
        write_history(self.path, trainer.history)  # the whole history: a resumed run has earlier rows


def write_history(path: Path, history: list[dict]) -> None:
    columns: list[str] = []
    for row in history:
        columns += [k for k in row if k not in columns]
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(history)
    os.replace(tmp, path)


class Checkpoint(Callback):
    """Each epoch: ``last.pt`` (``Trainer.state_dict()``); on improvement: ``best.pt``.

    Both are written atomically, so a kill mid-write leaves the previous file intact. The state is
    serialised at the end of its epoch (a copy of every tensor as it is then) and written to disk by
    a background thread while the next epoch trains: the file writes and fsyncs, most of a
    checkpoint's cost, overlap with training. One epoch's files are on disk before the next epoch's
    are written, and all of them when ``fit`` ends; a write that failed is raised at the next
    checkpoint or at the end. A kill before an epoch's files are on disk leaves the previous epoch's,
    from which ``resume`` recomputes the same numbers.

    Args:
        directory: the run's ``checkpoints/`` folder.
        meta: what a checkpoint must carry to be used alone (config, normalisation, head kinds).
    """

    def __init__(self, directory: str | Path, meta: dict) -> None:
        self.directory = Path(directory)
        self.meta = meta
        self._writer: threading.Thread | None = None
        self._error: BaseException | None = None

    def after_epoch(self, trainer: Trainer, record: EpochRecord) -> None:
        files = []
        if record.is_best:  # the evaluated weights: the EMA's when train.ema is on
            files.append((serialize({**trainer.best_state_dict(), **self.meta}), self.directory / "best.pt"))
        files.append((serialize({**trainer.state_dict(), **self.meta}), self.directory / "last.pt"))
        self.wait()  # the previous epoch's files land before these replace them
        self._writer = threading.Thread(target=self._write, args=(files,), name="checkpoint writer")
        self._writer.start()  # not a daemon: the interpreter waits for it before exiting

    def _write(self, files: list[tuple[bytes, Path]]) -> None:
        try:
            for payload, path in files:
                write_atomic(payload, path)
        except BaseException as exc:  # raised in the training thread by wait()
            self._error = exc

    def wait(self) -> None:
        """Block until the files of the last epoch are on disk; raise the error of a failed write."""
        if self._writer is not None:
            self._writer.join()
            self._writer = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    def after_fit(self, trainer: Trainer) -> None:
        self.wait()


class Progress(Callback):
    """A rich progress bar over epochs, silent when stdout is not a terminal."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stdout.isatty()
        self.bar = None

    def before_fit(self, trainer: Trainer) -> None:
        if not self.enabled:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("epoch {task.completed}/{task.total}"),
            BarColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task("", total=trainer.cfg.epochs, completed=trainer.epoch)

    def after_epoch(self, trainer: Trainer, record: EpochRecord) -> None:
        if self.bar is None:
            return
        row = record.row()
        shown = [k for k in row if k in ("train/loss", "val/loss") or k.endswith("/accuracy")]
        self.bar.update(self.task, advance=1, description="  ".join(f"{k} {row[k]:.4f}" for k in shown))

    def after_fit(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
