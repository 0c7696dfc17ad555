"""Classical baselines: scikit-learn on flattened, standardised pixels, scored like the networks.

A baseline run reads the same data and the same splits as a network run of the same config
(:func:`smallvision.study.run.prepare_data`, which :func:`~smallvision.study.run.prepare` calls
too), fits one estimator per classification head on the training split only, and writes the same
files: ``config.yaml``, ``env.json``, ``predictions.npz`` (``prob`` from ``predict_proba``),
``metrics.json`` (the same metric code, plus a ``baseline`` and a ``cv`` section) and the run
report. Stratified k-fold cross-validation on the training split (``data.split.folds`` folds)
gives the spread that one test figure hides.

Every estimator is a :class:`~sklearn.pipeline.Pipeline` of a :class:`StandardScaler` and the
classifier, so the pixel statistics come from the data the estimator is fitted on: the training
split for the test figure, the training folds for each cross-validation fold.
"""

from __future__ import annotations

import inspect
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from smallvision.config import RunConfig, to_yaml
from smallvision.errors import UserError

# what ``baseline:`` accepts; the defaults are documented in docs/baselines.md
BASELINES = ("logistic_regression", "random_forest", "svm", "knn")
LOGREG_MAX_ITER = 2000  # lbfgs needs ~300-700 iterations on 3,600 standardised MNIST images


def make_estimator(name: str, seed: int, threads: int | None, params: dict[str, Any] | None = None):
    """The unfitted classifier ``name`` with the defaults, then ``params`` set on it.

    Args:
        name: one of :data:`BASELINES`.
        seed: ``random_state`` of the estimators that draw random numbers.
        threads: ``n_jobs`` of random forest and k-NN (None: all cores).
        params: parameters for the estimator; each key must be one of its ``get_params()``.

    Raises:
        UserError: an unknown baseline or parameter key (one line naming it).
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    from smallvision.evaluate.softmax_svc import SoftmaxSVC

    n_jobs = threads or -1
    factories: dict[str, Callable[[], Any]] = {
        # lbfgs fits the multinomial (softmax) model for more than two classes
        "logistic_regression": lambda: LogisticRegression(
            solver="lbfgs", max_iter=LOGREG_MAX_ITER, random_state=seed
        ),
        "random_forest": lambda: RandomForestClassifier(n_estimators=200, n_jobs=n_jobs, random_state=seed),
        # break_ties: predict() is the arg-max of the decision function, as the report scores it
        "svm": lambda: SoftmaxSVC(kernel="rbf", break_ties=True, random_state=seed),
        "knn": lambda: KNeighborsClassifier(n_neighbors=5, n_jobs=n_jobs),
    }
    if name not in factories:
        raise UserError(f"baseline {name!r}: unknown; expected one of {', '.join(BASELINES)}")
    estimator = factories[name]()
    known = estimator.get_params()
    for key in params or {}:
        if key not in known:
            raise UserError(
                f"model.params.{key}: not a parameter of the {name} baseline "
                f"({type(estimator).__name__}); expected one of {', '.join(sorted(known))}"
            )
    return estimator.set_params(**(params or {}))


def baseline_params(cfg: RunConfig, name: str) -> tuple[dict[str, Any], list[str]]:
    """The estimator's parameters in ``model.params``, and the keys left to the network.

    A study's base config usually carries the network's ``model.params`` (``channels: [8, 16]``)
    into its baseline cells, so a key that the estimator does not take but the config's network
    (``model.name``) does is the network's: it is set aside and recorded, not an error.

    Returns:
        (estimator params, sorted names of the network's keys that were set aside).

    Raises:
        UserError: a key that neither the estimator nor the network takes (via make_estimator).
    """
    from smallvision.registry import MODELS

    known = make_estimator(name, 0, None).get_params()
    network: set[str] = set()
    if cfg.model.name in MODELS:
        network = set(inspect.signature(MODELS.get(cfg.model.name).__init__).parameters) - {"self"}
    mine = {k: v for k, v in cfg.model.params.items() if k in known or k not in network}
    make_estimator(name, cfg.seed, cfg.train.threads, mine)  # a key neither takes: one-line error
    return mine, sorted(set(cfg.model.params) - set(mine))


def make_pipeline(name: str, seed: int, threads: int | None, params: dict[str, Any] | None = None):
    """StandardScaler (fitted on whatever the pipeline is fitted on) then :func:`make_estimator`."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scale", StandardScaler()), ("clf", make_estimator(name, seed, threads, params))])


def flatten(images) -> np.ndarray:
    """(N, C, H, W) images (a tensor or array, uint8 or float) as (N, C*H*W) float64 pixels."""
    arr = images.numpy() if hasattr(images, "numpy") else np.asarray(images)
    return arr.reshape(len(arr), -1).astype(np.float64)


def full_proba(fitted, x: np.ndarray, classes: int) -> np.ndarray:
    """``predict_proba`` with one column per class 0..K-1 (a class absent from the fit gets 0)."""
    p = fitted.predict_proba(x)
    out = np.zeros((len(x), classes), dtype=np.float64)
    out[:, fitted.classes_.astype(np.int64)] = p
    return out


def cv_folds(y_train: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold (shuffled with ``seed``) of positions in the training split.

    Returns:
        ``(fit_positions, held_out_positions)`` per fold; the held-out parts partition
        ``range(len(y_train))`` and each holds every class's share to within one sample.

    Raises:
        UserError: fewer training samples than folds, or no class with ``k`` samples.
    """
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y_train)
    if len(y_train) < k or counts.max(initial=0) < k:
        raise UserError(
            f"data.split.folds: {k} folds but the training split has {len(y_train)} samples "
            f"and its largest class {counts.max(initial=0)}: lower data.split.folds"
        )
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # a class rarer than k: sklearn warns, the folds are still valid
        warnings.simplefilter("ignore", UserWarning)
        return list(skf.split(np.zeros(len(y_train)), y_train))


def cross_validate(
    name: str, cfg: RunConfig, x: np.ndarray, y: np.ndarray, classes: int, head: str
) -> dict[str, Any]:
    """Per-fold headline metric of the baseline on the training split, with mean and std.

    Each fold fits a fresh pipeline (scaler included) on the other folds and is scored by the
    run's metric code, so the fold figures and the test figure are the same quantity.
    """
    from smallvision.evaluate.metrics import compute_metrics

    k = cfg.data.split.folds
    scores, sizes, start = [], [], time.perf_counter()
    for fit, held in cv_folds(y, k, cfg.seed):
        pipe = make_pipeline(name, cfg.seed, cfg.train.threads, baseline_params(cfg, name)[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence is checked and recorded on the main fit
            pipe.fit(x[fit], y[fit])
        prob = full_proba(pipe, x[held], classes)
        scores.append(
            compute_metrics({head: "classification"}, {head: y[held]}, {head: prob})[head]["accuracy"]
        )
        sizes.append(len(held))
    arr = np.asarray(scores)
    return {
        "head": head,
        "metric": "accuracy",
        "k": k,
        "method": "stratified k-fold on the training split",
        "folds": [float(s) for s in scores],
        "sizes": sizes,
        "mean": float(arr.mean()),
        "std": float(arr.std(ddof=1)),  # sample std over folds
        "seconds": time.perf_counter() - start,
    }


def fit_head(name: str, cfg: RunConfig, x: np.ndarray, y: np.ndarray) -> tuple[Any, dict[str, Any]]:
    """Fit the baseline on the training split; the fitted pipeline and what to record about it."""
    from sklearn.exceptions import ConvergenceWarning

    pipe = make_pipeline(name, cfg.seed, cfg.train.threads, baseline_params(cfg, name)[0])
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        pipe.fit(x, y)
    info: dict[str, Any] = {"fit_seconds": time.perf_counter() - start}
    clf = pipe.named_steps["clf"]
    if hasattr(clf, "n_iter_"):
        info["n_iter"] = int(np.max(clf.n_iter_))
        info["max_iter"] = clf.get_params().get("max_iter")
    if name in ("logistic_regression", "svm"):
        info["converged"] = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return pipe, info


@dataclass
class BaselineResult:
    """A finished baseline run, like a network run's RunResult.

    Attributes:
        dir: the run directory.
        metrics: its metrics record (as in ``metrics.json``).
        model: the fitted pipeline (scaler + classifier) of the first head.
        config: the resolved config the run used.
        models: head -> fitted pipeline.
    """

    dir: Path
    metrics: Any
    model: Any
    config: RunConfig
    models: dict[str, Any]


def check_heads(cfg: RunConfig, heads: dict) -> None:
    """Baselines fit classification heads only: any other kind is a one-line error."""
    other = {h: c.kind for h, c in heads.items() if c.kind != "classification"}
    if other:
        h, kind = next(iter(other.items()))
        raise UserError(
            f"heads.{h}.kind: {kind!r}, but a baseline supports classification heads only "
            f"(data {cfg.data.source})"
        )


def run_baseline(cfg: RunConfig, baseline: str, run_dir: Path | None = None) -> BaselineResult:
    """Fit, cross-validate and evaluate one baseline; write the run directory like a network run.

    Args:
        cfg: the run config; ``model.params`` are the estimator's parameters (those only the
            network of ``model.name`` takes are set aside, see :func:`baseline_params`), ``seed``
            its ``random_state``, ``train.threads`` its ``n_jobs``, ``data.split.folds`` the
            number of cross-validation folds.
        baseline: one of :data:`BASELINES`.
        run_dir: the directory to write into (created); default a new ``<output_dir>/<name>-<stamp>``.

    Returns:
        BaselineResult with the directory, the metrics record and the fitted pipelines.

    Raises:
        UserError: an unknown baseline or parameter, a head that is not classification, or too
            few training samples for the folds; nothing is written then.
    """
    from smallvision.rundir import RunPaths, environment, new_run_dir, write_json, write_text
    from smallvision.rundir.layout import check_output_dir
    from smallvision.study.run import prepare_data

    baseline_params(cfg, baseline)  # an unknown baseline or parameter: fail before anything
    check_heads(cfg, cfg.heads or {})  # declared heads: before loading the data
    d = prepare_data(cfg)
    check_heads(cfg, d.heads)
    train = d.splits["train"]
    x_train = flatten(d.data.images[train])
    y_train = {h: d.data.targets[c.target or h][train].numpy() for h, c in d.heads.items()}
    for h in d.heads:
        cv_folds(y_train[h], cfg.data.split.folds, cfg.seed)  # too few samples: fail before writing
    check_output_dir(cfg.output_dir)
    run_dir = new_run_dir(cfg.output_dir, cfg.name) if run_dir is None else run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    paths = RunPaths(run_dir)
    write_json(paths.env, environment(cfg.seed, d.data.fingerprint(), cfg.train.threads or os.cpu_count()))
    write_text(paths.config, to_yaml(d.cfg))
    return fit_and_write(d, baseline, run_dir, x_train, y_train)


def fit_and_write(d, baseline: str, run_dir: Path, x_train: np.ndarray, y_train: dict) -> BaselineResult:
    """Fit and cross-validate each head, evaluate every non-empty split, write the files."""
    from smallvision.data.mapped import take_rows
    from smallvision.evaluate.metrics import compute_metrics
    from smallvision.evaluate.reference import run_references
    from smallvision.rundir import RunPaths, save_predictions, save_test_images, write_json

    cfg, kinds = d.cfg, {h: c.kind for h, c in d.heads.items()}
    classes = {h: c.classes for h, c in d.heads.items()}
    models, fits, cv = {}, {}, {}
    for h in d.heads:
        models[h], fits[h] = fit_head(baseline, cfg, x_train, y_train[h])
        cv[h] = cross_validate(baseline, cfg, x_train, y_train[h], classes[h], h)
    start = time.perf_counter()
    # "val", "test", and per-domain parts such as "test:TEST2", as a network run evaluates them
    names = [s for s, i in d.splits.items() if s != "train" and len(i)]
    evaluated = {}
    for s in names:
        idx = d.splits[s]
        x = flatten(d.data.images[idx])
        y_true = {h: d.data.targets[c.target or h][idx].numpy() for h, c in d.heads.items()}
        # float32 as saved in predictions.npz, so the report recomputes exactly these figures
        probs = {h: full_proba(models[h], x, classes[h]).astype(np.float32) for h in d.heads}
        evaluated[s] = (y_true, probs)
    record = baseline_record(
        d, baseline, models, {s: compute_metrics(kinds, *evaluated[s]) for s in names}, fits, cv,
        run_references(y_train, {s: evaluated[s][0] for s in names}, kinds, classes),
        time.perf_counter() - start,
    )  # fmt: skip
    record = replace(record, inference=baseline_inference(d, models, classes))
    paths = RunPaths(run_dir)
    save_predictions(paths.predictions, d.splits, evaluated, kinds)
    if "test" in d.splits:
        # as a network run saves them: the study report's disagreement pictures may show a baseline
        test = take_rows(d.data.images, d.splits["test"])
        save_test_images(paths.test_images, d.splits["test"], np.asarray(test[:]))
    write_json(paths.metrics, record.to_dict())
    if cfg.report.enabled:
        from smallvision.report.html import write_report

        write_report(run_dir)
    return BaselineResult(run_dir, record, models[next(iter(models))], cfg, models)


def baseline_inference(d, models: dict, classes: dict) -> dict:
    """Seconds per image of the fitted pipelines on test images (val without a test split),
    flattening included: measured on its own, as a network run's (``predict.time_inference``)."""
    from smallvision.evaluate.predict import INFERENCE_IMAGES, time_inference

    split = next((s for s in ("test", "val") if len(d.splits.get(s, ()))), None)
    if split is None:
        return {}
    images = d.data.images[d.splits[split][:INFERENCE_IMAGES]]

    def run_batch() -> None:
        x = flatten(images)
        for h, model in models.items():
            full_proba(model, x, classes[h])

    n_jobs = next(iter(models.values())).named_steps["clf"].get_params().get("n_jobs")
    return time_inference(run_batch, len(images), batch_size=len(images), threads=n_jobs, split=split)


def baseline_record(d, baseline, models, splits, fits, cv, reference, eval_seconds):
    """The metrics record of a baseline run: a network run's fields plus baseline, cv, reference."""
    from smallvision.rundir import DataInfo, HeadInfo, MetricsRecord
    from smallvision.study.resolve import class_names

    clf = next(iter(models.values())).named_steps["clf"]
    return MetricsRecord(
        "completed",
        splits=splits,
        train_seconds=sum(f["fit_seconds"] for f in fits.values()),
        eval_seconds=eval_seconds,
        heads={h: HeadInfo(c.kind, class_names(d.data, h, c)) for h, c in d.heads.items()},
        data=DataInfo(
            source=d.cfg.data.source,
            input_shape=list(d.data.shape),
            normalization={"method": "StandardScaler per pixel, fitted on the training split"},
            sizes={s: len(i) for s, i in d.splits.items()},
            split=d.splits.info,
            reader=d.data.meta,
        ),
        baseline={
            "name": baseline,
            "estimator": type(clf).__name__,
            "params": _plain_params(clf),
            "network_params_ignored": baseline_params(d.cfg, baseline)[1],
            "heads": fits,
        },
        cv=cv,
        reference=reference,
    )


def _plain_params(estimator) -> dict[str, Any]:
    """The estimator's parameters as JSON values (anything else as its repr)."""
    return {
        k: v if v is None or isinstance(v, bool | int | float | str) else repr(v)
        for k, v in sorted(estimator.get_params().items())
    }
