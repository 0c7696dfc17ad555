"""The plain progress lines: one per count change, and every PLAIN_EVERY seconds while epochs move."""

from types import SimpleNamespace

from smallvision.study import progress


def test_plain_lines_follow_counts_at_once_and_epochs_at_most_every_30_seconds(monkeypatch, capsys, tmp_path):
    state = {"plan": [SimpleNamespace(state="running")], "epochs": 0, "now": 100.0}
    monkeypatch.setattr(progress, "plan_cells", lambda *a: state["plan"])
    monkeypatch.setattr(
        progress, "status_line", lambda plan, d: f"{progress.counts(plan)} epoch {state['epochs']}"
    )
    monkeypatch.setattr(progress.time, "monotonic", lambda: state["now"])
    display = progress.ProgressDisplay(SimpleNamespace(name="s"), tmp_path, 60.0, enabled=False)

    def tick(seconds=0.0, epochs=None, plan=None):
        state["now"] += seconds
        state["epochs"] = state["epochs"] if epochs is None else epochs
        state["plan"] = state["plan"] if plan is None else plan
        display._plain()
        return capsys.readouterr().out.splitlines()

    assert len(tick()) == 1  # the first line
    assert tick(1.0) == []  # nothing changed
    assert tick(10.0, epochs=1) == []  # epochs moved, but within 30 s of the last line
    assert tick(25.0)[0].endswith("epoch 1")  # 35 s after the last line: the epoch shows
    assert tick(1.0) == []
    done = [SimpleNamespace(state="done")]
    assert len(tick(1.0, plan=done)) == 1  # a count changed: at once
