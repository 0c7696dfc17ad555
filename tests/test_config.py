import pytest
from pydantic import ValidationError

from smallvision.config import RunConfig, apply_overrides, build_config, load_config, parse_override
from smallvision.errors import UserError


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_valid_config_is_typed_and_frozen(tmp_path):
    cfg = load_config(write(tmp_path, "train: {epochs: 4, batch_size: 32}\nmodel: {name: cnn_small}\n"))
    assert isinstance(cfg, RunConfig)
    assert cfg.train.epochs == 4 and cfg.train.batch_size == 32 and cfg.model.name == "cnn_small"
    assert cfg.data.source == "builtin:mnist-5k"  # a default filled in
    with pytest.raises(ValidationError, match="frozen"):
        cfg.train.epochs = 5


def test_unknown_key_names_path_and_suggests(tmp_path):
    with pytest.raises(UserError) as e:
        load_config(write(tmp_path, "train: {epoch: 3}\n"))
    msg = str(e.value)
    assert "train.epoch" in msg and "did you mean 'epochs'" in msg and "\n" not in msg


def test_unknown_key_inside_a_head(tmp_path):
    with pytest.raises(UserError, match=r"heads\.label\.clases.*did you mean 'classes'"):
        load_config(write(tmp_path, "heads: {label: {kind: classification, clases: 3}}\n"))


def test_wrong_type_names_expected_type(tmp_path):
    with pytest.raises(UserError, match=r"train\.batch_size: expected an integer, got 'big'"):
        load_config(write(tmp_path, "train: {batch_size: big}\n"))


def test_bad_literal_lists_choices(tmp_path):
    with pytest.raises(UserError, match=r"train\.optimizer\.name.*'adam'"):
        load_config(write(tmp_path, "train: {optimizer: {name: adamx}}\n"))


def test_overrides_parse_yaml_values_and_apply(tmp_path):
    assert parse_override("train.epochs=3") == (["train", "epochs"], 3)
    assert parse_override("data.size=[32, 32]") == (["data", "size"], [32, 32])
    cfg = load_config(write(tmp_path, "train: {epochs: 9}\n"), ["train.epochs=2", "train.optimizer.lr=0.1"])
    assert cfg.train.epochs == 2 and cfg.train.optimizer.lr == 0.1


def test_override_does_not_mutate_input():
    raw = {"train": {"epochs": 1}}
    out = apply_overrides(raw, {"train.epochs": 5})
    assert raw["train"]["epochs"] == 1 and out["train"]["epochs"] == 5


def test_bad_override_syntax():
    with pytest.raises(UserError, match="expected key.path=value"):
        parse_override("train.epochs")


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(write(tmp_path, "train: {epochs: [1,\n"))


def test_split_ratios_must_sum_to_one():
    with pytest.raises(UserError, match="sum to 1"):
        build_config({"data": {"split": {"train": 0.5, "val": 0.1, "test": 0.1}}})
