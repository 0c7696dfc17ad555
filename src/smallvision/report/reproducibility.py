"""Reproducibility: what it takes to run this again, from ``env.json`` and ``config.yaml``.

The seed, the data fingerprint, the git commit and the command line come first, then the
environment (Python, platform, threads, start time, anything else recorded) and the package
versions; the resolved config itself is shown folded by the template.
"""

from __future__ import annotations

import shlex
from typing import Any

from smallvision.report.tables import Table, kv_table

_FIRST = ("seed", "data_fingerprint", "git_commit", "command", "cwd")
_ENV = ("python", "platform", "threads", "started")
_HIDDEN = ("packages", "argv")  # shown in their own table / as the command


def command(env: dict[str, Any]) -> str | None:
    """The command line that started the run: ``argv`` shell-quoted when recorded, else ``command``."""
    argv = env.get("argv")
    if isinstance(argv, list) and argv:
        return shlex.join(str(a) for a in argv)
    return str(env["command"]) if "command" in env else None


def tables(env: dict[str, Any] | None) -> list[Table]:
    """The reproducibility tables of ``env.json`` ([] when it is missing)."""
    if env is None:
        return []
    # values shown as written: a timestamp or a commit is not a number to round
    first = {k: str(env[k]) for k in _FIRST if k in env}
    if command(env) is not None:
        first["command"] = command(env)
    out = [kv_table(first, "to run it again")]
    rest = {k: str(env[k]) for k in _ENV if k in env}
    rest |= {k: str(v) for k, v in env.items() if k not in (*_FIRST, *_ENV, *_HIDDEN)}
    if rest:
        out.append(kv_table(rest, "environment"))
    packages = env.get("packages")
    if isinstance(packages, dict):
        out.append(
            kv_table({f"package {n}": str(v) for n, v in sorted(packages.items())}, "package versions")
        )
    return out
