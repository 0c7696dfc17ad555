"""A step's ``ensemble: true``: each group's seeds soft-voted, as a seed group's are (``study.ensemble``).

``ensembles/<step>/<group>/`` holds the ensemble's ``metrics.json`` (kind ``ensemble``: its
metrics, each member's, the gain over the best and the mean member) and ``predictions.npz``, made by
:func:`smallvision.study.ensemble.ensemble_runs` from the completed cells' saved predictions once
every cell of the group has finished. Written with the other result files, by whichever process
writes them; an ensemble whose members did not change is not made again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from smallvision.errors import UserError
from smallvision.registry import HEAD_KINDS
from smallvision.rundir import MetricsRecord, Run
from smallvision.study.ensemble import ensemble_runs
from smallvision.study.spec import StudySpec
from smallvision.study.worker import PlannedCell


@dataclass(frozen=True)
class GroupEnsemble:
    """The ensemble of one group of a step: where it is and its record (None: not made, and why)."""

    step: str
    group: str
    dir: Path
    members: int
    record: MetricsRecord | None
    note: str = ""


def group_slug(group: str) -> str:
    """A directory name for a group label (``cnn model.params.width=32`` -> ``cnn_model.params.width=32``)."""
    return re.sub(r"[^\w.=+-]+", "_", group).strip("_") or "group"


def write_ensembles(spec: StudySpec, study_dir: Path, plan: list[PlannedCell]) -> list[GroupEnsemble]:
    """The ensembles of every step with ``ensemble: true``, made where their groups have finished."""
    out = []
    for step in (s for s in spec.steps if s.ensemble):
        groups: dict[str, list[PlannedCell]] = {}
        for pc in plan:
            if pc.cell.step == step.name:
                groups.setdefault(pc.cell.group, []).append(pc)
        slugs: set[str] = set()
        for group, cells in groups.items():
            slug = group_slug(group)
            while slug in slugs:  # two labels that differ only in characters a folder name drops
                slug += "_"
            slugs.add(slug)
            out.append(_group(study_dir, step.name, group, study_dir / "ensembles" / step.name / slug, cells))
    return out


def _group(study_dir: Path, step: str, group: str, target: Path, cells: list[PlannedCell]) -> GroupEnsemble:
    done = [pc for pc in cells if pc.state == "done"]
    if any(pc.state not in ("done", "failed") for pc in cells):
        return GroupEnsemble(step, group, target, len(done), None, "its cells have not all finished")
    if len(done) < 2:
        return GroupEnsemble(step, group, target, len(done), None, "fewer than two completed seeds")
    members = [study_dir / "runs" / pc.key for pc in done]
    existing = Run(target, tolerant=True).metrics if (target / "metrics.json").is_file() else None
    if existing is not None and sorted(existing.members) == sorted(m.name for m in members):
        return GroupEnsemble(step, group, target, len(done), existing)
    try:
        return GroupEnsemble(step, group, target, len(done), ensemble_runs(members, target))
    except UserError as exc:  # e.g. members scored on different images: say so, never stop the study
        return GroupEnsemble(step, group, target, len(done), None, str(exc))


def ensembles_markdown(found: list[GroupEnsemble], step: str) -> str | None:
    """A step's ensembles as a table: members, the split, and per headline the value and the gains."""
    rows = [e for e in found if e.step == step]
    if not rows:
        return None
    lines = ["### Ensembles (soft voting over each group's seeds)", ""]
    lines += ["| group | members | split | head/metric | ensemble | gain over best | gain over mean |"]
    lines += ["|---|---|---|---|---|---|---|"]
    for e in rows:
        if e.record is None:
            lines.append(f"| {e.group} | {e.members} | – | – | – ({e.note}) | – | – |")
            continue
        split = e.record.gain_split or "test"
        label = split if split == "test" else f"{split} (no test split)"
        for head, gains in e.record.gain.items():
            for name in HEAD_KINDS.get(e.record.heads[head].kind).headline[:1]:
                if name in gains:
                    g = gains[name]
                    lines.append(
                        f"| {e.group} | {e.members} | {label} | {head}/{name} | {g.ensemble:.4f} "
                        f"| {g.over_best:+.4f} | {g.over_mean:+.4f} |"
                    )
    lines += ["", "Gains are positive when the ensemble is better (lower for losses and errors)."]
    return "\n".join(lines)
