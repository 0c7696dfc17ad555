"""Exactly-once cells across workers, through the study directory alone (no server).

A worker owns a cell while ``claims/<key>.claim`` exists and holds its token. The protocol:

- **claim**: ``os.open(claims/<key>.claim, O_CREAT | O_EXCL)``, which one process wins even when
  several race, on one machine or over a shared folder; the file carries the worker id, pid, host,
  time and a fresh random token.
- **heartbeat**: while it works, the owner touches its claim file every ``heartbeat`` seconds from
  a thread; the file's modification time is the heartbeat.
- **takeover**: a claim whose heartbeat is older than ``stale_after`` belongs to a dead worker (so
  does one made on this host by a process id that no longer exists: no need to wait). The
  taker first creates ``<key>.takeover-<token>`` with O_EXCL (the token names this one stale claim,
  so exactly one taker wins it, and a fresh claim made since has another token), then renames the
  stale claim to the unique ``<key>.stale-<token>`` (kept as a record), then claims as above.
- **release**: the owner removes its claim only after the cell's result is on disk, so a cell is
  either claimed, finished, or free; a worker re-checks "finished" after winning a claim.

An owner that finds its claim file gone or holding another token (it stalled past ``stale_after``
and was taken over) marks itself ``lost``; the runner then abandons the cell instead of finishing it
twice. Heartbeats compare modification times with ``time.time()``: machines sharing a folder need
clocks in step to well under ``stale_after``.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_STALE_AFTER = 60.0


def _read(path: Path) -> dict | None:
    """A claim file's content, or None when it is gone or still being written."""
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _snapshot(path: Path) -> tuple[float | None, dict | None]:
    """(age, content) of one claim file, both read through one open descriptor.

    Reading them by path one after the other could pair a stale claim's age with the content of
    the fresh claim that replaced it in between, and a second taker would then move a live claim.
    """
    try:
        with path.open("rb") as f:
            age = time.time() - os.fstat(f.fileno()).st_mtime
            raw = f.read()
    except FileNotFoundError:
        return None, None
    try:
        return age, json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return age, None


def _dead_here(info: dict) -> bool:
    """A claim made on this host by a process that no longer exists: stale without waiting."""
    if info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
        return False
    try:
        os.kill(info["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class Claim:
    """A won claim: keep it alive with :meth:`start`, give it up with :meth:`release`."""

    path: Path
    token: str
    heartbeat: float
    lost: bool = False
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Claim:
        """Start the heartbeat thread (a daemon: a killed worker stops beating, which is the point)."""
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"heartbeat {self.path.name}")
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            self.touch()

    def touch(self) -> None:
        """One heartbeat; marks the claim lost when the file is no longer ours."""
        if not self.held():
            self.lost = True
            self._stop.set()
            return
        try:
            os.utime(self.path)
        except FileNotFoundError:
            self.lost = True

    def held(self) -> bool:
        """Whether the claim file still exists and carries our token."""
        info = _read(self.path)
        return info is not None and info.get("token") == self.token

    def release(self) -> None:
        """Stop beating and remove the claim file (only when it is still ours)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.held():
            self.path.unlink(missing_ok=True)


class Claims:
    """The claims folder of a study, seen from one worker.

    Args:
        directory: the ``claims/`` folder (created).
        worker_id: this worker's name, written into its claims.
        stale_after: seconds without a heartbeat after which a claim is taken over.
        heartbeat: seconds between heartbeats (default a quarter of ``stale_after``, at most 5).
    """

    def __init__(
        self, directory: Path, worker_id: str, stale_after: float = DEFAULT_STALE_AFTER, heartbeat=None
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.worker_id = worker_id
        self.stale_after = stale_after
        self.heartbeat = heartbeat if heartbeat is not None else min(5.0, stale_after / 4)

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.claim"

    def try_claim(self, key: str) -> Claim | None:
        """Claim ``key`` (taking over a stale claim); None when another live worker holds it."""
        claim = self._create(key)
        if claim is None and self._take_over(key):
            claim = self._create(key)
        return claim.start() if claim is not None else None

    def _create(self, key: str) -> Claim | None:
        path = self.path(key)
        token = uuid.uuid4().hex
        info = {
            "worker": self.worker_id,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "time": time.time(),
            "token": token,
        }
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return None
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(info))
            f.flush()
            os.fsync(f.fileno())
        return Claim(path, token, self.heartbeat)

    def _take_over(self, key: str) -> bool:
        """Move a stale claim of ``key`` aside; True when this worker did it."""
        path = self.path(key)
        age, info = _snapshot(path)
        if age is None or info is None or (age <= self.stale_after and not _dead_here(info)):
            return False
        token = info.get("token", "unknown")
        try:
            fd = os.open(self.directory / f"{key}.takeover-{token}", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False  # another worker is taking this very claim over
        os.write(fd, json.dumps({"worker": self.worker_id, "pid": os.getpid(), "time": time.time()}).encode())
        os.close(fd)
        if (_read(path) or {}).get("token") != token:
            return False  # its owner released it meanwhile; a plain claim attempt follows anyway
        try:
            os.rename(path, self.directory / f"{key}.stale-{token}")
        except FileNotFoundError:
            return False
        return True

    def holder(self, key: str) -> dict | None:
        """The live claim of ``key`` (its content and ``age`` in seconds), or None when free or stale."""
        path = self.path(key)
        age, info = _snapshot(path)
        if age is None or info is None or age > self.stale_after or _dead_here(info):
            return None
        return {**info, "age": age}
