"""The command line: thin, quiet on success, one line and exit code 2 on bad input."""

import subprocess
import sys

import pytest
import yaml


def cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "smallvision.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_help_lists_commands():
    out = cli("--help")
    assert out.returncode == 0 and "run" in out.stdout and "config" in out.stdout


def test_missing_config_is_one_line_and_exit_2(tmp_path):
    out = cli("run", str(tmp_path / "missing.yaml"))
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "missing.yaml" in out.stderr and "not found" in out.stderr


def test_unknown_source_is_one_line_and_exit_2(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"source": "builtin:nope"}, "output_dir": str(tmp_path / "runs")}))
    out = cli("run", str(cfg))
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "unknown builtin dataset 'nope'" in out.stderr


def test_typo_in_override_is_one_line_and_exit_2(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: x\n")
    out = cli("config", "show", str(cfg), "train.optimzer.lr=0.1")
    assert out.returncode == 2 and "train.optimzer: unknown key; did you mean 'optimizer'?" in out.stderr


def test_binary_or_empty_config_is_one_line_and_exit_2(tmp_path):
    binary = tmp_path / "image.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    out = cli("run", str(binary))
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0
    assert "image.yaml" in out.stderr and "is not UTF-8 text" in out.stderr and "UTF-8 YAML" in out.stderr
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    out = cli("run", str(empty), f"output_dir={tmp_path / 'runs'}")
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0
    assert "empty.yaml' is empty" in out.stderr and "examples/" in out.stderr
    assert not (tmp_path / "runs").exists()  # nothing trained on the defaults


def test_config_show_prints_resolved_yaml(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train: {epochs: 4}\n")
    out = cli("config", "show", str(cfg), "train.batch_size=16")
    resolved = yaml.safe_load(out.stdout)
    assert out.returncode == 0
    assert resolved["train"]["epochs"] == 4 and resolved["train"]["batch_size"] == 16
    assert resolved["data"]["split"]["train"] == 0.7


def test_run_prints_directory_and_headline(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "name": "cli",
                "output_dir": str(tmp_path / "runs"),
                "data": {"source": "builtin:digits"},
                "model": {"name": "cnn_small", "params": {"channels": [8, 16], "hidden": 32}},
                "train": {"epochs": 1, "progress": False},
                "report": {"enabled": False},
            }
        )
    )
    out = cli("run", str(cfg))
    assert out.returncode == 0, out.stderr
    assert "run directory:" in out.stdout and "label/accuracy" in out.stdout
    assert "reference: label/accuracy chance (1/K) 0.1000  label/accuracy majority class" in out.stdout


def test_run_prints_every_further_scored_set(tmp_path, monkeypatch, capsys):
    from smallvision.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "output_dir": str(tmp_path / "runs"),
                "data": {"source": "builtin:digits"},
                "model": {"name": "cnn_small", "params": {"channels": [4, 8], "hidden": 16}},
                "train": {"epochs": 1, "progress": False},
                "report": {"enabled": False},
                "eval": {"INV": {"source": "builtin:digits", "shift": {"invert": True}}},
            }
        )  # fmt: skip
    )
    monkeypatch.setattr(sys, "argv", ["smallvision", "run", str(cfg)])
    with pytest.raises(SystemExit) as exited:  # typer's standalone mode exits, 0 on success
        main()
    assert exited.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("test: label/accuracy") and lines[2].startswith("  eval:INV: label/accuracy ")


def test_run_baseline_prints_test_cv_and_references_and_refuses_bad_input(tmp_path):
    cfg = tmp_path / "c.yaml"
    base = {"name": "b", "output_dir": str(tmp_path / "runs"), "data": {"source": "builtin:digits"}}
    cfg.write_text(yaml.safe_dump({**base, "report": {"enabled": False}}))
    out = cli("run", str(cfg), "--baseline", "knn", "model.params.n_neighbors=3")
    assert out.returncode == 0, out.stderr
    assert "label/accuracy" in out.stdout and "cv (5-fold on train): label/accuracy" in out.stdout
    assert "reference: label/accuracy chance (1/K) 0.1000" in out.stdout
    bad = cli("run", str(cfg), "--baseline", "xgboost")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "xgboost" in bad.stderr
    seeds = cli("run", str(cfg), "--baseline", "knn", "seeds=[1,2]")
    assert seeds.returncode == 2 and "drop seeds" in seeds.stderr
