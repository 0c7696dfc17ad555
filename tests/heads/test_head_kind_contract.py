"""Every registered head kind through the same contract: schema -> build -> loss -> outputs ->
metrics -> predictions.npz keys -> the report's recomputation.

A new kind adds its example target to ``TARGETS``; the test fails for a kind without one.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from smallvision.config import HeadConfig, build_config, to_yaml
from smallvision.errors import UserError
from smallvision.evaluate.metrics import METRICS, compute_metrics, higher_is_better
from smallvision.evaluate.predict import to_outputs
from smallvision.heads.base import COMMON_OPTIONS, HeadKind
from smallvision.models.build import build_model
from smallvision.registry import HEAD_KINDS
from smallvision.rundir import load_predictions, output_field, save_predictions

KINDS = HEAD_KINDS.list()
SHAPE = (1, 8, 8)
N = 12


def _class_target(x: torch.Tensor) -> torch.Tensor:
    return torch.arange(len(x)) % 3


# kind -> (head config, target for a batch x of SHAPE)
TARGETS = {
    "classification": (HeadConfig(kind="classification", classes=3), _class_target),
    "regression": (HeadConfig(kind="regression"), lambda x: torch.linspace(0, 1, len(x))),
    "reconstruction": (HeadConfig(kind="reconstruction"), lambda x: x),
    "multilabel": (
        HeadConfig(kind="multilabel", classes=4),
        lambda x: (torch.arange(len(x) * 4) % 3 == 0).view(-1, 4),
    ),
}


def test_the_builtin_kinds_are_registered():
    assert {"classification", "regression", "reconstruction"} <= set(KINDS)


@pytest.mark.parametrize("name", KINDS)
def test_declared_parts(name):
    kind = HEAD_KINDS.get(name)
    assert isinstance(kind, HeadKind) and kind.name == name
    assert kind.losses and kind.default_loss == kind.losses[0]
    fields = set(HeadConfig.model_fields)
    assert set(kind.options) <= fields and set(COMMON_OPTIONS) <= fields
    scored = {m.name for m in METRICS.for_kind(name)}
    assert kind.headline and set(kind.headline) <= scored  # the CLI's figures exist
    assert all(isinstance(higher_is_better(m), bool) for m in scored)
    assert kind.npz_field in ("prob", "y_pred") or kind.npz_field.isidentifier()


@pytest.mark.parametrize("name", KINDS)
def test_schema_refuses_what_does_not_fit(name):
    kind = HEAD_KINDS.get(name)
    for loss in kind.losses:
        build_config({"heads": {"h": {"kind": name, "loss": loss}}})
    with pytest.raises(UserError, match=rf"heads\.h\.loss: 'nope' is not a {name} loss; expected one of"):
        build_config({"heads": {"h": {"kind": name, "loss": "nope"}}})
    foreign = {
        "focal_gamma": 3.0,
        "masked_only": True,
        "label_smoothing": 0.1,
        "class_weights": "balanced",
        "activation": "sigmoid",
    }
    for key, value in foreign.items():
        if key in kind.options:
            continue
        with pytest.raises(
            UserError, match=rf"^config: heads\.h\.{key}: {value!r} does not fit a {name} head"
        ):
            build_config({"heads": {"h": {"kind": name, key: value}}})


@pytest.mark.parametrize("name", KINDS)
def test_a_saved_config_loads_again(name):
    # config.yaml lists every default, also those of options the kind does not take
    cfg = build_config({"heads": {"h": {"kind": name}}})
    assert build_config(yaml.safe_load(to_yaml(cfg))) == cfg


@pytest.mark.parametrize("name", KINDS)
def test_build_loss_outputs_metrics_and_npz_keys(name, tmp_path):
    assert name in TARGETS, f"head kind {name!r} has no example target in TARGETS"
    cfg, make_target = TARGETS[name]
    kind = HEAD_KINDS.get(name)
    torch.manual_seed(0)
    # an autoencoder backbone carries every kind, reconstruction included
    net = build_model("autoencoder_dense", {"hidden": [16], "bottleneck": 8}, SHAPE, {"h": cfg})
    x = torch.rand(N, *SHAPE)
    target = kind.train_target(make_target(x))
    raw = net(x)["h"]
    for loss in kind.losses:
        fn = kind.loss_fn(cfg.model_copy(update={"loss": loss}))
        value = fn(raw, target)
        assert value.ndim == 0 and torch.isfinite(value), loss
    fn = kind.loss_fn(cfg)
    fn(raw, target).backward()
    assert all(torch.isfinite(p.grad).all() for p in net.heads["h"].parameters() if p.grad is not None)

    outputs = to_outputs({"h": raw.detach().numpy()}, {"h": name})
    y_true = {"h": target.numpy()}
    metrics = compute_metrics({"h": name}, y_true, outputs)["h"]
    for m in kind.headline:
        assert np.isfinite(metrics[m])

    path = tmp_path / "predictions.npz"
    save_predictions(path, {"test": np.arange(N)}, {"test": (y_true, outputs)}, {"h": name})
    with np.load(path) as z:
        assert sorted(z.files) == sorted(["test/index", "test/h/y_true", f"test/h/{kind.npz_field}"])
        arrays = {"y_true": z["test/h/y_true"], kind.npz_field: z[f"test/h/{kind.npz_field}"]}
    # the run directory's one field picker is the kind's npz_field
    assert output_field(name) == kind.npz_field
    assert np.array_equal(load_predictions(path).output("test", "h", name), arrays[kind.npz_field])
    rescored = kind.rescore(arrays)
    scalars = {k: v for k, v in metrics.items() if isinstance(v, float)}
    assert rescored.metrics == pytest.approx(scalars, rel=1e-6, abs=1e-7)
    assert kind.looks_like(arrays, {})


def test_kinds_and_schema_import_without_torch():
    code = (
        "import sys; from smallvision.config import load_config; from smallvision.registry import HEAD_KINDS; "
        "load_config(None, ['heads={a: {kind: regression, loss: huber}}']); HEAD_KINDS.list(); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_kind_suggests_the_close_one():
    with pytest.raises(UserError, match=r"heads\.h\.kind: unknown head kind; did you mean 'regression'"):
        build_config({"heads": {"h": {"kind": "regresion"}}})
