"""Where a study step's Optuna search lives, and the lock that keeps its trial count exact.

Two storages, never SQLite (it locks under several processes, optuna#820):

- the default, a journal file ``search/<step>/journal.log`` in the study directory
  (``JournalStorage(JournalFileBackend)``): crash-safe, shared by every worker that sees the folder;
- ``postgresql://user:pass@host:port/db`` (``RDBStorage`` through psycopg), for workers on several
  machines without a shared folder. It is connected to first, so a database that cannot be reached
  is a one-line error naming the host and port before anything trains.

Optuna has no "ask only while fewer than N trials exist", so two workers that both count N-1
finished trials would both start one. :class:`AskLock` serialises *count + ask* across workers (a
lock file beside the journal, a PostgreSQL advisory lock for the database); training runs outside it.
"""

from __future__ import annotations

import json
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smallvision.errors import UserError

HEARTBEAT_SECONDS = 10  # a running trial says it is alive this often
GRACE_SECONDS = 60  # ... and is failed (and retried) after this long without a word
CONNECT_TIMEOUT_SECONDS = 5
MAX_RETRY = 3  # a trial killed more often than this is left failed


@dataclass(frozen=True)
class StorageInfo:
    """A search's storage as given: ``kind`` (journal | postgresql), the URL or path, and a safe label."""

    kind: str
    url: str
    label: str  # the URL without its password: what files and messages show


def storage_info(url: str | None, search_dir: Path) -> StorageInfo:
    """The storage ``url`` names (None: the journal file in ``search_dir``), checked but not opened.

    Raises:
        UserError: a scheme other than postgresql (SQLite in particular) or an unreadable URL.
    """
    if url is None:
        path = str(search_dir / "journal.log")
        return StorageInfo("journal", path, path)
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UserError(
            f"--storage {url!r}: expected postgresql://user:password@host:port/database"
        ) from None
    if parsed.get_backend_name() != "postgresql":
        why = " (SQLite locks with several processes)" if parsed.get_backend_name() == "sqlite" else ""
        raise UserError(
            f"--storage {parsed.render_as_string()!r}: expected a postgresql:// URL{why}; "
            "leave --storage out for the journal file in the study directory"
        )
    # psycopg (3) is the driver we ship; a bare postgresql:// would ask SQLAlchemy for psycopg2
    driver = parsed.set(drivername="postgresql+psycopg") if parsed.drivername == "postgresql" else parsed
    return StorageInfo("postgresql", driver.render_as_string(hide_password=False), driver.render_as_string())


def check_reachable(info: StorageInfo) -> None:
    """Connect once to a PostgreSQL storage; a journal file needs nothing.

    Raises:
        UserError: one line naming the host and port (and the server's reason) when it cannot connect.
    """
    if info.kind != "postgresql":
        return
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(info.url)
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    try:
        psycopg.connect(_conninfo(info), connect_timeout=CONNECT_TIMEOUT_SECONDS).close()
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
        raise UserError(
            f"--storage {info.label}: cannot reach the PostgreSQL database at {where}: {reason}"
        ) from None


def open_storage(info: StorageInfo) -> Any:
    """The Optuna storage for ``info``: RDB with heartbeats and retries, or the journal file."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if info.kind == "journal":
        Path(info.url).parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(info.url))
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.8
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            info.url,
            engine_kwargs={"connect_args": {"connect_timeout": CONNECT_TIMEOUT_SECONDS}},
            heartbeat_interval=HEARTBEAT_SECONDS,
            grace_period=GRACE_SECONDS,
            heartbeat_stale_trial_callback=retry_callback(),
        )


def retry_callback() -> Any:
    """Optuna's callback that re-queues a stale trial with its values (at most ``MAX_RETRY`` times)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)


def record_storage(info: StorageInfo, search_dir: Path) -> None:
    """Write ``storage.json`` once; a worker given another storage for the same search is refused.

    Without this, a worker started without ``--storage`` would run a second, private search.
    """
    path = search_dir / "storage.json"
    search_dir.mkdir(parents=True, exist_ok=True)
    mine = {"kind": info.kind, "storage": info.label if info.kind == "postgresql" else "journal.log"}
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved != mine:
            raise UserError(
                f"{path}: this search uses storage {saved['storage']!r}, not {mine['storage']!r}; "
                "give every worker the same --storage"
            )
        return
    path.write_text(json.dumps(mine, indent=2) + "\n")


class AskLock:
    """Exclusive section around *count finished trials + ask* shared by every worker of a search.

    Journal: a lock file (``ask.lock``, created with O_EXCL; one left by a killed worker is broken
    after ``GRACE_SECONDS``). PostgreSQL: ``pg_advisory_lock`` on a connection of its own, which the
    server releases if the worker dies.
    """

    def __init__(self, info: StorageInfo, study_name: str, search_dir: Path) -> None:
        self.info = info
        self.key = zlib.crc32(study_name.encode()) - 2**31  # advisory locks take a signed bigint
        self._file = None
        self._conn = None
        self._held = False
        if info.kind == "journal":
            from optuna.storages.journal import JournalFileOpenLock

            self._file = JournalFileOpenLock(str(search_dir / "ask"), grace_period=GRACE_SECONDS)

    def __enter__(self) -> AskLock:
        if self._file is not None:
            self._file.acquire()
        else:
            import psycopg

            if self._conn is None:
                self._conn = psycopg.connect(_conninfo(self.info), autocommit=True)
            self._conn.execute("SELECT pg_advisory_lock(%s)", (self.key,))
        self._held = True
        return self

    def release(self) -> None:
        """Leave the section (idempotent: the objective releases it as soon as its trial exists)."""
        if not self._held:
            return  # never remove a lock file that another worker holds now
        self._held = False
        if self._file is not None:
            self._file.release()
        else:
            self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))

    def __exit__(self, *exc: object) -> None:
        self.release()

    def close(self) -> None:
        """Close the lock's database connection, if any."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _conninfo(info: StorageInfo) -> str:
    """The libpq URL of a SQLAlchemy ``postgresql+psycopg://`` URL."""
    return info.url.replace("postgresql+psycopg://", "postgresql://", 1)


def journal_heartbeat(trial: Any) -> None:
    """Mark a journal-storage trial alive (the RDB storage has its own heartbeat thread)."""
    trial.set_user_attr("heartbeat", time.time())
