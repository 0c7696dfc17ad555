"""The data card, worst mistakes, looking inside, evaluation sets and reproducibility sections of
real tiny runs' reports; every number shown is checked against a direct computation from the saved
files (or from the data itself) with numpy and scikit-learn.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

import smallvision
from smallvision.report import data_card, inside, render_report
from smallvision.report.tables import format_value
from smallvision.rundir import read_run


def _section(html: str, sid: str) -> str:
    match = re.search(rf'<section id="{sid}">(.*?)</section>', html, re.S)
    assert match, f"no section {sid}"
    return match.group(1)


def _cells(row_html: str) -> list[str]:
    """The text of each cell of one table row (a cell's note kept after a space)."""
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row_html, re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in cells]


def _rows(html: str) -> list[list[str]]:
    return [_cells(r) for r in re.findall(r"<tr>(.*?)</tr>", html, re.S) if "<td" in r]


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> tuple[Path, str]:
    """A one-epoch digits run with augmentation and an evaluation set; the run writes its report."""
    out = tmp_path_factory.mktemp("digits")
    result = smallvision.run(
        None,
        **{
            "name": "digits",
            "seed": 3,
            "output_dir": str(out),
            "data": {"source": "builtin:digits", "augment": {"rotate": {"degrees": 15}}},
            "model": {"name": "cnn_small", "params": {"channels": [8, 16], "hidden": 32}},
            "train": {"epochs": 1, "progress": False, "optimizer": {"lr": 0.01}},
            "eval": {"INV": {"source": "builtin:digits", "shift": {"invert": True}}},
        },
    )
    return result.dir, (result.dir / "report.html").read_text()


@pytest.fixture(scope="module")
def dual(tmp_path_factory) -> tuple[Path, str]:
    """A one-epoch dual-stream run on shapes-multitask: three heads (10 and 32 classes, a regression)."""
    out = tmp_path_factory.mktemp("dual")
    from smallvision.study.spec import load_study

    result = smallvision.run(
        load_study("examples/multitask_dualstream.yaml").base,  # study 000's run config
        **{
            "seeds": None,
            "output_dir": str(out),
            "report.enabled": False,
            "train.progress": False,
            "data.options.n": 240,
            "train.epochs": 1,
            "train.batch_size": 32,
            "model.params": {"widths": [8, 8], "strides": [2, 1], "freq_widths": [8], "fusion_width": 16},
            "heads.A.hidden": [16],
            "heads.B.hidden": [16],
            "heads.C.hidden": [8],
        },
    )
    return result.dir, render_report(result.dir)


def test_data_card_counts_are_the_labels_of_each_split(digits):
    run_dir, html = digits
    from smallvision.study.run import prepare_data

    d = prepare_data(read_run(run_dir).config)  # the data and split again, without the card's code
    labels = d.data.targets["label"].numpy()
    with np.load(run_dir / "predictions.npz") as npz:
        inverted = npz["eval:INV/label/y_true"]
        test = npz["test/label/y_true"]
    expected = {s: np.bincount(labels[d.splits[s]], minlength=10) for s in ("train", "val", "test")}
    expected["eval:INV"] = np.bincount(inverted, minlength=10)
    np.testing.assert_array_equal(expected["test"], np.bincount(test, minlength=10))
    card = _section(html, "data-card")
    rows = {r[0]: r[1:] for r in _rows(card) if len(r) == 5}
    for k in range(10):
        assert rows[str(k)] == [
            format_value(int(expected[s][k])) for s in ("train", "val", "test", "eval:INV")
        ]
    assert rows["all"] == [format_value(int(expected[s].sum())) for s in expected]
    for title in (
        "32 training samples",
        "augmented samples",
        "head label: per-class mean",
        "pixel mean and variance",
    ):
        assert title in card
    assert "data card and predictions disagree" not in html


def test_data_card_that_disagrees_with_predictions_is_a_warning(digits, tmp_path):
    run_dir = shutil.copytree(digits[0], tmp_path / "run")
    with np.load(run_dir / "predictions.npz") as npz:
        arrays = dict(npz)
    arrays["test/label/y_true"] = (arrays["test/label/y_true"] + 1) % 10
    arrays["test/label/y_true"][0] = 0  # the counts per class change
    np.savez(run_dir / "predictions.npz", **arrays)
    _, findings, note = data_card.section(read_run(run_dir))
    assert note is None
    assert [f.title for f in findings] == ["label: data card and predictions disagree"]


def test_worst_mistakes_are_the_highest_losses_of_the_test_predictions(digits):
    run_dir, html = digits
    with np.load(run_dir / "predictions.npz") as npz:
        prob, y, index = (
            npz["test/label/prob"].astype(np.float64),
            npz["test/label/y_true"],
            npz["test/index"],
        )
    loss = -np.log(prob[np.arange(len(y)), y])
    worst = np.argsort(-loss, kind="stable")[:12]
    section = _section(html, "mistakes")
    rows = [r for r in _rows(section) if len(r) == 8]
    assert len(rows) == 12
    for rank, (row, i) in enumerate(zip(rows, worst, strict=True)):
        pred = int(prob[i].argmax())
        assert row == [
            str(rank + 1),
            str(i),
            format_value(int(index[i])),
            format_value(float(loss[i])),
            str(y[i]),
            str(pred),
            format_value(float(prob[i, pred])),
            format_value(float(prob[i, y[i]])),
        ]
    assert "label: worst mistakes" in section and "<img" in section


def test_evaluation_sets_side_by_side_match_scikit_learn(digits):
    run_dir, html = digits
    section = _section(html, "eval-sets")
    rows = {r[1]: r[2:] for r in _rows(section)}
    with np.load(run_dir / "predictions.npz") as npz:
        for column, split in enumerate(("test", "eval:INV")):
            y, pred = npz[f"{split}/label/y_true"], npz[f"{split}/label/prob"].argmax(axis=1)
            expected = {
                "accuracy": accuracy_score(y, pred),
                "balanced_accuracy": balanced_accuracy_score(y, pred),
                "macro_f1": f1_score(y, pred, average="macro", labels=range(10), zero_division=0),
            }
            for metric, value in expected.items():
                assert rows[metric][column] == f"{format_value(value)} recomputed {format_value(value)} ✓"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (
        "test (n=360)" in section
        and f"eval:INV (n={format_value(metrics['data']['sizes']['eval:INV'])})" in section
    )


def test_looking_inside_a_cnn(digits):
    _, html = digits
    section = _section(html, "inside")
    assert "feature maps of stage1" in section and "saliency maps" in section
    assert "Spectra" not in section  # only the dual-stream model has a frequency stream


def test_feature_stage_from_the_config_and_a_wrong_one(digits):
    run = read_run(digits[0])
    blocks, note = inside.section(run, "stem")
    assert note is None and any("feature maps of stem" in i.title for b in blocks for i in b.images)
    blocks, _ = inside.section(run, "nope")
    assert (
        "report.feature_stage 'nope' is not a stage with feature maps (stages with maps: stem, stage1)."
        in blocks[0].notes
    )


def test_reproducibility_section(digits):
    run_dir, html = digits
    env = json.loads((run_dir / "env.json").read_text())
    assert isinstance(env["argv"], list) and env["cwd"]
    section = _section(html, "reproducibility")
    for key in ("seed", "data_fingerprint", "git_commit"):
        assert f"<td>{key}</td>" in section and str(env[key]) in section
    assert "<td>command</td>" in section and "package torch" in section
    assert '<details id="config"><summary>resolved config (config.yaml)</summary>' in section
    assert "name: digits" in section


def test_print_css_opens_folded_content_and_breaks_pages(digits):
    _, html = digits
    css = html[html.index("@media print") :]
    assert "details::details-content { content-visibility: visible" in css
    assert "section { break-before: page; }" in css and "max-width: 100%" in css


def test_run_without_checkpoint_card_or_test_images_renders_with_notes(digits, tmp_path):
    run_dir = shutil.copytree(digits[0], tmp_path / "run")
    shutil.rmtree(run_dir / "checkpoints")
    (run_dir / "data_card.npz").unlink()
    (run_dir / "test_images.npz").unlink()
    html = render_report(run_dir)
    assert "checkpoints/best.pt not found: looking inside needs the trained model; skipped." in html
    assert "data_card.npz not found" in html
    assert "test_images.npz not found: the worst mistakes are listed without their images." in html
    assert "Feature maps" not in html
    assert len(_rows(_section(html, "mistakes"))) == 12  # still listed
    assert "Missing or unreadable files" not in html  # optional files: notes, not problems


def test_dual_stream_report_has_spectra_streams_and_every_heads_mistakes(dual):
    run_dir, html = dual
    section = _section(html, "inside")
    for title in ("Spectra (dual-stream model)", "FFT magnitude and phase", "radial profile", "Both streams"):
        assert title in section
    assert "stream feature maps" in section and "pooled features per stream" in section
    from smallvision.train.checkpoint import load_checkpoint

    w = load_checkpoint(run_dir / "checkpoints" / "best.pt")["model"]["backbone.fusion.0.weight"].numpy()
    w = w.astype(np.float64)
    spatial = float((w[:, :8] ** 2).sum() / (w**2).sum())  # widths[-1] = 8 spatial, then 8 frequency
    rows = {r[0]: r for r in _rows(section) if len(r) == 4}
    assert rows["spatial"][3] == format_value(spatial)
    assert rows["frequency"][3] == format_value(1 - spatial)
    mistakes = _section(html, "mistakes")
    for head in "ABC":
        assert f"<h3>Head {head}</h3>" in mistakes and f"{head}: worst mistakes" in mistakes
    card = _section(html, "data-card")
    assert "Counts per class: head A" in card and "Counts per class: head B" in card


def test_features_mode_run_has_an_image_data_card_and_looks_inside_its_encoder(tmp_path):
    base = {
        "seed": 3,
        "output_dir": str(tmp_path / "runs"),
        "data": {"source": "builtin:digits"},
        "train": {"epochs": 1, "progress": False},
        "report": {"enabled": False},
    }
    autoencoder = smallvision.run(
        base
        | {
            "name": "ae",
            "model": {"name": "autoencoder_conv", "params": {}},
            "heads": {"image": {"kind": "reconstruction"}},
        }
    )
    run = smallvision.run(
        base | {"name": "mlp", "model": {"init": str(autoencoder.dir)}, "features": {"hidden": [16]}}
    )
    card = read_run(run.dir).data_card
    assert (
        card["samples"].shape[1:] == (1, 8, 8) and card["samples"].dtype == np.uint8
    )  # images, not features
    np.testing.assert_allclose(card["norm_mean"], autoencoder.metrics.data.normalization["mean"])
    stored = read_run(run.dir).test_images
    assert stored.images.shape[1:] == (1, 8, 8)
    html = render_report(run.dir)
    assert "label: worst mistakes" in _section(html, "mistakes")
    assert "feature maps of" in _section(html, "inside") and "saliency maps" in html
