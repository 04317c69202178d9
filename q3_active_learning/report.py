"""Render reports/q3.md from the active-learning runs: test accuracy at every labeled-set size as
mean +/- std over seeds per method, learning curves with bands, and an analysis computed from the
numbers (does Core-set beat random sampling beyond the seed-to-seed spread?).

    python -m q3_active_learning.report --runs-dir runs --out reports/q3.md
    python -m q3_active_learning.report --runs-dir runs/smoke      # after reproduce_q3.sh --smoke

Reads every run folder under <runs-dir>/q3_active_learning/ that finished (has summary.json);
writes the markdown report and one figure per dataset next to it (reports/q3_<dataset>.png).
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections import defaultdict
from pathlib import Path

from common.cli import HelpFormatter, entry_point
from common.errors import DataError
from common.report import (data_kind, load_runs, markdown_table, plot_curves, provenance_section, spread_cell,
                           write_report)

METHOD_ORDER = ("random", "coreset", "entropy", "bald")
DATASET_NAMES = {"cifar10": "CIFAR-10", "flowers102": "Flowers102"}
# The test accuracy (%) at 1,100 labels the best strategy is asked to reach on CIFAR-10.
TARGET_ACCURACY = 45


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--runs-dir", default="runs", help="root folder of the run folders")
    parser.add_argument("--out", default="reports/q3.md", help="markdown report to write")
    return parser.parse_args(argv)


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def collect(runs) -> dict[tuple[str, str], dict[str, dict[int, dict[int, float]]]]:
    """curves[(dataset, recipe)][method][seed] = {labeled size: test accuracy}."""
    curves: dict = defaultdict(lambda: defaultdict(dict))
    for run in runs:
        summary = run.summary
        if not summary.get("labeled_sizes"):
            continue
        key = (summary["dataset"], summary.get("recipe", "report"))
        curves[key][summary["method"]][summary["seed"]] = dict(
            zip(summary["labeled_sizes"], summary["test_accuracy_curve"]))
    return curves


def runs_of(runs, dataset: str, recipe: str, method: str) -> list:
    return sorted((r for r in runs if (r.summary.get("dataset"), r.summary.get("recipe", "report"),
                                       r.summary.get("method")) == (dataset, recipe, method)),
                  key=lambda r: r.summary["seed"])


def episode_training_figure(runs, out: Path) -> str | None:
    """Training accuracy per epoch inside every episode of the lowest seed's run, one line per
    labeled-set size (as the report logged each episode's training)."""
    if not runs:
        return None
    run = runs[0]
    series = {}
    for record in run.metrics:
        if "epoch_train_accuracy" in record:
            xs, ys = series.setdefault(f"{record['labeled']} labels", ([], []))
            xs.append(record["epoch"])
            ys.append(100 * record["epoch_train_accuracy"])
    if not series:
        return None
    path = plot_curves(series, out, title=f"{run.name}: training accuracy per epoch in each episode",
                       ylabel="training accuracy (%, dropout on)")
    return path.name


def class_balance_rows(runs: dict[str, list]) -> list[list]:
    """Per method: the labeled set's class counts at the last episode (lowest seed): the smallest
    and largest class and the normalised entropy of the class distribution (1 = balanced)."""
    rows = []
    for method in runs:
        counts = next((r.summary.get("labeled_class_counts") for r in runs[method]
                       if r.summary.get("labeled_class_counts")), None)
        if not counts:
            continue
        total = sum(counts)
        shares = [c / total for c in counts if c]
        balance = -sum(p * math.log(p) for p in shares) / math.log(len(counts))
        names = runs[method][0].summary.get("class_names") or list(range(len(counts)))
        low = min(range(len(counts)), key=counts.__getitem__)
        high = max(range(len(counts)), key=counts.__getitem__)
        rows.append([method, total, f"{names[low]} ({counts[low]})", f"{names[high]} ({counts[high]})",
                     f"{balance:.3f}"])
    return rows


def cell(values: list[float]) -> str:
    return spread_cell(values, lambda value: f"{100 * value:.2f}")


def compare(first: dict[int, dict[int, float]], second: dict[int, dict[int, float]],
            sizes: list[int]) -> list[dict]:
    """Per labeled size: mean accuracies of two methods over the seeds both ran, the paired
    difference (first - second) per seed, and the larger of the two methods' seed spreads."""
    rows = []
    seeds = sorted(set(first) & set(second))
    for size in sizes:
        paired = [(first[s][size], second[s][size]) for s in seeds if size in first[s] and size in second[s]]
        if not paired:
            continue
        a, b = [p[0] for p in paired], [p[1] for p in paired]
        difference = [x - y for x, y in paired]
        rows.append({"size": size, "seeds": len(paired), "first": mean_std(a), "second": mean_std(b),
                     "difference": mean_std(difference),
                     "spread": max(mean_std(a)[1], mean_std(b)[1])})
    return rows


def verdict(rows: list[dict]) -> tuple[list[int], list[int], list[int]]:
    """Sizes where the first method is ahead by more than the seed spread, behind by more, or
    within it. With one seed there is no spread to compare with: every size is 'within'."""
    ahead, behind, within = [], [], []
    for row in rows:
        gap, spread = row["difference"][0], row["spread"]
        if row["seeds"] > 1 and gap > spread:
            ahead.append(row["size"])
        elif row["seeds"] > 1 and gap < -spread:
            behind.append(row["size"])
        else:
            within.append(row["size"])
    return ahead, behind, within


def sizes_text(sizes: list[int]) -> str:
    return ", ".join(str(s) for s in sizes) if sizes else "none"


def display_name(dataset: str, runs) -> str:
    """'CIFAR-10', or 'builtin10 (smoke stand-in for CIFAR-10)' when the runs used other data."""
    name = DATASET_NAMES.get(dataset, dataset)
    used = sorted({r.config.get("data", dataset) for r in runs if r.summary.get("dataset") == dataset}
                  - {dataset})
    return f"{', '.join(used)} (smoke stand-in for {name})" if used else name


def analyse(name: str, methods: dict[str, dict[int, dict[int, float]]], sizes: list[int]) -> str:
    """The analysis paragraph of one dataset (shown as `name`), every conclusion read off the
    numbers."""
    lines = []
    # The first size is the shared initial pool: every method trains on the same images there.
    queried = sizes[1:]
    if "coreset" in methods and "random" in methods and queried:
        rows = compare(methods["coreset"], methods["random"], queried)
        ahead, behind, within = verdict(rows)
        seeds = min(row["seeds"] for row in rows) if rows else 0
        final = rows[-1] if rows else None
        if seeds < 2:
            lines.append(f"**{name}: Core-set vs random.** {'No' if seeds == 0 else 'Only one'} "
                         f"seed ran both methods, so "
                         f"there is no seed-to-seed spread to judge a difference against.")
        elif ahead and not behind and len(ahead) > len(within):
            lines.append(f"**{name}: Core-set beats random sampling beyond the seed spread** at "
                         f"{len(ahead)} of {len(rows)} queried labeled-set sizes ({sizes_text(ahead)}).")
        elif behind and not ahead and len(behind) > len(within):
            lines.append(f"**{name}: Core-set falls behind random sampling beyond the seed spread** "
                         f"at {len(behind)} of {len(rows)} queried sizes ({sizes_text(behind)}).")
        else:
            lines.append(f"**{name}: Core-set does not beat random sampling beyond the seed spread "
                         f"at this budget**: ahead by more than the spread at {sizes_text(ahead)}, "
                         f"behind by more at {sizes_text(behind)}, within it at {sizes_text(within)} "
                         f"(of {len(rows)} queried sizes).")
        if final is not None:
            gap, gap_std = final["difference"]
            spread = (f"paired difference {100 * gap:+.2f} ± {100 * gap_std:.2f} points over "
                      f"{final['seeds']} seeds; larger method spread {100 * final['spread']:.2f}"
                      if final["seeds"] > 1 else f"difference {100 * gap:+.2f} points, one seed")
            lines.append(f"At the final {final['size']} labels Core-set reaches "
                         f"{100 * final['first'][0]:.2f}% and random {100 * final['second'][0]:.2f}% "
                         f"({spread}).")
        mean_gap = statistics.fmean(row["difference"][0] for row in rows) if rows else 0.0
        lines.append(f"Averaged over the queried sizes, Core-set minus random is "
                     f"{100 * mean_gap:+.2f} points.")
    # Which method is best at the largest budget, by mean accuracy.
    final_size = sizes[-1]
    finals = {method: mean_std([curve[final_size] for curve in seeds.values() if final_size in curve])
              for method, seeds in methods.items()
              if any(final_size in curve for curve in seeds.values())}
    if finals:
        ranking = sorted(finals, key=lambda m: -finals[m][0])
        best, runner_up = ranking[0], (ranking[1] if len(ranking) > 1 else None)
        text = (f"At {final_size} labels the best mean accuracy is {best}'s "
                f"{100 * finals[best][0]:.2f}%")
        if runner_up is not None:
            margin = finals[best][0] - finals[runner_up][0]
            spread = max(finals[best][1], finals[runner_up][1])
            seeds = min(len(methods[best]), len(methods[runner_up]))
            judged = (f"{'more' if margin > spread else 'not more'} than the larger seed spread, "
                      f"{100 * spread:.2f}" if seeds > 1 else "one seed: no spread to judge it by")
            text += f", {100 * margin:.2f} points above {runner_up} ({judged})"
        lines.append(text + "; ranking: " + " > ".join(ranking) + ".")
    return " ".join(lines)


def selection_seconds(runs) -> float:
    """Mean seconds per query episode (episode 0 queries nothing) over the runs."""
    per_run = [r.summary["selection_seconds_total"] / max(1, r.summary["episodes"] - 1) for r in runs]
    return statistics.fmean(per_run) if per_run else float("nan")


def recipe_line(summary: dict) -> str:
    return (f"Training per episode: {summary.get('epochs', 10)} epochs"
            + (", random crop and flip of the labeled images" if summary.get("augment")
               else ", no augmentation")
            + ".")


def recipe_scores(runs, dataset: str) -> dict[str, float | None]:
    """Per training recipe of `dataset`: random sampling's mean final validation accuracy (None
    where its runs have no validation split)."""
    scores: dict[str, float | None] = {}
    recipes = {r.summary.get("recipe", "report") for r in runs if r.summary.get("dataset") == dataset}
    for recipe in sorted(recipes):
        val = [r.summary["final_val_accuracy"] for r in runs_of(runs, dataset, recipe, "random")
               if r.summary.get("final_val_accuracy") is not None]
        scores[recipe] = statistics.fmean(val) if val else None
    return scores


def chosen_recipe(runs, dataset: str) -> str | None:
    """The recipe with the higher mean final validation accuracy of random sampling (the baseline
    every strategy is compared with), chosen without the test split; None when fewer than two
    recipes ran or any of them has no validation score."""
    scores = recipe_scores(runs, dataset)
    if len(scores) < 2 or any(score is None for score in scores.values()):
        return None
    return max(scores, key=scores.get)


def recipe_choice(runs) -> list[str]:
    """Report lines: per dataset, the recipes' validation and test accuracy and the one chosen on
    validation (chosen_recipe); runs made before the validation split existed cannot take part."""
    lines = []
    for dataset in sorted({r.summary.get("dataset") for r in runs}):
        scores = recipe_scores(runs, dataset)
        recipes = sorted(scores)
        if len(recipes) < 2:
            continue
        rows = []
        for recipe in recipes:
            chosen_runs = runs_of(runs, dataset, recipe, "random")
            val = [r.summary["final_val_accuracy"] for r in chosen_runs
                   if r.summary.get("final_val_accuracy") is not None]
            test = [r.summary["final_test_accuracy"] for r in chosen_runs]
            rows.append([recipe, len(chosen_runs), cell(val) if val else "not measured",
                         cell(test) if test else "—"])
        name = display_name(dataset, runs)
        lines += [f"## {name}: training recipe chosen on validation\n",
                  markdown_table(["recipe", "random runs", "final val acc (%)", "final test acc (%)"], rows)]
        best = chosen_recipe(runs, dataset)
        if best is not None:
            lines.append(f"Chosen on validation accuracy: the {best} recipe; the test column is reported, "
                         f"not used.\n")
        else:
            missing = ", ".join(recipe for recipe in recipes if scores[recipe] is None)
            lines.append(f"No recipe is chosen: the runs of {missing} have no validation split (made "
                         f"before `--val-size` existed), and choosing on the test column would make its "
                         f"figure an optimistic one.\n")
    return lines


def data_statement(runs) -> str:
    kind = data_kind(runs)
    pairs = sorted({(r.summary.get("dataset"), r.config.get("data", r.summary.get("data"))) for r in runs})
    used = ", ".join(f"{data} for {dataset}" if data != dataset else str(dataset) for dataset, data in pairs)
    if kind == "smoke":
        return (f"**Data: built-in smoke data** ({used}), tiny pools and budgets from `--smoke`. "
                f"These numbers check the pipeline end to end; they say nothing about CIFAR-10 or "
                f"Flowers102. Run `bash scripts/reproduce_q3.sh` with the real data for the study.")
    if kind == "real":
        return f"**Data: the real datasets** ({used})."
    return f"**Data: a mix of smoke and real runs** ({used}); read each table with that in mind."


@entry_point
def main(argv=None) -> str:
    args = parse_args(argv)
    runs = load_runs(str(Path(args.runs_dir) / "q3_active_learning" / "*"))
    curves = collect(runs)
    if not curves:
        raise DataError(f"no finished q3 runs under {Path(args.runs_dir) / 'q3_active_learning'}; "
                        f"run `bash scripts/reproduce_q3.sh --smoke` (or the full script) first")
    out = Path(args.out)
    parts = ["# Q3: Active learning: Core-set versus random sampling (and entropy, BALD)\n",
             data_statement(runs) + "\n",
             "Test accuracy (%) after training from scratch on each labeled-set size: mean ± "
             "sample std over seeds (n = number of seeds; one seed: its value alone). Every method "
             "starts from the same seeded initial pool, so the first row is shared. Rendered by "
             "`q3_active_learning/report.py` from the runs' summary.json files.\n",
             "The verdicts: at one labeled-set size Core-set is ahead of (behind) random beyond the "
             "seed spread when its mean accuracy is higher (lower) by more than the larger of the two "
             "methods' standard deviations over seeds; it beats random at the budget when that holds "
             "at most of the queried sizes (after the shared first one) and it is never behind "
             "by that much.\n"]
    for dataset, recipe in sorted(curves):
        methods = curves[(dataset, recipe)]
        name = display_name(dataset, runs)
        ordered = [m for m in METHOD_ORDER if m in methods] + sorted(set(methods) - set(METHOD_ORDER))
        sizes = sorted({size for seeds in methods.values() for curve in seeds.values() for size in curve})
        rows = [[size] + [cell([curve[size] for curve in methods[m].values() if size in curve])
                          for m in ordered] for size in sizes]
        series, bands = {}, {}
        for method in ordered:
            xs = [s for s in sizes if any(s in curve for curve in methods[method].values())]
            stats = [mean_std([curve[s] for curve in methods[method].values() if s in curve]) for s in xs]
            series[method] = (xs, [100 * m for m, _ in stats])
            bands[method] = ([100 * (m - d) for m, d in stats], [100 * (m + d) for m, d in stats])
        stem = f"{out.stem}_{dataset}" + ("" if recipe == "report" else f"_{recipe}")
        figure = plot_curves(series, out.parent / f"{stem}.png",
                             title=f"{name} ({recipe}): test accuracy vs labels (mean ± std over seeds)",
                             xlabel="labeled images", ylabel="test accuracy (%)", bands=bands)
        by_method = {method: runs_of(runs, dataset, recipe, method) for method in ordered}
        timing = [[method, f"{selection_seconds(by_method[method]):.2f}"] for method in ordered]
        parts += [f"## {name}, {recipe} recipe\n", recipe_line(by_method[ordered[0]][0].summary) + "\n",
                  markdown_table(["labeled"] + ordered, rows),
                  f"![learning curves]({figure.name})\n",
                  analyse(name, methods, sizes) + "\n",
                  "Class balance of the labeled set after the last episode (lowest seed; normalised "
                  "entropy of the class shares, 1 = every class equally often):\n",
                  markdown_table(["method", "labeled", "rarest class", "commonest class", "balance"],
                                 class_balance_rows(by_method)),
                  "Mean selection time per query episode (seconds, scoring the pool plus picking):\n",
                  markdown_table(["method", "seconds"], timing)]
        training = [(method, episode_training_figure(by_method[method],
                                                     out.parent / f"{stem}_{method}_episodes.png"))
                    for method in ordered]
        parts += [f"![{method}: training per episode]({path})" for method, path in training if path]
        parts.append("")
    parts += recipe_choice(runs)
    parts.append(provenance_section(runs, args.runs_dir))
    text = "\n".join(parts)
    write_report(out, text)
    return text


def headline_rows(runs_dir: str | Path) -> list[list]:
    """results/README.md rows: [study, row, measure, ours, original, target]."""
    runs = load_runs(str(Path(runs_dir) / "q3_active_learning" / "*"))
    curves = collect(runs)
    rows = []
    for (dataset, recipe), methods in sorted(curves.items()):
        chosen = ", chosen on validation" if recipe == chosen_recipe(runs, dataset) else ""
        for method in [m for m in METHOD_ORDER if m in methods]:
            final = max(size for curve in methods[method].values() for size in curve)
            rows.append([f"Q3 {DATASET_NAMES.get(dataset, dataset)} ({recipe} recipe{chosen})", method,
                         f"test accuracy (%) at {final} labels",
                         cell([curve[final] for curve in methods[method].values() if final in curve]),
                         "—", f">= {TARGET_ACCURACY:.0f} (best method)"])
    return rows


if __name__ == "__main__":
    main()
