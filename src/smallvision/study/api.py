"""The public entry point: one config -> one run, or one run per seed and their ensemble.

Kept apart from :mod:`smallvision.study.run` (one run) and :mod:`smallvision.study.group` (seed
groups, built on one run) so that the imports go one way only.
"""

from __future__ import annotations

from typing import Any

from smallvision.study.group import GroupResult, run_group
from smallvision.study.run import RunResult, resolve_config, run_config


def run(config: Any = None, **overrides: Any) -> RunResult | GroupResult:
    """Train, evaluate and report one run, or one run per seed and their ensemble.

    Args:
        config: a YAML path, a mapping, a RunConfig, or None for the defaults.
        **overrides: ``key.path=value`` pairs as keyword arguments, e.g.
            ``run("examples/mnist.yaml", **{"train.epochs": 3})``.

    Returns:
        RunResult with the run directory, the metrics record (``metrics.json`` as a
        :class:`smallvision.rundir.MetricsRecord`: ``result.metrics.test["label"]["accuracy"]``)
        and the model holding the restored best weights. When the config lists ``seeds``, a
        :class:`smallvision.study.group.GroupResult`: the group directory, one RunResult per
        seed, and the ensemble's record (``metrics.test`` the ensemble's, ``metrics.gain`` its
        gain over the best and the mean member).

    Raises:
        UserError: bad config or data; ``TrainingFailed`` (a UserError) when the loss became NaN.
    """
    cfg = resolve_config(config, overrides)
    return run_group(cfg) if cfg.seeds else run_config(cfg)
