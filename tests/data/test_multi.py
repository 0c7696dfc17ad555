"""multi: several sources as named domains: one shape, labels by class name, disjoint shifted copies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import smallvision
from smallvision.config import build_config
from smallvision.data.load import load_data, load_source
from smallvision.errors import UserError


def multi(domains, **options):
    return load_source("multi:", {"domains": domains, **options}, seed=0)


def test_domains_become_groups_at_one_shape_with_their_labels():
    data = multi({"A": "builtin:digits", "B": {"source": "builtin:digits-28"}}, size=12)
    a, b = load_source("builtin:digits"), load_source("builtin:digits-28")
    assert data.shape == (1, 12, 12) and data.images.dtype == torch.uint8
    assert {k: len(v) for k, v in data.groups.items()} == {"A": len(a), "B": len(b)}
    assert torch.equal(data.targets["label"][data.groups["A"]], a.targets["label"])
    assert torch.equal(data.targets["label"][data.groups["B"]], b.targets["label"])
    assert data.info["label"].classes == a.info["label"].classes
    assert data.meta["domains"]["B"] == {"source": "builtin:digits-28", "n": len(b), "shift": {}}


def test_the_common_shape_defaults_to_data_size_and_channels():
    cfg = build_config({"data": {"source": "multi:", "size": [10, 10], "channels": 3,
                                 "options": {"domains": {"A": "builtin:digits", "B": "builtin:digits-28"}}}})  # fmt: skip
    assert load_data(cfg.data).shape == (3, 10, 10)


def write_npz(path, labels, classes):
    x = np.stack([np.full((6, 6), 40 * i, np.uint8) for i in range(len(labels))])
    np.savez(path, x=x, y=np.asarray(labels))
    return {"source": f"npz:{path}", "options": {"classes": {"label": classes}}}


def test_labels_map_by_class_name_onto_the_union(tmp_path):
    x = write_npz(tmp_path / "x.npz", [0, 1, 1], ["cat", "dog"])
    y = write_npz(tmp_path / "y.npz", [0, 1, 0], ["dog", "bird"])
    data = multi({"X": x, "Y": y})
    assert data.info["label"].classes == ("cat", "dog", "bird")
    assert data.targets["label"].tolist() == [0, 1, 1, 1, 2, 1]  # Y's "dog" (its 0) is the union's 1
    assert data.meta["domains"]["X"]["classes_missing"] == {"label": ["bird"]}
    assert data.meta["domains"]["Y"]["classes_missing"] == {"label": ["cat"]}


def originals(images: torch.Tensor) -> set[bytes]:
    return {bytes(im.numpy().tobytes()) for im in images}


def test_a_shift_of_the_same_base_gets_disjoint_stratified_images():
    base = load_source("builtin:digits")
    data = multi({"A": "builtin:digits", "C": {"source": "builtin:digits", "shift": {"invert": True}}})
    a, c = data.groups["A"], data.groups["C"]
    assert abs(len(a) - len(c)) <= 10 and len(a) + len(c) == len(base)
    a_imgs, c_imgs = originals(data.images[a]), originals(255 - data.images[c])
    assert not a_imgs & c_imgs and (a_imgs | c_imgs) == originals(base.images)
    count_a = np.bincount(data.targets["label"][a].numpy(), minlength=10)
    count_c = np.bincount(data.targets["label"][c].numpy(), minlength=10)
    assert np.abs(count_a - count_c).max() <= 1  # each class dealt evenly
    again = multi({"A": "builtin:digits", "C": {"source": "builtin:digits", "shift": {"invert": True}}})
    assert again.fingerprint() == data.fingerprint()


def test_share_and_overlap():
    data = multi(
        {
            "A": {"source": "builtin:digits", "share": 0.8},
            "C": {"source": "builtin:digits", "shift": {"blur": 1.0}},
        }
    )
    assert (
        abs(len(data.groups["A"]) - 0.8 * 1797) <= 5 and len(data.groups["A"]) + len(data.groups["C"]) == 1797
    )
    both = multi(
        {"A": "builtin:digits", "C": {"source": "builtin:digits", "shift": {"invert": True}, "overlap": True}}
    )
    assert torch.equal(both.images[both.groups["C"]], 255 - both.images[both.groups["A"]])


@pytest.mark.parametrize(
    "domains, message",
    [
        ({}, r"data\.options\.domains: expected a mapping"),
        ({"A": {"source": "builtin:digits", "shft": {}}}, r"domains\.A\.shft: unknown key"),
        (
            {"A": {"source": "builtin:digits", "shift": {"blur": 0}}},
            r"domains\.A\.shift\.blur: expected a sigma",
        ),
        ({"A:1": "builtin:digits"}, r"domain name 'A:1'"),
        (
            {
                "A": {"source": "builtin:digits", "share": 0.7},
                "B": {"source": "builtin:digits", "share": 0.6},
            },
            r"sum to 1\.3",
        ),
    ],
)
def test_bad_multi_sources_are_one_line_errors(domains, message):
    with pytest.raises(UserError, match=message):
        multi(domains, size=8)


def test_domains_need_the_same_targets_and_dtype(tmp_path):
    np.savez(tmp_path / "u.npz", x=np.zeros((4, 8, 8), np.uint8))  # unlabeled
    with pytest.raises(
        UserError, match=r"domains\.U: targets none differ from those of A \(label \(classification\)\)"
    ):
        multi({"A": "builtin:digits", "U": f"npz:{tmp_path / 'u.npz'}"})
    np.savez(tmp_path / "f.npz", x=np.zeros((4, 8, 8), np.float32), y=np.arange(4))
    with pytest.raises(UserError, match=r"domains\.F: images are torch\.float32 but A's are torch\.uint8"):
        multi({"A": "builtin:digits", "F": f"npz:{tmp_path / 'f.npz'}"})


def test_study_003_layout_runs_with_per_domain_scores(tiny_config):
    tiny_config["data"] = {
        "source": "multi:",
        "size": [12, 12],
        "options": {
            "domains": {
                "A": "builtin:digits",
                "B": "builtin:digits-28",
                "C": {"source": "builtin:digits", "shift": {"noise": 0.1}},
            }
        },  # fmt: skip
        "split": {"method": "domains", "domains": {"train": "A", "val": "A", "test": ["A", "B", "C"]}},
    }
    tiny_config["train"]["epochs"] = 1
    result = smallvision.run(tiny_config)
    assert set(result.metrics.domains) == {"test:A", "test:B", "test:C"}
    data = result.metrics.data
    assert data.sizes["test:B"] == 1797 and data.reader["domains"]["C"]["shift"] == {"noise": 0.1}
