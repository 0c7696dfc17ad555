"""The trainer's events: their order, what each receives, and the epoch record."""

import pytest
import torch

from smallvision.config import build_config
from smallvision.study.run import make_trainer, prepare
from smallvision.train.events import EVENTS, Callback, EpochRecord, Hooks


class Recorder(Callback):
    """Every event, in order, with what it received."""

    def __init__(self):
        self.events = []
        self.records = []

    def before_fit(self, trainer):
        self.events.append(("before_fit", trainer.epoch))

    def before_batch(self, trainer, batch):
        self.events.append(("before_batch", batch.epoch, batch.index, batch.step, trainer.step))

    def after_batch(self, trainer, batch):
        self.events.append(("after_batch", batch.epoch, batch.index, batch.step, trainer.step))

    def after_epoch(self, trainer, record):
        self.events.append(("after_epoch", record.epoch))
        self.records.append((record, list(trainer.history)))

    def after_fit(self, trainer):
        self.events.append(("after_fit", trainer.epoch))


def test_events_come_in_order_with_batch_positions_and_epoch_records(tiny_config, tmp_path):
    tiny_config["train"].update(epochs=2, early_stopping={"monitor": "val/label/accuracy"})
    p = prepare(build_config(tiny_config))
    rec = Recorder()
    t = make_trainer(p, tmp_path, callbacks=[rec])
    t.fit(p.split_data["train"], p.split_data["val"])
    steps = t.steps_per_epoch(p.split_data["train"])
    expected = [("before_fit", 0)]
    for epoch in (1, 2):
        for i in range(steps):
            step = (epoch - 1) * steps + i
            expected += [("before_batch", epoch, i, step, step), ("after_batch", epoch, i, step, step + 1)]
        expected.append(("after_epoch", epoch))
    assert rec.events == [*expected, ("after_fit", 2)]
    for record, history in rec.records:
        assert history[-1] == record.row() and len(history) == record.epoch
        assert record.monitored == record.val["label/accuracy"] == history[-1]["val/label/accuracy"]
        assert set(record.train) == {"loss", "label/loss", "label/weighted_loss"}
        assert record.lr == t.history[record.epoch - 1]["lr"] and record.seconds > 0
    first, second = (r for r, _ in rec.records)
    assert first.is_best and first.best_epoch == 1
    assert second.is_best == (second.monitored > first.monitored)
    assert second.best_epoch == (2 if second.is_best else 1) == t.best_epoch
    assert not second.stop


def test_row_is_the_history_layout():
    r = EpochRecord(3, 0.1, 2.5, {"loss": 1.0, "a/loss": 1.0}, {"loss": 2.0, "a/accuracy": 0.5})
    assert list(r.row().items()) == [
        ("epoch", 3), ("lr", 0.1), ("train/loss", 1.0), ("train/a/loss", 1.0),
        ("val/loss", 2.0), ("val/a/accuracy", 0.5), ("seconds", 2.5),
    ]  # fmt: skip


def test_hooks_list_only_overridden_events_and_refuse_other_objects():
    class OnlyEpochs(Callback):
        def after_epoch(self, trainer, record):
            pass

    cb = OnlyEpochs()
    hooks = Hooks([cb, Recorder()])
    assert [len(hooks.by_event[e]) for e in EVENTS] == [1, 1, 1, 2, 1]
    assert hooks.by_event["after_epoch"][0] == cb.after_epoch

    class Duck:
        def after_epoch(self, trainer):
            pass

    with pytest.raises(TypeError, match="is not a smallvision.train.events.Callback"):
        Hooks([Duck()])


def test_train_step_trains_on_exactly_the_given_samples(tiny_config, tmp_path):
    tiny_config["model"]["params"]["dropout"] = 0.0
    p = prepare(build_config(tiny_config))
    t = make_trainer(p, tmp_path)
    train = p.split_data["train"]
    t.setup(train)
    index = torch.tensor([5, 1, 7, 3, 0, 9, 2, 8])
    with torch.no_grad():
        x, targets, mask = t.prepare_batch(train, index)
        expected = float(t.loss_fns["label"](t.model(x)["label"], targets["label"], mask))
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    losses = t.train_step(train, index)
    assert losses["label/loss"] == pytest.approx(expected, rel=1e-6) and t.step == 1
    after = t.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the optimiser stepped
