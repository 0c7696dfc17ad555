"""The ``smallvision`` command: thin wrappers that parse, call the API and print.

Heavy modules are imported inside each command so that ``smallvision --help`` stays fast.
A UserError becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from smallvision.cli_study import Overrides, study_app
from smallvision.errors import UserError

if TYPE_CHECKING:
    from smallvision.rundir import MetricsRecord
    from smallvision.study.group import GroupResult
    from smallvision.study.run import RunResult


app = typer.Typer(
    name="smallvision",
    help="Deep-learning studies on small images from one YAML file: train, evaluate, compare, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect configurations.", no_args_is_help=True)
models_app = typer.Typer(help="The model zoo.", no_args_is_help=True)
data_app = typer.Typer(help="Inspect data sources.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")
app.add_typer(study_app, name="study")


def _headline(metrics: MetricsRecord, split: str = "test") -> str:
    from smallvision.report.digest import headline

    return headline(metrics, split)


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="YAML config file")],
    overrides: Overrides = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            help="fit this scikit-learn baseline on the same data and splits instead of the network: "
            "logistic_regression, random_forest, svm or knn (model.params: its parameters)"
        ),
    ] = None,
) -> None:
    """Train, evaluate and report one run (one run per seed when the config lists seeds)."""
    pairs = dict(_split(o) for o in overrides or [])
    if baseline is not None:
        _run_baseline(config, pairs, baseline)
        return
    from smallvision.study.api import run as run_api

    _print_result(run_api(str(config), **pairs))


def _run_baseline(config: Path, pairs: dict[str, object], baseline: str) -> None:
    from smallvision.evaluate.baselines import run_baseline
    from smallvision.study.run import resolve_config

    cfg = resolve_config(str(config), pairs)
    if cfg.seeds:
        raise UserError(f"{config}: seeds {cfg.seeds}: --baseline fits one run with seed; drop seeds")
    result = run_baseline(cfg, baseline)
    _print_result(result)
    for head, cv in result.metrics.cv.items():
        typer.echo(f"cv ({cv['k']}-fold on train): {head}/{cv['metric']} {cv['mean']:.4f} ± {cv['std']:.4f}")


def _print_result(result: RunResult | GroupResult) -> None:
    """The run directory and headline; for a seed group each member, the ensemble and its gain.

    Under torchrun every rank prints the digest of its own final state (they are equal) and only
    rank 0 the rest.
    """
    from smallvision.registry import HEAD_KINDS
    from smallvision.study.group import GroupResult
    from smallvision.train import distributed

    w = distributed.world()
    if w.active:
        typer.echo(f"rank {w.rank}/{w.size}: final state sha256 {getattr(result, 'state_sha256', None)}")
        if not w.is_main:
            return

    seconds = f"(train {result.metrics.train_seconds or 0.0:.1f} s)"
    # without a test split (80/20 train/val) the headline is val's, and says so
    split = "test" if "test" in result.metrics.splits else "val"
    label = "test" if split == "test" else "val (no test split)"
    if not isinstance(result, GroupResult):
        typer.echo(f"run directory: {result.dir}")
        typer.echo(f"{label}: {_headline(result.metrics, split)}  {seconds}")
        _print_further(result.metrics)
        _print_references(result.metrics, split)
        _print_warnings(result.dir)
        return
    typer.echo(f"group directory: {result.dir}")
    for m in result.members:
        typer.echo(f"  {m.dir.name}: {_headline(m.metrics, split)}")
        _print_warnings(m.dir, indent="    ")
    typer.echo(f"ensemble {label}: {_headline(result.metrics, split)}  {seconds}")
    _print_further(result.metrics)
    _print_references(result.metrics, split)
    heads = result.metrics.heads
    gains = [
        f"{h}/{n} {g[n].over_best:+.4f} / {g[n].over_mean:+.4f}"
        for h, g in result.metrics.gain.items()
        for n in HEAD_KINDS.get(heads[h].kind).headline[:1]  # each head's main figure
        if n in g
    ]
    typer.echo(f"ensemble gain on {split} over best / mean member (positive = better): {'  '.join(gains)}")


def _print_further(metrics: MetricsRecord) -> None:
    """One line per further scored split: domain parts (``test:B``) and evaluation sets (``eval:X``)."""
    for split in metrics.splits:
        if split not in ("val", "test"):
            typer.echo(f"  {split}: {_headline(metrics, split)}")


def _print_references(metrics: MetricsRecord, split: str = "test") -> None:
    """The trivial predictors' scores beside the headline (chance, majority, training mean)."""
    from smallvision.evaluate.reference import reference_labels

    parts = []
    for head, ref in metrics.reference.get(split, {}).items():
        for label, scores in reference_labels(ref).items():
            name = "accuracy" if "accuracy" in scores else next(iter(scores), None)
            if name is not None:
                parts.append(f"{head}/{name} {label} {scores[name]:.4f}")
    if parts:
        typer.echo(f"reference: {'  '.join(parts)}")


def _print_warnings(run_dir: Path, indent: str = "") -> None:
    """The warnings of the run's report, one line each, so that nobody has to open it to see them."""
    from smallvision.report.digest import warnings

    for line in warnings(run_dir):
        typer.echo(f"{indent}warning: {line}")


@app.command()
def report(
    directory: Annotated[Path, typer.Argument(help="a run, seed-group or study directory")],
) -> None:
    """Rebuild the report.html of a run, a seed group or a study from its directory alone.

    The kind is told from the directory (a study: study.yaml or results.csv beside runs/; a seed
    group: seeds in config.yaml, seed-*/ or ensemble/). Missing, half-written or corrupt files are
    listed (the rest is rendered) and the command still succeeds; a directory that is none of
    these is an error (exit code 2).
    """
    from smallvision.report.group_page import is_group
    from smallvision.report.study_data import is_study

    if directory.is_dir() and is_study(directory):
        from smallvision.report.study_page import build_study_report

        built = build_study_report(directory)
        typer.echo(f"study report: {built.path}  ({built.size / 1e6:.2f} MB, {built.seconds:.1f} s)")
        for line in built.verdicts:
            typer.echo(f"  {line}")
    elif directory.is_dir() and is_group(directory):
        from smallvision.report.group_page import build_group_report

        built = build_group_report(directory)
        typer.echo(f"group report: {built.path}  ({built.size / 1e6:.2f} MB, {built.seconds:.1f} s)")
    else:
        _report_run(directory)
        return
    for problem in built.problems:
        typer.echo(f"warning: {problem}")


def _report_run(run_dir: Path) -> None:
    from smallvision.report.html import build_report
    from smallvision.rundir import read_run

    built = build_report(run_dir)
    typer.echo(f"report: {built.path}  ({built.size / 1e6:.2f} MB, {built.seconds:.1f} s)")
    metrics = read_run(run_dir).metrics
    if metrics is not None and metrics.test and all(h in metrics.heads for h in metrics.test):
        typer.echo(f"test: {_headline(metrics)}")
    for problem in built.problems:
        typer.echo(f"warning: {problem}")
    for f in built.warnings:
        typer.echo(f"warning: {f.title}: {f.text}")


def _split(override: str) -> tuple[str, object]:
    from smallvision.config import parse_override

    path, value = parse_override(override)
    return ".".join(path), value


@app.command()
def resume(run_dir: Annotated[Path, typer.Argument(help="a run or seed-group directory")]) -> None:
    """Continue a killed or interrupted run in its own directory, from its last checkpoint."""
    from smallvision.study.resume import resume as resume_api

    _print_result(resume_api(run_dir))


@app.command("lr-find")
def lr_find(
    config: Annotated[Path, typer.Argument(help="YAML config file")],
    overrides: Overrides = None,
    start_lr: Annotated[float, typer.Option("--start-lr", help="first lr of the sweep")] = 1e-7,
    end_lr: Annotated[float, typer.Option("--end-lr", help="last lr of the sweep")] = 10.0,
    steps: Annotated[int, typer.Option("--steps", help="lr values, one batch each")] = 100,
) -> None:
    """LR range test: sweep the lr exponentially, plot the loss, print a suggested lr."""
    from smallvision.study.lrfind import lr_find as lr_find_api

    out, result = lr_find_api(str(config), overrides or [], start_lr, end_lr, steps)
    steepest = f"{result.steepest:.2e}" if result.steepest is not None else "n/a"
    typer.echo(f"lr-find directory: {out}  (plot: {out / 'lr_find.png'})")
    minimum = f"{result.min_over_10:.2e}"
    typer.echo(f"suggested lr: {result.suggestion:.2e}  (steepest descent {steepest}, min/10 {minimum})")


@app.command("compare")
def compare_cmd(
    dirs: Annotated[list[Path], typer.Argument(help="run, seed-group or study directories")],
    metric: Annotated[
        str | None, typer.Option("--metric", help="e.g. test/label/accuracy (default: first head's headline)")
    ] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="print Markdown instead of a table")] = False,
) -> None:
    """Compare saved runs: variants (a group's seeds, a study's cell groups) on one test metric."""
    from smallvision.study.compare_runs import compare_dirs, print_comparison

    print_comparison(compare_dirs(dirs, metric), markdown)


@config_app.command("show")
def config_show(
    config: Annotated[Path, typer.Argument(help="YAML config file")], overrides: Overrides = None
) -> None:
    """Print the resolved configuration (defaults filled in, overrides applied)."""
    from smallvision.config import load_config, to_yaml

    typer.echo(to_yaml(load_config(config, overrides or [])), nl=False)


@models_app.command("list")
def models_list(pattern: Annotated[str, typer.Argument(help="shell pattern, e.g. 'res*'")] = "*") -> None:
    """Registered models: parameters at 28x28x1 with a 10-class head, and their stages."""
    from smallvision.models.summary import format_table, models_table

    typer.echo(format_table(models_table(pattern)))


@models_app.command("show")
def models_show(
    name: str,
    input: Annotated[str, typer.Option("--input", help="HxWxC, e.g. 32x32x1")] = "28x28x1",
    heads: Annotated[
        str,
        typer.Option(
            "--heads",
            help="heads as in a config, YAML: '{A: {classes: 10}, B: {classes: 32, hidden: [256]}, "
            "C: {kind: regression, activation: sigmoid}}'",
        ),
    ] = "{label: {kind: classification, classes: 10}}",
    params: Annotated[
        str, typer.Option("--params", help="model.params as YAML, e.g. '{widths: [16, 32, 64]}'")
    ] = "{}",
) -> None:
    """A layer table of one model: output shapes and parameter counts, per stage and head."""
    from smallvision.config import build_config
    from smallvision.models.summary import format_table, layer_table, parse_input_shape

    raw = {
        "heads": _yaml_option("--heads", heads),
        "model": {"name": name, "params": _yaml_option("--params", params)},
    }
    cfg = build_config(raw, origin="models show")
    from smallvision.registry import HEAD_KINDS

    heads = cfg.heads or {}
    missing = [h for h, c in heads.items() if HEAD_KINDS.get(c.kind).needs_classes and not c.classes]
    if missing:
        kind = heads[missing[0]].kind
        raise UserError(
            f"--heads: {kind} head {missing[0]!r} needs classes, e.g. {{{missing[0]}: {{classes: 10}}}}"
        )
    typer.echo(format_table(layer_table(name, parse_input_shape(input), cfg.heads or {}, cfg.model.params)))


def _yaml_option(option: str, text: str) -> dict:
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise UserError(f"{option} {text!r}: not valid YAML") from None
    if not isinstance(value, dict):
        raise UserError(f"{option} {text!r}: expected a YAML mapping such as '{{key: value}}'")
    return value


@data_app.command("show")
def data_show(source: Annotated[str, typer.Argument(help="e.g. builtin:mnist-5k or idx:path/")]) -> None:
    """Counts per class and split, shapes and value range of a source."""
    from smallvision.data.inspect import describe
    from smallvision.data.load import load_source

    typer.echo(describe(load_source(source)))


@data_app.command("preview")
def data_preview(
    config: Annotated[Path, typer.Argument(help="YAML config file")],
    overrides: Overrides = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="PNG to write (default <output_dir>/<name>_preview.png)")
    ] = None,
    n: Annotated[int, typer.Option("--n", help="training samples to show")] = 16,
) -> None:
    """Write a PNG grid of raw training samples and their augmented versions; print its path."""
    from smallvision.config import load_config
    from smallvision.study.preview import preview

    typer.echo(str(preview(load_config(config, overrides or []), out, n)))


@app.command()
def predict(
    run_dir: Annotated[Path, typer.Argument(help="a run directory (runs/<name>-<stamp>)")],
    paths: Annotated[list[str], typer.Argument(help="image files, folders of images, .npy files")],
    out: Annotated[
        Path | None, typer.Option("--out", help="write the CSV here instead of printing it")
    ] = None,
) -> None:
    """Predict every head on new images with the run's own preprocessing; CSV with probabilities."""
    from smallvision.study.inference import load_model, predict_files, predictions_csv

    loaded = load_model(run_dir)
    names, outputs = predict_files(loaded, paths)
    text = predictions_csv(loaded, names, outputs)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        typer.echo(f"predictions for {len(names)} images: {out}")


def main() -> None:
    """Entry point: run the app, turning UserErrors into one line and exit code 2."""
    try:
        app()
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
