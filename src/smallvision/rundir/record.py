"""``metrics.json``: one typed, versioned record for single runs, ensembles and seed groups.

Schema version 1 (``"schema_version": 1``)::

    {"schema_version": 1, "kind": "run" | "ensemble" | "group",
     "status": "completed" | "failed" | "interrupted", "error": "...",
     "splits": {"val": {head: {metric: value}}, "test": {...}, "test:TEST2": {...}},
     "best_epoch", "epochs_run", "stopped_early", "train_seconds", "eval_seconds",
     "params", "heads": {head: {"kind", "classes"}}, "data": {...},
     "failure": {"head", "epoch", "step"}, "resume": "smallvision resume ...",
     "members": {name: {"dir", "seed", "status", "test", "val"}}, "gain": {head: {metric: {...}}},
     "gain_split": "val" (only when there is no test split), "method",
     "reference": {split: {head: {"chance", "majority", "majority_class"} | {"train_mean"}}},
     "baseline": {"name", "estimator", "params", "heads": {head: {"fit_seconds", ...}}},
     "cv": {head: {"metric", "k", "folds": [...], "sizes": [...], "mean", "std"}},
     "features": {"head", "dim", "encoder": {...}, "cache": {"path", "hit"}},
     "inference": {"seconds_per_image", "images", "repeats", "batch_size", "threads", "split"}}

``reference`` holds the trivial predictors' scores (see :mod:`smallvision.evaluate.reference`);
``baseline`` and ``cv`` are written by scikit-learn baseline runs only
(:mod:`smallvision.evaluate.baselines`); ``features`` by frozen-encoder runs (``features:`` in the
config, :mod:`smallvision.study.features`).

Fields that do not apply (``gain`` of a single run, ``best_epoch`` of an ensemble) are left out of
the file. Files written before the version existed (no ``schema_version``: ``val`` / ``test`` /
``domains`` at the top level, ``n_<split>`` in ``data``) are read as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from smallvision.errors import UserError

SCHEMA_VERSION = 1
Status = Literal["completed", "failed", "interrupted"]
Kind = Literal["run", "ensemble", "group"]
# split -> head -> metric -> value (a float, or a list such as the confusion matrix)
SplitMetrics = dict[str, dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class HeadInfo:
    """One head as the run resolved it: its kind and, for classification, its class names."""

    kind: str
    classes: list[str] | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HeadInfo:
        classes = d.get("classes")
        return cls(str(d.get("kind", "")), [str(c) for c in classes] if isinstance(classes, list) else None)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "classes": self.classes}


@dataclass(frozen=True)
class DataInfo:
    """The data a run saw: source, input shape, normalisation, samples per split, split and reader info."""

    source: str | None = None
    input_shape: list[int] = field(default_factory=list)
    normalization: dict[str, Any] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)
    reader: dict[str, Any] = field(default_factory=dict)  # e.g. {"skipped": 3} with data.skip_bad

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataInfo:
        sizes = dict(d.get("sizes") or {})
        # before schema version 1 the sizes were keys n_train, n_val, n_test, n_test:DOMAIN
        sizes |= {k[2:]: int(v) for k, v in d.items() if k.startswith("n_") and isinstance(v, int)}
        return cls(
            d.get("source"),
            list(d.get("input_shape") or []),
            dict(d.get("normalization") or {}),
            sizes,
            dict(d.get("split") or {}),
            dict(d.get("reader") or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Failure:
    """Where a failed run's training loss became non-finite."""

    head: str | None = None
    epoch: int | None = None
    step: int | None = None


@dataclass(frozen=True)
class Member:
    """One member run of an ensemble or seed group and its scalar test (and val) metrics."""

    dir: str
    seed: int | None = None
    status: str = "completed"
    test: dict[str, dict[str, float]] = field(default_factory=dict)
    val: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Gain:
    """An ensemble metric against its members; ``over_*`` > 0 means the ensemble is better."""

    ensemble: float
    best_member: float
    mean_member: float
    over_best: float
    over_mean: float


@dataclass(frozen=True)
class MetricsRecord:
    """The content of one ``metrics.json`` (see the module docstring for the file).

    Attributes:
        status: completed, failed or interrupted.
        kind: run (one training run), ensemble (``ensemble/``) or group (a seed group's directory).
        error: why a run failed (one line), None otherwise.
        splits: split -> head -> metric -> value, for ``val``, ``test`` and domain parts
            such as ``test:TEST2``.
        best_epoch, epochs_run, stopped_early: the training, for a run.
        train_seconds, eval_seconds: wall times (an ensemble's train time is its members' sum).
        params: parameter counts per part of the model.
        heads: head -> its kind and class names.
        data: the data the run saw.
        failure: where the loss became non-finite, for a failed run.
        resume: the command that continues an interrupted run.
        members: member name (``seed-42``) -> Member, for an ensemble or group.
        gain: head -> metric -> Gain, for an ensemble.
        gain_split: the split ``gain`` is measured on: ``test``, or ``val`` for members without a
            test split (an 80/20 train/val study); None means ``test``.
        method: head kind -> how the ensemble combines its members.
        reference: split -> head -> scores of chance, the majority class or the training mean.
        inference: the run's inference time, measured on its own after evaluation (see
            :func:`smallvision.evaluate.predict.time_inference`): ``seconds_per_image``, ``images``,
            ``repeats``, ``batch_size``, ``threads``, ``split``.
        baseline: the scikit-learn baseline of a baseline run (name, estimator, parameters, fits).
        cv: head -> the baseline's cross-validation on the training split.
        features: a frozen-encoder run's head, feature size, encoder and cache.
        schema_version: the version of the file this record was read from or will be written as.
    """

    status: Status
    kind: Kind = "run"
    error: str | None = None
    splits: SplitMetrics = field(default_factory=dict)
    best_epoch: int | None = None
    epochs_run: int | None = None
    stopped_early: bool | None = None
    train_seconds: float | None = None
    eval_seconds: float | None = None
    params: dict[str, int] = field(default_factory=dict)
    heads: dict[str, HeadInfo] = field(default_factory=dict)
    data: DataInfo | None = None
    failure: Failure | None = None
    resume: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    gain: dict[str, dict[str, Gain]] = field(default_factory=dict)
    gain_split: str | None = None
    method: dict[str, str] = field(default_factory=dict)
    reference: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    inference: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] | None = None
    cv: dict[str, dict[str, Any]] = field(default_factory=dict)
    features: dict[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def test(self) -> dict[str, dict[str, Any]]:
        """``splits["test"]``: head -> metric -> value ({} when the run has none)."""
        return self.splits.get("test", {})

    @property
    def val(self) -> dict[str, dict[str, Any]]:
        """``splits["val"]``: head -> metric -> value ({} when the run has none)."""
        return self.splits.get("val", {})

    @property
    def domains(self) -> SplitMetrics:
        """The per-domain parts of the splits (names with a colon, e.g. ``test:TEST2``)."""
        return {s: m for s, m in self.splits.items() if ":" in s}

    def scalars(self, split: str = "test") -> dict[str, dict[str, float]]:
        """head -> metric -> value of one split, numbers only (no confusion matrix, per-class lists)."""
        return {
            h: {k: v for k, v in m.items() if isinstance(v, int | float) and not isinstance(v, bool)}
            for h, m in self.splits.get(split, {}).items()
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "metrics.json") -> MetricsRecord:
        """Read a parsed ``metrics.json`` of any schema version so far.

        Args:
            d: the parsed JSON.
            where: the file, for error messages.

        Raises:
            UserError: not an object, an unknown status or kind, a newer schema version, or a
                field of the wrong shape.
        """
        try:
            return cls._from_dict(d, where)
        except (TypeError, ValueError, AttributeError) as exc:
            raise UserError(f"{where}: not a metrics record ({exc})") from None

    @classmethod
    def _from_dict(cls, d: Any, where: str) -> MetricsRecord:
        if not isinstance(d, dict):
            raise UserError(f"{where}: expected a JSON object, got {type(d).__name__}")
        version = d.get("schema_version", 0)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise UserError(
                f"{where}: schema_version {version!r}, this smallvision reads up to {SCHEMA_VERSION}: upgrade it"
            )
        status, kind = d.get("status"), d.get("kind", "run")
        if status not in get_args(Status):
            raise UserError(f"{where}: status {status!r}, expected one of {', '.join(get_args(Status))}")
        if kind not in get_args(Kind):
            raise UserError(f"{where}: kind {kind!r}, expected one of {', '.join(get_args(Kind))}")
        splits = dict(d.get("splits") or {}) if version else _legacy_splits(d)
        failure = d.get("failure") or ({k: d[k] for k in ("head", "epoch", "step") if k in d} or None)
        return cls(
            status=status,
            kind=kind,
            error=d.get("error"),
            splits=splits,
            best_epoch=d.get("best_epoch"),
            epochs_run=d.get("epochs_run"),
            stopped_early=d.get("stopped_early"),
            train_seconds=d.get("train_seconds"),
            eval_seconds=d.get("eval_seconds"),
            params=dict(d.get("params") or {}),
            heads={
                h: HeadInfo.from_dict(v) for h, v in (d.get("heads") or {}).items() if isinstance(v, dict)
            },
            data=DataInfo.from_dict(d["data"]) if isinstance(d.get("data"), dict) else None,
            failure=Failure(**failure) if failure else None,
            resume=d.get("resume"),
            members={n: Member(**m) for n, m in (d.get("members") or {}).items()},
            gain={h: {m: Gain(**g) for m, g in ms.items()} for h, ms in (d.get("gain") or {}).items()},
            gain_split=d.get("gain_split"),
            method=dict(d.get("method") or {}),
            reference=dict(d.get("reference") or {}),
            inference=dict(d.get("inference") or {}),
            baseline=dict(d["baseline"]) if isinstance(d.get("baseline"), dict) else None,
            cv=dict(d.get("cv") or {}),
            features=dict(d["features"]) if isinstance(d.get("features"), dict) else None,
            schema_version=version,
        )

    def to_dict(self) -> dict[str, Any]:
        """The record as written to ``metrics.json`` (always the current schema version)."""
        out: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "kind": self.kind, "status": self.status}
        out |= {"error": self.error, "splits": self.splits}
        for name in ("best_epoch", "epochs_run", "stopped_early", "train_seconds", "eval_seconds"):
            out[name] = getattr(self, name)
        out |= {"params": self.params, "heads": {h: i.to_dict() for h, i in self.heads.items()}}
        out["data"] = self.data.to_dict() if self.data else None
        out["failure"] = dict(self.failure.__dict__) if self.failure else None
        out["resume"] = self.resume
        out["members"] = {n: dict(m.__dict__) for n, m in self.members.items()}
        out["gain"] = {h: {m: dict(g.__dict__) for m, g in ms.items()} for h, ms in self.gain.items()}
        out |= {"gain_split": self.gain_split, "method": self.method}
        out |= {"reference": self.reference, "baseline": self.baseline, "cv": self.cv}
        out["features"] = self.features
        out["inference"] = self.inference
        # what does not apply to this kind of record stays out of the file
        return {k: v for k, v in out.items() if v is not None and v != {} or k in ("splits", "error")}


def _legacy_splits(d: dict[str, Any]) -> SplitMetrics:
    """Splits of a file without schema_version: ``val`` / ``test`` at the top, domains apart."""
    splits = {s: d[s] for s in ("val", "test") if isinstance(d.get(s), dict)}
    splits |= {s: m for s, m in (d.get("domains") or {}).items() if isinstance(m, dict)}
    return splits
