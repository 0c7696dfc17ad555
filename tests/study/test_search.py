"""Search: Optuna trials as runs in the study directory, the exact total across workers, pruning,
killed trials retried, records and the best retrained as a variant; journal file and PostgreSQL.

The PostgreSQL server is Debian's ``postgresql`` package (``.ci/run`` installs it). It refuses to run
as root, so as root ``initdb`` and ``pg_ctl`` run as the ``postgres`` user on a temporary directory it
owns, listening on a free loopback port; the fixture stops the server at the end, also on failure.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import psycopg
import pytest
import yaml

import smallvision.study.run as run_module
from smallvision.errors import UserError
from smallvision.study import search as search_module
from smallvision.study.runner import run_study
from smallvision.study.search import (
    Search,
    best_cells,
    check_storage,
    next_action,
    read_best,
    search_dir,
    study_name,
)
from smallvision.study.search_storage import open_storage, storage_info
from smallvision.study.spec import load_study

SRC = Path(__file__).resolve().parents[2] / "src"


def study_doc(trials: int = 4, **search) -> dict:
    """A one-step search on digits with an mlp, 2 epochs a trial."""
    return {
        "name": "srch",
        "seeds": [0, 1],
        "base": {
            "data": {"source": "builtin:digits", "split": {"train": 0.6, "val": 0.2, "test": 0.2}},
            "model": {"name": "mlp", "params": {"hidden": [32]}},
            "train": {"epochs": 2, "batch_size": 128, "progress": False, "threads": 1},
            "report": {"enabled": False},
        },
        "search": {
            "params": {
                "train.optimizer.lr": {"low": 1.0e-3, "high": 1.0e-1, "log": True},
                "model.params.hidden": {"choices": [[16], [32, 16]]},
            },
            "trials": trials,
            "metric": "val/label/accuracy",
            **search,
        },
    }


def run_search(tmp_path: Path, doc: dict, **kw) -> tuple[Search, search_module.SearchResult]:
    spec = load_study(doc)
    step = spec.steps[0]
    s = Search(spec, step, tmp_path / "study", overrides=step.set or {}, **kw)
    return s, s.run()


def read_trials(study_dir: Path, step: str = "main") -> list[dict]:
    with (search_dir(study_dir, step) / "trials.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_a_search_runs_its_trials_as_runs_and_records_the_best(tmp_path):
    s, result = run_search(tmp_path, study_doc(trials=3))
    rows = read_trials(s.study_dir)
    assert [r["number"] for r in rows] == ["0", "1", "2"] and {r["state"] for r in rows} == {"COMPLETE"}
    for r in rows:  # each trial is a completed run of its own, trained with the sampled values
        run_dir = s.study_dir / r["run_dir"]
        assert run_dir == search_dir(s.study_dir, "main") / f"trial-{r['number']}"
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["status"] == "completed"
        config = (run_dir / "config.yaml").read_text()
        assert f"lr: {float(r['params.train.optimizer.lr'])}" in config and "seed: 0" in config
        assert r["params.model.params.hidden"] in ("[16]", "[32, 16]") and float(r["duration_s"]) > 0
    values = [float(r["value"]) for r in rows]
    best = read_best(s.study_dir, "main")
    assert best["direction"] == "maximize" and best["best"]["value"] == max(values) == result.best_value
    assert best["states"] == {"COMPLETE": 3, "PRUNED": 0, "FAIL": 0}
    assert result.best_params == best["best"]["params"]
    assert isinstance(result.best_params["model.params.hidden"], list)  # a list choice comes back a list


def test_the_best_becomes_a_variant_over_the_step_seeds(tmp_path):
    spec = load_study({**study_doc(), "seeds": [4, 5, 6], "set": {"train.epochs": 1}})
    step = spec.steps[0]
    assert step.cells == [] and step.seeds == (4, 5, 6)
    cells = best_cells(spec, step, {"train.optimizer.lr": 0.01, "model.params.hidden": [16]})
    assert [c.label for c in cells] == [f"search-best seed={s}" for s in (4, 5, 6)]
    assert {c.group for c in cells} == {"search-best"} and {c.variant for c in cells} == {"search-best"}
    assert cells[0].overrides == {
        "train.epochs": 1, "train.optimizer.lr": 0.01, "model.params.hidden": [16], "seed": 4,
    }  # fmt: skip


def test_the_same_seed_samples_the_same_trials(tmp_path):
    doc = study_doc(trials=2, sampler="random", seed=7)
    doc["base"]["train"]["epochs"] = 1
    _, first = run_search(tmp_path / "a", doc)
    _, again = run_search(tmp_path / "b", doc)
    strip = [{k: v for k, v in r.items() if k not in ("duration_s",)} for r in first.trials]
    assert strip == [{k: v for k, v in r.items() if k not in ("duration_s",)} for r in again.trials]


def test_a_rerun_of_a_finished_search_trains_nothing_more(tmp_path):
    doc = study_doc(trials=2)
    doc["base"]["train"]["epochs"] = 1
    s, first = run_search(tmp_path, doc)
    _, again = run_search(tmp_path, doc, worker_id="w2")  # load_if_exists: the same study
    assert len(again.trials) == 2 and again.best_number == first.best_number


def test_the_pruner_stops_trials_on_the_validation_curve(tmp_path, monkeypatch):
    # a pruner that prunes every trial after its first report: the callback path, not the median rule
    monkeypatch.setattr(optuna.pruners, "MedianPruner", lambda: optuna.pruners.ThresholdPruner(lower=2.0))
    s, result = run_search(tmp_path, study_doc(trials=2))
    rows = read_trials(s.study_dir)
    assert [r["state"] for r in rows] == ["PRUNED", "PRUNED"] and [r["epochs"] for r in rows] == ["1", "1"]
    pruned = json.loads((s.study_dir / rows[0]["run_dir"] / "pruned.json").read_text())
    assert pruned["status"] == "pruned" and pruned["epoch"] == 1 and 0 <= pruned["value"] <= 1
    assert result.best_params is None and read_best(s.study_dir, "main")["best"] is None


def test_a_trial_that_fails_in_training_counts_and_the_search_goes_on(tmp_path, monkeypatch):
    real = run_module.run_config
    calls = []

    def flaky(cfg, run_dir=None, callbacks=()):
        calls.append(run_dir.name)
        if run_dir.name == "trial-0":
            raise RuntimeError("boom")
        return real(cfg, run_dir=run_dir, callbacks=callbacks)

    monkeypatch.setattr(run_module, "run_config", flaky)
    doc = study_doc(trials=2)
    doc["base"]["train"]["epochs"] = 1
    s, result = run_search(tmp_path, doc)
    rows = read_trials(s.study_dir)
    assert calls == ["trial-0", "trial-1"]
    assert [(r["state"], r["error"]) for r in rows] == [("FAIL", "RuntimeError: boom"), ("COMPLETE", "")]
    assert result.best_number == 1


def test_a_dead_workers_trial_is_failed_and_retried_with_its_values(tmp_path, monkeypatch):
    doc = study_doc(trials=2)
    doc["base"]["train"]["epochs"] = 1
    spec = load_study(doc)
    study_dir = tmp_path / "study"
    info = storage_info(None, search_dir(study_dir, "main"))
    storage = open_storage(info)
    dead = optuna.create_study(
        storage=storage, study_name=study_name(study_dir, "main"), direction="maximize"
    )
    trial = dead.ask()  # a worker asked, sampled, beat once and was killed
    trial.suggest_float("train.optimizer.lr", 1.0e-3, 1.0e-1, log=True)
    trial.suggest_categorical("model.params.hidden", ["[16]", "[32, 16]"])
    trial.set_user_attr("heartbeat", time.time() - 3600)
    s = Search(spec, spec.steps[0], study_dir, overrides={})
    result = s.run()
    states = [(r["number"], r["state"], r["error"]) for r in result.trials]
    assert states == [(0, "FAIL", None), (1, "COMPLETE", None), (2, "COMPLETE", None)]
    lost = dead.trials[0].params
    retried = dead.trials[1]
    assert retried.params == lost and retried.system_attrs["failed_trial"] == 0


def test_next_action_counts_a_total_over_workers():
    study = optuna.create_study()
    assert next_action(study, 2) == "run"
    running = study.ask()
    study.tell(study.ask(), 1.0)
    assert next_action(study, 2) == "wait"  # one done, one running elsewhere: nothing more to ask
    study.tell(running, 2.0)
    assert next_action(study, 2) == "done"
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)  # killed: does not count
    assert next_action(study, 3) == "run" and next_action(study, 2) == "done"


def test_sqlite_and_other_urls_are_refused_before_anything_trains(tmp_path):
    for url, expect in (("sqlite:///x.db", "SQLite locks"), ("mysql://h/db", "expected a postgresql")):
        with pytest.raises(UserError, match=expect):
            run_search(tmp_path, study_doc(), storage=url)
    assert not (tmp_path / "study").exists()


def test_a_worker_with_another_storage_is_refused(tmp_path):
    spec = load_study(study_doc())
    sdir = search_dir(tmp_path, "main")
    sdir.mkdir(parents=True)
    (sdir / "storage.json").write_text(json.dumps({"kind": "postgresql", "storage": "postgresql://h/db"}))
    with pytest.raises(UserError, match="give every worker the same --storage"):
        Search(spec, spec.steps[0], tmp_path, overrides={}).run()


def test_a_study_step_searches_then_retrains_the_best_over_its_seeds(tmp_path):
    doc = {
        **study_doc(trials=2),
        "output_dir": str(tmp_path / "studies"),
        "steps": [
            {"name": "sweep", "axes": {"train.optimizer.lr": [0.01, 0.03]}, "seeds": [0], "select": "val/loss"},
            {
                "name": "tune",
                "set": {"train.optimizer.lr": "@sweep.best.train.optimizer.lr"},  # resolved for the trials
                "search": {"params": {"train.batch_size": {"low": 32, "high": 128, "step": 32}},
                           "trials": 2, "metric": "val/loss", "pruner": "none"},
            },
        ],
    }  # fmt: skip
    del doc["search"]
    doc["base"]["train"]["epochs"] = 1
    result = run_study(doc, progress=False)
    rows = {(r["step"], r["label"]): r for r in csv.DictReader((result.dir / "results.csv").open())}
    assert [k for k in rows if k[0] == "tune"] == [
        ("tune", "search-best seed=0"),
        ("tune", "search-best seed=1"),
    ]
    best = read_best(result.dir, "tune")
    assert best["direction"] == "minimize" and len(read_trials(result.dir, "tune")) == 2
    chosen = json.loads((result.dir / "selections.json").read_text())[0]["chosen"]
    chosen_lr = yaml.safe_load((Path(chosen["run_dir"]) / "config.yaml").read_text())["train"]["optimizer"][
        "lr"
    ]
    for seed in (0, 1):
        row = rows[("tune", f"search-best seed={seed}")]
        assert (
            row["status"] == "completed"
            and int(row["train.batch_size"]) == best["best"]["params"]["train.batch_size"]
        )
        config = yaml.safe_load((result.dir / "runs" / row["cell_id"] / "config.yaml").read_text())
        assert config["seed"] == seed and config["train"]["optimizer"]["lr"] == chosen_lr
    trial = yaml.safe_load((search_dir(result.dir, "tune") / "trial-0" / "config.yaml").read_text())
    assert trial["train"]["optimizer"]["lr"] == chosen_lr


def test_the_cli_refuses_an_unreachable_storage_before_anything_trains(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**study_doc(), "output_dir": str(tmp_path / "studies")}))
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "smallvision",
        "study",
        str(path),
        "--storage",
        f"postgresql://u:pw@127.0.0.1:{port}/db",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(SRC)})
    assert out.returncode == 2 and f"127.0.0.1:{port}" in out.stderr and "pw" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "studies").exists()


def two_workers(doc: dict, study_dir: Path, storage: str = "") -> None:
    """Two ``smallvision study work`` processes, each its own process tree (session), on one study.

    The study directory is made as ``study run`` makes it (``study.yaml``, ``study.json``); each
    worker joins the search, then the retraining of its best, then writes the result files.
    """
    study_dir.mkdir()
    (study_dir / "study.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (study_dir / "study.json").write_text(
        json.dumps({"overrides": [], "name": doc["name"], "base": doc["base"]})
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop("SMALLVISION_STORAGE", None)
    extra = ["--storage", storage] if storage else []
    command = [sys.executable, "-m", "smallvision", "study", "work", str(study_dir), "--threads", "1", *extra]
    procs = [
        subprocess.Popen(
            [*command, "--worker-id", w],
            env=env,
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for w in ("w1", "w2")
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    with (study_dir / "results.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["label"], r["status"]) for r in rows] == [
        (f"search-best seed={s}", "completed") for s in doc["seeds"]
    ]
    best = read_best(study_dir, "main")["best"]["params"]
    assert float(rows[0]["train.optimizer.lr"]) == best["train.optimizer.lr"]


def assert_no_duplicates(trials: list, total: int) -> None:
    """Distinct numbers and values, exactly ``total`` trials, as Optuna records them."""
    numbers = [t.number for t in trials]
    params = [tuple(sorted(t.params.items())) for t in trials]
    assert sorted(numbers) == list(range(total))
    assert len(set(params)) == total and {t.state.name for t in trials} == {"COMPLETE"}
    assert {t.user_attrs["worker"] for t in trials} == {"w1", "w2"}  # both took part


def test_two_workers_share_one_journal_search_without_duplicates(tmp_path):
    doc = {**study_doc(trials=5), "seeds": [0, 1]}
    doc["base"]["train"]["epochs"] = 1
    study_dir = tmp_path / "study"
    two_workers(doc, study_dir)
    info = storage_info(None, search_dir(study_dir, "main"))
    loaded = optuna.load_study(study_name=study_name(study_dir, "main"), storage=open_storage(info))
    assert_no_duplicates(loaded.trials, 5)
    assert len(read_trials(study_dir)) == 5


# ---------------------------------------------------------------- PostgreSQL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL server on 127.0.0.1; yields its base URL (no database)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb")]
    if not found[-1]:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; .ci/run installs it)")
    bin_dir = Path(found[-1]).parent
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="sv-pg-"))
    if as_postgres:
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", free_port()
    run = lambda *cmd: subprocess.run([*as_postgres, *cmd], check=True, capture_output=True, text=True)  # noqa: E731
    run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)


def new_database(base_url: str, name: str) -> str:
    with psycopg.connect(f"{base_url}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base_url}/{name}"


def test_two_workers_share_one_postgresql_search_without_duplicates(postgres, tmp_path):
    url = new_database(postgres, "two_workers")
    doc = {**study_doc(trials=4), "seeds": [0]}
    doc["base"]["train"]["epochs"] = 1
    study_dir = tmp_path / "study"
    two_workers(doc, study_dir, url)
    loaded = optuna.load_study(
        study_name=study_name(study_dir, "main"), storage=open_storage(storage_info(url, study_dir))
    )
    assert_no_duplicates(loaded.trials, 4)
    assert len(read_trials(study_dir)) == 4
    assert not (search_dir(study_dir, "main") / "journal.log").exists()  # nothing went to the file


def test_a_search_on_postgresql_records_its_trials(postgres, tmp_path):
    url = new_database(postgres, "one_worker")
    doc = study_doc(trials=2)
    doc["base"]["train"]["epochs"] = 1
    s, result = run_search(tmp_path, doc, storage=url)
    assert [t["state"] for t in result.trials] == ["COMPLETE", "COMPLETE"]
    assert (search_dir(s.study_dir, "main") / "storage.json").read_text().count("127.0.0.1") == 1


def test_an_unreachable_database_is_one_line_naming_host_and_port(postgres, tmp_path):
    port = free_port()  # nothing listens there
    with pytest.raises(UserError, match=rf"cannot reach the PostgreSQL database at 127\.0\.0\.1:{port}") as e:
        check_storage(f"postgresql://postgres:secret@127.0.0.1:{port}/nope")
    assert "\n" not in str(e.value) and "secret" not in str(e.value)
    with pytest.raises(UserError, match='database "missing" does not exist'):
        run_search(tmp_path, study_doc(), storage=f"{postgres}/missing")
    assert not list(tmp_path.rglob("trial-*"))  # refused before anything trained


def test_a_search_steps_set_references_are_checked_before_anything_trains():
    doc = {**study_doc(), "set": {"train.optimizer.lr": "@later.best(val/loss).train.optimizer.lr"}}
    with pytest.raises(UserError, match="later"):
        load_study(doc)
