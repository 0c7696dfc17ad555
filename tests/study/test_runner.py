"""Running studies: every file written, steps chained on validation, resume after SIGKILL to the same
results, workers that run each cell exactly once, failures that stop nothing, seeds added later."""

import csv
import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
import time

import pytest
import yaml
from typer.testing import CliRunner

from smallvision.cli import app
from smallvision.study import runner
from smallvision.study.runner import resume_study, run_study

BASE = {
    "name": "tiny",
    "data": {"source": "builtin:digits", "split": {"train": 0.6, "val": 0.2, "test": 0.2}},
    "model": {"name": "mlp", "params": {"hidden": [32]}},
    "train": {"epochs": 2, "batch_size": 64, "threads": 1, "progress": False},
    "report": {"enabled": False},
}
VARIANTS = {"narrow": {"model.params.hidden": [16]}, "wide": {"model.params.hidden": [48]}}


def study_file(tmp_path, name="s.yaml", steps=None, **grid):
    """A study file of one step (``grid``) or several (``steps``), writing under tmp_path/studies."""
    raw = {"name": "demo", "output_dir": str(tmp_path / "studies"), "base": BASE}
    raw.update({"steps": steps} if steps else grid)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def rows(study_dir):
    with (study_dir / "results.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def executions(text):
    """Cell ids in the workers' "cell <id> done" lines: one per cell trained to the end."""
    return [line.split()[2] for line in text.splitlines() if line.startswith("[w") and line.endswith(" done")]


def figures(study_dir):
    """results.csv without the timings: what an interrupted study must reproduce exactly."""
    timings = ("train_seconds", "inference_seconds_per_image")
    return [{k: v for k, v in r.items() if k not in timings} for r in rows(study_dir)]


def test_two_variants_two_seeds_write_every_file(tmp_path, capsys):
    result = run_study(study_file(tmp_path, variants=VARIANTS, seeds=[1, 2]), progress=False)
    d = result.dir
    assert d.parent == tmp_path / "studies" and d.name.startswith("demo-")
    for name in ("study.yaml", "study.resolved.yaml", "selections.json", "results.csv", "summary.md"):
        assert (d / name).is_file(), name
    assert (d / "claims").is_dir() and list((d / "claims").iterdir()) == []
    table = rows(d)
    assert [(r["variant"], r["seed"], r["status"]) for r in table] == [
        ("narrow", "1", "completed"), ("narrow", "2", "completed"),
        ("wide", "1", "completed"), ("wide", "2", "completed"),
    ]  # fmt: skip
    cols = list(table[0])
    assert cols[:4] == ["step", "cell_id", "label", "variant"] and cols[-3:] == [
        "train_seconds",
        "inference_seconds_per_image",
        "parameters",
    ]
    assert all(float(r["inference_seconds_per_image"]) > 0 for r in table)
    assert {"test/label/accuracy", "val/label/accuracy", "val/loss"} <= set(cols)
    assert table[0]["parameters"] != table[2]["parameters"]  # the variants differ
    for r in table:
        metrics = json.loads((d / "runs" / r["cell_id"] / "metrics.json").read_text())
        assert float(r["test/label/accuracy"]) == metrics["splits"]["test"]["label"]["accuracy"]
    resolved = yaml.safe_load((d / "study.resolved.yaml").read_text())
    assert [c["id"] for c in resolved["steps"][0]["cells"]] == [r["cell_id"] for r in table]
    summary = (d / "summary.md").read_text()
    assert "| narrow | 2/2 |" in summary and "| wide | 2/2 |" in summary and " ± " in summary
    assert sorted(executions(capsys.readouterr().out)) == sorted(r["cell_id"] for r in table)
    again = run_study(study_file(tmp_path, "again.yaml", variants={"one": {}}, seeds=[1]), progress=False)
    assert again.dir != d and again.dir.name.startswith("demo-")  # a fresh study never reuses a directory


def test_second_step_takes_the_best_cell_of_the_first_on_validation(tmp_path):
    steps = [
        {"name": "width", "variants": VARIANTS, "seeds": [1]},
        {
            "name": "longer",
            "variants": {
                "best": {
                    "model.params.hidden": "@width.best(val/loss).model.params.hidden",
                    "train.epochs": 3,
                }
            },
        },  # fmt: skip
    ]
    result = run_study(study_file(tmp_path, steps=steps), progress=False)
    table = rows(result.dir)
    first = [r for r in table if r["step"] == "width"]
    best = min(first, key=lambda r: float(r["val/loss"]))
    (selection,) = json.loads((result.dir / "selections.json").read_text())
    assert selection["metric"] == "val/loss" and selection["higher_is_better"] is False
    assert {c["cell"]: c["value"] for c in selection["candidates"]} == {
        r["cell_id"]: float(r["val/loss"]) for r in first
    }
    assert selection["chosen"]["cell"] == best["cell_id"]  # one seed per variant: the lowest val/loss
    (second,) = [r for r in table if r["step"] == "longer"]
    chosen_cfg = yaml.safe_load((result.dir / "runs" / best["cell_id"] / "config.yaml").read_text())
    second_cfg = yaml.safe_load((result.dir / "runs" / second["cell_id"] / "config.yaml").read_text())
    assert second["status"] == "completed" and second_cfg["train"]["epochs"] == 3
    assert second_cfg["model"]["params"]["hidden"] == chosen_cfg["model"]["params"]["hidden"]


# the study in a process that SIGKILLs itself inside epoch 3 of its second cell, the first one finished
KILLED_STUDY = textwrap.dedent(
    """
    import os, signal, sys
    from smallvision.study import worker
    from smallvision.study.runner import run_study
    from smallvision.train.events import Callback

    started, run_cell = [], worker.run_cell

    class KillMidEpoch(Callback):
        def after_batch(self, trainer, batch):
            if batch.epoch == 3 and batch.index == 3:  # inside epoch 3, after last.pt of epoch 2
                for c in trainer.hooks.callbacks:  # on disk: the checkpoint is written in the background
                    getattr(c, "wait", lambda: None)()
                os.kill(os.getpid(), signal.SIGKILL)

    def killing_run_cell(pc, run_dir, threads, callbacks):
        started.append(pc.key)
        extra = [KillMidEpoch()] if len(started) == 2 else []
        return run_cell(pc, run_dir, threads, [*callbacks, *extra])

    worker.run_cell = killing_run_cell
    run_study(sys.argv[1], progress=False)
    """
)


def test_sigkill_mid_study_then_resume_gives_the_same_results_and_runs_nothing_twice(tmp_path, capsys):
    base = dict(BASE, train={**BASE["train"], "epochs": 4})
    grid = {"variants": VARIANTS, "seeds": [1, 2]}
    raw = {"name": "demo", "output_dir": str(tmp_path / "killed"), "base": base, **grid}
    (tmp_path / "k.yaml").write_text(yaml.safe_dump(raw))
    out = subprocess.run([sys.executable, "-c", KILLED_STUDY, str(tmp_path / "k.yaml")], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert out.returncode == -9, out.stderr
    (study_dir,) = (tmp_path / "killed").iterdir()
    before = executions(out.stdout)
    assert len(before) == 1 and not (study_dir / "results.csv").exists()
    first_metrics = (study_dir / "runs" / before[0] / "metrics.json").stat().st_mtime_ns

    resumed = resume_study(study_dir, progress=False)
    after = executions(capsys.readouterr().out)
    assert not resumed.failed and len(after) == 3 and not set(before) & set(after)  # each cell once
    assert (study_dir / "runs" / before[0] / "metrics.json").stat().st_mtime_ns == first_metrics
    killed = [
        c for c in after if json.loads((study_dir / "runs" / c / "env.json").read_text()).get("resumed")
    ]
    (killed_cell,) = killed  # the cell killed mid-training continued from its checkpoint, not from scratch
    env = json.loads((study_dir / "runs" / killed_cell / "env.json").read_text())
    assert env["resumed"][0]["from_epoch"] == 2

    raw["output_dir"] = str(tmp_path / "clean")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    clean = run_study(tmp_path / "c.yaml", progress=False)
    assert figures(study_dir) == figures(clean.dir)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_two_workers_run_each_cell_exactly_once(tmp_path, capfd, monkeypatch, method):
    monkeypatch.setenv(runner.WORKER_START_ENV, method)
    started = []

    def spy(*args, **kwargs):
        started.extend(real(*args, **kwargs))
        return started

    real = runner.start_workers
    monkeypatch.setattr(runner, "start_workers", spy)
    result = run_study(study_file(tmp_path, variants=VARIANTS, seeds=[1, 2]), workers=2, progress=False)
    kind = multiprocessing.process.BaseProcess if method == "fork" else subprocess.Popen
    assert len(started) == 1 and isinstance(started[0].process, kind)
    done = executions(capfd.readouterr().out)
    ids = [r["cell_id"] for r in rows(result.dir)]
    assert sorted(done) == sorted(ids) and len(set(ids)) == 4
    assert {line.split()[0] for line in capfd.readouterr().out.splitlines()} <= {"[w1]", "[w2]"}
    for cell in ids:  # trained once from the start: one history row per epoch, never resumed
        run_dir = result.dir / "runs" / cell
        assert not json.loads((run_dir / "env.json").read_text()).get("resumed")
        assert len((run_dir / "history.csv").read_text().splitlines()) == 1 + 2
        assert json.loads((run_dir / "env.json").read_text())["threads"] == 1  # the cell's own train.threads


def test_workers_are_forked_only_on_one_thread_each(monkeypatch):
    monkeypatch.delenv(runner.WORKER_START_ENV, raising=False)
    assert runner.start_method(1) == ("fork" if sys.platform.startswith("linux") else "spawn")
    assert runner.start_method(2) == "spawn"  # a forked child would share no OpenMP pool
    monkeypatch.setenv(runner.WORKER_START_ENV, "spawn")
    assert runner.start_method(1) == "spawn"


def test_separate_worker_process_trees_share_one_study_dir(tmp_path):
    path = study_file(tmp_path, variants=VARIANTS, seeds=[1, 2])
    cmd = [sys.executable, "-m", "smallvision", "study"]
    first = subprocess.Popen([*cmd, str(path)], stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not list((tmp_path / "studies").glob("*/study.json")) and time.time() < deadline:
        time.sleep(0.02)
    (study_dir,) = (tmp_path / "studies").iterdir()
    second = subprocess.run([*cmd, "work", str(study_dir), "--worker-id", "other"], capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    out_first, _ = first.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0
    done = executions(out_first) + executions(second.stdout.replace("[other]", "[wother]"))
    assert sorted(done) == sorted(r["cell_id"] for r in rows(study_dir)) and len(done) == 4


def test_failing_cells_are_recorded_and_stop_nothing_exit_1_then_retried_on_resume(tmp_path):
    variants = {
        "ok": {},
        "nan": {"train.optimizer.name": "sgd", "train.optimizer.lr": 1000.0},
        "missing": {"data.source": "idx:" + str(tmp_path / "no-such-folder")},
    }
    path = study_file(tmp_path, variants=variants, seeds=[1])
    out = CliRunner().invoke(app, ["study", str(path)])
    assert out.exit_code == 1
    (study_dir,) = (tmp_path / "studies").iterdir()
    status = {r["variant"]: (r["status"], r["error"]) for r in rows(study_dir)}
    assert status["ok"][0] == "completed"
    assert status["nan"][0] == "failed" and "non-finite training loss" in status["nan"][1]
    assert status["missing"][0] == "failed" and "no-such-folder" in status["missing"][1]
    assert "failed" in out.output and "non-finite" in out.output  # printed, not only recorded
    nan_id = next(r["cell_id"] for r in rows(study_dir) if r["variant"] == "nan")
    assert "non-finite" in json.loads((study_dir / "runs" / nan_id / "error.json").read_text())["error"]

    again = CliRunner().invoke(app, ["study", "resume", str(study_dir)])
    assert again.exit_code == 1 and "[w1] cell " + nan_id + " failed" in again.output
    assert (study_dir / "runs" / f"{nan_id}.failed-1" / "error.json").is_file()  # the first attempt kept
    assert executions(again.output) == []  # the completed cell was not run again


def test_adding_a_seed_to_a_finished_study_trains_only_the_new_run(tmp_path, capsys):
    first = run_study(study_file(tmp_path, variants={"only": {}}, seeds=[1]), progress=False)
    (old,) = executions(capsys.readouterr().out)
    stamp = (first.dir / "runs" / old / "metrics.json").stat().st_mtime_ns
    edited = study_file(tmp_path, "edited.yaml", variants={"only": {}}, seeds=[1, 2])
    second = run_study(edited, directory=first.dir, progress=False)
    (new,) = executions(capsys.readouterr().out)
    assert second.dir == first.dir and new != old
    assert [r["seed"] for r in rows(first.dir)] == ["1", "2"]
    assert (first.dir / "runs" / old / "metrics.json").stat().st_mtime_ns == stamp
    assert "seeds:\n- 1\n- 2" in (first.dir / "study.yaml").read_text()
    assert "- 2" not in (first.dir / "study.1.yaml").read_text()  # the earlier file kept


@pytest.fixture
def fake_baselines(monkeypatch):
    """A stand-in ``smallvision.evaluate.baselines`` that records what it was asked to fit."""
    calls = []

    def run_baseline(cfg, baseline, run_dir):
        calls.append((baseline, cfg.seed))
        (run_dir / "metrics.json").write_text(json.dumps({"status": "completed", "test": {}, "val": {}}))

    from smallvision.evaluate import baselines

    monkeypatch.setattr(baselines, "run_baseline", run_baseline)
    return calls


def test_baseline_cells_go_to_run_baseline(tmp_path, fake_baselines):
    variants = {"logreg": {"baseline": "logistic_regression"}, "net": {}}
    result = run_study(study_file(tmp_path, variants=variants, seeds=[4]), progress=False)
    assert fake_baselines == [("logistic_regression", 4)]
    assert [r["status"] for r in rows(result.dir)] == ["completed", "completed"]


def test_a_failing_baseline_cell_fails_alone(tmp_path, monkeypatch):
    from smallvision.evaluate import baselines

    def run_baseline(cfg, baseline, run_dir):
        raise RuntimeError("the baselines broke")

    monkeypatch.setattr(baselines, "run_baseline", run_baseline)
    variants = {"logreg": {"baseline": "logistic_regression"}, "net": {}}
    result = run_study(study_file(tmp_path, variants=variants, seeds=[4]), progress=False)
    status = {r["variant"]: (r["status"], r["error"]) for r in rows(result.dir)}
    assert status["net"][0] == "completed"
    assert status["logreg"][0] == "failed" and "baselines" in status["logreg"][1]


def test_progress_lines_count_done_running_failed_left(tmp_path, capsys):
    run_study(study_file(tmp_path, variants=VARIANTS, seeds=[1]), progress=True)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("cells:")]
    assert lines[0].startswith("cells: 0 done") and lines[-1] == "cells: 2 done, 0 running, 0 failed, 0 left"


def test_not_a_study_directory_is_a_user_error(tmp_path):
    out = CliRunner().invoke(app, ["study", "resume", str(tmp_path)])
    assert out.exit_code != 0 and "not a study directory" in str(out.exception or out.output)
    assert os.listdir(tmp_path) == []


def test_threads_are_divided_among_workers_unless_the_cell_sets_them():
    from smallvision.config import build_config
    from smallvision.study.runner import threads_per_worker
    from smallvision.study.worker import with_threads

    assert threads_per_worker(1) == (os.cpu_count() or 1) and threads_per_worker(10**6) == 1
    assert with_threads(build_config({}), 3).train.threads == 3
    assert with_threads(build_config({"train": {"threads": 2}}), 3).train.threads == 2
    assert with_threads(build_config({}), None).train.threads is None


def test_summary_compares_the_groups_with_statistics_when_compare_is_available(tmp_path):
    pytest.importorskip("smallvision.evaluate.compare")
    result = run_study(study_file(tmp_path, variants=VARIANTS, seeds=[1, 2]), progress=False)
    summary = (result.dir / "summary.md").read_text()
    assert "| narrow | 2/2 |" in summary and "**Verdict:**" in summary and "test/label/accuracy" in summary


def test_killing_the_coordinator_stops_its_workers_and_resume_finishes_each_cell_once(tmp_path, capsys):
    base = dict(BASE, model={"name": "cnn_small", "params": {"channels": [8, 16], "hidden": 32}})
    base["train"] = {**BASE["train"], "epochs": 4}
    raw = {"name": "demo", "output_dir": str(tmp_path / "studies"), "base": base, "variants": VARIANTS}
    raw.update(
        variants={"a": {}, "b": {"train.optimizer.lr": 0.003}, "c": {"train.batch_size": 32}}, seeds=[1, 2]
    )
    path = tmp_path / "k.yaml"
    path.write_text(yaml.safe_dump(raw))
    cmd = [sys.executable, "-m", "smallvision", "study", str(path), "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stdout:  # until the first cell is done
        seen.append(line.rstrip("\n"))
        if executions(line.rstrip("\n")):
            break
    os.kill(proc.pid, 9)
    seen += proc.stdout.read().splitlines()  # ends when every worker has closed the pipe: they exited
    proc.wait()
    printed = executions("\n".join(seen))
    (study_dir,) = (tmp_path / "studies").iterdir()
    # a worker can be stopped between writing a finished cell's metrics.json and printing "done",
    # so the cells finished before the kill are read from the directory, not from the output
    before = [d.name for d in (study_dir / "runs").iterdir() if _completed(d)]
    assert set(printed) <= set(before) and 1 <= len(before) < 6
    resumed = resume_study(study_dir, progress=False)
    after = executions(capsys.readouterr().out)
    assert not resumed.failed and sorted(before + after) == sorted(c.key for c in resumed.cells)


def _completed(run_dir):
    metrics = run_dir / "metrics.json"
    return metrics.is_file() and json.loads(metrics.read_text()).get("status") == "completed"


def test_resume_and_workers_need_neither_the_study_file_nor_its_base_file(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "base.yaml").write_text(yaml.safe_dump(BASE))
    raw = {"output_dir": str(tmp_path / "studies"), "base": "base.yaml", "seeds": [1]}
    (folder / "named.yaml").write_text(yaml.safe_dump(raw))
    first = run_study(folder / "named.yaml", ["train.epochs=1"], progress=False)
    assert first.dir.name.startswith("named-")  # the name from the file's stem
    (folder / "base.yaml").unlink()
    monkeypatch.chdir(tmp_path)
    again = resume_study(first.dir, progress=False)
    assert [c.key for c in again.cells] == [c.key for c in first.cells] and not again.unfinished
