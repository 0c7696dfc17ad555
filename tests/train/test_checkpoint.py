"""Checkpoints: complete, checksummed, refused when damaged or written for another model or config."""

import copy

import pytest
import torch

from smallvision.config import build_config
from smallvision.errors import UserError
from smallvision.study.run import make_trainer, prepare, run_config
from smallvision.train.checkpoint import check_config, load_checkpoint, save_atomic
from smallvision.train.trainer import STATE_KEYS


def test_round_trip_and_no_temporary_files_left(tmp_path):
    obj = {"w": torch.arange(5.0), "meta": {"epoch": 3, "name": "x"}}
    save_atomic(obj, tmp_path / "a.pt")
    back = load_checkpoint(tmp_path / "a.pt")
    assert torch.equal(back["w"], obj["w"]) and back["meta"] == obj["meta"]
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]


def test_truncated_checkpoint_is_detected(tmp_path):
    save_atomic({"w": torch.randn(1000)}, tmp_path / "a.pt")
    data = (tmp_path / "a.pt").read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 100):
        (tmp_path / "cut.pt").write_bytes(data[:cut])
        with pytest.raises(UserError, match="corrupt or truncated"):
            load_checkpoint(tmp_path / "cut.pt")


def test_a_flipped_byte_is_detected_by_the_checksum(tmp_path):
    save_atomic({"w": torch.randn(1000)}, tmp_path / "a.pt")
    data = bytearray((tmp_path / "a.pt").read_bytes())
    data[len(data) // 2] ^= 0x01  # inside the tensor data: torch.load alone would not notice
    (tmp_path / "bad.pt").write_bytes(bytes(data))
    with pytest.raises(UserError, match="checksum mismatch"):
        load_checkpoint(tmp_path / "bad.pt")


def test_plain_torch_files_still_load_and_non_dicts_are_refused(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "old.pt")  # written before checksums existed
    assert torch.equal(load_checkpoint(tmp_path / "old.pt")["w"], torch.ones(2))
    torch.save(torch.ones(2), tmp_path / "tensor.pt")
    with pytest.raises(UserError, match="holds a Tensor"):
        load_checkpoint(tmp_path / "tensor.pt")
    with pytest.raises(UserError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_last_checkpoint_holds_the_whole_trainer_state(tiny_config):
    tiny_config["train"].update(ema=0.9, schedule={"name": "plateau"}, mix={"name": "mixup"})
    result = run_config(build_config(tiny_config))
    last = load_checkpoint(result.dir / "checkpoints" / "last.pt")
    assert set(STATE_KEYS) <= set(last)
    assert {"torch", "generator", "numpy", "python", "cuda"} <= set(last["rng"])
    assert last["ema"]["shadow"].keys() == last["model"].keys()
    assert last["plateau"] is not None and last["scheduler"]["last_epoch"] == last["step"]
    assert last["epoch"] == 3 and len(last["history"]) == 3
    es = last["early_stopping"]
    assert es["best_epoch"] == result.metrics.best_epoch and es["best_state"].keys() == last["model"].keys()
    assert last["config"]["model"]["name"] == "cnn_small" and "normalizer" in last


def test_restoring_a_captured_state_reproduces_it(tiny_config, tmp_path):
    tiny_config["train"].update(ema=0.9, loss_weighting="uncertainty")
    cfg = build_config(tiny_config)
    p = prepare(cfg)
    (tmp_path / "a").mkdir()
    a = make_trainer(p, tmp_path / "a")
    a.fit(p.split_data["train"], p.split_data["val"])
    state = copy.deepcopy(a.state_dict())
    b = make_trainer(prepare(cfg), tmp_path / "b")
    b.setup(p.split_data["train"])
    b.load_state_dict(state)
    again = b.state_dict()
    assert again["epoch"] == state["epoch"] and again["history"] == state["history"]
    assert torch.equal(again["rng"]["generator"], state["rng"]["generator"])
    assert all(torch.equal(again["model"][k], state["model"][k]) for k in state["model"])
    assert all(torch.equal(again["ema"]["shadow"][k], state["ema"]["shadow"][k]) for k in state["model"])
    assert again["weighting"]["log_vars.label"] == state["weighting"]["log_vars.label"]


def test_incomplete_state_is_refused(tiny_config, tmp_path):
    p = prepare(build_config(tiny_config))
    t = make_trainer(p, tmp_path)
    t.setup(p.split_data["train"])
    state = t.state_dict()
    del state["rng"]
    with pytest.raises(UserError, match="x/last.pt is incomplete: missing rng"):
        t.load_state_dict(state, "x/last.pt")


def test_checkpoint_of_another_model_is_refused(tiny_config, tmp_path):
    result = run_config(build_config({**tiny_config, "train": {**tiny_config["train"], "epochs": 1}}))
    ckpt = load_checkpoint(result.dir / "checkpoints" / "last.pt")
    other = copy.deepcopy(tiny_config)
    other["model"] = {"name": "cnn_bn"}
    cfg = build_config(other)
    p = prepare(cfg)
    with pytest.raises(
        UserError, match=r"another config: model\.name is 'cnn_small' there but 'cnn_bn' here"
    ):
        check_config(ckpt, p.cfg.model_dump(mode="json"), "last.pt")
    t = make_trainer(p, tmp_path)
    t.setup(p.split_data["train"])
    with pytest.raises(UserError, match=r"does not fit this model"):
        t.load_state_dict(ckpt)


def test_checkpoint_of_another_training_config_is_refused_but_names_do_not_matter(tiny_config):
    result = run_config(build_config({**tiny_config, "train": {**tiny_config["train"], "epochs": 1}}))
    ckpt = load_checkpoint(result.dir / "checkpoints" / "last.pt")
    same = build_config(ckpt["config"]).model_dump(mode="json")
    check_config(ckpt, {**same, "name": "renamed", "output_dir": "elsewhere"}, "last.pt")  # accepted
    changed = {**same, "train": {**same["train"], "batch_size": 32}}
    with pytest.raises(UserError, match=r"train\.batch_size is 64 there but 32 here"):
        check_config(ckpt, changed, "last.pt")


def test_checkpoints_written_in_the_background_land_in_order_and_all_before_fit_ends(
    tiny_config, monkeypatch
):
    import threading
    import time

    from smallvision.train import callbacks

    real, writes = callbacks.write_atomic, []

    def slow(payload, path):  # a slow disk: the next epoch trains while this one is written
        start = time.perf_counter()
        time.sleep(0.05)
        real(payload, path)
        writes.append((path.name, load_checkpoint(path)["epoch"] if path.name == "last.pt" else None,
                       start, time.perf_counter(), threading.current_thread().name))  # fmt: skip

    monkeypatch.setattr(callbacks, "write_atomic", slow)
    result = run_config(build_config(tiny_config))
    last = [w for w in writes if w[0] == "last.pt"]
    assert [w[1] for w in last] == [1, 2, 3]  # every epoch's, in order, the last one before fit ended
    assert all(a[3] <= b[2] for a, b in zip(writes, writes[1:], strict=False))  # one write at a time
    assert {w[4] for w in writes} == {"checkpoint writer"}
    assert load_checkpoint(result.dir / "checkpoints" / "last.pt")["epoch"] == 3


def test_a_failed_background_write_stops_the_run_with_its_error(tiny_config, monkeypatch):
    from smallvision.train import callbacks

    def full(payload, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(callbacks, "write_atomic", full)
    with pytest.raises(OSError, match="No space left"):
        run_config(build_config(tiny_config))
