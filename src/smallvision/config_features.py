"""The ``features`` section: frozen-encoder mode (study 001), and how it fits the rest of a config.

Kept apart from ``config.py`` (one concern, and that file's size). ``model.init`` names the encoder;
``features`` says what trains on its features. :func:`check_features` is the cross-section check
``RunConfig`` runs when the section is present: each problem is a ValueError ``"<key.path>: ..."``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from smallvision.config import RunConfig

HEADS = ("mlp", "logistic_regression")
# options that fit one head only, with their defaults (a value equal to the default counts as unset:
# saved configs list every default)
_MLP_ONLY = {"hidden": [512, 256, 128], "dropout": 0.0, "batch_norm": False}
_LOGREG_ONLY = {"C": 1.0, "max_iter": 2000}


class FeaturesConfig(BaseModel):
    """Frozen-encoder mode: ``model.init``'s backbone extracts features once; a head trains on them.

    Attributes:
        head: ``mlp`` (dense layers on the features, trained like any network: history,
            checkpoints, early stopping) or ``logistic_regression`` (scikit-learn, fitted once).
        hidden: the MLP's widths before each head's own layer ([] puts the heads on the features).
        dropout, batch_norm: of each MLP layer.
        C, max_iter: of the logistic regression (scikit-learn's ``LogisticRegression``).
        cache: the directory of the feature cache; None: ``features/`` in the encoder's run directory
            (or beside the weights file when it is in none).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    head: Literal["mlp", "logistic_regression"] = "mlp"
    hidden: list[int] = Field(default_factory=lambda: list(_MLP_ONLY["hidden"]))
    dropout: float = Field(0.0, ge=0, lt=1)
    batch_norm: bool = False
    C: float = Field(1.0, gt=0)
    max_iter: int = Field(2000, ge=1)
    # where the cache lives changes nothing that is computed (config.NOT_TRAINING's marker)
    cache: str | None = Field(None, json_schema_extra={"affects_training": False})

    @model_validator(mode="after")
    def _options_fit_the_head(self) -> FeaturesConfig:
        other = _LOGREG_ONLY if self.head == "mlp" else _MLP_ONLY
        for key, default in other.items():
            if getattr(self, key) != default:
                fits = "logistic_regression" if self.head == "mlp" else "mlp"
                raise ValueError(f"{key}: {getattr(self, key)!r} fits head {fits} only, not head {self.head}")
        if any(w < 1 for w in self.hidden):
            raise ValueError(f"hidden: {self.hidden}: every width must be at least 1")
        return self


def check_features(cfg: RunConfig) -> None:
    """What frozen-encoder mode cannot combine with, as one ValueError ``"<key.path>: ..."``."""
    f = cfg.features
    if f is None:
        return
    if not cfg.model.init:
        raise ValueError(
            "model.init: features mode needs the encoder: a run directory, a checkpoint, a study "
            "reference (@step) or a torchvision/timm state dict"
        )
    fixed: dict[str, Any] = {
        "model.freeze": (cfg.model.freeze, "the whole encoder is frozen already; leave it empty"),
        "data.augment": (cfg.data.augment, "features are extracted once, from un-augmented images"),
        "train.mix": (cfg.train.mix.name != "none", "features are extracted once, from unmixed images"),
        "train.unfreeze": (cfg.train.unfreeze, "the encoder never trains in features mode"),
        "train.lr_mult": (cfg.train.lr_mult, "the encoder never trains in features mode"),
    }
    for key, (value, why) in fixed.items():
        if value:
            raise ValueError(f"{key}: not with features mode ({why})")
    for name, head in (cfg.heads or {}).items():
        allowed = ("classification",) if f.head == "logistic_regression" else ("classification", "regression")
        if head.kind not in allowed:
            raise ValueError(
                f"heads.{name}.kind: {head.kind!r} does not fit features.head {f.head} "
                f"(expected {' or '.join(allowed)})"
            )
