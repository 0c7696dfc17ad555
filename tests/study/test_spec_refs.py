"""References between steps, selection of the best cell, cell ids and search specs (no training)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from smallvision.config import build_config
from smallvision.errors import UserError
from smallvision.study.spec import CellOutcome, cell_id, load_study, references, resolve_cell
from smallvision.study.spec_refs import Ref, select_best

BASE = {
    "data": {"source": "builtin:digits"},
    "model": {"name": "cnn_small", "params": {"channels": [8, 16], "hidden": 32}},
    "train": {"epochs": 2, "progress": False},
}


def study(**keys):
    return {"name": "t", "base": BASE, **keys}


def two_steps(second: dict) -> dict:
    first = {"name": "bn", "axes": {"model.params.hidden": [16, 32]}, "seeds": [0, 1]}
    return study(steps=[first, {"name": "next", **second}])


# ---------------------------------------------------------------- references and resolution


def test_references_are_parsed():
    assert references("@pretrain") == [Ref("@pretrain", "pretrain")]
    assert references("@bn.best(val/loss)") == [Ref("@bn.best(val/loss)", "bn", best=True, metric="val/loss")]
    assert references({"a": ["@bn.best(val/loss).model.params.bottleneck", 3, "plain", "@@literal"]}) == [
        Ref("@bn.best(val/loss).model.params.bottleneck", "bn", True, "val/loss", "model.params.bottleneck")
    ]
    assert references("@pre.model.name") == [Ref("@pre.model.name", "pre", path="model.name")]
    assert references("@bn.best") == [Ref("@bn.best", "bn", best=True)]
    with pytest.raises(UserError, match="best\\(\\) needs a metric"):
        references("@bn.best()")


def fake_outcomes(spec, step, losses):
    """Finished outcomes of ``step`` with val/loss given per cell label."""
    out = []
    for cell in spec.step(step).cells:
        cfg = resolve_cell(spec, cell, lambda name: [])
        out.append(CellOutcome(cell, Path(f"/runs/{cell.label}"), cfg, {"val/loss": losses[cell.label]}))
    return out


def test_resolve_cell_takes_the_best_mean_over_seeds_then_its_best_seed():
    spec = load_study(
        two_steps(
            {
                "set": {
                    "model.params.hidden": "@bn.best(val/loss).model.params.hidden",
                    "model.init": "@bn.best(val/loss)",
                }
            }
        )
    )
    losses = {  # hidden=16 has the single lowest loss, hidden=32 the lower mean
        "model.params.hidden=16 seed=0": 0.1,
        "model.params.hidden=16 seed=1": 0.9,
        "model.params.hidden=32 seed=0": 0.4,
        "model.params.hidden=32 seed=1": 0.3,
    }
    outcomes = fake_outcomes(spec, "bn", losses)
    cfg = resolve_cell(spec, spec.steps[1].cells[0], lambda name: outcomes if name == "bn" else [])
    assert cfg.model.params["hidden"] == 32
    assert cfg.model.init == "/runs/model.params.hidden=32 seed=1"
    chosen = select_best("bn", outcomes, "val/loss")
    assert chosen.group == "model.params.hidden=32" and chosen.mean == pytest.approx(0.35)
    assert chosen.means == {
        "model.params.hidden=16": pytest.approx(0.5),
        "model.params.hidden=32": pytest.approx(0.35),
    }


def test_same_seed_takes_the_best_group_then_the_referring_cells_own_seed():
    second = {"seeds": [0, 1], "set": {"model.init": "@bn.best(val/loss, same_seed)"}}
    spec = load_study(two_steps(second))
    assert references("@bn.best(val/loss, same_seed)") == [
        Ref("@bn.best(val/loss, same_seed)", "bn", best=True, metric="val/loss", same_seed=True)
    ]
    losses = {  # hidden=32 has the lower mean; its best seed is 1, but seed 0 must start from seed 0
        "model.params.hidden=16 seed=0": 0.1,
        "model.params.hidden=16 seed=1": 0.9,
        "model.params.hidden=32 seed=0": 0.4,
        "model.params.hidden=32 seed=1": 0.3,
    }
    outcomes = fake_outcomes(spec, "bn", losses)
    inits = {c.seed: resolve_cell(spec, c, lambda name: outcomes).model.init for c in spec.steps[1].cells}
    assert inits == {0: "/runs/model.params.hidden=32 seed=0", 1: "/runs/model.params.hidden=32 seed=1"}
    chosen = select_best("bn", outcomes, "val/loss", seed=0)
    assert chosen.same_seed and chosen.group == "model.params.hidden=32"
    with pytest.raises(UserError, match="has no finished run with seed 0"):  # that seed failed
        select_best("bn", [o for o in outcomes if o.cell.seed == 1], "val/loss", seed=0)
    # checked before anything trains: a seed the referenced step never ran, a misspelt option
    with pytest.raises(
        UserError, match=r"same_seed: this cell's seed 7 is not among the seeds of step 'bn', \[0, 1\]"
    ):
        load_study(two_steps({**second, "seeds": [0, 7]}))
    with pytest.raises(
        UserError, match="expected best\\(val/<metric>\\) or best\\(val/<metric>, same_seed\\)"
    ):
        references("@bn.best(val/loss, same_sed)")


def test_best_maximises_accuracy_and_skips_failed_cells():
    spec = load_study(two_steps({"set": {"model.init": "@bn.best(val/label/accuracy)"}}))
    cells = spec.step("bn").cells
    cfg = build_config(spec.base)
    outcomes = [
        CellOutcome(cells[0], Path("a"), cfg, {"val/label/accuracy": 0.7}),
        CellOutcome(cells[1], Path("b"), cfg, {"val/label/accuracy": float("nan")}),
        CellOutcome(cells[2], Path("c"), cfg, {"val/label/accuracy": 0.9}),
        CellOutcome(cells[3], Path("d"), cfg, {}),
    ]
    assert resolve_cell(spec, spec.steps[1].cells[0], lambda name: outcomes).model.init == "c"
    with pytest.raises(UserError, match="no finished cell logged 'val/label/accuracy'"):
        resolve_cell(spec, spec.steps[1].cells[0], lambda name: outcomes[1:2])


def test_one_cell_reference_is_that_run_directory():
    spec = load_study(
        study(steps=[{"name": "pretrain"}, {"name": "tune", "set": {"model.init": "@pretrain"}}])
    )
    pre = spec.steps[0].cells[0]
    outcome = CellOutcome(pre, Path("/runs/pre-1"), build_config(spec.base), {"val/loss": 1.0})
    cfg = resolve_cell(spec, spec.steps[1].cells[0], lambda name: [outcome])
    assert cfg.model.init == "/runs/pre-1"
    assert spec.steps[1].depends_on == ["pretrain"]


# ---------------------------------------------------------------- cell ids


def test_cell_id_ignores_names_and_display_but_not_seed_or_lr():
    cfg = build_config(BASE)
    same = build_config(
        {
            **BASE,
            "name": "other",
            "output_dir": "/elsewhere",
            "report": {"enabled": False},
            "train": {**BASE["train"], "progress": True, "threads": 3},
        }
    )
    assert cell_id(cfg) == cell_id(same)
    assert len(cell_id(cfg)) == 12 and int(cell_id(cfg), 16) >= 0
    assert cell_id(build_config({**BASE, "seed": 1})) != cell_id(cfg)
    assert cell_id(build_config({**BASE, "train": {**BASE["train"], "optimizer": {"lr": 0.1}}})) != cell_id(
        cfg
    )
    assert cell_id(cfg, baseline="svm") != cell_id(cfg)
    reordered = {"train": BASE["train"], "model": BASE["model"], "data": BASE["data"]}
    assert cell_id(build_config(reordered)) == cell_id(cfg)


def test_cell_id_is_the_same_in_another_process_and_for_identical_cells_of_two_steps():
    cfg = build_config(BASE)
    code = (
        "from smallvision.config import build_config; from smallvision.study.spec import cell_id; "
        f"print(cell_id(build_config({BASE!r})))"
    )
    src = Path(__file__).resolve().parents[2] / "src"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(src), "PYTHONHASHSEED": "123"},
    )
    assert out.stdout.strip() == cell_id(cfg)
    spec = load_study(
        study(steps=[{"name": "a", "set": {"train.epochs": 3}}, {"name": "b", "set": {"train.epochs": 3}}])
    )
    a, b = (resolve_cell(spec, s.cells[0], lambda name: []) for s in spec.steps)
    assert cell_id(a) == cell_id(b)


# ---------------------------------------------------------------- search


def test_search_is_parsed_and_checked():
    search = {
        "params": {
            "train.optimizer.lr": {"low": 1e-4, "high": 1e-2, "log": True},
            "model.name": {"choices": ["cnn_small", "cnn_bn"]},
            "train.batch_size": {"low": 32, "high": 256, "step": 32},
        },
        "trials": 5,
        "metric": "val/label/accuracy",
        "pruner": "none",
    }
    spec = load_study(study(steps=[{"name": "tune", "set": {"model.params": {}}, "search": search}]))
    step = spec.steps[0]
    assert step.cells == [] and step.search.trials == 5 and step.search.sampler == "tpe"
    kinds = {k: p.kind for k, p in step.search.params.items()}
    assert kinds == {"train.optimizer.lr": "float", "model.name": "categorical", "train.batch_size": "int"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"metric": "test/label/accuracy"},
            r"step 'tune': search.metric: .*selection must use a validation metric",
        ),
        ({"trials": 0}, r"search.trials: expected an integer >= 1"),
        ({"sampler": "grid"}, r"search.sampler: got 'grid'"),
        ({"prune": "median"}, r"search: unknown key 'prune'; did you mean 'pruner'\?"),
        (
            {"params": {"train.optimizer.lrr": {"low": 0.1, "high": 1}}},
            r"search.params.train.optimizer.lrr: unknown key",
        ),
        ({"params": {"train.optimizer.lr": {"low": 0, "high": 1, "log": True}}}, r"log: needs low > 0"),
        ({"params": {"train.optimizer.lr": {"low": 1, "high": 0.1}}}, r"low must be below high"),
        (
            {"params": {"train.epochs": {"low": 0, "high": 3}}},
            r"search.params.train.epochs=0: train.epochs: ",
        ),
        (
            {"params": {"model.name": {"choices": ["cnn_small", "nope"]}}},
            r"model.name='nope': unknown model 'nope'",
        ),
    ],
)
def test_bad_search_is_an_error_naming_the_step_and_key(change, message):
    search = {"params": {"train.optimizer.lr": {"low": 1e-4, "high": 1e-2}}, "metric": "val/loss", **change}
    with pytest.raises(UserError, match=message):
        load_study(study(steps=[{"name": "tune", "search": search}]))
