"""A step's ``ensemble: true`` on an 80/20 train/val study (study 000's split), and ``claims:``."""

import json

import numpy as np
import pytest
from scipy.stats import binomtest

from smallvision.errors import UserError
from smallvision.rundir import load_run
from smallvision.study.claims_check import check_claims
from smallvision.study.results_doc import results_markdown
from smallvision.study.runner import load_spec, run_study
from smallvision.study.spec import load_study


def study(tmp_path, **more):
    return {
        "name": "tv",
        "base": {
            "data": {"source": "builtin:digits", "split": {"train": 0.8, "val": 0.2, "test": 0.0}},
            "model": {"name": "cnn_small", "params": {"channels": [8, 16], "hidden": 32}},
            "train": {"epochs": 2, "batch_size": 64, "optimizer": {"lr": 0.01}, "progress": False},
            "report": {"enabled": False},
        },
        "output_dir": str(tmp_path / "studies"),
        "seeds": [1, 2],
        "ensemble": True,
        "variants": {"small": {}, "wide": {"model.params.hidden": 64}},
        **more,
    }


CLAIMS = [
    {"claim": "wider is better", "metric": "val/label/accuracy", "better": "main/wide", "than": "main/small"},
    {"claim": "it learns", "metric": "val/label/accuracy", "better": "main/small", "than": "chance"},
    {"claim": "beats the majority", "metric": "val/label/accuracy", "better": "main/wide", "than": "majority"},
    {"claim": "width does not matter", "metric": "val/label/accuracy", "same": ["main/small", "main/wide"]},
]  # fmt: skip


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ens")
    return run_study(study(tmp, claims=CLAIMS), progress=False)


def test_each_group_is_soft_voted_on_val_when_there_is_no_test_split(finished):
    d = finished.dir
    for group in ("small", "wide"):
        ensemble = load_run(d / "ensembles" / "main" / group)
        members = [load_run(d / "runs" / pc.key) for pc in finished.cells if pc.cell.group == group]
        assert sorted(ensemble.metrics.members) == sorted(m.dir.name for m in members) and len(members) == 2
        assert "test" not in ensemble.metrics.splits and ensemble.metrics.gain_split == "val"
        prob = np.mean([m.predictions.head("val", "label")["prob"] for m in members], axis=0)
        y = members[0].predictions.head("val", "label")["y_true"]
        assert ensemble.metrics.val["label"]["accuracy"] == pytest.approx(float((prob.argmax(1) == y).mean()))
    summary = (d / "summary.md").read_text()
    assert "### Ensembles" in summary and "| small | 2 | val (no test split) | label/accuracy |" in summary
    assert "No test split: these figures are on val" in summary and "### val/label/accuracy" in summary
    page = results_markdown([d], "cmd")  # the results page says so too, beside the ensembles
    assert "No test split: these figures are on val" in page and "| small | val | label/accuracy |" in page


def test_an_unchanged_ensemble_is_not_made_again_and_a_lone_seed_makes_none(finished, tmp_path):
    metrics = finished.dir / "ensembles" / "main" / "small" / "metrics.json"
    before = metrics.stat().st_mtime_ns
    again = run_study(study(tmp_path, claims=CLAIMS), progress=False, directory=finished.dir)  # all reused
    assert metrics.stat().st_mtime_ns == before and again.dir == finished.dir
    one = run_study(study(tmp_path, seeds=[1], variants={"small": {}}), progress=False)
    assert not (one.dir / "ensembles" / "main" / "small").exists()
    assert "fewer than two completed seeds" in (one.dir / "summary.md").read_text()


def test_claims_are_decided_by_the_comparison_tests(finished):
    spec = load_spec(finished.dir)
    results = {r.claim.text: r for r in check_claims(spec.claims, finished.dir)}
    assert results["it learns"].outcome == "held" and results["beats the majority"].outcome == "held"
    # two seeds of nearly equal models: neither direction is shown, and "same" is consistent
    wider, same = results["wider is better"], results["width does not matter"]
    assert (wider.outcome == "not shown") == (same.outcome == "consistent")
    assert wider.outcome in ("held", "not shown", "contradicted")
    # the chance test is scipy's exact binomial test on each seed's correct count
    runs = [load_run(finished.dir / "runs" / pc.key) for pc in finished.cells if pc.cell.group == "small"]
    ps = []
    for run in runs:
        p = run.predictions.head("val", "label")
        ps.append(binomtest(int((p["prob"].argmax(1) == p["y_true"]).sum()), len(p["y_true"]), 0.1,
                            alternative="greater").pvalue)  # fmt: skip
    holm = max(min(1.0, p * (len(ps) - i)) for i, p in enumerate(sorted(ps)))
    assert f"largest Holm p = {holm:.3g}" in results["it learns"].detail


@pytest.mark.parametrize(
    ("claim", "message"),
    [
        ({"claim": "x", "metric": "test/label/accuracy", "better": "main/nope", "than": "main/small"},
         "group 'main/nope': no such step/group"),
        ({"claim": "x", "metric": "accuracy", "better": "main/wide", "than": "main/small"},
         "expected <split>/<head>/<metric>"),
        ({"claim": "x", "metric": "test/label/mae", "better": "main/wide", "than": "chance"},
         "than: chance needs an accuracy metric"),
        ({"claim": "x", "metric": "test/label/accuracy", "better": "main/wide"}, "expected better: and than:"),
        ({"claim": "x", "metric": "test/label/accuracy", "same": ["main/wide"]}, "same: expected two groups"),
        ({"claim": "x", "metric": "test/label/accuracy", "same": ["main/wide", "main/small"], "by": 1},
         "unknown key 'by'"),
    ],
)  # fmt: skip
def test_a_bad_claim_is_a_one_line_error_before_anything_trains(tmp_path, claim, message):
    with pytest.raises(UserError, match=message) as err:
        load_study(study(tmp_path, claims=[claim]))
    assert "claims[0]" in str(err.value) and "\n" not in str(err.value)


def test_ensemble_must_be_a_boolean(tmp_path):
    with pytest.raises(UserError, match="ensemble: expected true or false, got 'yes'"):
        load_study(study(tmp_path, ensemble="yes"))
    assert json.dumps(study(tmp_path))  # the study itself is plain data


def test_the_study_page_compares_val_and_says_so_when_there_is_no_test_split(finished):
    from smallvision.report.study_data import read_study
    from smallvision.report.study_page import render_study_report
    from smallvision.report.study_stats import disagreement, headline_metrics, metric_result

    step = read_study(finished.dir).steps[0]
    assert headline_metrics(step) == ["val/label/accuracy"]
    result = metric_result(step, "val/label/accuracy")
    assert result.comparison is not None and not result.error
    assert sorted(r.name for r in result.comparison.rows) == ["small", "wide"]
    verdict = result.comparison.verdict  # the deciding test is named on the images it used
    assert "val images" in verdict and "test images" not in verdict
    d = disagreement(result, step)
    assert d is not None and d.split == "val" and d.images is None and "test images only" in d.note
    html = render_study_report(finished.dir)
    assert "val/label/accuracy" in html and "val image–seed pairs" in html
