"""The run report: a self-contained HTML page written from a run directory's files.

``write_report(run_dir)`` and ``render_report(run_dir)`` live in :mod:`smallvision.report.html`;
they are re-exported here lazily so that importing the package costs nothing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["render_report", "write_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from smallvision.report import html

        return getattr(html, name)
    raise AttributeError(f"module 'smallvision.report' has no attribute {name!r}")
