"""models list / models show tables."""

from __future__ import annotations

import pytest

from smallvision.config import HeadConfig
from smallvision.errors import UserError
from smallvision.models.build import build_model
from smallvision.models.summary import format_table, layer_table, models_table, parse_input_shape
from smallvision.registry import MODELS


def test_models_table_lists_every_model_with_its_stages() -> None:
    rows = models_table()
    assert [r["name"] for r in rows] == MODELS.list()
    by_name = {r["name"]: r for r in rows}
    assert by_name["resnet18"]["stages"] == ["stem", "layer1", "layer2", "layer3", "layer4"]
    assert by_name["resnet18"]["features"] == 512
    net = build_model("cnn_bn", {}, (1, 28, 28), {"label": HeadConfig(classes=10)})
    assert by_name["cnn_bn"]["params"] == net.param_counts()["total"]
    assert [r["name"] for r in models_table("res*")] == ["resnet18", "resnet_small"]
    with pytest.raises(UserError, match="no model matches 'vgg\\*'"):
        models_table("vgg*")


def test_layer_table_shapes_stages_and_total() -> None:
    heads = {
        "a": HeadConfig(classes=10),
        "c": HeadConfig(kind="regression", hidden=[64], activation="sigmoid"),
    }
    rows = layer_table("cnn_bn", (1, 32, 32), heads, params={"widths": [8, 16, 32]})
    first, total = rows[0], rows[-1]
    assert first == {
        "layer": "backbone.stem.0",
        "stage": "stem",
        "type": "Conv2d",
        "output": [8, 32, 32],
        "params": 72,
    }
    assert total["layer"] == "total"
    net = build_model("cnn_bn", {"widths": [8, 16, 32]}, (1, 32, 32), heads)
    assert total["params"] == net.param_counts()["total"] == sum(r["params"] for r in rows[:-1])
    last_a = [r for r in rows if r["stage"] == "head:a"][-1]
    assert last_a["output"] == [10]
    assert [r for r in rows if r["stage"] == "head:c"][-1]["type"] == "Sigmoid"
    pooled = [r for r in rows if r["type"] == "MaxPool2d"]
    assert [r["output"] for r in pooled] == [[8, 16, 16], [16, 8, 8]]


def test_reconstruction_head_rows_end_at_the_image_shape() -> None:
    rows = layer_table("autoencoder_conv", (3, 27, 27), {"img": HeadConfig(kind="reconstruction")})
    assert [r for r in rows if r["stage"] == "head:img"][-1]["output"] == [3, 27, 27]


def test_parse_input_shape() -> None:
    assert parse_input_shape("32x32x1") == (1, 32, 32)
    assert parse_input_shape("96X64x3") == (3, 96, 64)
    assert parse_input_shape("28x28") == (1, 28, 28)
    with pytest.raises(UserError, match="--input '32-32': expected HxWxC"):
        parse_input_shape("32-32")


def test_format_table_aligns_columns() -> None:
    text = format_table([{"name": "a", "params": 1234567, "output": [8, 4, 4], "stages": ["stem", "s1"]}])
    header, rule, row = text.splitlines()
    assert header.split() == ["name", "params", "output", "stages"]
    assert row.split("  ")[0] == "a" and "1,234,567" in row and "8x4x4" in row and "stem, s1" in row
    assert len(rule) >= len(row.rstrip()) - len("stem, s1") and format_table([]) == ""
