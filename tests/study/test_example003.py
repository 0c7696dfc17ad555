"""examples/study003_domain_shift.yaml: both steps run on a tiny budget and score every domain on the
same held-out images before and after fine-tuning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smallvision.study.run import run_config
from smallvision.study.spec import cell_config, load_study

EXAMPLE = Path(__file__).parents[2] / "examples" / "study003_domain_shift.yaml"
TINY = ["train.epochs=1", "data.size=[14,14]", "model.params.widths=[4,8,8]", "model.params.hidden=16", "report.enabled=false",
        "train.progress=false"]  # fmt: skip


@pytest.mark.slow
def test_example_003_runs_both_steps_on_the_same_held_out_images(tmp_path):
    spec = load_study(EXAMPLE, TINY)
    source, finetune = (step.cells[0] for step in spec.steps)
    assert finetune.overrides["model.init"] == "@source" and finetune.overrides["train.optimizer.lr"] == 1e-4
    first = cell_config(spec, source, {**source.overrides, "output_dir": str(tmp_path)})
    before = run_config(first)
    overrides = {**finetune.overrides, "model.init": str(before.dir), "output_dir": str(tmp_path)}
    after = run_config(cell_config(spec, finetune, overrides))
    assert after.model.frozen_stages == ("stem", "stage1")
    preds = [np.load(r.dir / "predictions.npz") for r in (before, after)]
    for domain in "ABC":
        key = f"test:{domain}/index"
        assert len(preds[0][key]) > 0 and np.array_equal(preds[0][key], preds[1][key]), domain
