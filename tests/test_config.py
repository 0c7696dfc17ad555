import pytest
from pydantic import ValidationError

from smallvision.config import (
    RunConfig,
    apply_overrides,
    build_config,
    load_config,
    parse_override,
)
from smallvision.config_training import training_difference, training_fingerprint, training_keys
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


def test_a_config_that_is_not_utf8_text_names_the_file(tmp_path):
    png = tmp_path / "picture.yaml"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(
        UserError, match=r"'.*picture\.yaml' is not UTF-8 text \(byte 0\); expected a UTF-8 YAML"
    ):
        load_config(png)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin1\.yaml' is not UTF-8 text \(byte 9\)"):
        load_config(latin1)
    assert load_config(write(tmp_path, "name: café\n")).name == "café"  # UTF-8 itself is fine


def test_an_empty_config_points_to_the_examples(tmp_path):
    for text in ("", "\n  \n", "# only a comment\n"):
        with pytest.raises(UserError, match=r"c\.yaml' is empty; start from one of the configs in examples/"):
            load_config(write(tmp_path, text))
    assert load_config(None).name == "run"  # no file at all still means the defaults


def test_training_keys_leave_out_what_does_not_change_training():
    cfg = build_config({"heads": {"y": {"kind": "regression"}}, "data": {"options": {"n": 50}}})
    keys = training_keys(cfg)
    assert keys["seed"] == 42 and keys["train.optimizer.lr"] == 1e-3 and keys["data.options.n"] == 50
    assert keys["heads.y.kind"] == "regression" and keys["data.split.seed"] == 0
    for left_out in ("name", "output_dir", "seeds", "report.enabled", "train.progress", "train.threads"):
        assert left_out not in keys
    assert len(keys) > 40 and all(not isinstance(v, dict) for v in keys.values())


def test_fingerprint_follows_training_keys_only():
    base = build_config({})
    same = build_config({"name": "x", "output_dir": "elsewhere", "seeds": [1, 2], "report": {"enabled": False},
                         "train": {"progress": False, "threads": 2}})  # fmt: skip
    assert training_fingerprint(base) == training_fingerprint(same) and len(training_fingerprint(base)) == 64
    for change in ({"seed": 1}, {"train": {"batch_size": 64}}, {"model": {"init": "runs/a"}},
                   {"data": {"options": {"n": 10}}}, {"train": {"device": "auto"}}):  # fmt: skip
        assert training_fingerprint(build_config(change)) != training_fingerprint(base), change


def test_training_difference_names_the_first_differing_training_key():
    a = build_config({}).model_dump(mode="json")
    b = build_config({"name": "other", "train": {"epochs": 3, "threads": 1}, "model": {"name": "mlp"}})
    assert training_difference(a, b.model_dump(mode="json")) == ("model.name", "cnn_bn", "mlp")
    assert training_difference(a, {**a, "name": "renamed", "output_dir": "x"}) is None
    assert training_difference(a, {**a, "future_key": 1}) == ("future_key", None, 1)  # unknown keys count


def test_split_ratios_must_sum_to_one():
    with pytest.raises(UserError, match="sum to 1"):
        build_config({"data": {"split": {"train": 0.5, "val": 0.1, "test": 0.1}}})
