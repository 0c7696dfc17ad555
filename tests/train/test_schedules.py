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


def test_plateau_is_only_built_when_asked():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    assert build_plateau(opt, ScheduleConfig(name="cosine"), "min") is None
    assert build_plateau(opt, ScheduleConfig(name="step", plateau={}), "max").mode == "max"


def _drive(opt, sched, plateau, values, steps):
    """The trainer's order: each epoch ``steps`` optimiser steps, then the plateau on its value;
    returns every group's lr before each step."""
    seen = []
    for value in values:
        for _ in range(steps):
            seen.append([g["lr"] for g in opt.param_groups])
            opt.step()
            sched.step()
        step_plateau(plateau, sched, value)
    return seen


def _cosine_plateau():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.1}], lr=1.0)  # b: lr_mult 0.1
    cfg = ScheduleConfig(name="cosine", warmup_epochs=1, plateau={"patience": 1, "factor": 0.5})
    return opt, cfg


def test_plateau_multiplies_the_cosine_with_warmup_curve():
    opt, cfg = _cosine_plateau()
    steps, epochs = 4, 6
    sched, plateau = build_scheduler(opt, cfg, steps, epochs), build_plateau(opt, cfg, "min")
    assert plateau is not None and plateau.factor == 0.5 and plateau.patience == 1
    # improvements in epochs 1-2, then flat: patience 1 cuts after epoch 4 and again after epoch 6
    values = [3.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    seen = _drive(opt, sched, plateau, values, steps)
    cuts = [1, 1, 1, 1, 0.5, 0.5]  # the cut made after epoch 4 applies from epoch 5's first step on
    for s, lrs in enumerate(seen):
        expected = cuts[s // steps] * lr_factor(cfg, s, steps, epochs)
        assert lrs == pytest.approx([expected, 0.1 * expected]), s
    assert seen[0][0] == pytest.approx(1 / 5) and seen[4][0] == pytest.approx(1.0)  # warmup, then the peak
    assert opt.param_groups[0]["lr"] == pytest.approx(0.25 * lr_factor(cfg, steps * epochs, steps, epochs))


def test_cosine_with_plateau_resumes_from_its_state_dicts():
    opt, cfg = _cosine_plateau()
    values = [3.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    whole = _drive(opt, build_scheduler(opt, cfg, 4, 6), build_plateau(opt, cfg, "min"), values, 4)
    opt, _ = _cosine_plateau()
    sched, plateau = build_scheduler(opt, cfg, 4, 6), build_plateau(opt, cfg, "min")
    first = _drive(opt, sched, plateau, values[:4], 4)  # a cut has just been made
    saved = {"o": opt.state_dict(), "s": sched.state_dict(), "p": plateau.state_dict()}
    opt, _ = _cosine_plateau()
    sched, plateau = build_scheduler(opt, cfg, 4, 6), build_plateau(opt, cfg, "min")
    opt.load_state_dict(saved["o"])
    sched.load_state_dict(saved["s"])
    plateau.load_state_dict(saved["p"])
    assert first + _drive(opt, sched, plateau, values[4:], 4) == whole


def test_a_cut_counts_even_at_a_tiny_lr():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1e-9)
    cfg = ScheduleConfig(name="constant", plateau={"patience": 0, "factor": 0.5})
    sched, plateau = build_scheduler(opt, cfg, 1, 3), build_plateau(opt, cfg, "min")
    seen = [lrs[0] for lrs in _drive(opt, sched, plateau, [1.0, 1.0, 1.0], 1)]
    assert seen == pytest.approx([1e-9, 1e-9, 5e-10], rel=1e-9, abs=0)  # torch's default eps skips it
