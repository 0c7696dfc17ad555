"""Every study file under examples/ runs end to end on a tiny budget and its main models learn.

Each study is run as a user runs it (``run_study(FILE, overrides)``, what ``smallvision study FILE
key=value ...`` calls) with overrides that cut epochs, seeds and data; it must finish every cell,
write results.csv, summary.md and the study report, decide its claims, and the groups named in LEARNS must beat chance
on every classification head: an exact one-sided binomial test of their correct test images pooled
over seeds, p < 1e-4 (chance 1/K). The budgets leave a wide margin over that, so the test is not
flaky; each study takes ~10-30 s of one core.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest

from smallvision.report.study_page import build_study_report
from smallvision.rundir import load_run
from smallvision.study.claims_check import check_claims
from smallvision.study.compare_runs import study_variants
from smallvision.study.runner import load_spec, run_study
from smallvision.study.spec import load_study

EXAMPLES = Path(__file__).parents[2] / "examples"
COMMON = ["train.threads=1", "report.enabled=false", "train.progress=false"]
TINY = {
    "autoencoders": [
        "seeds=[0]", "data.options.n=300", "steps.downstream.data.options.n=700", "data.size=[16,16]",
        "train.epochs=2", "train.batch_size=32", "model.params.hidden=[64]",
    ],
    "multitask_dualstream": [
        "seeds=[42,43]", "data.options.n=900", "train.epochs=3", "train.batch_size=32", "train.optimizer.lr=0.005",
        "model.params.widths=[8,8,16,16]", "model.params.freq_widths=[8,16]", "model.params.fusion_width=64",
    ],
    "mnist_architectures": [
        "seeds=[0]", "data.size=[14,14]", "data.split.train=0.82", "data.split.test=0.1", "data.split.fraction=0.15",
        "data.split.folds=2", "train.epochs=2", "train.batch_size=32", "train.optimizer.lr=0.003",
    ],
    "domain_shift": [
        "seeds=[0]", "train.epochs=2", "train.batch_size=32", "train.optimizer.lr=0.003",
        "steps.finetune.train.optimizer.lr=0.001", "model.params.widths=[8,16,16]",
    ],
    "permutation": ["seeds=[0]", "data.options.n=2000", "train.epochs=2"],
    "freeze_depth": [
        "seeds=[0]", "data.options.n=1000", "steps.pretrain.data.options.n=1500", "train.epochs=2",
        "train.batch_size=32", "train.optimizer.lr=0.003", "model.params.widths=[8,16,32,64]",
    ],
}  # fmt: skip
# groups that must beat chance on every classification head (ablations may legitimately not)
LEARNS = {
    "autoencoders": ["downstream/mlp3 data.split.fraction=1.0", "downstream/cnn data.split.fraction=1.0"],
    "multitask_dualstream": ["main/dualstream"],
    "mnist_architectures": ["main/cnn_bn", "main/logistic_regression", "main/random_forest"],
    "domain_shift": ["source/source", "finetune/finetune"],
    "permutation": ["main/cnn", "main/cnn_permuted", "main/mlp", "main/mlp_permuted"],
    "freeze_depth": ["pretrain/pretrain", "finetune/freeze_none"],
}


def test_every_example_study_is_covered_and_says_which_source_lines_to_change():
    files = {p.stem for p in EXAMPLES.glob("*.yaml")} - {"mnist"}  # mnist.yaml is a run config
    assert files == set(TINY)
    for name in files:
        header = (EXAMPLES / f"{name}.yaml").read_text().split("\nname:")[0]
        assert "What the original study did" in header and "source:" in header, name
        assert f"smallvision study examples/{name}.yaml" in header, name
        # the results page names each study's command, whether generated or still saying how to generate it
        assert (
            f"smallvision study examples/{name}.yaml" in (EXAMPLES.parent / "docs" / "results.md").read_text()
        )


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TINY))
def test_the_tiny_study_finishes_and_its_main_models_beat_chance(name, tmp_path):
    overrides = [*TINY[name], *COMMON, f"output_dir={tmp_path}"]
    result = run_study(EXAMPLES / f"{name}.yaml", overrides, progress=False)
    assert not result.failed and not result.unfinished, [c.error for c in result.failed]
    d = result.dir
    with (d / "results.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(r["status"] == "completed" for r in rows)
    assert all(float(r["inference_seconds_per_image"]) > 0 for r in rows)
    summary = (d / "summary.md").read_text()
    assert all(f"## Step {s.name}" in summary for s in load_spec(d).steps)
    variants = {v.name: v for v in study_variants(d)}
    for group in LEARNS[name]:
        _beats_chance(group, variants[group].runs)
    # the study report (the cells' own reports are off here: they are tested in tests/report/)
    report = build_study_report(d)
    assert report.path.is_file() and not report.problems, report.problems
    outcomes = [r.outcome for r in check_claims(load_spec(d).claims, d)]
    assert outcomes and set(outcomes) <= {"held", "not shown", "contradicted", "consistent"}, outcomes
    if name in MORE:
        MORE[name](result)


def _beats_chance(group: str, runs) -> None:
    for head, info in runs[0].metrics.heads.items():
        if info.kind != "classification":
            continue
        right = total = 0
        for run in runs:
            split = "test" if "test" in run.predictions.index else "val"
            p = run.predictions.head(split, head)
            right += int((p["prob"].argmax(1) == p["y_true"]).sum())
            total += len(p["y_true"])
        chance = 1.0 / len(info.classes)
        pvalue = binomtest(right, total, chance, alternative="greater").pvalue
        assert pvalue < 1e-4, (
            f"{group} head {head}: {right}/{total} correct, chance {chance:.3f}, p = {pvalue:.2g}"
        )


def _multitask(result) -> None:
    """Each variant's seeds are ensembled; the recipe's loss weights and cosine floor are in force."""
    for group in ("dualstream", "no_frequency", "no_spatial"):
        ensemble = load_run(result.dir / "ensembles" / "main" / group)
        assert len(ensemble.metrics.members) == 2 and ensemble.metrics.gain_split is None
    cell = next(pc for pc in result.cells if pc.cell.variant == "dualstream")
    with (result.dir / "runs" / cell.key / "history.csv").open() as f:
        last = list(csv.DictReader(f))[-1]
    for head, weight in (("A", 1.0), ("B", 2.5), ("C", 10.0)):
        assert float(last[f"train/{head}/weighted_loss"]) == pytest.approx(
            weight * float(last[f"train/{head}/loss"])
        )
    assert float(last["lr"]) == pytest.approx(
        0.005 * 0.1
    )  # cosine decayed to its floor (1e-3 -> 1e-4 in full)


def _domain_shift(result) -> None:
    """Both steps are scored on the same held-out images of every domain."""
    source, finetune = (
        [load_run(result.dir / "runs" / pc.key) for pc in result.cells if pc.cell.step == step]
        for step in ("source", "finetune")
    )
    assert finetune[0].config.model.freeze == ["stem", "stage1"]
    by_seed = {run.config.seed: run for run in source}  # seed s fine-tunes the source run of seed s
    assert all(run.config.model.init == str(by_seed[run.config.seed].dir) for run in finetune)
    for domain in "ABC":
        before, after = (
            source[0].predictions.index[f"test:{domain}"],
            finetune[0].predictions.index[f"test:{domain}"],
        )
        assert len(before) > 0 and np.array_equal(before, after), domain


def _autoencoders(result) -> None:
    """Masked models are scored on masked inputs; the probes share one test set and one feature cache."""
    runs = {pc.cell.label: load_run(result.dir / "runs" / pc.key) for pc in result.cells}
    masked = runs["data.augment.mask_pixels.ratio=0.8 seed=0"].predictions.head("test", "image")
    # 80% of the pixel positions hidden in every channel: 0 before standardising, each channel's minimum after
    low = masked["corrupted"].min(axis=(0, 2, 3), keepdims=True)
    hidden = np.all(np.isclose(masked["corrupted"], low), axis=1).mean()
    assert 0.78 <= hidden < 0.85, hidden
    assert {"mse", "mae", "psnr", "ssim", "pixel_accuracy"} <= set(
        runs["denoising seed=0"].metrics.test["image"]
    )
    probes = [r for label, r in runs.items() if label.startswith(("mlp3", "mlp5"))]
    assert len(probes) == 12 and len({r.metrics.features["cache"]["data"]["path"] for r in probes}) == 1
    test = probes[0].predictions.index["test"]
    assert all(np.array_equal(r.predictions.index["test"], test) for r in probes)


MORE = {"multitask_dualstream": _multitask, "domain_shift": _domain_shift, "autoencoders": _autoencoders}


def test_the_full_budget_files_hold_the_studies_recipes():
    multitask = load_study(EXAMPLES / "multitask_dualstream.yaml")
    base = multitask.base
    assert [base["heads"][h]["weight"] for h in "ABC"] == [1.0, 2.5, 10.0]
    assert base["heads"]["A"]["label_smoothing"] == base["heads"]["B"]["label_smoothing"] == 0.1
    assert base["train"]["mix"] == {"name": "mixup", "alpha": 0.2}
    assert (
        base["train"]["schedule"] == {"name": "cosine", "alpha": 0.1}
        and base["train"]["optimizer"]["lr"] == 1e-3
    )
    assert base["train"]["early_stopping"]["patience"] == 15 and base["data"]["split"]["stratify"] == "B"
    assert multitask.steps[0].seeds == (42, 43, 44) and multitask.steps[0].ensemble
    mnist = load_study(EXAMPLES / "mnist_architectures.yaml")
    assert len(mnist.steps[0].seeds) == 5 and mnist.base["data"]["split"]["folds"] == 5
    assert {c.baseline for c in mnist.steps[0].cells} == {None, "logistic_regression", "random_forest"}
    freeze = load_study(EXAMPLES / "freeze_depth.yaml")
    depths = {c.group: c.overrides.get("model.freeze") for c in freeze.steps[1].cells}
    assert depths["freeze_layer1_2_3"] == ["layer1", "layer2", "layer3"] and depths["freeze_all_conv"] == [
        "*"
    ]
    assert freeze.steps[1].cells[0].overrides["model.init"] is None  # scratch
    shift = load_study(EXAMPLES / "domain_shift.yaml")
    assert shift.steps[1].set["train.optimizer.lr"] == 1e-4 and shift.steps[1].depends_on == ["source"]
