"""One run on several processes: the helpers, and real torchrun runs of 2 CPU ranks on loopback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

import smallvision
from smallvision.errors import UserError
from smallvision.train import distributed

ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = Path(sys.executable).with_name("torchrun")


def test_one_rank_shards_are_the_one_process_batches():
    order = torch.randperm(103, generator=torch.Generator().manual_seed(0))
    one = distributed.shard(order, 103 // 10, 10, 0, 1)
    assert [b.tolist() for b in one] == [b.tolist() for b in order[:100].split(10)]


def test_rank_shards_partition_each_global_batch():
    order = torch.randperm(50, generator=torch.Generator().manual_seed(1))
    steps = 50 // (4 * 3)
    ranks = [distributed.shard(order, steps, 4, r, 3) for r in range(3)]
    for k in range(steps):  # step k: the ranks' parts, in rank order, are the global batch k
        assert torch.cat([ranks[r][k] for r in range(3)]).tolist() == order[k * 12 : (k + 1) * 12].tolist()
    assert all(len(b) == 4 for r in ranks for b in r)


def test_rank_seeds_differ_by_rank_and_repeat():
    seeds = {distributed.rank_seed(12345, r) for r in range(8)}
    assert len(seeds) == 8 and distributed.rank_seed(12345, 3) == distributed.rank_seed(12345, 3)


def test_digest_ignores_wall_time_and_agreement_names_the_odd_rank():
    w = {"a": torch.arange(4.0)}
    assert distributed.state_digest(w, [{"epoch": 1, "seconds": 1.0}]) == distributed.state_digest(
        w, [{"epoch": 1, "seconds": 9.0}]
    )
    other = distributed.state_digest({"a": torch.arange(4.0) + 1e-7}, [{"epoch": 1}])
    assert distributed.check_agreement(["x", "x"]) == "x"
    with pytest.raises(RuntimeError, match="ranks 2 finished with other weights"):
        distributed.check_agreement(["x", "x", other])


def test_without_torchrun_nothing_is_distributed():
    assert not distributed.launched() or "RANK" in os.environ
    w = distributed.init()
    assert (w.rank, w.size, w.active, w.is_main) == (0, 1, False, True)
    assert distributed.from_rank0(lambda: 7) == 7 and distributed.gather("d") == ["d"]
    with pytest.raises(UserError, match="boom"):
        distributed.from_rank0(lambda: (_ for _ in ()).throw(UserError("boom")))


# ---------------------------------------------------------------------- torchrun on loopback

EPOCHS, BATCH = 8, 32  # 2 ranks x 16 = the one-process batch of 32: the same steps per epoch


def _config(tmp: Path, name: str, seed: int = 3, batch: int = BATCH) -> dict:
    return {
        "name": name,
        "seed": seed,
        "output_dir": str(tmp / name),
        "data": {"source": "builtin:digits", "split": {"train": 0.6, "val": 0.2, "test": 0.2}},
        "model": {"name": "cnn_small", "params": {"channels": [8, 16], "hidden": 32}},
        "train": {
            "epochs": EPOCHS,
            "batch_size": batch,
            "threads": 1,
            "optimizer": {"lr": 0.01},
            "early_stopping": {"monitor": "val/label/accuracy"},
            "progress": False,
        },
        "report": {"enabled": False},
    }


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}


def _torchrun(*args: str, nproc: int = 2) -> list[str]:
    return [str(TORCHRUN), "--standalone", "--nproc-per-node", str(nproc), "-m", "smallvision", *args]


def _only_run(folder: Path) -> Path:
    runs = list(folder.iterdir())
    assert len(runs) == 1, runs  # one run directory for all ranks
    return runs[0]


def _outcome(run_dir: Path) -> dict:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    rows = (run_dir / "history.csv").read_text().splitlines()
    header = rows[0].split(",")
    keep = [i for i, h in enumerate(header) if h != "seconds"]
    history = [[r.split(",")[i] for i in keep] for r in rows]
    return {"splits": metrics["splits"], "history": history}


def _two_rank_run(tmp: Path) -> tuple[Path, str]:
    """One uninterrupted 2-rank run of the tiny config: its directory and stdout."""
    cfg = tmp / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(_config(tmp, "ref", batch=BATCH // 2)))
    out = subprocess.run(_torchrun("run", str(cfg)), env=_env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return _only_run(tmp / "ref"), out.stdout


def _check_agreement(run_dir: Path, stdout: str) -> None:
    digests = {line.split()[1]: line.split()[-1] for line in stdout.splitlines() if line.startswith("rank ")}
    assert set(digests) == {"0/2:", "1/2:"} and len(set(digests.values())) == 1  # computed by each rank
    assert stdout.count("run directory:") == 1  # only rank 0 prints the run
    env = json.loads((run_dir / "env.json").read_text())
    assert env["distributed"] == {"world_size": 2, "backend": "gloo", "state_sha256": digests["0/2:"]}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_run"] == EPOCHS
    assert len((run_dir / "history.csv").read_text().splitlines()) == EPOCHS + 1


def _kill_rank1_after_two_epochs(cmd: list[str], run_root: Path) -> None:
    """Start ``cmd`` (torchrun), SIGKILL its rank-1 worker once two epochs are recorded."""
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 500
    try:
        while time.time() < deadline:
            history = list(run_root.glob("*/history.csv"))
            if history and len(history[0].read_text().splitlines()) >= 3:
                break
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            time.sleep(0.02)
        worker = next(pid for pid in _children(proc.pid) if _environ(pid).get("RANK") == "1")
        os.kill(worker, signal.SIGKILL)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0  # torchrun reports the lost rank and stops the other


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _environ(pid: int) -> dict:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the rank-1 worker through /proc")
def test_two_ranks_agree_and_a_killed_rank_resumes_on_two_or_one_within_the_seed_spread(tmp_path):
    ref_dir, stdout = _two_rank_run(tmp_path)
    _check_agreement(ref_dir, stdout)

    killed_cfg = tmp_path / "killed.yaml"
    killed_cfg.write_text(yaml.safe_dump(_config(tmp_path, "killed", batch=BATCH // 2)))
    _kill_rank1_after_two_epochs(_torchrun("run", str(killed_cfg)), tmp_path / "killed")
    killed = _only_run(tmp_path / "killed")
    assert not (killed / "metrics.json").exists() and (killed / "checkpoints" / "last.pt").is_file()
    on_one = tmp_path / "on-one"
    shutil.copytree(killed, on_one)

    out = subprocess.run(
        _torchrun("resume", str(killed)), env=_env(), capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert _outcome(killed) == _outcome(ref_dir)  # the same numbers as the run never killed

    one = [sys.executable, "-m", "smallvision", "resume", str(on_one)]  # the checkpoint on one process
    out = subprocess.run(one, env=_env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    resumed = json.loads((on_one / "metrics.json").read_text())
    assert resumed["status"] == "completed" and resumed["epochs_run"] == EPOCHS

    # the seed spread of one-process runs (batch 32 = 2 ranks x 16): every accuracy must lie
    # within mean +- max(3 std, 2 test images) of the one-process seeds
    singles = [
        smallvision.run(_config(tmp_path, f"single-{s}", seed=s)).metrics.splits["test"]["label"]["accuracy"]
        for s in (3, 4, 5, 6)
    ]
    n_test = resumed["data"]["sizes"]["test"]
    tolerance = max(3 * statistics.stdev(singles), 2 / n_test)
    mean = statistics.mean(singles)
    for metrics in (json.loads((ref_dir / "metrics.json").read_text()), resumed):
        test = metrics["splits"]["test"]["label"]["accuracy"]
        assert abs(test - mean) <= tolerance, (singles, test)


@pytest.mark.slow
def test_a_seed_group_on_two_ranks_is_one_group_directory(tmp_path):
    cfg = {**_config(tmp_path, "group", batch=BATCH // 2), "seeds": [3, 4]}
    cfg["train"]["epochs"] = 2
    path = tmp_path / "group.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = subprocess.run(_torchrun("run", str(path)), env=_env(), capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    group = _only_run(tmp_path / "group")
    assert sorted(p.name for p in group.iterdir()) == [
        "config.yaml",
        "ensemble",
        "metrics.json",
        "seed-3",
        "seed-4",
    ]
    for seed in (3, 4):
        env = json.loads((group / f"seed-{seed}" / "env.json").read_text())
        assert env["distributed"]["world_size"] == 2 and env["seed"] == seed
    assert "test" in json.loads((group / "ensemble" / "metrics.json").read_text())["splits"]
    assert out.stdout.count("group directory:") == 1
