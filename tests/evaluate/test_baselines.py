"""Baselines: the same data, splits, metric code and files as a network run; figures equal sklearn's."""

import json

import numpy as np
import pytest
from scipy.special import softmax
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import smallvision
from smallvision.config import build_config
from smallvision.data.load import load_data
from smallvision.data.splits import make_splits
from smallvision.errors import UserError
from smallvision.evaluate.baselines import cv_folds, run_baseline
from smallvision.rundir import load_run


@pytest.fixture
def base(tiny_config):
    """The tiny network config with its network's model.params (as a study's base carries them)."""
    return {**tiny_config, "train": {**tiny_config["train"], "threads": 1}}


def arrays(cfg):
    """Train and test pixels and labels, taken independently of the baseline code."""
    data = load_data(cfg.data)
    splits = make_splits(data, cfg.data.split)
    x = data.images.reshape(len(data.images), -1).numpy().astype(np.float64)
    y = data.targets["label"].numpy()
    return x[splits["train"]], y[splits["train"]], x[splits["test"]], y[splits["test"]]


SKLEARN = {
    "logistic_regression": lambda s: LogisticRegression(max_iter=2000, random_state=s),
    "random_forest": lambda s: RandomForestClassifier(n_estimators=20, n_jobs=1, random_state=s),
    "svm": lambda s: SVC(kernel="rbf", break_ties=True, random_state=s),
    "knn": lambda s: KNeighborsClassifier(n_neighbors=5, n_jobs=1),
}
PARAMS = {"random_forest": {"n_estimators": 20}}  # 200 trees are the default; 20 keep the test fast


def own_proba(model, x):
    """scikit-learn's probabilities; the svm baseline's are the softmax of the decision function."""
    if isinstance(model[-1], SVC):
        return softmax(model.decision_function(x), axis=1)
    return model.predict_proba(x)


@pytest.mark.parametrize("name", list(SKLEARN))
def test_baseline_figures_equal_scikit_learns_own(base, name, tmp_path):
    cfg = build_config({**base, "model": {"name": "cnn_small", "params": PARAMS.get(name, {})}})
    result = run_baseline(cfg, name, tmp_path / "run")
    x_tr, y_tr, x_te, y_te = arrays(cfg)
    own = Pipeline([("s", StandardScaler()), ("c", SKLEARN[name](cfg.seed))]).fit(x_tr, y_tr)
    prob = load_run(result.dir).predictions.output("test", "label", "classification")
    np.testing.assert_array_equal(prob, own_proba(own, x_te).astype(np.float32))
    expected = float((own.predict(x_te) == y_te).mean())
    assert result.metrics.test["label"]["accuracy"] == expected
    on_disk = json.loads((result.dir / "metrics.json").read_text())
    assert on_disk["splits"]["test"]["label"]["accuracy"] == expected
    if name == "logistic_regression":
        fit = result.metrics.baseline["heads"]["label"]
        assert fit["converged"] is True and fit["n_iter"] < fit["max_iter"]


def test_split_indices_equal_a_network_run_of_the_same_config(base, tmp_path):
    net = smallvision.run(base, **{"train.epochs": 1})
    baseline = run_baseline(build_config(base), "knn", tmp_path / "knn")
    a, b = load_run(net.dir).predictions, load_run(baseline.dir).predictions
    assert list(a.index) == list(b.index) == ["val", "test"]
    for split in a.index:
        np.testing.assert_array_equal(a.index[split], b.index[split])
        np.testing.assert_array_equal(a.head(split, "label")["y_true"], b.head(split, "label")["y_true"])
    assert baseline.metrics.data.sizes == net.metrics.data.sizes
    # the network run records the same references as the baseline: same training labels
    assert net.metrics.reference == baseline.metrics.reference


def test_cv_folds_are_stratified_and_partition_the_training_split():
    y = np.repeat(np.arange(4), [40, 30, 20, 11])
    folds = cv_folds(y, 5, seed=0)
    held = np.concatenate([h for _, h in folds])
    assert sorted(held.tolist()) == list(range(len(y)))
    for fit, h in folds:
        assert not set(fit) & set(h)
        counts = np.bincount(y[h], minlength=4)
        assert np.all(np.abs(counts - np.bincount(y) / 5) < 1)  # every class's share within one


def test_cv_uses_the_training_split_only_and_matches_sklearn(base, tmp_path):
    cfg = build_config(base)
    cv = run_baseline(cfg, "knn", tmp_path / "r").metrics.cv["label"]
    x_tr, y_tr, _, _ = arrays(cfg)
    skf = StratifiedKFold(5, shuffle=True, random_state=cfg.seed)
    expected = []
    for fit, held in skf.split(x_tr, y_tr):
        own = Pipeline([("s", StandardScaler()), ("c", KNeighborsClassifier(5))]).fit(x_tr[fit], y_tr[fit])
        expected.append(float((own.predict_proba(x_tr[held]).argmax(1) == y_tr[held]).mean()))
    assert cv["folds"] == expected and sum(cv["sizes"]) == len(y_tr)
    assert cv["mean"] == pytest.approx(np.mean(expected)) and cv["std"] == pytest.approx(
        np.std(expected, ddof=1)
    )


def test_model_params_set_the_estimator_and_a_bad_key_is_one_line(base, tmp_path):
    cfg = build_config(
        {**base, "model": {"name": "cnn_small", "params": {"channels": [8], "n_neighbors": 1}}}
    )
    result = run_baseline(cfg, "knn", tmp_path / "r")
    assert result.model.named_steps["clf"].n_neighbors == 1
    assert result.metrics.baseline["network_params_ignored"] == ["channels"]
    bad = build_config({**base, "output_dir": str(tmp_path / "none"), "model": {"params": {"n_trees": 3}}})
    with pytest.raises(UserError, match=r"model.params.n_trees: not a parameter of the random_forest") as exc:
        run_baseline(bad, "random_forest")
    assert "\n" not in str(exc.value) and "n_estimators" in str(exc.value)
    assert not (tmp_path / "none").exists()
    with pytest.raises(UserError, match="baseline 'xgboost': unknown"):
        run_baseline(build_config(base), "xgboost", tmp_path / "x")


def test_regression_heads_are_refused_in_one_line(base, tmp_path):
    cfg = build_config(
        {
            **base,
            "data": {"source": "builtin:shapes-multitask", "options": {"n": 200}},
            "heads": {"C": {"kind": "regression"}},
        }
    )
    with pytest.raises(UserError, match="heads.C.kind: 'regression', but a baseline supports classification"):
        run_baseline(cfg, "knn", tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_report_renders_for_a_baseline_run(base, tmp_path):
    cfg = build_config({**base, "report": {"enabled": True}})
    result = run_baseline(cfg, "knn", tmp_path / "r")
    html = (result.dir / "report.html").read_text()
    for text in (
        "cross-validation",
        "fold 5",
        "mean ± std",
        "chance (1/K)",
        "majority class",
        "knn (KNeighborsClassifier)",
    ):
        assert text in html, text
    assert "Missing or unreadable files" not in html and "disagrees" not in html


def test_a_study_runs_a_real_baseline_cell_beside_a_network(tmp_path):
    import csv

    import yaml

    from smallvision.study.runner import run_study

    base = {
        "data": {"source": "builtin:digits", "split": {"train": 0.6, "val": 0.2, "test": 0.2}},
        "model": {"name": "mlp", "params": {"hidden": [16]}},  # the network's: set aside for knn
        "train": {"epochs": 1, "threads": 1, "progress": False},
        "report": {"enabled": False},
    }
    raw = {"name": "bl", "output_dir": str(tmp_path / "studies"), "base": base, "seeds": [1]}
    raw["variants"] = {"net": {}, "knn": {"baseline": "knn"}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw))
    result = run_study(tmp_path / "s.yaml", progress=False)
    with (result.dir / "results.csv").open(newline="") as fh:
        rows = {r["variant"]: r for r in csv.DictReader(fh)}
    assert rows["net"]["status"] == rows["knn"]["status"] == "completed"
    runs = {v: load_run(result.dir / "runs" / r["cell_id"]) for v, r in rows.items()}
    assert runs["knn"].metrics.baseline["name"] == "knn" and runs["net"].metrics.baseline is None
    assert float(rows["knn"]["test/label/accuracy"]) == runs["knn"].metrics.test["label"]["accuracy"]
    for r in rows.values():  # timed on its own after evaluation, networks and baselines alike
        assert float(r["inference_seconds_per_image"]) > 0, r["variant"]
    assert runs["knn"].metrics.inference["split"] == "test" and runs["knn"].metrics.inference["images"] > 0
    np.testing.assert_array_equal(
        runs["knn"].predictions.index["test"], runs["net"].predictions.index["test"]
    )
