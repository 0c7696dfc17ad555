"""``smallvision study``: run, resume and join a study (:mod:`smallvision.study.runner`).

Kept apart from :mod:`smallvision.cli` so each file holds one command group; ``cli`` mounts
``study_app`` as ``smallvision study``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup


class DefaultRunGroup(TyperGroup):
    """``smallvision study FILE ...`` means ``smallvision study run FILE ...``."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


study_app = typer.Typer(
    cls=DefaultRunGroup,
    help="Studies: grids x seeds x steps from one file (study FILE, study resume DIR, study work DIR).",
    no_args_is_help=True,
)
Overrides = Annotated[list[str] | None, typer.Argument(help="key.path=value overrides, e.g. train.epochs=3")]
Workers = Annotated[int, typer.Option("--workers", help="worker processes (threads divided among them)")]
Storage = Annotated[
    str | None,
    typer.Option(
        "--storage",
        envvar="SMALLVISION_STORAGE",
        help="postgresql://user:pass@host:port/db the searches share (default: a journal file per search)",
    ),
]
StaleAfter = Annotated[
    float, typer.Option("--stale-after", help="seconds without heartbeat before a claim is taken over")
]


@study_app.command("run")
def study_run(
    file: Annotated[Path, typer.Argument(help="study YAML file")],
    overrides: Overrides = None,
    workers: Workers = 1,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="continue this study directory with the (edited) file")
    ] = None,
    stale_after: StaleAfter = 60.0,
    storage: Storage = None,
) -> None:
    """Run every cell of a study into studies/<name>-<stamp>/ (exit 1 when a cell failed)."""
    from smallvision.study.runner import run_study

    _study_done(run_study(file, overrides or [], workers, directory, stale_after, storage=storage))


@study_app.command("resume")
def study_resume(
    directory: Annotated[Path, typer.Argument(help="a study directory (studies/<name>-<stamp>)")],
    file: Annotated[Path | None, typer.Option("--file", help="an edited study file to continue with")] = None,
    workers: Workers = 1,
    stale_after: StaleAfter = 60.0,
    storage: Storage = None,
) -> None:
    """Finish a killed study: finished cells are kept, killed ones continue, failed ones run again."""
    from smallvision.study.runner import resume_study

    _study_done(resume_study(directory, file, workers, stale_after, storage=storage))


@study_app.command("work")
def study_work(
    directory: Annotated[Path, typer.Argument(help="a study directory, e.g. on a shared folder")],
    worker_id: Annotated[str, typer.Option("--worker-id", help="this worker's name in its claims")] = "",
    threads: Annotated[int | None, typer.Option("--threads", help="train.threads for cells without")] = None,
    stale_after: StaleAfter = 60.0,
    parent: Annotated[int | None, typer.Option("--parent", hidden=True)] = None,
    storage: Storage = None,
) -> None:
    """One more worker on a study directory (another terminal or machine sharing the folder)."""
    import socket

    from smallvision.study.runner import work

    result = work(
        directory, worker_id or f"{socket.gethostname()}-{os.getpid()}", threads, stale_after, parent, storage
    )
    if parent is None:
        _study_done(result)
    elif result.failed:
        raise typer.Exit(1)


def _study_done(result) -> None:
    """The study directory and its failed cells; exit 1 unless every cell completed."""
    done = sum(c.state == "done" for c in result.cells)
    typer.echo(f"study directory: {result.dir}  ({done}/{len(result.cells)} cells completed)")
    if (result.dir / "report.html").is_file():
        typer.echo(f"study report: {result.dir / 'report.html'}")
    for c in result.failed:
        typer.echo(f"failed: {c.name}", err=True)
    for c in result.unfinished:
        typer.echo(f"unfinished (a worker died): {c.name}", err=True)
    if result.failed or result.unfinished:
        typer.echo(
            f"{len(result.cells) - done} cell(s) not completed; rerun: smallvision study resume {result.dir}",
            err=True,
        )
        raise typer.Exit(1)
