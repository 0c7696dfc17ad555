"""Write benchmarks/README.md from benchmarks/results/*.json, so no figure there is typed by hand.

python benchmarks/summarize.py
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load(name: str) -> dict | None:
    path = HERE / "results" / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def header(d: dict) -> str:
    m = d["machine"]
    command = d.get("command", f"python benchmarks/bench_{d['benchmark']}.py")
    facts = [m.get("date"), f"{m['cpu_count']} CPUs" if "cpu_count" in m else None, f"torch {m.get('torch')}"]
    return f"`{command}` — {', '.join(f for f in facts if f)}\n"


def load_note(d: dict) -> str:
    """A warning line when the results file says its timings were taken on a loaded machine."""
    if d.get("timing_valid", True):
        return ""
    load = (d.get("load_average_before") or ["?"])[0]
    return (
        f"**Timings here were taken under load (1-minute load average {load}, or seeds run in parallel):"
        " they describe the neighbours, not the code; rerun the command on a quiet machine.**\n"
    )


def rate(s: dict | None) -> str:
    """``best (min-max)`` of a spread from common.spread."""
    return "" if not s else f"{s['best']:.1f} ({s['min']:.1f}-{s['max']:.1f})"


def peak(d: dict) -> list[str]:
    m = d["machine"]
    flags = (
        ", ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx") if m.get(f)) or "none of avx2/avx512"
    )
    return [
        f"## fp32 peak of this machine ({d['threads']} threads)\n",
        header(d),
        load_note(d),
        f"CPU: {m.get('cpu_model', m.get('processor'))} ({flags}).\n",
        "| kernel | best GFLOP/s (min-max over rounds) |",
        "|---|---|",
        f"| {d['matmul']} | {rate(d['matmul_gflops'])} |",
        f"| {d['conv']} | {rate(d['conv_gflops'])} |",
        "",
        "Every other benchmark measures this peak beside its own figures (`common.measure_peak`), so a",
        "throughput is also given as a fraction of the peak of the machine it ran on.\n",
    ]


def trainer(d: dict) -> list[str]:
    lines = [
        f"## Trainer end to end vs the bare training step (`{d['config']}`, {d['epochs']} epochs)\n",
        header(d),
        load_note(d),
        "| | images/s, best (min-max) |",
        "|---|---|",
        f"| trainer (slicing, augmentation, mixing, step, validation, checkpoint) | "
        f"{rate(d['trainer_images_per_s'])} |",
        f"| bare step (same network, batch {d['batch_size']}, channels_last {d['channels_last']}) | "
        f"{rate(d['bare_step_images_per_s'])} |",
        "",
        f"Trainer / bare step: {d['ratio_best_to_best']:.3f} best to best, {d['ratio_per_epoch']['median']:.3f} "
        f"median of the epoch-by-epoch ratios; target {d['target']['ratio']} — "
        f"{'met' if d['target']['met'] else 'NOT met'}. Validation, best-state copy and checkpoint after each "
        f"epoch take {d['after_loop_share']:.1%} of an epoch.\n",
    ]
    if d.get("profile"):
        shares = d["profile"]["share_of_fit"]
        lines += ["Where the fit's time goes (cProfile, cumulative share of `fit`):\n"]
        lines += [f"- {k}: {v:.1%}" for k, v in sorted(shares.items(), key=lambda kv: -kv[1])]
        lines.append("")
    return lines


def mnist(d: dict) -> list[str]:
    rows = ["| seed | test accuracy | macro-F1 | train + eval s | best epoch |", "|---|---|---|---|---|"]
    for r in d["runs"]:
        rows.append(
            f"| {r['seed']} | {r['test_accuracy']:.4f} | {r['test_macro_f1']:.4f} | "
            f"{r['train_plus_eval_seconds']:.1f} | {r['best_epoch']}/{r['epochs_run']} |"
        )
    t = d["targets"]
    return [
        f"## MNIST-5k foundation run (`{d['config']}`)\n",
        header(d),
        *rows,
        "",
        f"Mean accuracy {d['test_accuracy_mean']:.4f}, slowest {d['train_plus_eval_seconds_max']:.1f} s; "
        f"targets: at most {t['seconds_max']} s, accuracy at least {t['accuracy_min']} — "
        f"{'met' if d['meets_targets'] else 'NOT met'}.\n",
    ]


def import_time(d: dict) -> list[str]:
    return [
        "## Start-up\n",
        header(d),
        f"`import smallvision` {d['import_seconds_median']:.2f} s, `smallvision --help` "
        f"{d['help_seconds_median']:.2f} s (medians; target {d['target_seconds']} s).\n",
    ]


def models(d: dict) -> list[str]:
    rows = [
        "| model | params | forward MFLOPs | train images/s (min-max) | train GFLOP/s | of matmul peak "
        "| inference images/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in d["families"]:
        s = f.get("images_per_s_spread")
        spread = f" ({s['min']:.0f}-{s['max']:.0f})" if s else ""
        fraction = f.get("fraction_of_matmul_peak")
        rows.append(
            f"| {f['model']} | {f['params']:,} | {f['forward_flops'] / 1e6:.1f} | {f['images_per_s']:.0f}{spread} | "
            f"{f.get('achieved_gflops', '')} | {'' if fraction is None else f'{fraction:.0%}'} | "
            f"{f.get('inference_images_per_s', float('nan')):.0f} |"
        )
    target = d.get("target", {})
    if "fraction_of_matmul_peak" in target:
        measured = target["measured"]
        goal = (
            f"Target: `{target['model']}` training at >= {target['fraction_of_matmul_peak']:.0%} of the matmul "
            f"peak measured in the same run (best of {d['families'][0]['peak']['rounds']} interleaved rounds): "
            f"{'n/a' if measured is None else f'{measured:.0%}'} — {'met' if target['met'] else 'NOT met'}.\n"
        )
        row = next((f for f in d["families"] if f["model"] == target["model"]), {})
        if "convolutions_only" in row:
            c = row["convolutions_only"]
            goal += (
                f"\nThe ceiling its convolutions set (the same step with every batch norm, ReLU and dropout "
                f"replaced by the identity, interleaved with the peak the same way): {c['images_per_s']:.0f} "
                f"images/s, {c['fraction_of_matmul_peak']:.0%} of the matmul peak. No work on the other layers "
                f"can take `{target['model']}` past it.\n"
            )
            if "fused_bn_relu_bound" in c:
                b = c["fused_bn_relu_bound"]
                goal += (
                    f"\nWith a perfect fused batch norm + ReLU instead (that step plus {b['memory_passes_per_layer']} "
                    f"memory passes over each batch-norm input, the fewest such a layer needs forward and backward, "
                    f"timed here at {b['passes_ms_per_step']} ms a step): at most {b['images_per_s']:.0f} images/s, "
                    f"{b['fraction_of_matmul_peak']:.0%} of the peak.\n"
                )
    else:
        goal = ""
    settings = [
        "| threads | channels_last | compile | precision | cnn_bn train images/s |",
        "|---|---|---|---|---|",
    ]
    for s in d["settings_on_cnn_bn"]:
        settings.append(
            f"| {s['threads']} | {s['channels_last']} | {s['compile']} | {s['precision']} | {s['images_per_s']:.0f} |"
        )
    return [
        f"## Model zoo throughput ({d['input']}, batch {d['batch']}, with augmentation)\n",
        header(d),
        *rows,
        "",
        "Settings tried on `cnn_bn`:\n",
        *settings,
        "",
        f"Chosen: {d['chosen']} — {d['why']}.\n",
        goal,
        load_note(d),
    ]


def dropout(d: dict) -> list[str]:
    """The zoo's dropout mask against nn.Dropout's bernoulli_: per layer and in cnn_bn's step."""
    rows = ["| input | zoo Dropout (ms) | nn.Dropout (ms) |", "|---|---|---|"]
    for layer in d["layers"]:
        shape = "x".join(map(str, layer["shape"]))
        rows.append(f"| {shape} | {layer['zoo_ms']:.2f} | {layer['nn_dropout_ms']:.2f} |")
    steps = d["cnn_bn_step_images_per_s"]
    return [
        f"## Dropout (p = {d['p']}, forward + backward, best of the calls)\n",
        header(d),
        load_note(d),
        *rows,
        "",
        f"`cnn_bn` training step (bench_models' step, alternated rounds): {rate(steps['zoo'])} images/s with the "
        f"zoo's Dropout, {rate(steps['nn_dropout'])} with nn.Dropout: {d['step_speedup']:.3f}x.\n",
    ]


def augment(d: dict) -> list[str]:
    ips = d["images_per_second"]
    ops = ", ".join(f"{k}" for k in d["pipeline"])
    lines = [
        f"- {t.replace('_', ' ')}: best {v['best']:,} images/s, median {v['median']:,}"
        for t, v in ips.items()
    ]
    return [
        f"## Augmentation ({ops}; batches of {d['batch'][0]} at {d['batch'][2]}x{d['batch'][3]})\n",
        header(d),
        *lines,
        "",
        f"Target {d['target_images_per_second']:,} images/s — {'met' if d['meets_target'] else 'NOT met'}"
        f" (load average when it began: {d['load_average_1min']}).\n",
    ]


def readers(d: dict) -> list[str]:
    rows = ["| reader | images | seconds | target s |", "|---|---|---|---|"]
    for name, r in d["results"].items():
        rows.append(f"| {name} | {r['images']:,} | {r['seconds']:.3f} | {r.get('target_seconds', '')} |")
    return ["## Readers and builtin datasets (best of 3)\n", header(d), *rows, ""]


def mmap(d: dict) -> list[str]:
    rows = [
        "| images | peak RSS MB | after imports MB | peak RssAnon MB | peak RssFile MB | peak / file | run s |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, r in d["runs"].items():
        label = "memory-mapped" if mode == "mmap" else "loaded"
        rows.append(
            f"| {label} | {r['peak_rss_mb']:.0f} | {r['baseline_rss_mb']:.0f} | {r['peak_rss_anon_mb']:.0f} | "
            f"{r['peak_rss_file_mb']:.0f} | {r['peak_over_file']:.2f} | {r['run_seconds']:.0f} |"
        )
    h, w, c = d["image_shape"]
    return [
        f"## Training from a memory-mapped file ({d['images']:,} images of {h}x{w}x{c} uint8, one epoch)\n",
        header(d),
        f"File: {d['file_mb']:.0f} MB. Each mode in a fresh process; RSS = `ru_maxrss`, RssAnon / RssFile "
        "sampled from `/proc/self/status`.\n",
        *rows,
        "",
        f"Target: {d['target']} (counted as met below half of it) — {'met' if d['met'] else 'NOT met'}. "
        "RssFile is the mapped file's pages (and the libraries'); RssAnon the process's own memory.\n",
    ]


def study(d: dict) -> list[str]:
    """The study runner's two targets: overhead over one-by-one runs, and 2 workers vs 1."""
    o, w = d["overhead"], d["workers"]
    verdict = {True: "met", False: "NOT met"}
    return [
        f"## Study runner ({o['cells']} cells of `{d['cell_config']['model']['name']}` on "
        f"`{d['cell_config']['data']['source']}`, {d['epochs']} epochs, best of {d['rounds']} rounds)\n",
        header(d),
        load_note(d),
        f"CPU: {d['cpu_model']}; 1-minute load average at start {d['load_average_before'][0]}.\n",
        "| | seconds, best (all rounds) |",
        "|---|---|",
        f"| one by one (`smallvision.run`, {o['threads_per_cell']} threads) | {min(o['one_by_one_seconds']):.1f} "
        f"({', '.join(f'{x:.1f}' for x in o['one_by_one_seconds'])}) |",
        f"| as a study, `--workers 1` | {min(o['study_workers1_seconds']):.1f} "
        f"({', '.join(f'{x:.1f}' for x in o['study_workers1_seconds'])}) |",
        f"| study, `--workers 1`, 1 thread per cell | {min(w['workers1_seconds']):.1f} "
        f"({', '.join(f'{x:.1f}' for x in w['workers1_seconds'])}) |",
        f"| study, `--workers 2`, 1 thread per cell | {min(w['workers2_seconds']):.1f} "
        f"({', '.join(f'{x:.1f}' for x in w['workers2_seconds'])}) |",
        "",
        f"Study overhead over the same runs one by one: {o['overhead_best_to_best']:+.1%}; target under "
        f"{o['target']:.0%} — {verdict[o['met']]}. `--workers 2` / `--workers 1`: {w['ratio_best_to_best']:.3f}; "
        f"target at most {w['target']} — {verdict[w['met']]}.\n",
    ]


def report(d: dict) -> list[str]:
    """The run report's two targets: size and build time of a 10-class run's report."""
    t, verdict = d["target"], {True: "met", False: "NOT met"}
    cli, api = d["cli_seconds"], d["build_report_seconds"]
    return [
        f"## Run report (`{d['config']}`, {d['classes']} classes, {d['test_images']:,} test images, "
        f"{d['epochs']} epochs, best of {d['rounds']} rounds)\n",
        header(d),
        load_note(d),
        f"CPU: {d['cpu_model']}; 1-minute load average {d['load_average_before'][0]} at start, "
        f"{d['load_average_after'][0]} at the end.\n",
        "| | value |",
        "|---|---|",
        f"| `report.html` | {d['size_mb']:.2f} MB ({d['size_bytes']:,} bytes), {d['images_on_page']} images |",
        f"| `smallvision report DIR` (fresh process) | {min(cli):.1f} s ({', '.join(f'{x:.1f}' for x in cli)}) |",
        f"| `build_report` (in process) | {min(api):.1f} s ({', '.join(f'{x:.1f}' for x in api)}) |",
        "",
        f"Targets: `report.html` under {t['size_mb']:g} MB — {verdict[d['size_mb'] < t['size_mb']]}; "
        f"`smallvision report DIR` under {t['seconds']:g} s — {verdict[min(cli) < t['seconds']]}.\n",
    ]


def main() -> None:
    from summarize_tta import tta  # it imports this module's helpers

    parts = [
        "# Benchmarks\n",
        "Generated by `python benchmarks/summarize.py` from `benchmarks/results/*.json`; each section names the",
        "command that measured it (`make bench` runs them all). Machine: the project's 2-core CPU box.\n",
    ]
    d = load("peak")
    if d is not None:
        parts += peak(d)
    if load("tta") is not None or load("tta_old_default") is not None:
        parts += tta(load("tta"), load("tta_old_default"), load("tta_candidate"))
    for name, fn in [
        ("trainer", trainer),
        ("mnist", mnist),
        ("import", import_time),
        ("models", models),
        ("dropout", dropout),
        ("augment", augment),
        ("readers", readers),
        ("mmap", mmap),
        ("study", study),
        ("report", report),
    ]:
        d = load(name)
        if d is not None:
            parts += fn(d)
    (HERE / "README.md").write_text("\n".join(parts))
    print(f"wrote {HERE / 'README.md'}")


if __name__ == "__main__":
    main()
