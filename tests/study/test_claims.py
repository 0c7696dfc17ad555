"""Claims: exactly one winner per cell among racing processes, live claims kept, dead ones taken over."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

from smallvision.study.claims import Claims

# a worker over fake cells, doing what the study worker does: skip finished, claim, re-check, work, release
RACER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from smallvision.study.claims import Claims

    root, worker, n, start = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    claims = Claims(root / "claims", worker, stale_after=30)
    while time.time() < start:  # every racer begins at the same instant
        time.sleep(0.001)
    for i in range(n):
        key = f"cell{i:03d}"
        if (root / "done" / key).exists():
            continue
        claim = claims.try_claim(key)
        if claim is None:
            continue
        try:
            if (root / "done" / key).exists():
                continue
            (root / "ran" / f"{key}.{worker}").write_text("")  # one file per execution, never merged
            time.sleep(0.002)
            (root / "done" / key).write_text(worker)
        finally:
            claim.release()
    """
)


def _racers(tmp_path, script, workers, *args):
    start = time.time() + 1.5  # time enough for every interpreter to start
    return [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path), f"w{i}", *map(str, args), str(start)])
        for i in range(workers)
    ]


def test_racing_processes_run_each_fake_cell_exactly_once(tmp_path):
    (tmp_path / "done").mkdir()
    (tmp_path / "ran").mkdir()
    procs = _racers(tmp_path, RACER, 4, 120)
    assert all(p.wait(timeout=60) == 0 for p in procs)
    ran = sorted(p.name.split(".")[0] for p in (tmp_path / "ran").iterdir())
    assert ran == [f"cell{i:03d}" for i in range(120)]  # none twice, none skipped
    assert len({p.read_text() for p in (tmp_path / "done").iterdir()}) > 1  # they really raced
    assert list((tmp_path / "claims").iterdir()) == []  # every claim released


def test_claim_is_exclusive_and_records_its_owner(tmp_path):
    a, b = Claims(tmp_path, "a"), Claims(tmp_path, "b")
    claim = a.try_claim("x")
    assert claim is not None and b.try_claim("x") is None
    info = json.loads((tmp_path / "x.claim").read_text())
    assert info["worker"] == "a" and info["pid"] == os.getpid() and info["host"]
    assert b.holder("x")["worker"] == "a"
    claim.release()
    assert not (tmp_path / "x.claim").exists() and b.holder("x") is None
    again = b.try_claim("x")
    assert again is not None
    again.release()


def test_heartbeat_keeps_a_live_claim_from_being_taken(tmp_path):
    claim = Claims(tmp_path, "a", stale_after=0.6, heartbeat=0.1).try_claim("x")
    time.sleep(1.2)  # twice the timeout: only the heartbeat keeps it fresh
    assert Claims(tmp_path, "b", stale_after=0.6).try_claim("x") is None
    assert claim.held() and not claim.lost
    claim.release()


def _make_stale(path, seconds=100):
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_stale_claim_is_taken_over_and_the_old_owner_knows_it_lost(tmp_path):
    old = Claims(tmp_path, "a", stale_after=1, heartbeat=60).try_claim("x")
    _make_stale(tmp_path / "x.claim")
    new = Claims(tmp_path, "b", stale_after=1).try_claim("x")
    assert new is not None
    assert json.loads((tmp_path / "x.claim").read_text())["worker"] == "b"
    moved = list(tmp_path.glob("x.stale-*"))
    assert len(moved) == 1 and json.loads(moved[0].read_text())["worker"] == "a"  # kept as a record
    old.touch()
    assert old.lost and not old.held()
    old.release()  # does not remove the new owner's claim
    assert new.held()
    new.release()


def test_claim_of_a_dead_process_on_this_host_is_free_at_once(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    info = {"worker": "gone", "pid": dead.pid, "host": socket.gethostname(), "token": "t0", "time": 0}
    (tmp_path / "x.claim").write_text(json.dumps(info))
    claims = Claims(tmp_path, "b", stale_after=3600)
    assert claims.holder("x") is None
    claim = claims.try_claim("x")
    assert claim is not None
    claim.release()


TAKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from smallvision.study.claims import Claims

    root, worker, start = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    claims = Claims(root, worker, stale_after=5)
    while time.time() < start:
        time.sleep(0.001)
    if claims.try_claim("x") is not None:  # held until exit: no heartbeat thread outlives the test
        (root.parent / "won" / worker).write_text("")
    """
)


def test_racing_takeovers_of_one_stale_claim_have_one_winner(tmp_path):
    claims_dir = tmp_path / "claims"
    (tmp_path / "won").mkdir()
    Claims(claims_dir, "dead", heartbeat=3600).try_claim("x")
    _make_stale(claims_dir / "x.claim")
    procs = _racers(claims_dir, TAKER, 6)
    assert all(p.wait(timeout=60) == 0 for p in procs)
    assert len(list((tmp_path / "won").iterdir())) == 1
    assert len(list(claims_dir.glob("x.stale-*"))) == 1
