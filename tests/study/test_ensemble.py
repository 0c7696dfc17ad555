"""Seed groups and their ensemble: layout, soft voting by hand, identical members, gains, resume."""

import json
import shutil
import sys

import numpy as np
import pytest

import smallvision
from smallvision.errors import UserError
from smallvision.rundir import SCHEMA_VERSION, load_run
from smallvision.study.ensemble import ensemble_runs, gains
from smallvision.study.group import GroupResult
from smallvision.study.resume import resume


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    """Two seeds of a tiny digits run (the same recipe as tests/conftest.py's tiny_config)."""
    return smallvision.run({
        "name": "tiny", "seeds": [1, 2], "output_dir": str(tmp_path_factory.mktemp("group")),
        "data": {"source": "builtin:digits", "split": {"train": 0.6, "val": 0.2, "test": 0.2}},
        "model": {"name": "cnn_small", "params": {"channels": [8, 16], "hidden": 32}},
        "train": {"epochs": 3, "batch_size": 64, "optimizer": {"lr": 0.01},
                  "early_stopping": {"monitor": "val/label/accuracy"}, "progress": False},
        "report": {"enabled": False},
        "eval": {"INV": {"source": "builtin:digits", "shift": {"invert": True}}},
    })  # fmt: skip


def test_the_ensemble_soft_votes_every_evaluation_set_too(group):
    ensemble, members = load_run(group.dir / "ensemble"), [load_run(m.dir) for m in group.members]
    assert "eval:INV" in ensemble.metrics.splits and all("eval:INV" in m.metrics.splits for m in members)
    by_hand = np.mean([m.predictions.head("eval:INV", "label")["prob"] for m in members], axis=0)
    assert np.allclose(ensemble.predictions.head("eval:INV", "label")["prob"], by_hand, atol=1e-6)


def test_a_seed_group_writes_members_and_ensemble(group):
    assert isinstance(group, GroupResult)
    assert [m.dir.name for m in group.members] == ["seed-1", "seed-2"]
    assert all(m.dir.parent == group.dir for m in group.members)
    assert [m.config.seed for m in group.members] == [1, 2]
    assert (group.dir / "config.yaml").is_file()
    on_disk = json.loads((group.dir / "ensemble" / "metrics.json").read_text())
    assert (on_disk["schema_version"], on_disk["kind"]) == (SCHEMA_VERSION, "ensemble")
    assert on_disk["splits"]["test"] == group.metrics.test and set(on_disk["members"]) == {"seed-1", "seed-2"}
    record = load_run(group.dir).metrics  # the group's own record: its status and members
    assert (record.kind, record.status, list(record.members)) == ("group", "completed", ["seed-1", "seed-2"])
    member_probs = []
    for m in group.members:
        with np.load(m.dir / "predictions.npz") as p:
            member_probs.append(p["test/label/prob"])
            test_index = p["test/index"]
    with np.load(group.dir / "ensemble" / "predictions.npz") as e:
        assert np.array_equal(e["test/index"], test_index)
        assert np.allclose(e["test/label/prob"], np.mean(member_probs, axis=0), atol=1e-7)
        acc = float((e["test/label/prob"].argmax(1) == e["test/label/y_true"]).mean())
    assert group.metrics.test["label"]["accuracy"] == pytest.approx(acc)
    g = group.metrics.gain["label"]["accuracy"]
    accs = [m.metrics.test["label"]["accuracy"] for m in group.members]
    assert g.best_member == max(accs) and g.mean_member == pytest.approx(np.mean(accs))
    assert g.over_best == pytest.approx(acc - max(accs)) and g.over_mean == pytest.approx(acc - np.mean(accs))
    assert group.metrics.train_seconds == pytest.approx(sum(m.metrics.train_seconds for m in group.members))


def test_identical_members_make_an_ensemble_equal_to_the_member(group, tmp_path):
    source = group.members[0].dir
    dirs = []
    for i in range(3):
        shutil.copytree(source, tmp_path / f"seed-{i}")
        dirs.append(tmp_path / f"seed-{i}")
    result = ensemble_runs(dirs, tmp_path / "ensemble")
    member = load_run(source).metrics
    assert result.test == member.test and result.val == member.val
    for v in result.gain["label"].values():
        assert v.over_best == 0 and v.over_mean == pytest.approx(0, abs=1e-12)
    with np.load(source / "predictions.npz") as a, np.load(tmp_path / "ensemble" / "predictions.npz") as b:
        assert all(np.array_equal(a[k], b[k]) for k in a.files)


def _fake_member(path, index, prob, value, truth_cls, truth_reg):
    path.mkdir()
    metrics = {
        "status": "completed",
        "heads": {
            "a": {"kind": "classification", "classes": ["0", "1"]},
            "c": {"kind": "regression", "classes": None},
        },
        "train_seconds": 1.0,
    }
    from smallvision.evaluate.metrics import compute_metrics

    kinds = {"a": "classification", "c": "regression"}
    metrics["test"] = compute_metrics(kinds, {"a": truth_cls, "c": truth_reg}, {"a": prob, "c": value})
    (path / "metrics.json").write_text(json.dumps(metrics))
    np.savez(
        path / "predictions.npz",
        **{"test/index": index, "test/a/y_true": truth_cls, "test/a/prob": prob, "test/c/y_true": truth_reg,
           "test/c/y_pred": value},
    )  # fmt: skip


def test_soft_voting_and_mean_regression_by_hand(tmp_path):
    index, y, t = np.array([3, 7, 9]), np.array([0, 1, 1]), np.array([0.2, 0.5, 0.8])
    # member 1 is confidently right on sample 2 and barely wrong on sample 3; member 2 the reverse
    p1 = np.array([[0.9, 0.1], [0.1, 0.9], [0.55, 0.45]], dtype=np.float32)
    p2 = np.array([[0.6, 0.4], [0.55, 0.45], [0.1, 0.9]], dtype=np.float32)
    _fake_member(tmp_path / "m1", index, p1, np.array([0.1, 0.5, 0.9], np.float32), y, t)
    _fake_member(tmp_path / "m2", index, p2, np.array([0.3, 0.7, 0.7], np.float32), y, t)
    result = ensemble_runs([tmp_path / "m1", tmp_path / "m2"], tmp_path / "ens")
    assert result.test["a"]["accuracy"] == 1.0  # each member gets 2 of 3 right
    assert result.gain["a"]["accuracy"].over_best == pytest.approx(1 / 3)
    # regression mean: (0.2, 0.6, 0.8) vs truth (0.2, 0.5, 0.8): MAE 0.1 / 3
    assert result.test["c"]["mae"] == pytest.approx(0.1 / 3, abs=1e-7)
    best_mae = min(result.gain["c"]["mae"].best_member, 1.0)
    assert best_mae == pytest.approx(0.2 / 3, abs=1e-7)
    assert result.gain["c"]["mae"].over_best == pytest.approx(0.1 / 3, abs=1e-7)  # lower is better


def test_members_with_different_test_samples_are_refused(tmp_path):
    y, t = np.array([0, 1]), np.array([0.2, 0.5])
    p = np.array([[0.9, 0.1], [0.1, 0.9]], dtype=np.float32)
    _fake_member(tmp_path / "m1", np.array([1, 2]), p, t.astype(np.float32), y, t)
    _fake_member(tmp_path / "m2", np.array([1, 3]), p, t.astype(np.float32), y, t)
    with pytest.raises(UserError, match="test samples differ"):
        ensemble_runs([tmp_path / "m1", tmp_path / "m2"], tmp_path / "ens")


def test_gains_point_the_right_way():
    ens = {"h": {"accuracy": 0.8, "mae": 0.1}}
    members = [{"h": {"accuracy": 0.7, "mae": 0.2}}, {"h": {"accuracy": 0.75, "mae": 0.15}}]
    g = gains(ens, members)["h"]
    assert g["accuracy"].over_best == pytest.approx(0.05) and g["mae"].over_best == pytest.approx(0.05)


def test_resume_finishes_a_group_and_recomputes_the_ensemble(group, tmp_path):
    copy_dir = tmp_path / group.dir.name
    shutil.copytree(group.dir, copy_dir)
    # the second member died after its last epoch was saved, before it was evaluated
    for name in ("metrics.json", "predictions.npz"):
        (copy_dir / "seed-2" / name).unlink()
    shutil.rmtree(copy_dir / "ensemble")
    result = resume(copy_dir)
    assert isinstance(result, GroupResult) and result.dir == copy_dir
    assert result.metrics.test == group.metrics.test
    assert result.members[1].metrics.test == group.members[1].metrics.test


def test_cli_prints_the_group_directory_and_the_ensemble_headline(group, tmp_path, monkeypatch, capsys):
    from smallvision import cli

    copy_dir = tmp_path / "g"
    shutil.copytree(group.dir, copy_dir)
    (copy_dir / "seed-2" / "metrics.json").unlink()
    monkeypatch.setattr(sys, "argv", ["smallvision", "resume", str(copy_dir)])
    with pytest.raises(SystemExit) as done:
        cli.main()
    assert done.value.code in (0, None)
    out = capsys.readouterr().out
    assert f"group directory: {copy_dir}" in out
    assert "seed-1: label/accuracy" in out and "ensemble test: label/accuracy" in out
    assert "ensemble gain on test over best / mean member (positive = better): label/accuracy" in out


def test_member_configs_share_data_and_split():
    from smallvision.config import build_config
    from smallvision.study.group import member_config

    cfg = build_config({"seeds": [4, 5], "data": {"split": {"seed": 9}}})
    members = [member_config(cfg, s) for s in cfg.seeds]
    assert [m.seed for m in members] == [4, 5] and all(m.seeds is None for m in members)
    assert all(m.data == cfg.data for m in members)
    assert members[0].data.split.seed == 9


def test_a_train_val_split_without_test_ensembles_on_val_and_says_so(tmp_path, monkeypatch, capsys):
    """Study 000 split 80/20 train/val: the group still ensembles, on val, labelled as val."""
    from smallvision import cli

    config = {
        "name": "tv", "seeds": [1, 2], "output_dir": str(tmp_path),
        "data": {"source": "builtin:digits", "split": {"train": 0.8, "val": 0.2, "test": 0.0}},
        "model": {"name": "cnn_small", "params": {"channels": [8, 16], "hidden": 32}},
        "train": {"epochs": 2, "batch_size": 64, "optimizer": {"lr": 0.01}, "progress": False},
        "report": {"enabled": False},
    }  # fmt: skip
    (tmp_path / "tv.yaml").write_text(json.dumps(config))
    monkeypatch.setattr(sys, "argv", ["smallvision", "run", str(tmp_path / "tv.yaml")])
    with pytest.raises(SystemExit) as done:
        cli.main()
    assert done.value.code in (0, None)
    out = capsys.readouterr().out
    assert "ensemble val (no test split): label/accuracy" in out
    assert "ensemble gain on val over best / mean member" in out
    group_dir = next(p for p in tmp_path.iterdir() if p.is_dir())
    ensemble = load_run(group_dir / "ensemble")
    assert "test" not in ensemble.metrics.splits and ensemble.metrics.gain_split == "val"
    members = [load_run(group_dir / f"seed-{s}") for s in (1, 2)]
    probs = np.mean([m.predictions.head("val", "label")["prob"] for m in members], axis=0)
    y = members[0].predictions.head("val", "label")["y_true"]
    assert ensemble.metrics.val["label"]["accuracy"] == pytest.approx(float((probs.argmax(1) == y).mean()))
    accs = [m.metrics.val["label"]["accuracy"] for m in members]
    gain = ensemble.metrics.gain["label"]["accuracy"]
    assert gain.best_member == max(accs) and gain.over_mean == pytest.approx(gain.ensemble - np.mean(accs))
    assert ensemble.metrics.members["seed-1"].val["label"]["accuracy"] == accs[0]
    on_disk = json.loads((group_dir / "ensemble" / "metrics.json").read_text())
    assert on_disk["gain_split"] == "val"
