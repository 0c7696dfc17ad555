"""The study file: expansion, references, selection, cell ids and whole-file checks (no training)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from smallvision.errors import UserError
from smallvision.study.spec import load_study, resolve_cell

BASE = {
    "data": {"source": "builtin:digits"},
    "model": {"name": "cnn_small", "params": {"channels": [8, 16], "hidden": 32}},
    "train": {"epochs": 2, "progress": False},
}


def study(**keys):
    return {"name": "t", "base": BASE, **keys}


def labels(spec, step=0):
    return [c.label for c in spec.steps[step].cells]


# ---------------------------------------------------------------- expansion


def test_axes_are_a_cartesian_product_first_key_outermost():
    spec = load_study(study(seeds=[0], axes={"train.epochs": [1, 2], "train.optimizer.lr": [0.1, 0.01]}))
    assert labels(spec) == [
        "train.epochs=1 train.optimizer.lr=0.1 seed=0",
        "train.epochs=1 train.optimizer.lr=0.01 seed=0",
        "train.epochs=2 train.optimizer.lr=0.1 seed=0",
        "train.epochs=2 train.optimizer.lr=0.01 seed=0",
    ]
    cell = spec.steps[0].cells[1]
    assert cell.values == {"train.epochs": 1, "train.optimizer.lr": 0.01}
    assert cell.overrides == {"train.epochs": 1, "train.optimizer.lr": 0.01, "seed": 0}
    assert spec.steps[0].name == "main"


def test_variants_times_axes_times_zip_times_seeds_in_order():
    spec = load_study(
        study(
            seeds=[1, 2],
            variants={"small": {"model.params.hidden": 16}, "big": {"model": {"params": {"hidden": 64}}}},
            axes={"train.epochs": [1, 3]},
            zip={"data.split.train": [0.8, 0.7], "data.split.val": [0.1, 0.2], "data.split.test": [0.1, 0.1]},
        )
    )
    cells = spec.steps[0].cells
    assert len(cells) == 2 * 2 * 2 * 2
    assert (
        cells[0].label
        == "small train.epochs=1 data.split.train=0.8 data.split.val=0.1 data.split.test=0.1 seed=1"
    )
    assert [c.seed for c in cells[:4]] == [1, 2, 1, 2]
    assert [c.values["data.split.train"] for c in cells[:4]] == [0.8, 0.8, 0.7, 0.7]
    assert [c.variant for c in cells] == ["small"] * 8 + ["big"] * 8
    assert cells[8].overrides["model.params.hidden"] == 64  # nested mappings become dotted keys
    assert (
        cells[0].group == "small train.epochs=1 data.split.train=0.8 data.split.val=0.1 data.split.test=0.1"
    )


def test_seeds_default_from_base_then_study_then_step():
    assert [c.seed for c in load_study(study()).steps[0].cells] == [42]
    with_base_seeds = load_study({"name": "t", "base": {**BASE, "seeds": [5, 6]}})
    cells = with_base_seeds.steps[0].cells
    assert [c.seed for c in cells] == [5, 6]
    assert cells[0].overrides["seeds"] is None  # each cell is one run, not a seed group
    spec = load_study(study(seeds=[1], steps=[{"name": "a"}, {"name": "b", "seeds": [7, 8]}]))
    assert [c.seed for c in spec.steps[0].cells] == [1]
    assert [c.seed for c in spec.steps[1].cells] == [7, 8]


def test_step_set_is_merged_and_a_variant_wins_over_it():
    spec = load_study(
        study(
            steps=[
                {
                    "name": "a",
                    "set": {"train": {"epochs": 5}, "train.batch_size": 16},
                    "variants": {"x": {"train.epochs": 1}, "y": None},
                },
            ]
        )
    )
    x, y = spec.steps[0].cells
    assert x.overrides == {"train.epochs": 1, "train.batch_size": 16, "seed": 42}
    assert y.overrides == {"train.epochs": 5, "train.batch_size": 16, "seed": 42}
    cfg = resolve_cell(spec, y, lambda name: [])
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.optimizer.lr) == (5, 16, 1e-3)


def test_baseline_variant_is_kept_for_the_runner_and_checked():
    spec = load_study(study(variants={"rf": {"baseline": "random_forest"}, "cnn": {}}))
    rf, cnn = spec.steps[0].cells
    assert (rf.baseline, cnn.baseline) == ("random_forest", None)
    assert rf.overrides["baseline"] == "random_forest"
    assert resolve_cell(spec, rf, lambda name: []).model.name == "cnn_small"
    with pytest.raises(
        UserError, match=r"step 'main', cell 'rf seed=42': baseline: got 'forest', expected one of"
    ):
        load_study(study(variants={"rf": {"baseline": "forest"}}))


def test_baseline_params_are_checked_with_the_file_and_network_params_set_aside():
    # the base's network params (channels, hidden) are not the estimator's: set aside, not an error
    load_study(study(variants={"knn": {"baseline": "knn", "model.params.n_neighbors": 3}}))
    with pytest.raises(
        UserError, match=r"cell 'rf seed=42': model.params.n_trees: not a parameter of the random_forest"
    ):
        load_study(study(variants={"rf": {"baseline": "random_forest", "model.params.n_trees": 9}}))


# ---------------------------------------------------------------- the base and overrides


def test_base_as_a_path_relative_to_the_study_file(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "run.yaml").write_text(yaml.safe_dump(BASE))
    (tmp_path / "s.yaml").write_text(
        yaml.safe_dump({"base": "configs/run.yaml", "axes": {"train.epochs": [1, 2]}})
    )
    spec = load_study(tmp_path / "s.yaml")
    assert spec.name == "s" and spec.path == tmp_path / "s.yaml"
    assert spec.base["model"]["name"] == "cnn_small"
    assert spec.raw["base"] == "configs/run.yaml"  # the file as given
    assert spec.output_dir == "studies"
    (tmp_path / "s2.yaml").write_text(yaml.safe_dump({"base": "missing.yaml"}))
    with pytest.raises(UserError, match="missing.yaml' not found"):
        load_study(tmp_path / "s2.yaml")


def test_overrides_go_to_the_base_or_the_study():
    spec = load_study(
        study(
            steps=[{"name": "a", "set": {"train.epochs": 9}}, {"name": "b", "seeds": [3]}], output_dir="out"
        ),
        ["train.epochs=1", "base.train.batch_size=8", "seeds=[0,1]", "name=quick", "output_dir=elsewhere"],
    )
    assert spec.base["train"]["epochs"] == 1 and spec.base["train"]["batch_size"] == 8
    assert spec.name == "quick" and spec.output_dir == "elsewhere"
    assert [c.seed for s in spec.steps for c in s.cells] == [0, 1, 0, 1]  # seeds= replaces every step's
    a = resolve_cell(spec, spec.steps[0].cells[0], lambda name: [])
    assert (a.train.epochs, a.train.batch_size) == (9, 8)  # a step's set still wins over the base
    spec = load_study(study(), {"train.optimizer.lr": 0.5})
    assert spec.base["train"]["optimizer"]["lr"] == 0.5
    with pytest.raises(UserError, match="override 'epochs'"):
        load_study(study(), ["epochs=1"])


def test_a_step_override_wins_over_the_steps_own_set():
    doc = study(steps=[{"name": "a", "set": {"train": {"epochs": 9, "batch_size": 16}}}, {"name": "b"}])
    spec = load_study(doc, ["steps.a.train.epochs=1", "steps.b.model.params.hidden=8", "train.epochs=3"])
    a = resolve_cell(spec, spec.steps[0].cells[0], lambda name: [])
    b = resolve_cell(spec, spec.steps[1].cells[0], lambda name: [])
    assert (a.train.epochs, a.train.batch_size, b.train.epochs) == (1, 16, 3)
    assert (a.model.params["hidden"], b.model.params["hidden"]) == (32, 8)
    main = load_study(study(axes={"train.optimizer.lr": [0.1]}), ["steps.main.train.epochs=1"])
    assert resolve_cell(main, main.steps[0].cells[0], lambda name: []).train.epochs == 1
    with pytest.raises(UserError, match=r"override steps.c...: no step 'c' \(steps: a, b\)"):
        load_study(doc, ["steps.c.train.epochs=1"])


# ---------------------------------------------------------------- whole-file checks


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (study(axes={"train.epochs": [1]}, steps=[{"name": "a"}]), r"study: unknown key 'axes'"),
        (study(axis={"train.epochs": [1]}), r"study: unknown key 'axis'; did you mean 'axes'\?"),
        (
            study(steps=[{"name": "a", "vars": {}}]),
            r"step 'a': unknown key 'vars'; did you mean 'variants'\?",
        ),
        (
            study(axes={"train.optimizer.lrr": [1]}),
            r"step 'main', cell 'train.optimizer.lrr=1 seed=42': train.optimizer.lrr: unknown key; did you mean 'lr'\?",
        ),
        (study(axes={"train.epochs.x": [1]}), r"train.epochs.x: train.epochs is a value, not a mapping"),
        (
            study(axes={"heads.label.kindd": ["regression"]}),
            r"heads.label.kindd: unknown key; did you mean 'kind'\?",
        ),
        (
            study(axes={"train.epochs": [1, "two"]}),
            r"step 'main', cell 'train.epochs=two seed=42': train.epochs: expected an integer, got 'two'",
        ),
        (
            study(axes={"model.params.hiddn": [8]}),
            r"model.params.hiddn: unknown parameter; did you mean 'hidden'\?",
        ),
        (study(variants={"x": {"model.name": "resnett"}}), r"cell 'x seed=42': unknown model 'resnett'"),
        (
            study(zip={"train.epochs": [1, 2], "train.batch_size": [8]}),
            r"step 'main': zip: .*equal lengths \(train.epochs has 2, train.batch_size has 1\)",
        ),
        (
            study(axes={"train.epochs": [1, 1]}),
            r"cell 'train.epochs=1 seed=42': two cells have the same values",
        ),
        (
            study(axes={"train.epochs": [1]}, zip={"train.epochs": [2]}),
            r"train.epochs: varied in both axes and zip",
        ),
        (study(axes={"seed": [1, 2]}), r"axes.seed: vary seeds with the step's seeds"),
        (study(seeds=3), r"seeds: expected a non-empty list of integers"),
        (study(steps=[{"name": "a"}, {"name": "a"}]), r"step 'a': two steps have this name"),
        ({"name": "t"}, r"base: missing"),
        (
            study(steps=[{"name": "a", "select": "test/label/accuracy"}]),
            r"step 'a': select: 'test/label/accuracy': selection must use a validation metric",
        ),
    ],
)
def test_bad_study_is_one_line_error_naming_step_cell_and_key(doc, message):
    with pytest.raises(UserError, match=message) as info:
        load_study(doc)
    assert "\n" not in str(info.value)


def two_steps(second: dict, first: dict | None = None) -> dict:
    first = first or {"name": "bn", "axes": {"model.params.hidden": [16, 32]}, "seeds": [0, 1]}
    return study(steps=[first, {"name": "next", **second}])


@pytest.mark.parametrize(
    ("second", "message"),
    [
        (
            {"set": {"model.init": "@nope"}},
            r"step 'next', cell 'next seed=42': model.init: reference '@nope': no step",
        ),
        ({"set": {"model.init": "@bnn.best(val/loss)"}}, r"no step 'bnn'; did you mean 'bn'\?"),
        ({"set": {"model.init": "@next"}}, r"reference '@next': step 'next' is this step"),
        ({"set": {"model.init": "@bn"}}, r"reference '@bn': step 'bn' has 4 cells; use @bn.best"),
        (
            {"set": {"model.init": "@bn.best(test/label/accuracy)"}},
            r"model.init: reference '@bn.best\(test/label/accuracy\)': 'test/label/accuracy': selection must use a "
            r"validation metric",
        ),
        (
            {"set": {"model.init": "@bn.best(val/label/acuracy)"}},
            r"'val/label/acuracy': this metric is never logged; did you mean 'accuracy'\?",
        ),
        ({"set": {"model.init": "@bn.best"}}, r"step 'bn' declares no select:"),
        (
            {"set": {"train.epochs": "@bn.best(val/loss)"}},
            r"cell 'next seed=42': train.epochs: expected an integer, got '@bn.best\(val/loss\)'",
        ),
        (
            {
                "set": {"train.epochs": "@bn.best(val/loss).model.params.hidden"},
                "axes": {"train.batch_size": [8]},
            },
            None,
        ),
        (
            {"set": {"train.optimizer.name": "@bn.best(val/loss).model.params.hidden"}},
            r"cell 'next seed=42': train.optimizer.name: got 16, expected one of",
        ),
        (
            {"set": {"model.params.hidden": "@bn.best(val/loss).model.paramz.hidden"}},
            r"reference '@bn.best\(val/loss\).model.paramz.hidden': model.paramz.hidden: unknown key",
        ),
        ({"set": {"model.init": "@bn.best(val/loss"}}, r"reference '@bn.best\(val/loss': expected @step"),
    ],
)
def test_bad_reference_is_caught_before_training(second, message):
    if message is None:  # an int value ref into an int key is fine
        assert load_study(two_steps(second)).steps[1].depends_on == ["bn"]
        return
    with pytest.raises(UserError, match=message):
        load_study(two_steps(second))


def test_a_reference_to_a_later_step_is_an_error():
    doc = study(steps=[{"name": "a", "set": {"model.init": "@b"}}, {"name": "b"}])
    with pytest.raises(
        UserError, match=r"step 'a', cell 'a seed=42': model.init: reference '@b': step 'b' comes later"
    ):
        load_study(doc)


def test_metric_of_a_declared_head_must_be_one_its_kind_logs():
    heads = {"label": {"kind": "classification"}, "size": {"kind": "regression", "target": "label"}}
    first = {"name": "a", "set": {"heads": heads}}
    ok = load_study(two_steps({"set": {"model.init": "@a.best(val/size/mae)"}}, first))
    assert ok.steps[1].depends_on == ["a"]
    with pytest.raises(UserError, match=r"'val/size/accuracy': this metric is never logged"):
        load_study(two_steps({"set": {"model.init": "@a.best(val/size/accuracy)"}}, first))
    with pytest.raises(UserError, match=r"'val/colour/mae': no head 'colour' \(heads: label, size\)"):
        load_study(two_steps({"set": {"model.init": "@a.best(val/colour/mae)"}}, first))


def test_select_gives_a_bare_best_its_metric():
    first = {"name": "bn", "axes": {"model.params.hidden": [16, 32]}, "select": "val/label/accuracy"}
    spec = load_study(two_steps({"set": {"model.init": "@bn.best"}}, first))
    assert spec.steps[0].select == "val/label/accuracy"


def test_every_study_in_the_docs_loads():
    text = (Path(__file__).resolve().parents[2] / "docs" / "studies.md").read_text()
    studies = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    studies = [s for s in studies if "base" in s]
    assert len(studies) == 2
    counts = [[len(step.cells) for step in load_study(s).steps] for s in studies]
    assert counts == [[5 * 2 * 3, 4 * 3], [3 * 5]]


def test_docs_name_every_metric_a_head_kind_logs():
    from smallvision.registry import HEAD_KINDS
    from smallvision.study.spec_check import kind_metric_names

    text = (Path(__file__).resolve().parents[2] / "docs" / "studies.md").read_text()
    for kind in HEAD_KINDS.list():
        line = text.split("validation metric only:")[1]
        assert all(f"`{m}`" in line for m in kind_metric_names(kind)), kind
