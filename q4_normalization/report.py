"""Render reports/q4.md from the Q4 run folders (never typed by hand).

    python -m q4_normalization.report                                   # runs/ -> reports/q4.md
    python -m q4_normalization.report --runs-dir runs/smoke --out reports/q4.md

Reads every `<runs-dir>/q4_normalization/*/` with a summary.json (written by train.py) and writes:

- reports/q4.md: the data the runs used; accuracy, macro F1 and micro F1 on train, val and test
  for every normalization at batch 128 beside the original report's test accuracy; batch 8
  against 128 for BN and GN; the runs that diverged; a ranking and the comparisons computed from
  the numbers; the modern-recipe runs when there are any.
- reports/q4_errors.png: train and validation error per epoch of every variant, one figure.
- reports/q4_quantiles.png: the probe layer's 1st/20th/80th/99th percentiles per epoch, one panel
  per variant; reports/q4_quantiles_bs8.png likewise for the batch-8 runs.

Runs with the same normalization, batch size and recipe (e.g. several seeds) are averaged.
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

from common.cli import HelpFormatter
from common.errors import DataError
from common.report import RunRecord, fmt_pct, load_runs, markdown_table, save_figure, write_report

# The original report's test accuracies (batch 128).
REPORT_TEST_ACCURACY = {"nn": 0.7174, "bn": 0.8139, "in": 0.8335, "bin": 0.8298, "ln": 0.7661, "gn": 0.8198,
                        "torch_bn": 0.7941}
NORM_NAMES = {"nn": "none", "bn": "BatchNorm", "in": "InstanceNorm", "bin": "Batch-Instance Norm",
              "ln": "LayerNorm", "gn": "GroupNorm", "torch_bn": "torch BatchNorm2d"}
ORDER = ["nn", "bn", "in", "bin", "ln", "gn", "torch_bn"]
SPLITS = ("train", "val", "test")
METRICS = ("accuracy", "macro_f1", "micro_f1")
QUANTILE_KEYS = {"probe_q01": "1st", "probe_q20": "20th", "probe_q80": "80th", "probe_q99": "99th"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--runs-dir", default="runs", help="root folder of the run folders")
    parser.add_argument("--out", default="reports/q4.md", help="markdown report to write")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size of the main table")
    return parser.parse_args(argv)


# ---- grouping runs -------------------------------------------------------------------------------

def run_key(run: RunRecord) -> tuple[str, int, str]:
    config = run.config
    return config.get("norm", run.summary.get("norm")), int(config.get("bs", run.summary.get("bs", 0))), \
        config.get("recipe", run.summary.get("recipe", "report"))


def group_runs(runs: list[RunRecord]) -> dict[tuple[str, int, str], list[RunRecord]]:
    groups: dict[tuple[str, int, str], list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(run_key(run), []).append(run)
    return groups


def diverged(runs: list[RunRecord]) -> bool:
    return any(run.summary.get("diverged") for run in runs)


def mean_metric(runs: list[RunRecord], key: str) -> float | None:
    """Mean of `key` over the runs that finished (None when none has it)."""
    values = [run.summary[key] for run in runs if not run.summary.get("diverged") and key in run.summary]
    return statistics.fmean(values) if values else None


def std_error_of_accuracy(accuracy: float, count: int) -> float:
    """Binomial standard error of an accuracy measured on `count` images."""
    return math.sqrt(max(accuracy * (1 - accuracy), 1e-12) / max(count, 1))


# ---- tables --------------------------------------------------------------------------------------

def split_table(groups, keys, split: str, with_report: bool) -> str:
    headers = ["normalization", "runs", "accuracy", "macro F1", "micro F1"]
    if with_report:
        headers += ["report test acc", "difference"]
    rows = []
    for key in keys:
        runs = groups[key]
        if diverged(runs) and mean_metric(runs, f"{split}_accuracy") is None:
            row = [NORM_NAMES[key[0]], len(runs), "diverged", "diverged", "diverged"]
        else:
            row = [NORM_NAMES[key[0]], len(runs)]
            row += [fmt_pct(mean_metric(runs, f"{split}_{metric}")) for metric in METRICS]
        if with_report:
            ours = mean_metric(runs, f"{split}_accuracy")
            report = REPORT_TEST_ACCURACY[key[0]]
            row += [fmt_pct(report), "—" if ours is None else f"{100 * (ours - report):+.2f} pts"]
        rows.append(row)
    return markdown_table(headers, rows)


def batch_size_table(groups, recipe: str, main_bs: int) -> tuple[str, list[str]]:
    """BN and GN at batch 8 against the main batch size, with the conclusions drawn from it."""
    rows, notes, drops = [], [], {}
    for norm in ("bn", "gn"):
        cells = {}
        for bs in (main_bs, 8):
            runs = groups.get((norm, bs, recipe))
            if not runs:
                cells[bs] = None
                continue
            cells[bs] = "diverged" if diverged(runs) and mean_metric(runs, "test_accuracy") is None \
                else mean_metric(runs, "test_accuracy")
        if all(value is None for value in cells.values()):
            continue
        show = {bs: (v if isinstance(v, str) else fmt_pct(v)) for bs, v in cells.items()}
        change = "—"
        if all(isinstance(v, float) for v in cells.values()):
            drops[norm] = cells[main_bs] - cells[8]
            change = f"{-100 * drops[norm]:+.2f} pts"
        rows.append([NORM_NAMES[norm], show[main_bs], show[8], change])
        for bs, value in cells.items():
            if value == "diverged":
                notes.append(f"{NORM_NAMES[norm]} at batch {bs} diverged (NaN/inf loss) with the report's "
                             f"learning rate.")
    if len(drops) == 2:
        bn_drop, gn_drop = drops["bn"], drops["gn"]  # positive = accuracy lost at batch 8
        text = (f"From batch {main_bs} to 8, BatchNorm's test accuracy changes by {-100 * bn_drop:+.2f} "
                f"points and GroupNorm's by {-100 * gn_drop:+.2f}")
        if bn_drop <= 0 and gn_drop <= 0:
            text += ": neither loses accuracy at batch 8 here (more steps per epoch; these runs are too " \
                    "short to show the small-batch effect on the batch statistics)."
        elif bn_drop > gn_drop:
            text += ": BatchNorm loses more, as expected from its batch statistics becoming noisy with " \
                    "8 images; GroupNorm, whose statistics do not involve the batch, is the more robust."
        else:
            text += ": GroupNorm loses more than BatchNorm here, contrary to the expectation that batch " \
                    "statistics suffer most from small batches."
        notes.append(text)
    table = markdown_table([f"normalization", f"test acc, batch {main_bs}", "test acc, batch 8",
                            f"change {main_bs} -> 8"], rows) if rows else ""
    return table, notes


# ---- comparisons ---------------------------------------------------------------------------------

def ranking_paragraphs(groups, keys) -> list[str]:
    """Ranking and comparisons, every conclusion computed from the numbers."""
    finished = [(key, mean_metric(groups[key], "test_accuracy")) for key in keys]
    finished = [(key, acc) for key, acc in finished if acc is not None]
    lines = []
    if not finished:
        return ["No run finished, so there is nothing to rank."]
    count = int(mean_metric(groups[finished[0][0]], "test_images") or 0)
    ranked = sorted(finished, key=lambda item: -item[1])
    lines.append("Ranking by test accuracy: " + " > ".join(
        f"{NORM_NAMES[key[0]]} ({fmt_pct(acc)})" for key, acc in ranked) + ".")
    in_report = [(key, acc) for key, acc in ranked if key[0] in REPORT_TEST_ACCURACY]
    report_order = sorted(in_report, key=lambda item: -REPORT_TEST_ACCURACY[item[0][0]])
    if len(in_report) >= 2:
        ours_rank = {key: i for i, (key, _) in enumerate(in_report)}
        report_rank = {key: i for i, (key, _) in enumerate(report_order)}
        n = len(in_report)
        rho = 1 - 6 * sum((ours_rank[k] - report_rank[k]) ** 2 for k in ours_rank) / (n * (n * n - 1))
        same_best = in_report[0][0] == report_order[0][0]
        lines.append(f"The report ranked them {' > '.join(NORM_NAMES[k[0]] for k, _ in report_order)}; the "
                     f"Spearman rank correlation between the two orders is {rho:.2f}, and the best variant "
                     f"{'is the same' if same_best else 'differs'} ({NORM_NAMES[in_report[0][0][0]]} here, "
                     f"{NORM_NAMES[report_order[0][0][0]]} in the report).")
    noise = 2 * std_error_of_accuracy(ranked[0][1], count) if count else float("nan")
    if count:
        lines.append(f"With {count} test images, two standard errors of an accuracy near "
                     f"{fmt_pct(ranked[0][1])} are {100 * noise:.2f} points; differences smaller than that "
                     f"are within noise for a single run.")
    accuracy = {key[0]: acc for key, acc in finished}
    if "nn" in accuracy:
        better = [n for n in accuracy if n != "nn" and accuracy[n] > accuracy["nn"]]
        worse = [n for n in accuracy if n != "nn" and accuracy[n] <= accuracy["nn"]]
        text = f"Against no normalization ({fmt_pct(accuracy['nn'])}): "
        text += (f"{', '.join(NORM_NAMES[n] for n in better)} {'does' if len(better) == 1 else 'do'} better"
                 if better else "no normalization variant does better")
        if worse:
            text += f"; {', '.join(NORM_NAMES[n] for n in worse)} {'does' if len(worse) == 1 else 'do'} not"
        lines.append(text + ".")
    if "bn" in accuracy and "torch_bn" in accuracy:
        gap = accuracy["bn"] - accuracy["torch_bn"]
        verdict = "within" if abs(gap) <= noise else "outside"
        report_gap = REPORT_TEST_ACCURACY["bn"] - REPORT_TEST_ACCURACY["torch_bn"]
        lines.append(f"BatchNorm from scratch vs torch's BatchNorm2d: {fmt_pct(accuracy['bn'])} vs "
                     f"{fmt_pct(accuracy['torch_bn'])} ({100 * gap:+.2f} points, {verdict} two standard "
                     f"errors). "
                     f"The two layers compute the same function (tests/test_q4_norms.py), so a gap comes "
                     f"from floating-point rounding feeding a chaotic training run, i.e. seed-to-seed "
                     f"variation, not from the layer (the report saw {100 * report_gap:.2f} points).")
    if "bin" in accuracy and "bn" in accuracy and "in" in accuracy:
        best_of_two = max(accuracy["bn"], accuracy["in"])
        lines.append(f"Batch-Instance Norm ({fmt_pct(accuracy['bin'])}) "
                     f"{'beats' if accuracy['bin'] > best_of_two else 'does not beat'} the better of "
                     f"BatchNorm "
                     f"and InstanceNorm ({fmt_pct(best_of_two)}).")
    return lines


def micro_f1_note(groups, keys) -> str:
    gaps = [abs(run.summary[f"{s}_micro_f1"] - run.summary[f"{s}_accuracy"])
            for key in keys for run in groups[key] for s in SPLITS
            if f"{s}_micro_f1" in run.summary and f"{s}_accuracy" in run.summary]
    if not gaps:
        return ""
    return (f"Micro F1 equals accuracy in every run (largest difference {max(gaps):.1e}), as it must with "
            f"one label per image: each error is one false positive and one false negative. The original "
            f"report's micro-F1 column differs from its accuracies, which points to a computing error there.")


# ---- figures -------------------------------------------------------------------------------------

def plot_error_curves(groups, keys, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    for ax, split in zip(axes, ("train", "val")):
        for key in keys:
            run = groups[key][0]
            xs, ys = run.series("epoch", f"{split}_error")
            label = NORM_NAMES[key[0]] + (" (diverged)" if diverged(groups[key]) else "")
            ax.plot(xs, [100 * y for y in ys], marker="o" if len(xs) <= 25 else None, markersize=3,
                    label=label)
        ax.set(title=f"{split} error", xlabel="epoch", ylabel="error (%)")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    path = save_figure(fig, path)
    plt.close(fig)
    return path


def plot_quantiles(groups, keys, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(4, len(keys))
    rows = math.ceil(len(keys) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.9 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        run = groups[key][0]
        for name, label in QUANTILE_KEYS.items():
            xs, ys = run.series("epoch", name)
            ax.plot(xs, ys, marker="o" if len(xs) <= 25 else None, markersize=2, label=f"{label} percentile")
        ax.set_title(f"{NORM_NAMES[key[0]]}, batch {key[1]}", fontsize=9)
        ax.set_xlabel("epoch (0 = init)", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    path = save_figure(fig, path)
    plt.close(fig)
    return path


# ---- main ----------------------------------------------------------------------------------------

def data_sentence(runs: list[RunRecord]) -> str:
    datasets = sorted({run.config.get("dataset", "?") for run in runs})
    smoke = any(run.config.get("smoke") for run in runs)
    sizes = sorted({tuple(run.config.get(f"{split}_images") for split in SPLITS)
                    for run in runs if run.config.get("train_images")})
    size_text = "; ".join(f"{t} train / {v} val / {s} test images" for t, v, s in sizes)
    if smoke:
        return (f"**Data: built-in smoke data ({', '.join(datasets)}; {size_text}), tiny models and a few "
                f"epochs.** These numbers only show that the pipeline runs end to end; they say nothing "
                f"about CIFAR-10. Run `bash scripts/reproduce_q4.sh` with CIFAR-10 under data/ for the "
                f"study.")
    return f"Data: {', '.join(datasets)} ({size_text})."


def main(argv=None) -> Path:
    args = parse_args(argv)
    runs = load_runs(str(Path(args.runs_dir) / "q4_normalization" / "*"))
    if not runs:
        raise DataError(f"no Q4 runs with a summary.json under {Path(args.runs_dir) / 'q4_normalization'}; "
                        f"run bash scripts/reproduce_q4.sh first (--smoke for a quick check)")
    groups = group_runs(runs)
    out = Path(args.out)
    figure_stem = out.with_suffix("")

    main_keys = [key for norm in ORDER for key in [(norm, args.batch_size, "report")] if key in groups]
    small_keys = [key for norm in ORDER for key in [(norm, 8, "report")] if key in groups]
    modern_keys = [key for norm in ORDER for key in [(norm, args.batch_size, "modern")] if key in groups]
    depth = sorted({run.config.get("depth") for run in runs if run.config.get("depth")})

    parts = ["# Q4: normalization layers in a ResNet-(6n+2)\n",
             data_sentence(runs) + "\n",
             f"ResNet-{'/'.join(str(d) for d in depth)}, SGD with momentum 0.9, each normalization with the "
             f"original report's learning-rate schedule, early stopping on validation accuracy; the figures "
             f"below are from the best checkpoint. Rendered by `python -m q4_normalization.report` from "
             f"{len(runs)} run folder(s) under `{args.runs_dir}`.\n"]
    if main_keys:
        for split in SPLITS:
            parts.append(f"## {split.capitalize()} split, batch {args.batch_size}\n")
            parts.append(split_table(groups, main_keys, split, with_report=(split == "test")))
        parts.append("\nThe original report's figures are its test accuracies; its micro-F1 values are not "
                     "reproduced because they cannot differ from accuracy (below).\n")
        parts.append("## Comparison\n")
        parts += [f"- {line}" for line in ranking_paragraphs(groups, main_keys)]
        note = micro_f1_note(groups, main_keys)
        if note:
            parts.append(f"- {note}")
        parts.append("")
        errors = plot_error_curves(groups, main_keys, Path(f"{figure_stem}_errors.png"))
        quantiles = plot_quantiles(groups, main_keys, Path(f"{figure_stem}_quantiles.png"),
                                   "probe-layer activations: 1st/20th/80th/99th percentiles per epoch")
        parts.append("## Error curves\n")
        parts.append(f"![train and validation error of every variant]({errors.name})\n")
        parts.append("## Feature distributions\n")
        parts.append("Percentiles of one fixed normalization layer's output (the probe, train.py "
                     "`--probe-layer`) on a fixed validation batch after every epoch (epoch 0: at "
                     "initialisation).\n")
        parts.append(f"![probe-layer quantiles per epoch]({quantiles.name})\n")
        spread = []
        for key in main_keys:
            first, last = (groups[key][0].series("epoch", "probe_q99")[1] or [None])[0], \
                (groups[key][0].series("epoch", "probe_q99")[1] or [None])[-1]
            low_first, low_last = (groups[key][0].series("epoch", "probe_q01")[1] or [None])[0], \
                (groups[key][0].series("epoch", "probe_q01")[1] or [None])[-1]
            if None not in (first, last, low_first, low_last):
                spread.append([NORM_NAMES[key[0]], f"{low_first:.2f} .. {first:.2f}",
                               f"{low_last:.2f} .. {last:.2f}",
                               f"{(last - low_last) / max(first - low_first, 1e-12):.2f}"])
        if spread:
            parts.append(markdown_table(["normalization", "1st..99th pct at init", "1st..99th pct at the end",
                                         "spread end / init"], spread))
    parts.append(f"\n## Batch size {args.batch_size} against 8 (BN and GN)\n")
    table, notes = batch_size_table(groups, "report", args.batch_size)
    parts.append(table if table else "No batch-8 runs were found.\n")
    parts += [f"- {note}" for note in notes]
    if small_keys:
        quantiles8 = plot_quantiles(groups, small_keys, Path(f"{figure_stem}_quantiles_bs8.png"),
                                    "probe-layer percentiles per epoch, batch 8")
        parts.append(f"\n![probe-layer quantiles, batch 8]({quantiles8.name})\n")
    failed = sorted(f"{NORM_NAMES[k[0]]} (batch {k[1]}, {k[2]} recipe)"
                    for k, g in groups.items() if diverged(g))
    parts.append("\n## Diverged runs\n")
    parts.append(("These runs stopped on a NaN/inf loss and are listed as diverged in the tables: "
                  + "; ".join(failed) + ".\n") if failed else "None.\n")
    if modern_keys:
        parts.append("## Modern recipe (lr 0.1 cosine, crop + flip, weight decay 5e-4)\n")
        parts.append(split_table(groups, modern_keys, "test", with_report=True))
        best_modern = max((mean_metric(groups[k], "test_accuracy") or 0.0, k) for k in modern_keys)
        best_report = max(REPORT_TEST_ACCURACY.values())
        parts.append(f"\nBest modern-recipe run: {NORM_NAMES[best_modern[1][0]]} at "
                     f"{fmt_pct(best_modern[0])}, "
                     f"{'above' if best_modern[0] > best_report else 'not above'} the report's best "
                     f"({fmt_pct(best_report)}).\n")
    return write_report(out, "\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
