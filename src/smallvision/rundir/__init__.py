"""The run directory: its paths, its ``metrics.json`` record, its predictions, and reading it back.

One home for every file a run writes (see :mod:`smallvision.rundir.layout` for the tree)::

    from smallvision.rundir import load_run
    run = load_run("runs/mnist-20250101-120000")
    run.status, run.config.seed, run.metrics.test["label"]["accuracy"], run.predictions.index["test"]

Imports nothing heavy (no torch), so the report and the study runner can read many directories.
"""

from smallvision.rundir.arrays import (
    StoredTestImages,
    load_test_images,
    read_npz,
    save_test_images,
    write_npz,
)
from smallvision.rundir.layout import RunPaths, environment, new_run_dir, write_json, write_text
from smallvision.rundir.predictions import (
    Predictions,
    load_predictions,
    npz_key,
    output_field,
    parse_key,
    save_predictions,
)
from smallvision.rundir.record import (
    SCHEMA_VERSION,
    DataInfo,
    Failure,
    Gain,
    HeadInfo,
    Member,
    MetricsRecord,
)
from smallvision.rundir.run import History, Run, load_run, read_run

__all__ = [
    "SCHEMA_VERSION",
    "StoredTestImages",
    "DataInfo",
    "Failure",
    "Gain",
    "HeadInfo",
    "History",
    "Member",
    "MetricsRecord",
    "Predictions",
    "Run",
    "RunPaths",
    "environment",
    "load_predictions",
    "load_run",
    "load_test_images",
    "new_run_dir",
    "npz_key",
    "output_field",
    "parse_key",
    "read_npz",
    "read_run",
    "save_predictions",
    "save_test_images",
    "write_json",
    "write_text",
    "write_npz",
]
