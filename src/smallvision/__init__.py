"""smallvision: deep-learning studies on small images, from one YAML file.

    import smallvision
    result = smallvision.run("examples/mnist.yaml", **{"train.epochs": 3})
    result.dir, result.metrics.test["label"]["accuracy"], result.model

    run = smallvision.load_run(result.dir)       # any run directory, as typed records
    run.status, run.config, run.metrics, run.history, run.predictions

Heavy modules (torch, the models) are imported lazily so that ``import smallvision`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["run", "load_config", "load_run", "__version__"]

if TYPE_CHECKING:
    from smallvision.rundir import Run
    from smallvision.study.group import GroupResult
    from smallvision.study.run import RunResult


def run(config: Any = None, **overrides: Any) -> RunResult | GroupResult:
    """Train, evaluate and report one run (or a seed group); see :func:`smallvision.study.api.run`."""
    from smallvision.study.api import run as _run

    return _run(config, **overrides)


def load_run(run_dir: Any) -> Run:
    """Read a run directory as typed records; see :func:`smallvision.rundir.load_run`."""
    from smallvision.rundir import load_run as _load

    return _load(run_dir)


def load_config(path: Any = None, overrides: Any = None) -> Any:
    """Read and validate a YAML config; see :func:`smallvision.config.load_config`."""
    from smallvision.config import load_config as _load

    return _load(path, overrides)
