"""Render reports/q4.md, q4_curves.png and the probe-percentile figures q4_quantiles.png and
q4_quantiles_bs8.png from the train.py runs under `<runs-dir>/q4_normalization/`. Runs with the
same normalization, batch size and recipe are the seeds of one variant.

    python -m q4_normalization.report --runs-dir runs/smoke --out reports/q4.md
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

import matplotlib.pyplot as plt

from common.cli import HelpFormatter, entry_point
from common.errors import DataError
from common.report import (RunRecord, beyond_noise, data_kind, fmt_pct, load_runs, markdown_table,
                           provenance_section, save_figure, sittings, spread_cell, wall_time_s,
                           write_report)
from q4_normalization.select_lr import pick, sweep_scores, sweep_table

# The original report's test accuracies (batch 128).
REPORT_TEST_ACCURACY = {"nn": 0.7174, "bn": 0.8139, "in": 0.8335, "bin": 0.8298, "ln": 0.7661, "gn": 0.8198,
                        "torch_bn": 0.7941}
NORM_NAMES = {"nn": "none", "bn": "BatchNorm", "in": "InstanceNorm", "bin": "Batch-Instance Norm",
              "ln": "LayerNorm", "gn": "GroupNorm", "torch_bn": "torch BatchNorm2d"}
ORDER = ["nn", "bn", "in", "bin", "ln", "gn", "torch_bn"]
SPLITS = ("train", "val", "test")
METRICS = ("accuracy", "macro_f1", "micro_f1")
# The rows of the CPU study (scripts/reproduce_q4.sh --recipe cpu): (norm, batch size).
STUDY_ROWS = [(norm, 128) for norm in ORDER] + [("bn", 8), ("gn", 8)]
# The rows each recipe's study owes, listed as "not run yet" until they have run (converge: once its
# sweep has begun; its batch-8 rows are run only if time allows).
EXPECTED_ROWS = {"cpu": STUDY_ROWS, "converge": [(norm, 128) for norm in ORDER]}
QUANTILE_KEYS = {"probe_q01": "1st", "probe_q20": "20th", "probe_q80": "80th", "probe_q99": "99th"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--runs-dir", default="runs", help="root folder of the run folders")
    parser.add_argument("--out", default="reports/q4.md", help="markdown report to write")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size of the main table")
    parser.add_argument("--recipe", default="auto", choices=["auto", "report", "modern", "cpu", "converge"],
                        help="recipe of the main tables (train.py --recipe); auto: the recipe of most "
                             "batch-128 runs (report first on a tie). Modern-recipe runs also get a "
                             "section of their own when the main recipe is another")
    return parser.parse_args(argv)


def run_key(run: RunRecord) -> tuple[str, int, str]:
    """(norm, batch size, recipe): the variant a run belongs to; its seeds share the key."""
    config = run.config
    return config.get("norm", run.summary.get("norm")), int(config.get("bs", run.summary.get("bs", 0))), \
        config.get("recipe", run.summary.get("recipe", "report"))


def finished(runs: list[RunRecord], key: str) -> list[float]:
    """`key` of every run that did not diverge and has it."""
    return [run.summary[key] for run in runs if not run.summary.get("diverged") and key in run.summary]


def mean_metric(runs: list[RunRecord], key: str) -> float | None:
    return statistics.fmean(values) if (values := finished(runs, key)) else None


def mean_std_cell(runs: list[RunRecord], key: str) -> str:
    """'82.00% ± 2.00%' over the seeds, the value alone for one seed, 'diverged' for none."""
    values = finished(runs, key)
    if not values and diverged_runs(runs):
        return "diverged"
    return spread_cell(values, fmt_pct, count=False)  # the table has a seeds column


def diverged_runs(runs: list[RunRecord]) -> list[RunRecord]:
    return [run for run in runs if run.summary.get("diverged")]


def seeds_cell(runs: list[RunRecord]) -> str:
    failed = len(diverged_runs(runs))
    return f"{len(runs) - failed}" + (f" (+{failed} diverged)" if failed else "")


def std_error(runs: list[RunRecord]) -> float:
    """Standard error of the mean test accuracy: across seeds when there are two or more, else
    binomial over the test images."""
    values = finished(runs, "test_accuracy")
    if len(values) > 1:
        return statistics.stdev(values) / math.sqrt(len(values))
    return math.sqrt(values[0] * (1 - values[0]) / finished(runs, "test_images")[0])


def gap_text(gap: float, error: float) -> str:
    """'+5.00 ± 1.53 points, outside 2 standard errors' for fractions gap and error."""
    return (f"{100 * gap:+.2f} ± {100 * error:.2f} points, "
            f"{'outside' if beyond_noise(gap, error) else 'within'} 2 standard errors")


def difference(first: list[RunRecord], second: list[RunRecord]) -> str:
    """gap_text of the mean test accuracy of first minus second."""
    gap = mean_metric(first, "test_accuracy") - mean_metric(second, "test_accuracy")
    return gap_text(gap, math.hypot(std_error(first), std_error(second)))


def split_table(groups, keys, split: str, with_report: bool) -> str:
    headers = ["normalization", "seeds", "accuracy", "macro F1", "micro F1"]
    if with_report:
        headers += ["report test acc", "difference", "best epoch / epochs run"]
    rows = []
    for key in keys:
        runs = groups[key]
        row = [NORM_NAMES[key[0]], seeds_cell(runs)] + [mean_std_cell(runs, f"{split}_{m}") for m in METRICS]
        if with_report:
            ours, report = mean_metric(runs, f"{split}_accuracy"), REPORT_TEST_ACCURACY[key[0]]
            row += [fmt_pct(report), "—" if ours is None else f"{100 * (ours - report):+.2f} pts",
                    ", ".join(f"{run.summary.get('best_epoch', '?')} / {run.summary.get('epochs_run', '?')}"
                              for run in runs)]
        rows.append(row)
    return markdown_table(headers, rows)


def batch_size_table(groups, recipe: str, main_bs: int) -> tuple[str, list[str]]:
    """BN and GN at batch 8 against the main batch size, with the differences computed from it."""
    rows, notes, drops = [], [], {}
    for norm in ("bn", "gn"):
        main, small = (groups.get((norm, bs, recipe), []) for bs in (main_bs, 8))
        if not (main or small):
            continue
        rows.append([NORM_NAMES[norm], mean_std_cell(main, "test_accuracy"), seeds_cell(main),
                     mean_std_cell(small, "test_accuracy"), seeds_cell(small)])
        if finished(main, "test_accuracy") and finished(small, "test_accuracy"):
            drops[norm] = (mean_metric(main, "test_accuracy") - mean_metric(small, "test_accuracy"),
                           math.hypot(std_error(main), std_error(small)))
            notes.append(f"{NORM_NAMES[norm]}, batch 8 vs {main_bs}: {difference(small, main)}.")
    if len(drops) == 2:  # BN's drop minus GN's, judged by the same 2-standard-error rule
        gap, error = drops["bn"][0] - drops["gn"][0], math.hypot(drops["bn"][1], drops["gn"][1])
        verdict = (f"{NORM_NAMES['bn' if gap > 0 else 'gn']} loses more" if beyond_noise(gap, error)
                   else "no clear difference in what they lose")
        notes.append(f"Test accuracy lost from batch {main_bs} to 8, BatchNorm's minus GroupNorm's: "
                     f"{gap_text(gap, error)}: {verdict}.")
    headers = ["normalization", f"test acc, batch {main_bs}", "seeds", "test acc, batch 8", "seeds"]
    return (markdown_table(headers, rows) if rows else ""), notes


def ranking_paragraphs(groups, keys) -> list[str]:
    """Ranking and comparisons, every conclusion computed from the numbers."""
    ranked = sorted(((key, mean_metric(groups[key], "test_accuracy")) for key in keys
                     if finished(groups[key], "test_accuracy")), key=lambda item: -item[1])
    if not ranked:
        return ["No run finished, so there is nothing to rank."]
    lines = ["Ranking by test accuracy: " + " > ".join(
        f"{NORM_NAMES[key[0]]} ({fmt_pct(acc)})" for key, acc in ranked) + "."]
    report_order = sorted(ranked, key=lambda item: -REPORT_TEST_ACCURACY[item[0][0]])
    if len(ranked) >= 2:
        rho = spearman([key[0] for key, _ in ranked], [key[0] for key, _ in report_order])
        same_best = ranked[0][0] == report_order[0][0]
        lines.append(f"The report ranked them {' > '.join(NORM_NAMES[k[0]] for k, _ in report_order)}; the "
                     f"Spearman rank correlation between the two orders is {rho:.2f}, and the best variant "
                     f"{'is the same' if same_best else 'differs'} ({NORM_NAMES[ranked[0][0][0]]} here, "
                     f"{NORM_NAMES[report_order[0][0][0]]} in the report).")
    lines.append("A difference below is one of mean test accuracies ± its standard error, taken across "
                 "seeds for a variant with two or more finished seeds, else binomial over its test images.")
    runs = {key[0]: groups[key] for key, _ in ranked}
    accuracy = {key[0]: acc for key, acc in ranked}
    if "nn" in accuracy and len(accuracy) > 1:
        verdicts: dict[str, list[str]] = {"better": [], "no clear difference": [], "worse": []}
        for norm in accuracy:
            if norm != "nn":
                gap = accuracy[norm] - accuracy["nn"]
                error = math.hypot(std_error(runs[norm]), std_error(runs["nn"]))
                verdicts["no clear difference" if not beyond_noise(gap, error) else "better" if gap > 0
                         else "worse"].append(NORM_NAMES[norm])
        lines.append(f"Against no normalization ({fmt_pct(accuracy['nn'])}), same recipe and batch size, a "
                     f"difference counting only beyond 2 standard errors: "
                     + "; ".join(f"{kind}: {', '.join(names)}" for kind, names in verdicts.items() if names)
                     + ".")
    for norm, acc in accuracy.items():
        gap = acc - REPORT_TEST_ACCURACY[norm]
        if gap < 0:
            ends = [(run.summary.get("best_epoch"), run.summary.get("epochs_run"), run.config.get("epochs"))
                    for run in runs[norm] if "best_epoch" in run.summary]
            rising = all(best == run_epochs for best, run_epochs, _ in ends)
            best_epochs = ", ".join(f"{b} of the {e} run" for b, e, _ in ends)
            error = std_error(runs[norm])  # the report's figure comes without one
            text = (f"{NORM_NAMES[norm]} stays {100 * -gap:.2f} points below the report's test accuracy "
                    f"({'beyond' if beyond_noise(gap, error) else 'within'} 2 standard errors of ours, "
                    f"{100 * error:.2f} points)")
            if ends:
                text += (f"; its best validation epoch is {best_epochs}"
                         + (" (the last: validation accuracy was still rising when the budget ended)"
                            if rising else ""))
            lines.append(text + ".")
    if "bn" in runs and "torch_bn" in runs:
        report_gap = REPORT_TEST_ACCURACY["bn"] - REPORT_TEST_ACCURACY["torch_bn"]
        lines.append(f"BatchNorm from scratch vs torch's BatchNorm2d: "
                     f"{difference(runs['bn'], runs['torch_bn'])} "
                     f"(the report: {100 * report_gap:+.2f} points).")
    if {"bin", "bn", "in"} <= set(runs):
        better_of_two = max(("bn", "in"), key=accuracy.get)
        lines.append(f"Batch-Instance Norm vs the better of BatchNorm and InstanceNorm "
                     f"({NORM_NAMES[better_of_two]}): {difference(runs['bin'], runs[better_of_two])}.")
    return lines


def plot_curves(groups, keys, path: Path) -> Path:
    """Error (top) and loss (bottom), train (left) and validation (right); every seed of a variant
    in the variant's colour."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharey="row")
    # Loss on a log scale: one early validation spike would flatten every other curve.
    panels = (("error", 100, "error (%)", "linear"), ("loss", 1, "cross-entropy", "log"))
    for row, (metric, scale, unit, yscale) in zip(axes, panels):
        for ax, split in zip(row, ("train", "val")):
            for colour, key in enumerate(keys):
                label = NORM_NAMES[key[0]] + (" (diverged)" if diverged_runs(groups[key]) else "")
                for seed, run in enumerate(groups[key]):
                    xs, ys = run.series("epoch", f"{split}_{metric}")
                    ax.plot(xs, [scale * y for y in ys], color=f"C{colour}", markersize=3,
                            marker="o" if len(xs) <= 25 else None, label=None if seed else label)
            ax.set(title=f"{split} {metric}", xlabel="epoch", ylabel=unit, yscale=yscale)
            ax.grid(alpha=0.3)
    axes[0, 1].legend(fontsize=8)
    fig.tight_layout()
    path = save_figure(fig, path)
    plt.close(fig)
    return path


def plot_quantiles(groups, keys, path: Path, title: str) -> Path:
    columns = min(4, len(keys))
    rows = math.ceil(len(keys) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.9 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        run = groups[key][0]
        for name, label in QUANTILE_KEYS.items():
            xs, ys = run.series("epoch", name)
            ax.plot(xs, ys, marker="o" if len(xs) <= 25 else None, markersize=2, label=f"{label} percentile")
        ax.set_title(f"{NORM_NAMES[key[0]]}, batch {key[1]}, seed {run.config.get('seed', '?')}", fontsize=9)
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


def headline_rows(runs_dir: str | Path) -> list[list]:
    """results/README.md rows [study, row, measure, ours, original, target, note]: the test
    accuracy of every non-smoke variant (mean ± std over seeds), the report's figure beside it
    (batch 128), and where the run stood when it ended: its recipe, epochs, budget check (the
    converge recipe's) and machine. A study's rows that have not run yet are listed as such."""
    groups: dict[tuple[str, int, str], list[RunRecord]] = {}
    for run in load_runs(str(Path(runs_dir) / "q4_normalization" / "*")):
        if not run.config.get("smoke"):
            groups.setdefault(run_key(run), []).append(run)
    recipes = {key[2] for key in groups}
    if load_runs(str(Path(runs_dir) / "q4_lr_sweep_converge" / "q4_normalization" / "*")):
        recipes.add("converge")  # its study has begun with the sweep
    rows = []
    for recipe in sorted(recipes):
        expected = EXPECTED_ROWS.get(recipe, [])
        for bs in sorted({key[1] for key in groups if key[2] == recipe} | {bs for _, bs in expected},
                         reverse=True):
            for norm in [norm for norm in ORDER if (norm, bs, recipe) in groups or (norm, bs) in expected]:
                original = REPORT_TEST_ACCURACY.get(norm) if bs == 128 else None
                if (norm, bs, recipe) not in groups:  # a row of the study that has not run yet
                    rows.append([f"Q4 CIFAR-10 ({recipe} recipe)", f"ResNet-14, {norm}, batch {bs}",
                                 "test accuracy", "not run yet",
                                 "—" if original is None else fmt_pct(original),
                                 "—" if original is None else f">= {fmt_pct(original)}",
                                 f"the study has not reached this run; `bash scripts/reproduce_q4.sh "
                                 f"--recipe {recipe}` carries it on"])
                    continue
                runs = groups[(norm, bs, recipe)]
                values = finished(runs, "test_accuracy")
                epochs = sorted({f"{run.summary.get('epochs_run')}/{run.config.get('epochs')}"
                                 for run in runs})
                threads = sorted({str(run.config.get("_provenance", {}).get("torch_threads"))
                                  for run in runs})
                gpus = sorted({run.config.get("_provenance", {}).get("gpu") or "CPU" for run in runs})
                gains = [run.summary["check_gain"] for run in runs if "check_gain" in run.summary]
                check = (f"budget check: the last quarter added {100 * statistics.mean(gains):+.2f} val "
                         f"points; " if gains else "")
                note = (f"epochs run/allowed {', '.join(epochs)}; best epoch "
                        f"{', '.join(str(run.summary.get('best_epoch')) for run in runs)}; {check}"
                        f"{', '.join(gpus)}, {', '.join(threads)} thread(s)")
                rows.append([f"Q4 CIFAR-10 ({recipe} recipe)", f"ResNet-14, {norm}, batch {bs}",
                             "test accuracy",
                             spread_cell(values, fmt_pct) if values
                             else "diverged" if diverged_runs(runs) else "—",
                             "—" if original is None else fmt_pct(original),
                             "—" if original is None else f">= {fmt_pct(original)}", note])
    return rows


def edge_picks(scores: dict[str, dict[float, float]]) -> list[str]:
    """"Norm (lr)" for each norm of a sweep (by norm key) whose pick is the smallest or the largest
    of two or more lrs tried: a better lr may lie beyond it."""
    return [f"{NORM_NAMES[norm]} ({pick(lrs):g})" for norm, lrs in sorted(scores.items())
            if len(lrs) > 1 and pick(lrs) in (min(lrs), max(lrs))]


def converge_sweep_section(sweep: list[RunRecord]) -> list[str]:
    """The converge recipe's learning-rate sweep (the whole wsd rule on a training subset): per norm
    and lr, the best validation accuracy at the end and at an earlier point, the picks at both, the
    epochs and the wall time. The earlier point is the budget check's (the cool-down branched off at
    3/4 of a fixed budget: train.py --budget-check) or, for runs of the plateau rule, the end of the
    constant phase. The two picks agreeing says that the ranking no longer moves with more training."""
    if not sweep:
        return []
    scores = sweep_scores(sweep)
    earlier: dict[str, dict[float, float]] = {}
    epochs: dict[str, dict[float, str]] = {}
    checked = all("check_val_accuracy" in run.summary for run in sweep if not run.summary.get("diverged"))
    for run in sweep:
        norm, lr = run.config["norm"], float(run.config["lr"])
        if "check_val_accuracy" in run.summary:
            score = run.summary["check_val_accuracy"]
            epochs.setdefault(norm, {})[lr] = f"{run.summary['check_epochs']}/{run.summary.get('epochs_run')}"
        else:
            epoch_axis, val = run.series("epoch", "val_accuracy")
            plateau = run.summary.get("cooldown_after_epoch") or (max(epoch_axis) if epoch_axis else 0)
            before = [v for e, v in zip(epoch_axis, val) if e <= plateau]
            score = max(before) if before else -1.0
            epochs.setdefault(norm, {})[lr] = f"{plateau}+{run.summary.get('epochs_run', 0) - plateau}"
        earlier.setdefault(norm, {})[lr] = -1.0 if run.summary.get("diverged") else score
    point = "at the budget check" if checked else "before cool-down"
    grid = sorted({lr for per_norm in scores.values() for lr in per_norm})
    rows, moved, noise = [], [], []
    for norm in [n for n in ORDER if n in scores]:
        cells = []
        for lr in grid:
            if lr not in scores[norm]:
                cells.append("—")
            elif scores[norm][lr] < 0:
                cells.append("diverged")
            else:
                cells.append(f"{100 * scores[norm][lr]:.2f} ({100 * earlier[norm][lr]:.2f}; "
                             f"{epochs[norm][lr]})")
        final_pick, earlier_pick = pick(scores[norm]), pick(earlier[norm])
        rows.append([NORM_NAMES[norm], *cells, f"{final_pick:g}", f"{earlier_pick:g}"])
        if final_pick != earlier_pick:
            moved.append(NORM_NAMES[norm])
            val_images = [run.summary["val_images"] for run in sweep
                          if run.config["norm"] == norm and "val_images" in run.summary]
            noise.append(noise_note(norm, scores[norm], earlier[norm], point, min(val_images, default=0)))
    images = sorted({run.summary["train_images"] for run in sweep if "train_images" in run.summary})
    seconds = [wall_time_s(run) for run in sweep]
    total_h = sum(s for s in seconds if s is not None) / 3600
    edge = edge_picks(scores)
    # The sweep's norms (torch_bn takes bn's pick); fewer than three lrs: its starting grid has not run.
    unfinished = [NORM_NAMES[norm] for norm in ORDER if norm != "torch_bn" and len(scores.get(norm, {})) < 3]
    if checked:
        rule = ("(warm-up, the peak, a linear cool-down over the last fifth of a fixed budget)",
                "the best of the budget check (the cool-down branched off the constant phase as a run "
                "of 3/4 of the budget would have had it), and the check's epochs / the run's")
    else:
        rule = ("(warm-up, the peak until validation accuracy plateaus, the linear cool-down)",
                "the best before the cool-down began, and epochs at the peak + epochs of cool-down")
    lines = ["## Learning-rate sweep of the `converge` recipe\n",
             f"Each norm's peak learning rate for `--recipe converge`, picked on validation accuracy "
             f"(the test split is not scored) from runs of the recipe's whole rule {rule[0]} on "
             f"{'/'.join(f'{i:,}' for i in images)} training images. A cell: best validation accuracy "
             f"(%), then in brackets {rule[1]}. {len(sweep)} run(s), {total_h:.1f} hours of wall time "
             f"added up.\n",
             markdown_table(["normalization", *(f"lr {lr:g}" for lr in grid), "pick", f"pick {point}"],
                            rows), ""]
    lines.append(f"- The pick {point} and at the end " + (
        f"differ for {', '.join(moved)}: the ranking still moved with more training." if moved else
        "agree for every norm: the ranking of the learning rates did not change with more training."))
    lines += [f"  - {text}" for text in noise if text]
    if unfinished:
        one = len(unfinished) == 1
        lines.append(f"- The sweep has not finished: {', '.join(unfinished)} {'has' if one else 'have'} fewer "
                     f"than the three learning rates of {'its' if one else 'their'} starting grid. "
                     f"{'Its pick' if one else 'Their picks'} (if any) {'is' if one else 'are'} provisional, "
                     f"and the table's runs wait for the sweep.")
    if edge:
        lines.append(f"- Picked at an end of the lrs tried, so a better lr may lie beyond it: "
                     f"{', '.join(edge)}.")
    elif not unfinished:
        lines.append("- Every pick lies inside the lrs tried (the grid was widened until it did).")
    return lines + [""]


def noise_note(norm: str, final: dict[float, float], earlier: dict[float, float], point: str,
               val_images: int) -> str:
    """For a norm whose pick moved: how far apart its two picks lie at each point (the end's pick
    ahead at the end, the earlier pick ahead at the earlier point), against two binomial standard
    errors of the best validation accuracy (on `val_images` images): within them, the ranking moved
    inside the noise and the choice between the two lrs barely matters."""
    if not val_images:
        return ""
    final_pick, earlier_pick = pick(final), pick(earlier)
    gaps = [final[final_pick] - final[earlier_pick], earlier[earlier_pick] - earlier[final_pick]]
    best = final[final_pick]
    error = math.sqrt(best * (1 - best) / val_images)
    within = not any(beyond_noise(gap, error) for gap in gaps)
    two_se = 2 * error
    return (f"{NORM_NAMES[norm]}: lr {final_pick:g} leads lr {earlier_pick:g} by {100 * gaps[0]:.2f} points "
            f"at the end, and trails it by {100 * gaps[1]:.2f} {point}, against two standard errors of "
            f"{100 * two_se:.2f} points on {val_images:,} validation images: "
            + ("the ranking moved inside the noise, and the choice between them barely matters." if within
               else "beyond the noise, so the ranking really moved."))


def budget_check_lines(groups, keys) -> list[str]:
    """Fixed-budget runs (train.py --budget-check): per variant, the best validation accuracy of the
    whole budget and of the cool-down branched off at 3/4 of it, and the gain the last quarter
    bought; the budget counts as long enough when no variant gained 0.5 points or more."""
    rows, gains = [], {}
    for key in keys:
        runs = [run for run in groups[key] if "check_gain" in run.summary]
        if not runs:
            continue
        gain = statistics.mean(run.summary["check_gain"] for run in runs)
        gains[NORM_NAMES[key[0]]] = gain
        budgets = sorted({f"{run.summary['check_epochs']} / {run.summary.get('epochs_run')}" for run in runs})
        rows.append([NORM_NAMES[key[0]], ", ".join(budgets), mean_std_cell(runs, "check_val_accuracy"),
                     mean_std_cell(runs, "val_accuracy"), f"{100 * gain:+.2f}"])
    if not rows:
        return []
    slowest = max(gains, key=gains.get)
    verdict = (f"every variant gained less than 0.5 points over the budget's last quarter (the most: "
               f"{slowest}, {100 * gains[slowest]:+.2f}): the budget is long enough by that rule." if
               gains[slowest] < 0.005 else
               f"{', '.join(f'{name} ({100 * gain:+.2f})' for name, gain in gains.items() if gain >= 0.005)} "
               f"gained 0.5 points or more over the budget's last quarter: for them the budget is not long "
               f"enough, and a longer one would likely raise their accuracy.")
    return ["## Budget check\n",
            "Best validation accuracy (%) after the whole budget and after the cool-down branched off its "
            "constant phase as a run of 3/4 of the budget would have had it (train.py `--budget-check`; "
            "validation only), and what the last quarter added (points).\n",
            markdown_table(["normalization", "epochs (check / run)", "val acc at 3/4", "val acc at the end",
                            "gain"], rows), "", f"- {verdict}", ""]


def order_of(groups, keys) -> list[str]:
    """Norms by mean test accuracy, best first (the variants with a finished run)."""
    scored = [(mean_metric(groups[key], "test_accuracy"), key[0]) for key in keys
              if finished(groups[key], "test_accuracy")]
    return [norm for _, norm in sorted(scored, key=lambda item: -item[0])]


def spearman(first: list[str], second: list[str]) -> float | None:
    """Spearman's rank correlation of two orders over the norms they share (None under two)."""
    shared = [norm for norm in first if norm in second]
    n = len(shared)
    if n < 2:
        return None
    a, b = ([norm for norm in order if norm in shared] for order in (first, second))
    return 1 - 6 * sum((a.index(norm) - b.index(norm)) ** 2 for norm in shared) / (n * (n * n - 1))


def budget_ranking_lines(groups, budgets: list[tuple[str, list]]) -> list[str]:
    """The report's ranking beside each budget's (label, keys): test accuracy and rank per norm, then
    how each budget's order compares with the report's and the first budget's, computed."""
    report = sorted(REPORT_TEST_ACCURACY, key=lambda norm: -REPORT_TEST_ACCURACY[norm])
    orders = [(label, order_of(groups, keys), {key[0]: key for key in keys}) for label, keys in budgets]
    norms = [norm for norm in ORDER if any(norm in order for _, order, _ in orders)]
    if not norms:
        return []
    rows = []
    for norm in norms:
        row = [NORM_NAMES[norm], f"{fmt_pct(REPORT_TEST_ACCURACY[norm])} ({report.index(norm) + 1})"]
        for _, order, by_norm in orders:
            row.append(f"{fmt_pct(mean_metric(groups[by_norm[norm]], 'test_accuracy'))} "
                       f"({order.index(norm) + 1})" if norm in order else "—")
        rows.append(row)
    lines = ["## Ranking across budgets\n",
             "Test accuracy (rank among the variants run) in the report and under each budget here.\n",
             markdown_table(["normalization", "report", *(label for label, _, _ in orders)], rows), ""]
    for label, order, _ in orders:
        if len(order) >= 2:
            rho = spearman(order, report)
            lines.append(f"- {label}: best {NORM_NAMES[order[0]]} (the report's best: "
                         f"{NORM_NAMES[report[0]]}); Spearman rank correlation with the report's order "
                         f"{rho:.2f} over {len(order)} variants.")
    (first_label, first, _), rest = orders[0], orders[1:]
    for label, order, _ in rest:
        rho = spearman(order, first)
        if rho is not None:
            here, there = [n for n in order if n in first], [n for n in first if n in order]
            moved = [NORM_NAMES[norm] for norm in here if here.index(norm) != there.index(norm)]
            lines.append(f"- {label} against {first_label}: Spearman {rho:.2f}; "
                         + (f"the variants that change place: {', '.join(moved)}." if moved else
                            "the same order."))
    return lines + [""]


def wall_time_sentence(runs: list[RunRecord]) -> str:
    """The tables' runs: their wall times added up, and the time from the first start to the last end
    (shorter than the sum when runs went side by side; longer when the study stood stopped)."""
    timed = [spans for run in runs if (spans := sittings(run)[0])]
    if not timed:
        return ""
    spans = [span for run_spans in timed for span in run_spans]
    total = sum(end - start for start, end in spans)
    elapsed = max(end for _, end in spans) - min(start for start, _ in spans)
    epoch_times = [f"{NORM_NAMES[norm]} at batch {bs} {statistics.median(times):.0f} s"
                   for run in runs for norm, bs, _ in [run_key(run)]
                   if (times := run.series("epoch", "epoch_time")[1])]
    return (f"Wall time of the {len(timed)} runs of the tables: {total / 3600:.2f} h added up, "
            f"{elapsed / 3600:.2f} h from the first start to the last end."
            + (f" Median epoch time (training and validation): {', '.join(epoch_times)}."
               if epoch_times else "") + "\n")


def data_sentence(runs: list[RunRecord]) -> str:
    datasets = sorted({run.config.get("dataset", "?") for run in runs})
    kind = data_kind(runs)
    sizes = sorted({tuple(run.config.get(f"{split}_images") for split in SPLITS)
                    for run in runs if run.config.get("train_images")})
    size_text = "; ".join(f"{t} train / {v} val / {s} test images" for t, v, s in sizes)
    if kind == "smoke":
        return (f"**Data: built-in smoke data ({', '.join(datasets)}; {size_text}), tiny models and a few "
                f"epochs**, not CIFAR-10: the numbers show the pipeline working, not the study's results.")
    if kind == "mixed":
        return (f"**Data: a mix of built-in smoke data and real data** ({', '.join(datasets)}; {size_text}): "
                f"compare rows with care.")
    return f"Data: {', '.join(datasets)} ({size_text})."


@entry_point
def main(argv=None) -> Path:
    args = parse_args(argv)
    runs = load_runs(str(Path(args.runs_dir) / "q4_normalization" / "*"))
    if not runs:
        raise DataError(f"no Q4 runs with a summary.json under {Path(args.runs_dir) / 'q4_normalization'}; "
                        f"run bash scripts/reproduce_q4.sh first (--smoke for a quick check)")
    groups: dict[tuple[str, int, str], list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(run_key(run), []).append(run)
    if args.recipe == "auto":
        counts = {recipe: sum(len(v) for (_, bs, r), v in groups.items()
                              if r == recipe and bs == args.batch_size)
                  for recipe in ("report", "cpu", "modern")}
        args.recipe = max(counts, key=lambda recipe: counts[recipe])  # max keeps the first on a tie
    out = Path(args.out)
    figure_stem = out.with_suffix("")
    main_keys, small_keys, modern_keys = (
        [(norm, bs, recipe) for norm in ORDER if (norm, bs, recipe) in groups]
        for bs, recipe in ((args.batch_size, args.recipe), (8, args.recipe), (args.batch_size, "modern")))
    depth = sorted({run.config.get("depth") for run in runs if run.config.get("depth")})
    recipe_epochs = sorted({run.config.get("epochs") for run in runs if run_key(run)[2] == args.recipe})

    parts = ["# Q4: normalization layers in a ResNet-(6n+2)\n",
             data_sentence(runs) + "\n",
             f"Main tables: the `{args.recipe}` recipe (q4_normalization/README.md), at most "
             f"{'/'.join(str(e) for e in recipe_epochs)} epochs. "
             f"ResNet-{'/'.join(str(d) for d in depth)}; every accuracy and F1 below comes from a run's best "
             f"checkpoint (highest validation accuracy). A cell is the mean ± sample standard deviation "
             f"over the seeds, or the value alone for one seed. Rendered by `python -m "
             f"q4_normalization.report` from {len(runs)} run folder(s) under `{args.runs_dir}`.\n"]
    pending = [f"{NORM_NAMES[norm]} at batch {bs}" for norm, bs in STUDY_ROWS
               if args.recipe == "cpu" and (norm, bs, "cpu") not in groups]
    if pending:
        parts.append(f"**Not run yet**, {len(pending)} of the study's {len(STUDY_ROWS)} runs: "
                     f"{', '.join(pending)}. `bash scripts/reproduce_q4.sh --recipe cpu` runs them (a "
                     f"stopped study carries on from its last epoch checkpoints).\n")
    if main_keys:
        for split in SPLITS:
            parts += [f"## {split.capitalize()} split, batch {args.batch_size}\n",
                      split_table(groups, main_keys, split, with_report=(split == "test"))]
        parts += ["\n`report test acc` is the original report's test accuracy.\n", "## Comparison\n"]
        parts += [f"- {line}" for line in ranking_paragraphs(groups, main_keys)]
        gaps = [abs(run.summary[f"{s}_micro_f1"] - run.summary[f"{s}_accuracy"])
                for key in main_keys for run in groups[key] for s in SPLITS
                if f"{s}_micro_f1" in run.summary and f"{s}_accuracy" in run.summary]
        if gaps:
            parts.append(f"- Largest |micro F1 - accuracy| over these runs: {max(gaps):.1e}.")
        parts.append("")
        parts += budget_check_lines(groups, main_keys)
        curves = plot_curves(groups, main_keys, Path(f"{figure_stem}_curves.png"))
        quantiles = plot_quantiles(groups, main_keys, Path(f"{figure_stem}_quantiles.png"),
                                   "probe-layer activations: 1st/20th/80th/99th percentiles per epoch")
        parts += ["## Error and loss curves\n",
                  f"![train and validation error and loss of every variant]({curves.name})\n",
                  "## Feature distributions\n",
                  "Percentiles of one fixed normalization layer's output (the probe, train.py "
                  "`--probe-layer`) on a fixed validation batch after every epoch (epoch 0: at "
                  "initialisation), for each variant's first seed.\n",
                  f"![probe-layer quantiles per epoch]({quantiles.name})\n"]
        spread = []
        for key in main_keys:
            low, high = (groups[key][0].series("epoch", name)[1] for name in ("probe_q01", "probe_q99"))
            if low and high:
                spread.append([NORM_NAMES[key[0]], f"{low[0]:.2f} .. {high[0]:.2f}",
                               f"{low[-1]:.2f} .. {high[-1]:.2f}",
                               f"{(high[-1] - low[-1]) / max(high[0] - low[0], 1e-12):.2f}"])
        if spread:
            parts.append(markdown_table(["normalization", "1st..99th pct at init", "1st..99th pct at the end",
                                         "spread end / init"], spread))
    if args.batch_size != 8:
        table, notes = batch_size_table(groups, args.recipe, args.batch_size)
        parts += [f"\n## Batch size {args.batch_size} against 8 (BN and GN)\n",
                  table or "No batch-8 runs were found.\n", *(f"- {note}" for note in notes)]
        if small_keys:
            quantiles8 = plot_quantiles(groups, small_keys, Path(f"{figure_stem}_quantiles_bs8.png"),
                                        "probe-layer percentiles per epoch, batch 8")
            parts.append(f"\n![probe-layer quantiles, batch 8]({quantiles8.name})\n")
    failed = sorted(f"{NORM_NAMES[norm]} (batch {bs}, {recipe} recipe, seed {run.config.get('seed', '?')})"
                    for run in diverged_runs(runs) for norm, bs, recipe in [run_key(run)])
    parts += ["\n## Diverged runs\n", ("These runs stopped on a NaN/inf loss and count as diverged in the "
                                       "tables: " + "; ".join(failed) + ".\n") if failed else "None.\n"]
    sweep = load_runs(str(Path(args.runs_dir) / "q4_lr_sweep" / "q4_normalization" / "*"))
    if sweep:
        budgets = sorted({(run.config.get("epochs"), run.config.get("train_images")) for run in sweep})
        budget_text = "; ".join(f"{epochs} epoch(s) on {images} training images"
                                for epochs, images in budgets)
        parts += ["## Learning-rate sweep\n",
                  f"Validation accuracy (best epoch) of the sweep runs that picked each norm's peak "
                  f"learning rate for the `cpu` recipe ({budget_text}; the test split is not "
                  f"scored). torch's BatchNorm2d takes BatchNorm's pick.\n",
                  sweep_table(sweep_scores(sweep))]
        scores = sweep_scores(sweep)
        edge = edge_picks(scores)
        if edge:
            parts.append(f"Picked at an end of their grid, so a better lr may lie beyond it: "
                         f"{', '.join(edge)}.")
        parts.append("")
    converge_sweep = load_runs(str(Path(args.runs_dir) / "q4_lr_sweep_converge" / "q4_normalization" / "*"))
    parts += converge_sweep_section(converge_sweep)
    sweep = sweep + converge_sweep
    if modern_keys and args.recipe != "modern":
        parts += ["## Modern recipe (`--recipe modern`)\n",
                  split_table(groups, modern_keys, "test", with_report=True)]
        best_modern = max((mean_metric(groups[k], "test_accuracy") or 0.0, k) for k in modern_keys)
        best_report = max(REPORT_TEST_ACCURACY.values())
        parts.append(f"\nBest modern-recipe variant: {NORM_NAMES[best_modern[1][0]]} at "
                     f"{fmt_pct(best_modern[0])}, {'above' if best_modern[0] > best_report else 'not above'} "
                     f"the report's best ({fmt_pct(best_report)}).\n")
    converge_keys = [(norm, args.batch_size, "converge") for norm in ORDER
                     if (norm, args.batch_size, "converge") in groups]
    if converge_keys and args.recipe != "converge":
        converge_runs = [run for key in converge_keys for run in groups[key]]
        parts += ["## Convergence recipe (`--recipe converge`)\n",
                  "One fixed 60-epoch budget for every variant (q4_normalization/README.md, \"The "
                  "convergence recipe\"), each norm at the learning rate its sweep picked.\n",
                  split_table(groups, converge_keys, "test", with_report=True), "",
                  *[f"- {line}" for line in ranking_paragraphs(groups, converge_keys)], ""]
        parts += budget_check_lines(groups, converge_keys)
        curves = plot_curves(groups, converge_keys, Path(f"{figure_stem}_converge_curves.png"))
        parts += [f"![train and validation error and loss, convergence recipe]({curves.name})\n"]
        table, notes = batch_size_table(groups, "converge", args.batch_size)
        if any(key[1] == 8 and key[2] == "converge" for key in groups):
            parts += [f"### Batch size {args.batch_size} against 8 (BN and GN), convergence recipe\n", table,
                      *(f"- {note}" for note in notes), ""]
        parts.append(wall_time_sentence(converge_runs))
        parts += budget_ranking_lines(groups, [(f"`{args.recipe}` recipe", main_keys),
                                               ("`converge` recipe", converge_keys)])
    parts += [wall_time_sentence([run for key in main_keys + small_keys for run in groups[key]]),
              provenance_section(runs + sweep, args.runs_dir)]
    return write_report(out, "\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
