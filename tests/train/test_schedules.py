"""Each lr schedule against values computed by hand; ReduceLROnPlateau's cut must last."""

import math

import pytest
import torch

from smallvision.config import ScheduleConfig
from smallvision.train.schedules import build_plateau, build_scheduler, lr_factor, step_plateau


@pytest.mark.parametrize(
    ("cfg", "step", "expected"),
    [
        # cosine with a floor: 20 steps, alpha 0.1 (study 000 decays 1e-3 to 1e-4)
        (dict(name="cosine", alpha=0.1), 0, 1.0),
        (dict(name="cosine", alpha=0.1), 5, 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4))),
        (dict(name="cosine", alpha=0.1), 10, 0.55),
        (dict(name="cosine", alpha=0.1), 20, 0.1),
        # warmup 1 epoch (10 steps) then cosine to 0 over the remaining 10
        (dict(name="cosine", warmup_epochs=1), 0, 1 / 11),
        (dict(name="cosine", warmup_epochs=1), 9, 10 / 11),
        (dict(name="cosine", warmup_epochs=1), 10, 1.0),
        (dict(name="cosine", warmup_epochs=1), 15, 0.5),
        # step: x0.1 every epoch (step_size 1 -> 10 steps)
        (dict(name="step", step_size=1, gamma=0.1), 9, 1.0),
        (dict(name="step", step_size=1, gamma=0.1), 10, 0.1),
        (dict(name="step", step_size=1, gamma=0.1), 19, 0.1),
        # one-cycle: 0.04 -> 1 over the first 30% (6 steps), cosine down to alpha after
        (dict(name="onecycle", alpha=0.0), 0, 0.04),
        (dict(name="onecycle", alpha=0.0), 3, 0.04 + 0.96 * 0.5),
        (dict(name="onecycle", alpha=0.0), 6, 1.0),
        (dict(name="onecycle", alpha=0.0), 13, 0.5),
        (dict(name="constant"), 7, 1.0),
    ],
)
def test_lr_factor_by_hand(cfg, step, expected):
    # cosine / onecycle / constant: 10 steps per epoch, 2 epochs; warmup runs use the same
    assert lr_factor(ScheduleConfig(**cfg), step, 10, 2) == pytest.approx(expected)


def test_step_schedule_steps_every_step_size_epochs():
    cfg = ScheduleConfig(name="step", step_size=2, gamma=0.5)
    assert [lr_factor(cfg, s, 5, 10) for s in (0, 9, 10, 19, 20, 45)] == pytest.approx(
        [1, 1, 0.5, 0.5, 0.25, 0.0625]
    )


def test_scheduler_applies_the_factor_to_the_optimizer():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.2)
    sched = build_scheduler(opt, ScheduleConfig(name="cosine", alpha=0.1), 10, 2)
    for _ in range(10):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2 * 0.55)


def test_plateau_reduction_lasts_across_the_per_step_schedule():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    cfg = ScheduleConfig(name="plateau", patience=0, factor=0.5)
    sched, plateau = build_scheduler(opt, cfg, 2, 10), build_plateau(opt, cfg, "min")
    seen = []
    for value in (1.0, 1.0, 1.0, 0.5):  # no improvement twice: two cuts; then an improvement: none
        for _ in range(2):
            opt.step()
            sched.step()
        seen.append(opt.param_groups[0]["lr"])  # the lr the epoch trained with, after its steps
        step_plateau(plateau, sched, value)
    assert seen == pytest.approx([1.0, 1.0, 0.5, 0.25])
    # the cut lives in base_lrs, which the scheduler's state dict carries (a resumed run keeps it)
    assert sched.state_dict()["base_lrs"] == pytest.approx([0.25])


def test_plateau_is_only_built_for_its_name():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    assert build_plateau(opt, ScheduleConfig(name="cosine"), "min") is None
