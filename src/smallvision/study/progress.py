"""The study progress display: cells done / running / failed / left and the running cells' epochs.

It reads the study directory like any worker (claims, ``metrics.json``, ``history.csv``), so it
shows the work of every worker, local or not. A live rich table on a terminal; otherwise one plain
line whenever the counts change, and every 30 s while only epochs move (logs stay readable).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from smallvision.study.claims import Claims
from smallvision.study.spec import StudySpec
from smallvision.study.worker import PlannedCell, plan_cells, read_history

REFRESH_SECONDS = 1.0
PLAIN_EVERY = 30.0  # seconds between plain lines that only show epochs moving


def counts(plan: list[PlannedCell]) -> dict[str, int]:
    """done / running / failed / left (pending or waiting for an earlier step)."""
    out = {"done": 0, "running": 0, "failed": 0, "left": 0}
    for pc in plan:
        out[pc.state if pc.state in out else "left"] += 1
    return out


def running_epochs(study_dir: Path, plan: list[PlannedCell]) -> list[tuple[str, int, int]]:
    """(cell, epochs finished, epochs planned) of each running cell."""
    return [
        (pc.key, len(read_history(study_dir / "runs" / pc.key)), pc.config.train.epochs)
        for pc in plan
        if pc.state == "running"
    ]


def status_line(plan: list[PlannedCell], study_dir: Path) -> str:
    c = counts(plan)
    line = f"cells: {c['done']} done, {c['running']} running, {c['failed']} failed, {c['left']} left"
    epochs = "  ".join(f"{key} epoch {done}/{total}" for key, done, total in running_epochs(study_dir, plan))
    return f"{line}  {epochs}".rstrip()


class ProgressDisplay:
    """A thread that redraws the study's progress every second until :meth:`stop`."""

    def __init__(self, spec: StudySpec, study_dir: Path, stale_after: float, enabled: bool = True) -> None:
        self.spec = spec
        self.study_dir = study_dir
        self.enabled = enabled
        self.claims = Claims(study_dir / "claims", "progress", stale_after)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last = ""
        self._last_line = ""
        self._printed = 0.0

    def start(self) -> ProgressDisplay:
        if self.enabled:
            self._thread = threading.Thread(target=self._loop, daemon=True, name="study progress")
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        if sys.stdout.isatty():
            self._live()
            return
        while True:
            self._plain()
            if self._stop.wait(REFRESH_SECONDS):
                self._plain()
                return

    def _plain(self) -> None:
        plan = plan_cells(self.spec, self.study_dir, self.claims)
        key = f"cells: {counts(plan)}"
        line = status_line(plan, self.study_dir)
        now = time.monotonic()
        # a line when a count changes, and at most every PLAIN_EVERY seconds for epochs alone (logs
        # stay readable, and a long cell still shows that it moves)
        if key != self._last or (line != self._last_line and now - self._printed >= PLAIN_EVERY):
            self._last, self._last_line, self._printed = key, line, now
            print(line, flush=True)

    def _live(self) -> None:
        from rich.live import Live
        from rich.table import Table

        def table() -> Table:
            plan = plan_cells(self.spec, self.study_dir, self.claims)
            c = counts(plan)
            t = Table(title=f"study {self.spec.name}: {c['done']} done, {c['running']} running, "
                      f"{c['failed']} failed, {c['left']} left")  # fmt: skip
            t.add_column("running cell")
            t.add_column("epoch")
            for key, done, total in running_epochs(self.study_dir, plan):
                t.add_row(key, f"{done}/{total}")
            return t

        with Live(table(), refresh_per_second=2, transient=False) as live:
            while not self._stop.wait(REFRESH_SECONDS):
                live.update(table())
            live.update(table())
