"""Study 003 offline: train on A, fine-tune on B with early stages frozen, scored before and after on
the same held-out images of every domain, plus a further evaluation set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import smallvision


def step_config(tiny_config, train_domain: str) -> dict:
    cfg = dict(tiny_config)
    cfg["data"] = {
        "source": "multi:",
        "size": [8, 8],
        "options": {
            "domains": {
                "A": "builtin:digits",
                "B": "builtin:digits-28",
                "C": {"source": "builtin:digits", "shift": {"dilate": 1}},
            }
        },
        "split": {
            "method": "per_domain",
            "train": 0.6,
            "val": 0.2,
            "test": 0.2,
            "domains": {"train": train_domain},
        },
    }
    cfg["eval"] = {"BLUR": {"source": "builtin:digits-28", "shift": {"blur": 1.0}}}
    return cfg


@pytest.mark.slow
def test_two_step_fine_tune_scores_every_set_on_the_same_held_out_images(tiny_config):
    tiny_config["train"]["epochs"] = 2
    first = smallvision.run(step_config(tiny_config, "A"))
    second = step_config(tiny_config, "B")
    second["model"] = {**tiny_config["model"], "init": str(first.dir), "freeze": ["stem"]}
    second["train"] = {**tiny_config["train"], "epochs": 1, "optimizer": {"lr": 1e-4}}
    after_result = smallvision.run(second)
    before, after = (smallvision.load_run(r.dir) for r in (first, after_result))
    sets = {"test:A", "test:B", "test:C", "eval:BLUR"}
    for name in sets:  # every set scored side by side in both runs, on the very same images
        assert np.array_equal(before.predictions.index[name], after.predictions.index[name]), name
        y = [r.predictions.head(name, "label")["y_true"] for r in (before, after)]
        assert np.array_equal(*y), name
        assert {"accuracy", "macro_f1"} <= set(before.metrics.splits[name]["label"])
    domains = before.metrics.data.reader["domains"]  # A and C share the 1,797 digits, disjointly
    assert domains["A"]["n"] + domains["C"]["n"] == 1797 and domains["B"]["n"] == 1797
    # each step trains on the train part (0.6) of its own domain only; the held-out 0.2 never trains
    assert abs(before.metrics.data.sizes["train"] - 0.6 * domains["A"]["n"]) <= 5
    assert abs(after.metrics.data.sizes["train"] - 0.6 * domains["B"]["n"]) <= 5
    assert abs(len(before.predictions.index["test:B"]) - 0.2 * 1797) <= 5
    assert len(before.predictions.index["eval:BLUR"]) == 1797
    assert before.metrics.data.split["eval"] == {
        "BLUR": {"source": "builtin:digits-28", "shift": {"blur": 1.0}}
    }
    # fine-tuning moved the scores on B, with the frozen stem unchanged
    acc = [r.metrics.splits["test:B"]["label"]["accuracy"] for r in (before, after)]
    assert acc[0] != acc[1]
    stem = [dict(r.model.stages())["stem"] for r in (first, after_result)]
    assert all(torch.equal(a, b) for a, b in zip(stem[0].parameters(), stem[1].parameters(), strict=True))
