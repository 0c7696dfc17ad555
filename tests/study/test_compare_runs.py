"""``smallvision compare``: seed groups, plain runs and study directories compared from their saved
predictions; Markdown output; mismatched test sets and unknown metrics refused."""

import copy

import pytest
import yaml
from typer.testing import CliRunner

from smallvision.cli import app
from smallvision.errors import UserError
from smallvision.rundir import load_run
from smallvision.study.api import run
from smallvision.study.compare_runs import collect_variants, compare_dirs
from smallvision.study.runner import run_study


def fast(tiny_config, name, **model):
    cfg = copy.deepcopy(tiny_config)
    cfg["name"] = name
    cfg["model"] = {"name": "mlp", "params": {"hidden": [model.get("hidden", 16)]}}
    cfg["train"].update(epochs=2, threads=1)
    return cfg


@pytest.fixture(scope="module")
def two_groups(tmp_path_factory):
    """Two seed groups of two seeds each, trained once for the module's tests."""
    base = {
        "seed": 3,
        "output_dir": str(tmp_path_factory.mktemp("groups")),
        "data": {"source": "builtin:digits", "split": {"train": 0.6, "val": 0.2, "test": 0.2}},
        "train": {"batch_size": 64, "optimizer": {"lr": 0.01}, "progress": False},
        "report": {"enabled": False},
    }
    a = run(fast(base, "narrow", hidden=8), seeds=[1, 2]).dir
    b = run(fast(base, "wide", hidden=64), seeds=[1, 2]).dir
    return a, b


def test_two_seed_groups_give_a_verdict(two_groups):
    c = compare_dirs(list(two_groups))
    assert c.metric == "test/label/accuracy" and c.higher_is_better
    assert sorted(r.name for r in c.rows) == ["narrow", "wide"]
    assert all(r.n_seeds == 2 for r in c.rows)
    test_images = len(load_run(two_groups[0]).members()[0].predictions.index["test"])
    assert c.seeds == [1, 2] and c.n_images == test_images
    assert c.level == "images" and len(c.pairs) == 1 and c.pairs[0].test in c.pairs[0].tests
    assert c.verdict


def test_cli_table_and_markdown(two_groups):
    result = CliRunner().invoke(app, ["compare", *map(str, two_groups)])
    assert result.exit_code == 0, result.output
    assert "Verdict:" in result.output and "narrow" in result.output and "wide" in result.output
    md = CliRunner().invoke(
        app, ["compare", *map(str, two_groups), "--markdown", "--metric", "test/label/accuracy"]
    )
    assert md.exit_code == 0, md.output
    table = [line for line in md.output.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert header[:3] == ["rank", "variant", "seeds"]
    body = [[cell.strip() for cell in line.strip("|").split("|")] for line in table[2:4]]
    assert sorted(row[1].strip("*") for row in body) == ["narrow", "wide"]
    assert all(len(row) == len(header) for row in body)
    assert "**Verdict:**" in md.output


def test_plain_runs_group_by_config_minus_seed(tiny_config):
    dirs = [run(fast(tiny_config, "m", hidden=h), seed=s).dir for h in (8, 32) for s in (1, 2)]
    variants = collect_variants(dirs)
    assert [len(v.runs) for v in variants] == [2, 2]
    assert variants[0].name != variants[1].name
    c = compare_dirs(dirs, "test/label/macro_f1")
    assert c.metric == "test/label/macro_f1" and len(c.rows) == 2


def test_mismatched_test_sets_are_refused(tiny_config):
    a = run(fast(tiny_config, "a"), seed=1).dir
    other = fast(tiny_config, "b", hidden=32)
    other["data"]["split"] = {"train": 0.5, "val": 0.2, "test": 0.3}
    b = run(other, seed=1).dir
    with pytest.raises(UserError, match="different test images") as exc:
        compare_dirs([a, b])
    assert str(a) in str(exc.value) and str(b) in str(exc.value) and "\n" not in str(exc.value)


def test_unknown_metric_lists_the_available_ones(two_groups):
    with pytest.raises(UserError, match="available: .*test/label/accuracy") as exc:
        compare_dirs(list(two_groups), "test/label/nope")
    assert "\n" not in str(exc.value)


def test_a_study_directory_is_grouped_by_step_and_label(tmp_path):
    base = {
        "name": "tiny",
        "data": {"source": "builtin:digits", "split": {"train": 0.6, "val": 0.2, "test": 0.2}},
        "model": {"name": "mlp", "params": {"hidden": [16]}},
        "train": {"epochs": 2, "batch_size": 64, "threads": 1, "progress": False},
        "report": {"enabled": False},
    }
    spec = {
        "name": "demo",
        "output_dir": str(tmp_path / "studies"),
        "base": base,
        "variants": {"narrow": {"model.params.hidden": [8]}, "wide": {"model.params.hidden": [48]}},
        "seeds": [1, 2],
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    study = run_study(path, progress=False).dir
    variants = collect_variants([study])
    assert len(variants) == 2 and all(len(v.runs) == 2 for v in variants)
    assert all("seed" not in v.name for v in variants)
    result = CliRunner().invoke(app, ["compare", str(study), "--markdown"])
    assert result.exit_code == 0, result.output
    assert "**Verdict:**" in result.output and "narrow" in result.output


@pytest.mark.parametrize("name", ["mae", "mse"])
def test_reconstruction_errors_are_compared_over_test_images(tiny_config, name):
    """Per-image errors, so two seeds a variant still get a test over the test images."""
    cfg = fast(tiny_config, "ae")
    cfg["model"] = {"name": "autoencoder_dense", "params": {"hidden": [32], "bottleneck": 8}}
    cfg["heads"] = {"image": {"kind": "reconstruction"}}
    cfg["train"]["early_stopping"] = {"monitor": "val/image/mse"}
    a = run(cfg, seeds=[1, 2]).dir
    b = run(
        {**cfg, "name": "ae_wide", "model": {**cfg["model"], "params": {"hidden": [64], "bottleneck": 16}}},
        seeds=[1, 2],
    ).dir
    c = compare_dirs([a, b], f"test/image/{name}")
    assert c.level == "images" and not c.higher_is_better
    member = load_run(a).members()[0]
    assert c.n_images == len(member.predictions.index["test"])
    logged = member.metrics.splits["test"]["image"][name]
    means = {r.name: r.mean for r in c.rows}
    assert means["ae"] == pytest.approx(
        sum(m.metrics.splits["test"]["image"][name] for m in load_run(a).members()) / 2
    )
    assert logged > 0
