"""metrics.json: one versioned record for runs, ensembles and groups; older files still read."""

import json

import pytest

from smallvision.errors import UserError
from smallvision.rundir import SCHEMA_VERSION, DataInfo, Failure, Gain, HeadInfo, Member, MetricsRecord

SPLITS = {
    "val": {"label": {"accuracy": 0.5, "confusion": [[1, 1], [0, 2]]}},
    "test": {"label": {"accuracy": 0.75, "macro_f1": 0.7}},
    "test:TEST2": {"label": {"accuracy": 0.25}},
}


def _run_record() -> MetricsRecord:
    return MetricsRecord(
        "completed",
        splits=SPLITS,
        best_epoch=3,
        epochs_run=4,
        stopped_early=True,
        train_seconds=1.5,
        eval_seconds=0.25,
        params={"backbone": 100, "total": 120},
        heads={"label": HeadInfo("classification", ["a", "b"])},
        data=DataInfo("builtin:x", [1, 8, 8], {"mean": [0.1]}, {"train": 6, "val": 2, "test": 4}),
    )


def test_a_run_record_survives_json_unchanged():
    record = _run_record()
    on_disk = json.loads(json.dumps(record.to_dict()))
    assert on_disk["schema_version"] == SCHEMA_VERSION and on_disk["kind"] == "run"
    assert "gain" not in on_disk and "members" not in on_disk  # what does not apply stays out
    assert MetricsRecord.from_dict(on_disk) == record


def test_accessors_give_splits_domains_and_scalars():
    record = _run_record()
    assert record.test["label"]["accuracy"] == 0.75 and record.val == SPLITS["val"]
    assert record.domains == {"test:TEST2": SPLITS["test:TEST2"]}
    assert record.scalars("val") == {"label": {"accuracy": 0.5}}  # the confusion matrix is not a scalar
    assert MetricsRecord("failed").test == {}


def test_ensemble_and_failure_records_round_trip():
    ensemble = MetricsRecord(
        "completed",
        kind="ensemble",
        splits={"test": {"h": {"mae": 0.1}}},
        members={"seed-1": Member("/r/seed-1", 1, "completed", {"h": {"mae": 0.2}})},
        gain={"h": {"mae": Gain(0.1, 0.2, 0.25, 0.1, 0.15)}},
        method={"regression": "mean"},
    )
    failed = MetricsRecord("failed", error="loss is nan", failure=Failure("h", 2, 17), epochs_run=1)
    for record in (ensemble, failed):
        assert MetricsRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record


def test_a_file_without_schema_version_is_read():
    legacy = {
        "status": "failed",
        "error": "non-finite training loss",
        "head": "B",
        "epoch": 7,
        "step": 412,
        "val": {"B": {"mae": 1.0}},
        "test": {"B": {"mae": 2.0}},
        "domains": {"test:TEST2": {"B": {"mae": 3.0}}},
        "data": {"source": "s", "n_train": 10, "n_val": 2, "n_test": 3, "n_test:TEST2": 1},
        "heads": {"B": {"kind": "regression", "classes": None}},
    }
    record = MetricsRecord.from_dict(legacy)
    assert record.schema_version == 0 and record.kind == "run"
    assert record.failure == Failure("B", 7, 412)
    assert record.splits == {
        "val": {"B": {"mae": 1.0}},
        "test": {"B": {"mae": 2.0}},
        "test:TEST2": {"B": {"mae": 3.0}},
    }
    assert record.data.sizes == {"train": 10, "val": 2, "test": 3, "test:TEST2": 1}
    assert record.to_dict()["schema_version"] == SCHEMA_VERSION  # rewritten in the current version


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ([1, 2], "expected a JSON object, got list"),
        ({"status": "done"}, "status 'done', expected one of completed, failed, interrupted"),
        ({"kind": "run"}, "status None"),
        ({"status": "completed", "kind": "study"}, "kind 'study', expected one of run, ensemble, group"),
        ({"status": "completed", "schema_version": 99}, "schema_version 99, this smallvision reads up to"),
        ({"status": "completed", "members": {"a": {"nope": 1}}}, "not a metrics record"),
    ],
)
def test_a_bad_record_is_a_one_line_error_naming_the_file(content, message):
    with pytest.raises(UserError, match="^runs/x/metrics.json: ") as info:
        MetricsRecord.from_dict(content, where="runs/x/metrics.json")
    assert message in str(info.value) and "\n" not in str(info.value)
