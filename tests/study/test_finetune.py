"""Study 003 offline: train on A, fine-tune on B with early stages frozen, scored before and after on
the same held-out images of every domain, plus a further evaluation set."""

from __future__ import annotations

import json

import numpy as np
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


def test_two_step_fine_tune_scores_every_set_on_the_same_held_out_images(tiny_config):
    tiny_config["train"]["epochs"] = 2
    before = smallvision.run(step_config(tiny_config, "A"))
    second = step_config(tiny_config, "B")
    second["model"] = {**tiny_config["model"], "init": str(before.dir), "freeze": ["stem"]}
    second["train"] = {**tiny_config["train"], "epochs": 1, "optimizer": {"lr": 1e-4}}
    after = smallvision.run(second)
    sets = {"test:A", "test:B", "test:C", "eval:BLUR"}
    preds = [np.load(r.dir / "predictions.npz") for r in (before, after)]
    for name in sets:
        assert np.array_equal(preds[0][f"{name}/index"], preds[1][f"{name}/index"]), name
        assert np.array_equal(preds[0][f"{name}/label/y_true"], preds[1][f"{name}/label/y_true"]), name
    metrics = [json.loads((r.dir / "metrics.json").read_text()) for r in (before, after)]
    # each step trains on the train part of its own domain only (0.6 of it, stratified)
    n = metrics[0]["data"]["reader"]["domains"]  # A and C share the 1,797 digits, disjointly
    assert n["A"]["n"] + n["C"]["n"] == 1797 and n["B"]["n"] == 1797
    assert abs(sizes(metrics[0])["train"] - 0.6 * n["A"]["n"]) <= 5
    assert abs(sizes(metrics[1])["train"] - 0.6 * n["B"]["n"]) <= 5
    assert abs(len(preds[0]["test:B/index"]) - 0.2 * 1797) <= 5
    assert len(preds[0]["eval:BLUR/index"]) == 1797
    for m in metrics:
        assert sets <= set(domain_scores(m))
    # fine-tuning moved the scores on B, with the frozen stem unchanged
    assert domain_scores(metrics[0])["test:B"] != domain_scores(metrics[1])["test:B"]
    stem = [dict(r.model.stages())["stem"] for r in (before, after)]
    assert all(torch.equal(a, b) for a, b in zip(stem[0].parameters(), stem[1].parameters(), strict=True))


def domain_scores(m: dict) -> dict[str, float]:
    """Split -> label accuracy, for every scored split of a metrics.json."""
    parts = m.get("splits") or {**m.get("domains", {}), **{k: m[k] for k in ("val", "test") if k in m}}
    return {s: v["label"]["accuracy"] for s, v in parts.items()}


def sizes(m: dict) -> dict[str, int]:
    """Split -> number of samples, from a metrics.json."""
    if "sizes" in m["data"]:
        return m["data"]["sizes"]
    return {k.removeprefix("n_"): v for k, v in m["data"].items() if k.startswith("n_")}
