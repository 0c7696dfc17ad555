"""The typed run configuration: YAML + ``key.sub=value`` overrides -> frozen pydantic objects.

Every error is a one-line UserError naming the file, the key path and what was expected,
with a "did you mean" for typos (``config_errors``), so that the CLI can print it and exit with code 2.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from smallvision.config_errors import explain
from smallvision.config_features import FeaturesConfig, check_features
from smallvision.errors import UserError
from smallvision.registry import HEAD_KINDS
from smallvision.track.config import TrackConfig

# marks a field that does not change what training computes: a checkpoint (resume) may differ in it,
# and training_fingerprint leaves it out; every other field affects training
NOT_TRAINING = {"affects_training": False}


class Strict(BaseModel):
    """Unknown keys are errors and objects are frozen once built."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitConfig(Strict):
    """How samples are divided into train / val / test."""

    # auto: the source's official train/test split when it has one, else ratio
    method: Literal["auto", "ratio", "official", "domains", "per_domain", "kfold"] = "auto"
    train: float = Field(0.7, ge=0, le=1)
    val: float = Field(0.1, ge=0, le=1)
    test: float = Field(0.2, ge=0, le=1)
    stratify: str | None = "label"
    seed: int = 0
    # named domains (method domains / per_domain): which groups of the source feed each split
    domains: dict[str, str | list[str]] | None = None
    # nested label fractions: keep this fraction of the training set (1.0 keeps all)
    fraction: float = Field(1.0, gt=0, le=1)
    folds: int = Field(5, ge=2)
    fold: int = Field(0, ge=0)
    duplicates: Literal["error", "warn", "ignore"] = "warn"

    @model_validator(mode="after")
    def _ratios_sum_to_one(self) -> SplitConfig:
        # auto checks too: the error belongs at load time, before a source without official splits is read
        if self.method in ("ratio", "auto") and abs(self.train + self.val + self.test - 1.0) > 1e-6:
            total = self.train + self.val + self.test
            raise ValueError(f"train + val + test must sum to 1, got {total:g}")
        return self


class DataConfig(Strict):
    """Where images come from and how they are prepared."""

    source: str = "builtin:mnist-5k"
    options: dict[str, Any] = {}
    size: tuple[int, int] | None = None
    channels: Literal[1, 3] | None = None
    split: SplitConfig = SplitConfig()
    # standardize: per-channel mean/std of the training split only; scale: x / 255; none: as read;
    # imagenet: x / 255 then ImageNet's fixed mean/std (1 channel: the mean of the three)
    normalize: Literal["standardize", "scale", "none", "imagenet"] = "standardize"
    # augmentation name -> its parameters, applied in this order to training batches
    augment: dict[str, dict[str, Any]] = {}
    skip_bad: bool = False


class HeadConfig(Strict):
    """One target and how the network predicts it.

    ``kind`` names a head kind of ``HEAD_KINDS`` (:mod:`smallvision.heads`); each kind says which
    of the options below fit it and which losses it takes, and anything else is refused here.
    """

    kind: str = "classification"
    target: str | None = None  # the data's target name; defaults to the head's name
    classes: int | None = None  # inferred from the data when left out
    hidden: list[int] = []
    dropout: float = Field(0.0, ge=0, lt=1)
    activation: Literal["none", "sigmoid"] = "none"
    loss: str | None = None  # default: the kind's first loss (ce / mse / mse)
    weight: float = Field(1.0, ge=0)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    class_weights: Literal["none", "balanced"] = "none"
    focal_gamma: float = Field(2.0, ge=0)
    masked_only: bool = False  # reconstruction loss only on masked pixels

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in HEAD_KINDS:  # HEAD_KINDS' declarative parts import without torch
            close = difflib.get_close_matches(kind, HEAD_KINDS.list(), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"unknown head kind; {hint}expected one of {', '.join(HEAD_KINDS.list())}")
        return kind

    @model_validator(mode="after")
    def _fits_kind(self) -> HeadConfig:
        HEAD_KINDS.get(self.kind).check_config(
            self
        )  # ValueError "<key>: ..." for an option that does not fit
        return self


class ModelConfig(Strict):
    name: str = "cnn_bn"
    params: dict[str, Any] = {}
    # transfer learning: backbone weights from an earlier run (its directory or a checkpoint file)
    # or a torchvision/timm state dict (.pth, mapped by key names); heads are always new
    init: str | None = None
    freeze: list[str] = []  # stage names or patterns (``stem``, ``layer*``) whose weights stay fixed

    @field_validator("freeze", mode="before")
    @classmethod
    def _one_name_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value  # ``freeze: "*"`` reads as it looks


class OptimConfig(Strict):
    name: Literal["adam", "adamw", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    grad_clip: float | None = Field(None, gt=0)


class PlateauConfig(Strict):
    """ReduceLROnPlateau on the early-stopping monitor: x ``factor`` after ``patience`` flat epochs."""

    patience: int = Field(5, ge=0)
    factor: float = Field(0.5, gt=0, lt=1)


class ScheduleConfig(Strict):
    name: Literal["constant", "cosine", "step", "plateau", "onecycle"] = "cosine"
    warmup_epochs: float = Field(0.0, ge=0)
    alpha: float = Field(0.0, ge=0, le=1)  # cosine floor as a fraction of lr (study 000: 0.1)
    step_size: int = Field(10, ge=1)
    gamma: float = Field(0.1, gt=0, le=1)
    patience: int = Field(5, ge=0)  # name: plateau
    factor: float = Field(0.5, gt=0, lt=1)  # name: plateau
    # ReduceLROnPlateau on top of another curve (study 002: cosine with warmup + plateau)
    plateau: PlateauConfig | None = None

    @model_validator(mode="after")
    def _one_plateau(self) -> ScheduleConfig:
        if self.name == "plateau" and self.plateau is not None:
            raise ValueError("name plateau already is ReduceLROnPlateau (patience, factor); "
                             "to combine it with a curve give that curve's name with plateau: {...}")  # fmt: skip
        return self


class EarlyStoppingConfig(Strict):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; restore the best weights."""

    monitor: str = "val/loss"
    mode: Literal["auto", "min", "max"] = "auto"
    patience: int | None = Field(None, ge=1)  # None: never stop early, still restore the best epoch
    min_delta: float = Field(0.0, ge=0)


class MixConfig(Strict):
    name: Literal["none", "mixup", "cutmix"] = "none"
    alpha: float = Field(0.2, gt=0)
    prob: float = Field(1.0, ge=0, le=1)


class UnfreezeStep(Strict):
    """From ``epoch`` on (1-based, as in ``history.csv``) the named frozen stages train."""

    epoch: int = Field(ge=1)
    stages: list[str] = Field(min_length=1)  # names or patterns, as in model.freeze


class TrainConfig(Strict):
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(128, ge=1)
    # 128: on CPU a larger evaluation batch is slower, its activations no longer fit in the cache
    eval_batch_size: int = Field(128, ge=1)
    optimizer: OptimConfig = OptimConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    mix: MixConfig = MixConfig()
    loss_weighting: Literal["static", "uncertainty"] = "static"
    ema: float | None = Field(None, gt=0, lt=1)
    precision: Literal["fp32", "bf16"] = "fp32"
    device: Literal["cpu", "cuda", "auto"] = "cpu"  # auto: cuda when available
    # how the run executes, not what it computes (more threads may reorder float sums: for
    # bit-identical numbers resume with the same threads)
    threads: int | None = Field(None, ge=1, json_schema_extra=NOT_TRAINING)
    channels_last: bool = False
    progress: bool = Field(True, json_schema_extra=NOT_TRAINING)
    # transfer learning (train/unfreeze.py, train/optim.py): stages of model.freeze released at an
    # epoch, and lr multipliers per stage (names or patterns) relative to optimizer.lr
    unfreeze: list[UnfreezeStep] = []
    lr_mult: dict[str, float] = {}

    @model_validator(mode="after")
    def _stage_schedule_fits(self) -> TrainConfig:
        late = [(i, u.epoch) for i, u in enumerate(self.unfreeze) if u.epoch > self.epochs]
        if late:
            i, epoch = late[0]
            raise ValueError(f"unfreeze[{i}].epoch {epoch} is after the last epoch (epochs: {self.epochs})")
        bad = {k: v for k, v in self.lr_mult.items() if not v > 0}
        if bad:
            raise ValueError(f"lr_mult {bad}: multipliers must be > 0 (model.freeze fixes a stage)")
        return self


class ReportConfig(Strict):
    enabled: bool = True
    # the stage whose feature maps "looking inside" shows (default: the middle one with maps)
    feature_stage: str | None = None
    top_losses: int = Field(12, ge=1, le=64)  # worst mistakes shown per head


class EvalSetConfig(Strict):
    """A further evaluation set: another source, scored with the run's normaliser and metric code."""

    source: str
    options: dict[str, Any] = {}
    shift: dict[str, Any] | None = None  # a documented shift of it (data/shifts.py), e.g. {blur: 1.0}


class RunConfig(Strict):
    """Everything one run needs; saved, resolved, as ``config.yaml`` in the run directory."""

    name: str = Field("run", json_schema_extra=NOT_TRAINING)
    seed: int = 42
    # one run per seed: each run's own seed is ``seed``, so the list does not change a run
    seeds: list[int] | None = Field(None, json_schema_extra=NOT_TRAINING)
    output_dir: str = Field("runs", json_schema_extra=NOT_TRAINING)
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    heads: dict[str, HeadConfig] | None = None  # None: one head per target of the data
    train: TrainConfig = TrainConfig()
    report: ReportConfig = Field(ReportConfig(), json_schema_extra=NOT_TRAINING)
    # TensorBoard / MLflow logging (smallvision.track); switched off by default
    track: TrackConfig = Field(TrackConfig(), json_schema_extra=NOT_TRAINING)
    # name -> another source the finished run is also scored on ("eval:NAME" in metrics.json)
    eval: dict[str, EvalSetConfig] = Field({}, json_schema_extra=NOT_TRAINING)
    # frozen-encoder mode (config_features.py): model.init's backbone extracts features, a head trains
    features: FeaturesConfig | None = None

    @model_validator(mode="after")
    def _features_fit(self) -> RunConfig:
        check_features(self)  # ValueError "<key.path>: ..." for what features mode cannot combine with
        return self


# ---------------------------------------------------------------- loading and overrides


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.epochs=3"`` -> (["train", "epochs"], 3); the value is parsed as YAML."""
    if "=" not in text:
        raise UserError(f"override {text!r}: expected key.path=value, e.g. train.epochs=3")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise UserError(f"override {text!r}: the key before '=' is empty")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError as exc:
        raise UserError(f"override {text!r}: the value is not valid YAML ({exc.problem})") from None
    return key.strip().split("."), value


def apply_overrides(raw: dict, overrides: list[str] | dict[str, Any]) -> dict:
    """A copy of ``raw`` with each ``a.b=value`` set (creating mappings on the way)."""
    pairs = (
        [(k.split("."), v) for k, v in overrides.items()]
        if isinstance(overrides, dict)
        else [parse_override(o) for o in overrides]
    )
    out = _deepcopy(raw)
    for path, value in pairs:
        node = out
        for i, part in enumerate(path[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                where = ".".join(path[: i + 1])
                raise UserError(f"override {'.'.join(path)}: {where} is a value, not a mapping")
            node = nxt
        node[path[-1]] = value
    return out


def _deepcopy(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _deepcopy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deepcopy(v) for v in d]
    return d


def read_yaml(path: str | Path) -> dict:
    """The mapping in the YAML file at ``path``; a missing, binary, empty or malformed file is a UserError."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file {str(p)!r} not found: give the path of a YAML file")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"config file {str(p)!r} is not UTF-8 text (byte {exc.start}); expected a UTF-8 YAML file"
        ) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise UserError(f"{p}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if raw is None:  # nothing but whitespace and comments: training on all defaults would be a surprise
        raise UserError(
            f"config file {str(p)!r} is empty; start from one of the configs in examples/ (e.g. examples/mnist.yaml)"
        )
    if not isinstance(raw, dict):
        raise UserError(f"{p}: expected a mapping of keys at the top, got {type(raw).__name__}")
    return raw


def build_config(raw: dict, origin: str = "config") -> RunConfig:
    """Validate a raw mapping into a RunConfig; errors become one-line UserErrors."""
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise UserError(f"{origin}: {explain(exc, RunConfig)}") from None


def load_config(path: str | Path | None = None, overrides: list[str] | dict | None = None) -> RunConfig:
    """Read YAML at ``path`` (or defaults when None), apply overrides, validate."""
    raw = read_yaml(path) if path is not None else {}
    raw = apply_overrides(raw, overrides or [])
    return build_config(raw, origin=str(path) if path else "config")


def to_yaml(cfg: BaseModel) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
