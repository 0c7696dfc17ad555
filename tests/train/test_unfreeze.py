"""Transfer-learning training: frozen stages stay fixed (BN statistics too), gradual unfreezing
releases them at the epoch asked, and train.lr_mult gives each stage its own lr."""

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from smallvision.config import HeadConfig, build_config
from smallvision.errors import UserError
from smallvision.models.build import build_model
from smallvision.models.transfer import apply_transfer
from smallvision.study.run import make_trainer, prepare, run_config
from smallvision.train.events import Callback
from smallvision.train.optim import stage_multipliers
from smallvision.train.unfreeze import Unfreezing, check_stage_keys

BN_MODEL = {"name": "cnn_small", "params": {"channels": [8, 16], "hidden": 32, "batch_norm": True}}


def _trainer(tiny_config, tmp_path, **train):
    tiny_config["model"] = {**BN_MODEL, "freeze": ["stem"]}
    tiny_config["train"].update(train)
    p = prepare(build_config(tiny_config))
    return p, make_trainer(p, tmp_path)


def _stem_state(model):
    stem = dict(model.stages())["stem"]
    return {k: v.detach().clone() for k, v in stem.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


class Watch(Callback):
    """Per epoch: the stem's trainability during its batches and its state at its end."""

    def __init__(self):
        self.trainable, self.bn_training, self.states = {}, {}, {}

    def before_batch(self, trainer, batch):
        stem = dict(trainer.model.stages())["stem"]
        self.trainable[batch.epoch] = all(p.requires_grad for p in stem.parameters())
        norms = [m for m in stem.modules() if isinstance(m, nn.BatchNorm2d)]
        self.bn_training[batch.epoch] = all(m.training for m in norms)

    def after_epoch(self, trainer, record):
        self.states[record.epoch] = _stem_state(trainer.model)


def test_a_frozen_stage_keeps_its_weights_and_batch_norm_statistics(tiny_config, tmp_path):
    p, trainer = _trainer(tiny_config, tmp_path)
    before = _stem_state(p.model)
    assert any("running_mean" in k for k in before) and any("running_var" in k for k in before)
    head = {k: v.clone() for k, v in p.model.heads.state_dict().items()}
    trainer.fit(p.split_data["train"], p.split_data["val"])  # model.train() at every epoch
    assert _same(before, _stem_state(p.model)), "stem weights, running_mean and running_var unchanged"
    assert not _same(head, p.model.heads.state_dict()), "the rest trains"
    stage1 = dict(p.model.stages())["stage1"]
    assert stage1[1].num_batches_tracked > 0 and dict(p.model.stages())["stem"][1].num_batches_tracked == 0


def test_unfreezing_releases_the_stage_at_the_start_of_its_epoch(tiny_config, tmp_path):
    watch = Watch()
    p, trainer = _trainer(tiny_config, tmp_path, unfreeze=[{"epoch": 2, "stages": ["stem"]}])
    trainer.hooks.by_event["before_batch"].append(watch.before_batch)
    trainer.hooks.by_event["after_epoch"].append(watch.after_epoch)
    before = _stem_state(p.model)
    trainer.fit(p.split_data["train"], p.split_data["val"])
    assert watch.trainable == {1: False, 2: True, 3: True}
    assert watch.bn_training == {1: False, 2: True, 3: True}, "BN trains once its stage does"
    assert _same(before, watch.states[1]), "epoch 1: frozen, statistics included"
    assert not _same(watch.states[1], watch.states[2]) and not _same(watch.states[2], watch.states[3])
    assert p.model.frozen_stages == ()


def test_loading_a_state_after_the_unfreeze_epoch_restores_the_trainable_set(tiny_config, tmp_path):
    steps = [{"epoch": 2, "stages": ["stem"]}, {"epoch": 3, "stages": ["stage*"]}]
    tiny_config["model"] = {**BN_MODEL, "freeze": ["stem", "stage1"]}
    tiny_config["train"].update(unfreeze=steps)
    cfg = build_config(tiny_config)
    p = prepare(cfg)
    (tmp_path / "a").mkdir()
    a = make_trainer(p, tmp_path / "a")
    train, val = p.split_data["train"], p.split_data["val"]
    a.setup(train)
    states, trainable = [], []
    for _ in range(3):
        a._run_epoch(train, val)
        states.append(a.state_dict())
        trainable.append([q.requires_grad for q in p.model.parameters()])
    for state, expected, frozen in zip(states, trainable, [("stem", "stage1"), ("stage1",), ()], strict=True):
        q = prepare(cfg)
        assert q.model.frozen_stages == ("stem", "stage1")
        b = make_trainer(q, tmp_path / "b")
        b.setup(train)
        b.load_state_dict(state)
        assert q.model.frozen_stages == frozen, state["epoch"]
        assert [q.requires_grad for q in q.model.parameters()] == expected


def test_the_optimizer_layout_never_changes_across_an_unfreeze(tiny_config, tmp_path):
    p, trainer = _trainer(tiny_config, tmp_path, unfreeze=[{"epoch": 2, "stages": ["stem"]}])
    n_params = sum(1 for _ in p.model.parameters())
    assert sum(len(g["params"]) for g in trainer.optimizer.param_groups) == n_params
    trainer.fit(p.split_data["train"], p.split_data["val"])
    assert sum(len(g["params"]) for g in trainer.optimizer.param_groups) == n_params


def test_lr_multipliers_give_each_stage_its_group_under_the_schedule(tiny_config, tmp_path):
    schedule = {"name": "cosine", "warmup_epochs": 1, "plateau": {"patience": 0, "factor": 0.5}}
    p, trainer = _trainer(tiny_config, tmp_path, lr_mult={"stem": 0.1, "stage*": 0.3}, schedule=schedule)
    groups = trainer.optimizer.param_groups
    assert [g["group"] for g in groups] == ["default", "stem", "stage1"]
    assert [g["lr_mult"] for g in groups] == [1.0, 0.1, 0.3]
    stages = dict(p.model.stages())
    assert {id(q) for q in groups[1]["params"]} == {id(q) for q in stages["stem"].parameters()}
    assert {id(q) for q in groups[2]["params"]} == {id(q) for q in stages["stage1"].parameters()}
    assert {id(q) for q in p.model.heads.parameters()} <= {id(q) for q in groups[0]["params"]}
    seen = []

    class Lrs(Callback):
        def after_batch(self, trainer, batch):
            seen.append([g["lr"] for g in trainer.optimizer.param_groups])

    trainer.hooks.by_event["after_batch"].append(Lrs().after_batch)
    trainer.fit(p.split_data["train"], p.split_data["val"])
    assert len({round(lrs[0], 12) for lrs in seen}) > 3, "the schedule moves the lr"
    for lrs in seen:  # warmup, cosine and plateau cuts scale every group alike
        assert lrs[1] == pytest.approx(0.1 * lrs[0]) and lrs[2] == pytest.approx(0.3 * lrs[0])
    steps = trainer.steps_per_epoch(p.split_data["train"])
    ends = [lrs[0] for lrs in seen[steps - 1 :: steps]]
    assert [row["lr"] for row in trainer.history] == pytest.approx(ends), "history.csv shows the base lr"


def test_unknown_or_doubly_matched_stages_are_one_line_errors_before_any_run_directory(tiny_config):
    tiny_config["model"] = dict(BN_MODEL)
    cases = [
        ({"lr_mult": {"stemm": 0.1}}, r"train\.lr_mult\.stemm: no stage named 'stemm'; did you mean 'stem'\? "
         r"\(stages: stem, stage1, dense\)"),
        ({"lr_mult": {"stem": 0.1, "s*": 0.5}}, r"stage 'stem' is matched by both 'stem' and 's\*'"),
        ({"unfreeze": [{"epoch": 2, "stages": ["layer1"]}]}, r"train\.unfreeze\[0\]\.stages: no stage named"),
    ]  # fmt: skip
    for train, message in cases:
        cfg = build_config({**tiny_config, "train": {**tiny_config["train"], **train}})
        with pytest.raises(UserError, match=message) as err:
            run_config(cfg)
        assert "\n" not in str(err.value)
    assert not Path(tiny_config["output_dir"]).exists(), "no run directory was made"


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ({"unfreeze": [{"epoch": 4, "stages": ["stem"]}]}, r"unfreeze\[0\]\.epoch 4 is after the last epoch"),
        ({"unfreeze": [{"epoch": 0, "stages": ["stem"]}]}, r"train\.unfreeze\.0\.epoch"),
        ({"unfreeze": [{"epoch": 2, "stages": []}]}, r"train\.unfreeze\.0\.stages"),
        ({"lr_mult": {"stem": 0}}, r"multipliers must be > 0"),
        ({"schedule": {"name": "plateau", "plateau": {}}}, r"name plateau already is ReduceLROnPlateau"),
    ],
)
def test_bad_stage_settings_in_the_config(tiny_config, train, message):
    with pytest.raises(UserError, match=message):
        build_config({**tiny_config, "train": {**tiny_config["train"], **train}})


def _yaml_blocks(text, needle):
    blocks = text.split("```yaml\n")[1:]
    return [yaml.safe_load(b.split("```")[0]) for b in blocks if needle in b.split("```")[0]]


def test_the_fine_tuning_examples_in_docs_training_md_are_valid():
    text = (Path(__file__).parents[2] / "docs" / "training.md").read_text()
    (tuning,) = _yaml_blocks(text, "unfreeze:")
    cfg = build_config(tuning)
    net = build_model(cfg.model.name, cfg.model.params, (1, 28, 28), {"label": HeadConfig(classes=10)})
    apply_transfer(net, None, cfg.model.freeze)  # the example's init file is the user's
    check_stage_keys(net, cfg.train)
    assert stage_multipliers(net, cfg.train.lr_mult) == {
        "stem": 0.1,
        "layer1": 0.1,
        "layer2": 0.3,
        "layer3": 0.3,
    }
    assert Unfreezing(net, cfg.train.unfreeze).due(8) == ["layer2", "stem", "layer1", "layer3", "layer4"]
    (combined,) = _yaml_blocks(text, "plateau: {")
    assert build_config(combined).train.schedule.plateau.patience == 3
