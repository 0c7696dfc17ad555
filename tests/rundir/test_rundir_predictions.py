"""predictions.npz: one writer, one parser of its keys."""

import numpy as np
import pytest

from smallvision.errors import UserError
from smallvision.rundir import (
    Predictions,
    load_predictions,
    npz_key,
    output_field,
    parse_key,
    save_predictions,
)


@pytest.mark.parametrize(
    ("key", "parts"),
    [
        ("test/index", ("test", None, "index")),
        ("test/label/prob", ("test", "label", "prob")),
        ("test:TEST2/label/y_true", ("test:TEST2", "label", "y_true")),  # a domain part of the test split
        ("val/sub/head/y_pred", ("val", "sub/head", "y_pred")),  # a head name with a slash
    ],
)
def test_keys_parse_and_rebuild(key, parts):
    assert parse_key(key) == parts
    assert npz_key(*parts) == key


@pytest.mark.parametrize("key", ["loose", "test/label", "/label/prob"])
def test_keys_of_neither_form_are_refused(key):
    with pytest.raises(ValueError, match="neither"):
        parse_key(key)


def test_save_then_load_gives_back_every_array(tmp_path):
    index = {"test": np.array([4, 2]), "test:B": np.array([2])}
    y, prob = np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]])
    value = np.array([0.5, 1.5])
    evaluated = {
        "test": ({"label": y, "size": value}, {"label": prob, "size": value + 0.1}),
        "test:B": ({"label": y[1:], "size": value[1:]}, {"label": prob[1:], "size": value[1:]}),
    }
    kinds = {"label": "classification", "size": "regression"}
    path = tmp_path / "predictions.npz"
    written = save_predictions(path, index, evaluated, kinds)
    loaded = load_predictions(path)
    assert loaded.splits == ["test", "test:B"] and not loaded.ignored
    assert np.array_equal(loaded.index["test:B"], [2])
    assert set(loaded.head("test", "label")) == {"y_true", output_field("classification")}
    assert np.allclose(loaded.output("test", "label", "classification"), prob)
    assert np.allclose(loaded.output("test", "size", "regression"), value + 0.1)
    assert loaded.output("test", "size", "regression").dtype == np.float32
    assert written.to_arrays().keys() == loaded.to_arrays().keys()
    assert not list(tmp_path.glob("*.tmp*"))  # the temporary file was moved into place


def test_unknown_keys_are_kept_apart():
    p = Predictions.from_arrays({"test/index": np.arange(2), "stray": np.zeros(1)})
    assert p.ignored == ["stray"] and p.splits == ["test"]


def test_missing_or_corrupt_file_is_one_line_naming_it(tmp_path):
    with pytest.raises(UserError, match=r"predictions\.npz not found"):
        load_predictions(tmp_path / "predictions.npz")
    (tmp_path / "predictions.npz").write_bytes(b"garbage")
    with pytest.raises(UserError, match=r"predictions\.npz could not be read"):
        load_predictions(tmp_path / "predictions.npz")
