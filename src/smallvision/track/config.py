"""The ``track:`` section of a run config: which trackers log the run, and where.

Kept apart from ``config.py`` (the rest of the schema) because nothing else depends on it; it
does not change what training computes, so the run's training fingerprint leaves it out.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

_STRICT = ConfigDict(extra="forbid", frozen=True)  # as config.Strict: unknown keys are errors


class MLflowConfig(BaseModel):
    """An MLflow run per training run: params, per-epoch and final metrics, the run's files."""

    model_config = _STRICT

    # default: sqlite:///<dir>/mlruns.db where <dir> holds the run's output folder
    # (runs/ -> ./mlruns.db; a study's cells -> <study dir>/mlruns.db)
    uri: str | None = None
    experiment: str | None = None  # default: the run's name


class TrackConfig(BaseModel):
    """``track: {tensorboard: true, mlflow: true}`` or ``mlflow: {uri: ..., experiment: ...}``."""

    model_config = _STRICT

    tensorboard: bool = False  # event files in <run dir>/tensorboard/
    images: int = Field(16, ge=0, le=256)  # training samples (raw and augmented) shown in TensorBoard
    mlflow: MLflowConfig | None = None

    @field_validator("mlflow", mode="before")
    @classmethod
    def _switch(cls, value: Any) -> Any:
        if value is True:
            return {}
        if value is False:
            return None
        if value is not None and not isinstance(value, dict | MLflowConfig):
            raise ValueError("expected true, false or a mapping such as {uri: 'sqlite:///mlruns.db'}")
        return value

    @property
    def enabled(self) -> bool:
        return self.tensorboard or self.mlflow is not None
