"""``smallvision data preview``: a PNG grid of raw and augmented training samples."""

from __future__ import annotations

import pytest
from PIL import Image
from typer.testing import CliRunner

from smallvision.cli import app
from smallvision.config import build_config
from smallvision.errors import UserError
from smallvision.study.preview import COLUMNS, DRAWS, preview


def digits_config(tmp_path, **data):
    raw = {
        "name": "pv",
        "output_dir": str(tmp_path / "runs"),
        "data": {
            "source": "builtin:digits",
            "augment": {"rotate": {"degrees": 20}, "noise": {"std": 0.1}},
            **data,
        },
    }
    return build_config(raw)


def test_preview_writes_a_png_grid(tmp_path):
    path = preview(digits_config(tmp_path), tmp_path / "grid.png", n=10)
    assert path == tmp_path / "grid.png"
    with Image.open(path) as img:
        assert img.format == "PNG"
        w, h = img.size
    # 10 samples: two blocks of (1 raw + DRAWS) rows, COLUMNS wide
    assert w > 5 * COLUMNS and h > 5 * 2 * (1 + DRAWS)


def test_default_path_and_rgb_without_augmentation(tmp_path):
    cfg = digits_config(tmp_path, augment={}, channels=3, size=[16, 16])
    path = preview(cfg, n=3)
    assert path == tmp_path / "runs" / "pv_preview.png" and path.stat().st_size > 0


def test_bad_n_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="--n 0"):
        preview(digits_config(tmp_path), tmp_path / "x.png", n=0)


def test_cli_prints_the_path(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"name: c\noutput_dir: {tmp_path / 'runs'}\ndata: {{source: 'builtin:digits'}}\n")
    out = tmp_path / "p.png"
    result = CliRunner().invoke(
        app, ["data", "preview", str(cfg), "data.augment.shift.fraction=0.1", "--out", str(out), "--n", "4"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out) and out.is_file()


def test_preview_shows_the_images_the_run_trains_on(tmp_path, monkeypatch):
    """A seeded builtin is made with data.split.seed, as in the run, not with the run's seed."""
    import torch

    import smallvision.study.preview as pv
    from smallvision.study.run import prepare

    shown = {}
    monkeypatch.setattr(
        pv, "_draw_grid", lambda rows, titles, title, path: shown.update(rows=rows, titles=titles)
    )
    cfg = build_config(
        {
            "name": "pv",
            "seed": 5,
            "output_dir": str(tmp_path / "runs"),
            "data": {"source": "builtin:glyphs", "options": {"n": 60}, "split": {"seed": 0}},
            "model": {"name": "mlp", "params": {"hidden": [8]}},
        }
    )
    pv.preview(cfg, tmp_path / "g.png", n=4)
    run = prepare(cfg)
    picked = [int(t.split(":")[0]) for t in shown["titles"]]
    assert set(picked) <= set(run.splits["train"].tolist())
    expected = run.normalizer.to_unit(run.data.images[torch.as_tensor(picked)])
    assert torch.equal(shown["rows"][0], expected)


def test_preview_skips_bad_files_when_the_run_does(tmp_path):
    """data.skip_bad reaches the reader: a corrupt file is skipped as in the run, not an error."""
    import numpy as np

    for c in ("a", "b"):
        (tmp_path / "imgs" / c).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(np.full((8, 8), 40 * i + 7 * (c == "b"), np.uint8)).save(
                tmp_path / "imgs" / c / f"{i}.png"
            )
    (tmp_path / "imgs" / "a" / "broken.png").write_bytes(b"not a png")
    raw = {
        "name": "pv",
        "output_dir": str(tmp_path / "runs"),
        "data": {"source": f"folder:{tmp_path / 'imgs'}", "skip_bad": True},
    }
    path = preview(build_config(raw), tmp_path / "p.png", n=4)
    assert path.is_file()
