"""smallvision: deep-learning studies on small images, from one YAML file.

    import smallvision
    result = smallvision.run("examples/mnist.yaml", **{"train.epochs": 3})
    result.dir, result.metrics, result.model

Heavy modules (torch, the models) are imported lazily so that ``import smallvision`` stays fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["run", "load_config", "__version__"]


def run(config: Any = None, **overrides: Any) -> Any:
    """Train, evaluate and report one run; see :func:`smallvision.study.run.run`."""
    from smallvision.study.run import run as _run

    return _run(config, **overrides)


def load_config(path: Any = None, overrides: Any = None) -> Any:
    """Read and validate a YAML config; see :func:`smallvision.config.load_config`."""
    from smallvision.config import load_config as _load

    return _load(path, overrides)
