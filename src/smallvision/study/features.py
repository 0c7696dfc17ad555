"""A frozen-encoder run (``features:`` in the config): features once, then a head on them.

:func:`prepare_features` is what :func:`smallvision.study.run.prepare` returns for such a config:
the same data, splits and evaluation sets as any run, each split's images replaced by the
encoder's (N, F, 1, 1) features (read from the cache when an earlier run extracted them), a
normaliser of the features' training-split statistics, and a :class:`FeatureMLP` network. The MLP
then trains, is evaluated and written by the ordinary trainer and ``finish``: history, checkpoints,
predictions, metrics and report like any run. ``head: logistic_regression`` has no network
(``Prepared.model`` is None): :func:`fit_sklearn_head` fits scikit-learn's logistic regression on the
same features (the baselines' pipeline: StandardScaler then the classifier) and writes the same files.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from smallvision.config import RunConfig
from smallvision.data.augment.pipeline import IDENTITY
from smallvision.data.dataset import ImageSet
from smallvision.data.mapped import take_rows
from smallvision.data.normalize import Normalizer, fit_normalizer
from smallvision.errors import UserError
from smallvision.models.base import Network
from smallvision.models.features import Encoder, FeatureMLP, extract_features, load_encoder
from smallvision.rundir import feature_cache as fc
from smallvision.study.resolve import add_eval_sets, head_targets, resolve_device
from smallvision.train.evaluation import Split
from smallvision.train.rng import seed_everything

if TYPE_CHECKING:
    from smallvision.study.run import Prepared, RunResult


def prepare_features(cfg: RunConfig) -> Prepared:
    """Data, splits, features (cached), their normaliser and the MLP (None for logistic regression)."""
    from smallvision.study.run import Prepared, prepare_data

    d = prepare_data(cfg)
    cfg, data, heads, splits = d.cfg, d.data, d.heads, d.splits
    for name, head in heads.items():  # heads from the data are only known now
        if head.kind not in ("classification", "regression") or (
            cfg.features.head == "logistic_regression" and head.kind != "classification"
        ):
            raise UserError(
                f"heads.{name}.kind: {head.kind!r} does not fit features.head {cfg.features.head}"
            )
    device = resolve_device(cfg.train.device)
    # a state dict's input preparation is the run's own; a smallvision encoder brings its own
    image_norm = fit_normalizer(take_rows(data.images, splits["train"]), cfg.data.normalize)
    encoder = load_encoder(cfg.model.init, cfg.model, data.shape, image_norm)
    images = {s: Split(take_rows(data.images, i), head_targets(data, heads, i)) for s, i in splits.items()}
    add_eval_sets(cfg, data, heads, splits, images)  # eval:NAME splits, images of their own sets
    directory = fc.cache_dir(cfg.model.init, cfg.features.cache)
    weights = fc.file_sha256(encoder.path)
    batch = cfg.train.eval_batch_size
    every, hit = cached_features(encoder, weights, data.images, directory, batch, device)
    caches = {"data": hit}
    split_data = {}
    for s, part in images.items():
        if s in data_splits(splits):
            feats = every[splits[s]]
        else:  # an evaluation set: its own images, its own cache entry
            feats, caches[s] = cached_features(encoder, weights, part.images, directory, batch, device)
        split_data[s] = Split(torch.from_numpy(np.ascontiguousarray(feats))[:, :, None, None], part.targets)
    normalizer = feature_normalizer(split_data["train"].images)
    info = {
        "head": cfg.features.head,
        "dim": encoder.dim,
        "encoder": {**encoder.spec, "path": str(encoder.path), "sha256": weights},
        "cache": caches,
    }
    model = None
    if cfg.features.head == "mlp":
        seed_everything(cfg.seed)  # the same weights for the same seed, whatever ran before
        f = cfg.features
        trunk = FeatureMLP((encoder.dim, 1, 1), tuple(f.hidden), f.dropout, f.batch_norm)
        model = Network(trunk, heads).to(device)
    meta = {
        "config": cfg.model_dump(mode="json"),
        "normalizer": normalizer.to_dict(),
        "input_shape": [encoder.dim, 1, 1],
        "features": info,
    }
    return Prepared(cfg, data, heads, splits, split_data, normalizer, IDENTITY, model, meta)


def data_splits(splits: dict[str, np.ndarray]) -> list[str]:
    """The splits that index the run's data (not an evaluation set's own images)."""
    from smallvision.data.evalsets import PREFIX

    return [s for s in splits if not s.startswith(PREFIX)]


def cached_features(
    encoder: Encoder, weights: str, images: torch.Tensor, directory: Path, batch: int, device: torch.device
) -> tuple[np.ndarray, dict[str, Any]]:
    """The encoder's (N, F) features of ``images``, from the cache or extracted and cached.

    Returns:
        (features, {"path": the cache file, "hit": whether it was read rather than computed}).
    """
    fingerprint = ImageSet(images, {}, {}).fingerprint()  # the pixels only: labels change no feature
    key = fc.cache_key({"weights": weights, "encoder": encoder.spec, "images": fingerprint})
    path = fc.cache_path(directory, key)
    feats = fc.load_features(path, len(images))
    if feats is not None:
        return feats, {"path": str(path), "hit": True}
    feats = extract_features(encoder, images, batch, device)
    fc.save_features(path, feats, {"weights": weights, "encoder": encoder.spec, "images": fingerprint})
    return feats, {"path": str(path), "hit": False}


def feature_normalizer(train: torch.Tensor) -> Normalizer:
    """Per-feature mean and std of the training split; a constant feature keeps scale 1 (as
    scikit-learn's StandardScaler does), so that it cannot blow up on another split."""
    fitted = fit_normalizer(train, "standardize")
    std = tuple(s if s > 1e-6 else 1.0 for s in fitted.std)
    return Normalizer(fitted.scale, fitted.mean, std)


def fit_sklearn_head(p: Prepared, run_dir: Path) -> RunResult:
    """Logistic regression on the features of ``p``: fit on train, score every other split, write the files.

    The pipeline and the record are the baselines' (:mod:`smallvision.evaluate.baselines`): a
    StandardScaler fitted on the training features, then ``LogisticRegression`` with the config's
    ``features.C`` and ``features.max_iter``; ``metrics.json`` has ``baseline`` and ``features``.
    """
    from smallvision.evaluate import baselines as bl
    from smallvision.evaluate.metrics import compute_metrics
    from smallvision.evaluate.reference import run_references
    from smallvision.rundir import RunPaths, save_predictions, write_json
    from smallvision.study.run import PreparedData, RunResult

    f = p.cfg.features
    # the estimator's parameters, where the baselines read them (model.params)
    est = p.cfg.model.model_copy(update={"params": {"C": f.C, "max_iter": f.max_iter}})
    d = PreparedData(p.cfg.model_copy(update={"model": est}), p.data, p.heads, p.splits)
    kinds = {h: c.kind for h, c in p.heads.items()}
    x = {s: part.images.reshape(len(part), -1).numpy().astype(np.float64) for s, part in p.split_data.items()}
    y = {s: {h: t.numpy() for h, t in part.targets.items()} for s, part in p.split_data.items()}
    models, fits = {}, {}
    for h in p.heads:
        models[h], fits[h] = bl.fit_head("logistic_regression", d.cfg, x["train"], y["train"][h])
    start = time.perf_counter()
    names = [s for s in p.split_data if s != "train" and len(p.split_data[s])]
    evaluated = {
        s: (y[s], {h: bl.full_proba(models[h], x[s], p.heads[h].classes).astype(np.float32) for h in p.heads})
        for s in names
    }
    classes = {h: c.classes for h, c in p.heads.items()}
    record = bl.baseline_record(
        d, "logistic_regression", models, {s: compute_metrics(kinds, *evaluated[s]) for s in names}, fits,
        {}, run_references(y["train"], {s: y[s] for s in names}, kinds, classes), time.perf_counter() - start,
    )  # fmt: skip
    scaled = {"method": "StandardScaler per feature, fitted on the training split"}
    record = replace(record, features=p.meta["features"], data=replace(record.data, normalization=scaled))
    paths = RunPaths(run_dir)
    save_predictions(paths.predictions, p.splits, evaluated, kinds)
    write_json(paths.metrics, record.to_dict())
    if p.cfg.report.enabled:
        from smallvision.report.html import write_report

        write_report(run_dir)
    return RunResult(run_dir, record, models[next(iter(models))], p.cfg)
