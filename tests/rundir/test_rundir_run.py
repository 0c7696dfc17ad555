"""load_run / read_run: a run directory as typed records; strict and tolerant reading."""

import json
import shutil

import numpy as np
import pytest

import smallvision
from smallvision.config import RunConfig
from smallvision.errors import UserError
from smallvision.rundir import MetricsRecord, Predictions, load_run, read_run


@pytest.fixture
def finished(tiny_config):
    tiny_config["train"]["epochs"] = 1
    return smallvision.run(tiny_config)


def test_a_finished_run_reads_back_as_typed_records(finished):
    run = smallvision.load_run(finished.dir)
    assert run.status == "completed" and run.name == "tiny"
    assert isinstance(run.config, RunConfig) and run.config.seed == 3
    assert isinstance(run.metrics, MetricsRecord) and run.metrics == finished.metrics
    assert run.env["seed"] == 3
    assert list(run.history["epoch"]) == [1.0]
    assert isinstance(run.predictions, Predictions)
    prob = run.predictions.output("test", "label", "classification")
    accuracy = (prob.argmax(1) == run.predictions.head("test", "label")["y_true"]).mean()
    assert np.isclose(accuracy, run.metrics.test["label"]["accuracy"])
    assert not run.problems and not run.is_group


@pytest.mark.parametrize(
    ("damage", "accessor", "message"),
    [
        ("delete metrics.json", "metrics", r"metrics\.json not found"),
        ("corrupt metrics.json", "metrics", r"metrics\.json is not valid JSON"),
        ("delete history.csv", "history", r"history\.csv not found"),
        ("corrupt predictions.npz", "predictions", r"predictions\.npz could not be read"),
        ("delete env.json", "env", r"env\.json not found"),
    ],
)
def test_strict_reading_names_the_missing_or_bad_file(finished, tmp_path, damage, accessor, message):
    run_dir = tmp_path / "copy"
    shutil.copytree(finished.dir, run_dir)
    verb, name = damage.split()
    if verb == "delete":
        (run_dir / name).unlink()
    else:
        (run_dir / name).write_text("{garbage")
    run = load_run(run_dir)  # only config.yaml is read at once; the rest when first used
    with pytest.raises(UserError, match=message) as info:
        getattr(run, accessor)
    assert "\n" not in str(info.value) and str(run_dir) in str(info.value)
    tolerant = read_run(run_dir)  # the report's reading: the same problem, listed, and the rest read
    assert getattr(tolerant, accessor) is None and len(tolerant.problems) == 1
    assert tolerant.config is not None


def test_a_bad_config_fails_at_once_naming_the_file(finished, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(finished.dir, run_dir)
    (run_dir / "config.yaml").write_text("train: {epochz: 3}\n")
    with pytest.raises(UserError, match=r"config\.yaml.*epochz"):
        load_run(run_dir)
    tolerant = read_run(run_dir)
    assert tolerant.config is None and tolerant.config_text.startswith("train:")
    assert (
        tolerant.metrics.status == "completed" and "config.yaml is not a valid config" in tolerant.problems[0]
    )


def test_a_directory_that_is_no_run_is_refused(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_run(tmp_path / "nope")
    with pytest.raises(UserError, match="neither config.yaml nor metrics.json"):
        load_run(tmp_path)


def test_a_run_without_a_record_yet_has_status_unknown(finished, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(finished.dir, run_dir)
    (run_dir / "metrics.json").unlink()
    assert load_run(run_dir).status == "unknown"


def test_a_seed_group_reads_as_group_members_and_ensemble(tiny_config):
    tiny_config["train"]["epochs"] = 1
    tiny_config["seeds"] = [1, 2]
    group = smallvision.run(tiny_config)
    run = load_run(group.dir)
    assert run.is_group and run.status == "completed" and run.metrics.kind == "group"
    assert [m.dir.name for m in run.members()] == ["seed-1", "seed-2"]
    assert [m.metrics.kind for m in run.members()] == ["run", "run"]
    ensemble = run.ensemble()
    assert ensemble.metrics == group.metrics and ensemble.metrics.kind == "ensemble"
    assert set(ensemble.metrics.members) == set(run.metrics.members) == {"seed-1", "seed-2"}
    on_disk = json.loads((group.dir / "metrics.json").read_text())
    assert on_disk["members"]["seed-2"]["seed"] == 2
