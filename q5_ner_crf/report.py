"""Render reports/q5.md from the Q5 runs: report 1's tagger rows on GMB per training recipe beside
the original report's test micro-F1, per-type tables, the comparisons (characters, layer norm,
CRF), validation F1 and loss curves, and report 2's multilingual MultiCoNER II table.

    python -m q5_ner_crf.report --runs-dir runs --out reports/q5.md
    python -m q5_ner_crf.report --runs-dir results/runs --out results/q5.md

Reads every `<runs-dir>/q5_ner_crf/*/summary.json`. Runs of the same data, model and recipe with
different seeds are aggregated (mean ± sample std, n shown); per-type tables and curves show the
lowest seed. A comparison gets a verdict only between rows of the same recipe and budget (epochs
allowed, early-stopping patience) that both have at least two seeds: see VERDICT_RULE.
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path
from typing import Mapping, Sequence

from common.cli import HelpFormatter, entry_point
from common.errors import DataError
from common.report import (SEED_VERDICT_RULE, RunRecord, beyond_noise, data_kind, fmt, fmt_pct, load_runs,
                           markdown_table, plot_curves, provenance_section, seed_verdict, spread_cell,
                           write_report)
from q5_ner_crf.model import model_variant
from q5_ner_crf.train import RECIPES

# Report 1's rows: (section, variant as in train.py's run names, description, original test micro-F1)
ROWS = (
    ("2.1.1", "random", "BiLSTM, random embeddings", 0.66),
    ("2.1.2", "glove", "BiLSTM, GloVe (fine-tuned)", 0.74),
    ("2.1.3", "glove-char", "BiLSTM, GloVe + character BiLSTM", 0.68),
    ("2.1.4", "glove-char-ln-hidden", "LayerNorm-BiLSTM (the report's: LN on h_t), GloVe + characters",
     0.75),
    ("2.1.4'", "glove-char-ln-gates",
     "LayerNorm-BiLSTM (Ba et al.: LN on gates and cell), GloVe + characters", None),
    ("2.2", "random-crf", "BiLSTM-CRF, random embeddings", 0.69),
    ("new", "glove-char-ln-gates-crf", "LayerNorm-BiLSTM-CRF (Ba et al.), GloVe + characters", None),
)
# Each row's original test micro-F1 (None for the rows the report did not have), in ROWS order.
ORIGINALS = {variant: original for _, variant, _, original in ROWS}
# (title, variant with the feature, variant without it, what the feature is)
COMPARISONS = (
    ("Characters vs GloVe alone", "glove-char", "glove", "character-BiLSTM features"),
    ("Layer normalisation vs none", "glove-char-ln-hidden", "glove-char", "LayerNorm on h_t"),
    ("The report's LayerNorm vs Ba et al.'s", "glove-char-ln-hidden", "glove-char-ln-gates",
     "LayerNorm on h_t in place of LayerNorm on the gates and cell"),
    ("CRF vs BiLSTM (softmax)", "random-crf", "random", "a CRF output layer"),
    ("CRF on the full model", "glove-char-ln-gates-crf", "glove-char-ln-gates", "a CRF output layer"),
)
VERDICT_RULE = ("a comparison is judged only between rows of the same recipe and budget (epochs allowed, "
                f"early-stopping patience): {SEED_VERDICT_RULE}")
# What the modern recipe is asked to reach: every row this far above the original report, and the
# best row at least BEST_TARGET (test micro-F1).
TARGET_MARGIN, BEST_TARGET = 0.05, 0.855
# Recipes whose GMB table lists every row of report 1 (a row without a run says so); the other
# recipes (literature) were run on the headline row only, and their tables list the rows run.
FULL_TABLE_RECIPES = ("modern", "report")
# CoNLL-2003 (the supervised upper bound of Q1's weak-label taggers): the goal for the GloVe +
# characters + CRF tagger, set against Lample et al. 2016's 90.94 (BiLSTM-CRF, 100-d embeddings).
CONLL_TARGET, LAMPLE_2016_F1 = 0.91, 0.9094


def is_report1(data: str) -> bool:
    """Report 1's table is GMB's (and the built-in corpus in GMB tags); CoNLL-2003 and MultiCoNER
    have sections of their own."""
    return data != "conll2003" and not data.startswith("multiconer")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--runs-dir", default="runs", help="root of the run folders (holds q5_ner_crf/)")
    parser.add_argument("--out", default="reports/q5.md", help="markdown file to write")
    return parser.parse_args(argv)


def variant_of(run: RunRecord) -> str:
    """The run's model flags as in train.py's run names (read from its summary, not its name)."""
    s = run.summary
    return model_variant(s.get("embeddings", "random"), s.get("char"), s.get("layer_norm"), s.get("crf"),
                         s.get("unidirectional"))


# Settings a run may change within its recipe (--no-casing, --clip-norm 5, ...); a run that departs
# from its recipe in one of them is a row of its own, named after the departures. Runs recorded
# before a setting existed ran as their recipe (without it).
RECIPE_SETTINGS = {"casing": "casing", "iobes": "IOBES", "locked_dropout": "locked dropout",
                   "clip_norm": "clip"}


def recipe_of(run: RunRecord) -> str:
    """The run's recipe, with its departures from the recipe's settings: `literature`,
    `literature (no casing, clip 5)`, `modern (+IOBES)`."""
    recipe = run.summary.get("recipe", "report")
    defaults = RECIPES.get(recipe, {})
    departures = []
    for key, name in RECIPE_SETTINGS.items():
        value = run.config.get(key)
        if key not in defaults or value is None or value == defaults[key]:
            continue
        if isinstance(value, bool):
            departures.append(f"+{name}" if value else f"no {name}")
        else:
            departures.append(f"{name} {value:g}")
    return recipe + (f" ({', '.join(departures)})" if departures else "")


def data_of(run: RunRecord) -> str:
    s = run.summary
    if s.get("dataset") == "multiconer":
        return f"multiconer-{s.get('lang')}-{s.get('granularity')}"
    return s.get("dataset", "?")


class Row:
    """The runs of one (data, variant, recipe) over seeds: means of summary figures, their
    spread, and the lowest seed's run for the per-type tables and curves."""

    def __init__(self, runs: Sequence[RunRecord]):
        self.runs = sorted(runs, key=lambda run: run.summary.get("seed", 0))
        self.first = self.runs[0]

    def values(self, key: str) -> list[float]:
        return [run.summary[key] for run in self.runs if run.summary.get(key) is not None]

    def mean(self, key: str) -> float | None:
        values = self.values(key)
        return statistics.fmean(values) if values else None

    def cell(self, key: str) -> str:
        return spread_cell(self.values(key))

    @property
    def summary(self) -> dict:
        return self.first.summary

    @property
    def budgets(self) -> set[tuple]:
        """(recipe, epochs allowed, patience) of each run, as the runs recorded them."""
        return {(run.summary.get("recipe", "report"), run.summary.get("epochs"), run.config.get("patience"))
                for run in self.runs}


def group_runs(runs: Sequence[RunRecord]) -> dict[tuple[str, str, str], Row]:
    """{(data, variant, recipe): Row}. Runs trained on a --train-file (Q1's weak labels) are Q1's
    rows and left out."""
    groups: dict[tuple[str, str, str], list[RunRecord]] = {}
    for run in runs:
        if run.summary.get("train_file"):
            continue
        key = (data_of(run), variant_of(run), recipe_of(run))
        groups.setdefault(key, []).append(run)
    return {key: Row(members) for key, members in sorted(groups.items())}


def report1_tables(rows: Mapping[tuple[str, str, str], Row]) -> dict[tuple[str, str], dict[str, Row]]:
    """Report 1's tables, {(data, recipe): {variant: Row}}, sorted by data then recipe name
    (literature, modern, report)."""
    tables: dict[tuple[str, str], dict[str, Row]] = {}
    for (data, variant, recipe), row in sorted(rows.items()):
        if is_report1(data):
            tables.setdefault((data, recipe), {})[variant] = row
    return dict(sorted(tables.items()))


def points(difference: float) -> float:
    """A difference of two F1 fractions in points, rounded as printed (verdicts match the text)."""
    return round(100 * difference, 1)


def budget_text(budget: tuple) -> str:
    recipe, epochs, patience = budget
    stop = f", early stop after {patience}" if patience else ", no early stop" if patience == 0 else ""
    return f"{recipe} recipe, at most {epochs} epochs{stop}"


def comparability(first: Row, second: Row) -> str | None:
    """None when the two rows share one recipe and budget, else why they cannot be compared."""
    if len(first.budgets) == 1 and first.budgets == second.budgets:
        return None
    describe = ("; ".join(budget_text(b) for b in sorted(row.budgets, key=str)) for row in (first, second))
    return "not comparable, the runs differ in budget ({} against {})".format(*describe)


def data_description(runs: list[RunRecord]) -> str:
    sources = sorted({run.summary.get("data_source", "?") for run in runs})
    used = {"smoke": "**built-in smoke data** (template sentences and tiny models, for a check that "
                     "everything runs; the numbers say nothing about GMB)",
            "mixed": "**a mix of built-in smoke data and real data** (compare rows with care)",
            "real": "**the real data**"}[data_kind(runs)]
    return f"These runs used {used}: " + "; ".join(f"`{s}`" for s in sources) + "."


def report1_table(rows: Mapping[str, Row], recipe: str) -> str:
    table = []
    for section, variant, description, original in ROWS:
        row = rows.get(variant)
        original_cell = fmt(original, 2) if original else "—"
        if row is None:
            if recipe in FULL_TABLE_RECIPES:
                table.append([section, description, "missing run", original_cell, *["—"] * 7])
            continue
        mean = row.mean("test_f1")
        gap = f"{points(mean - original):+.1f}" if original else "—"
        table.append([section, description, row.cell("test_f1"), original_cell, gap,
                      row.cell("test_precision"), row.cell("test_recall"), row.cell("test_weighted_f1"),
                      row.cell("test_macro_f1"), row.cell("val_f1"), epochs_cell(row)])
    headers = ["row", "model", "test micro-F1", "original", "points vs original", "test P", "test R",
               "test weighted F1", "test macro-F1", "val micro-F1", "epochs: best / run"]
    text = markdown_table(headers, table, align=["l", "l"] + ["r"] * 9)
    if recipe == "modern":
        text += "\n" + target_verdict(rows) + "\n"
    elif recipe not in FULL_TABLE_RECIPES and best_on_validation(rows):
        text += "\n" + f"Target: {best_row_verdict(rows)}." + "\n"
    return text


def epochs_cell(row: Row) -> str:
    """The kept (best validation) epoch and the epochs run of each seed, lowest seed first, and the
    most the runs were allowed (each value once)."""
    runs = ", ".join(f"{run.summary['best_epoch']}/{run.summary.get('epochs_run', run.summary['epochs'])}"
                     for run in row.runs)
    allowed = ", ".join(str(epochs) for epochs in sorted({run.summary["epochs"] for run in row.runs}))
    return f"{runs} (max {allowed})"


def target_verdict(rows: Mapping[str, Row]) -> str:
    """Whether every row beats the original by TARGET_MARGIN and the best reaches BEST_TARGET."""
    checks = [(variant, rows[variant].mean("test_f1"), original) for _, variant, _, original in ROWS
              if original and variant in rows]
    short = [f"`{variant}` ({points(mean - original):+.1f})" for variant, mean, original in checks
             if mean < original + TARGET_MARGIN]
    margin = (f"every original row beaten by at least {points(TARGET_MARGIN):.0f} points: "
              + ("**yes**" if not short and len(checks) == 5 else "**no** (" + (", ".join(short) or
                                                                           "rows missing") + ")"))
    return f"Targets: {margin}; {best_row_verdict(rows)}."


def best_row_verdict(rows: Mapping[str, Row]) -> str:
    """The best row on validation micro-F1, its test micro-F1 and BEST_TARGET reached or missed,
    with the gap against the seed noise."""
    best_variant = best_on_validation(rows)
    chosen = rows[best_variant]
    best = chosen.mean("test_f1")
    return (f"the best row on validation micro-F1, `{best_variant}` (val "
            f"{fmt(chosen.mean('val_f1'))}), has test micro-F1 {chosen.cell('test_f1')}: it "
            f"{'**reaches**' if best >= BEST_TARGET else '**misses**'} {BEST_TARGET}"
            f"{target_noise(chosen.values('test_f1'), BEST_TARGET)}"
            + ("" if best >= BEST_TARGET else ". " + shortfall(chosen)[:-1]))


def best_on_validation(rows: Mapping[str, Row]) -> str | None:
    """The variant with the highest mean validation micro-F1 (never test), among rows that recorded
    one; None when none did."""
    scored = [variant for variant in rows if rows[variant].mean("val_f1") is not None]
    return max(scored, key=lambda variant: rows[variant].mean("val_f1")) if scored else None


def target_noise(values: Sequence[float], target: float) -> str:
    """The mean's distance to a fixed target and whether it is beyond the seed noise (two standard
    errors of the mean, sample std over the seeds), as a parenthesis for the target sentence. Both
    are printed to 0.01 points; when they print alike the gap is called at the edge of the noise."""
    difference = 100 * (statistics.fmean(values) - target)
    if len(values) < 2:
        return (f" ({difference:+.2f} points; one seed: no measured spread to say whether that is "
                f"beyond seed noise)")
    noise = 2 * 100 * statistics.stdev(values) / math.sqrt(len(values))
    if f"{abs(difference):.2f}" == f"{noise:.2f}":
        where = "at the edge of"
    else:
        where = "beyond" if beyond_noise(difference, noise / 2) else "within"
    return (f" ({difference:+.2f} points over {len(values)} seeds, {where} the seed noise: "
            f"two standard errors of the mean are {noise:.2f} points)")


def per_type_table(rows: Mapping[str, Row]) -> str:
    present = [(variant, rows[variant].summary) for _, variant, _, _ in ROWS if variant in rows]
    types = sorted({t for _, s in present for t in s.get("per_class", {}).get("test", {})})
    table = []
    for name in types:
        cells = [s["per_class"]["test"].get(name, {}).get("f1") for _, s in present]
        support = next((s["per_class"]["test"][name]["support"] for _, s in present
                        if name in s["per_class"]["test"]), None)
        table.append([name, support, *cells])
    return markdown_table(["type", "test support", *[variant for variant, _ in present]], table)


def comparison(title: str, with_feature: Row | None, without: Row | None, with_name: str,
               without_name: str, feature: str) -> str:
    """One comparison paragraph, every claim from the two rows' numbers."""
    if with_feature is None or without is None:
        missing = [name for name, row in ((with_name, with_feature), (without_name, without)) if row is None]
        return (f"**{title}** (`{with_name}` vs `{without_name}`): not available, the run(s) "
                f"{', '.join(missing)} are missing.\n")
    a, b = with_feature.mean("test_f1"), without.mean("test_f1")
    figures_ab = f"{fmt(a)} vs {fmt(b)}, {points(a - b):+.1f} points"
    unlike = comparability(with_feature, without)
    if unlike:
        return (f"**{title}** (`{with_name}` vs `{without_name}`): {unlike}; test micro-F1 {figures_ab}, "
                "printed for the record, no verdict.\n")
    result = seed_verdict(with_feature.values("test_f1"), without.values("test_f1"))
    budget = budget_text(next(iter(with_feature.budgets)))
    if result == "one seed":
        single = [f"`{name}`" for name, row in ((with_name, with_feature), (without_name, without))
                  if len(row.runs) < 2]
        one_seed = "has one seed" if len(single) == 1 else "have one seed each"
        text = (f"adding {feature}: test micro-F1 {figures_ab} (both {budget}, seeds "
                f"{len(with_feature.runs)} and {len(without.runs)}); **cannot judge**: "
                f"{' and '.join(single)} {one_seed}, so no measured spread")
    elif result == "no clear difference":
        text = (f"adding {feature} makes **no clear difference** to test micro-F1 ({figures_ab}; "
                f"both {budget}, seeds {len(with_feature.runs)} and {len(without.runs)})")
    else:
        text = (f"adding {feature} makes test micro-F1 **{result}**: {figures_ab} (both {budget}, "
                f"seeds {len(with_feature.runs)} and {len(without.runs)})")
    precision = points(with_feature.mean("test_precision") - without.mean("test_precision"))
    recall = points(with_feature.mean("test_recall") - without.mean("test_recall"))
    text += f"; precision {precision:+.1f} points, recall {recall:+.1f} points"
    types_a = with_feature.summary.get("per_class", {}).get("test", {})
    types_b = without.summary.get("per_class", {}).get("test", {})
    changes = {name: types_a[name]["f1"] - types_b[name]["f1"] for name in types_a if name in types_b}
    if changes:
        best, worst = max(changes, key=changes.get), min(changes, key=changes.get)
        gain = (f"the largest gain is on `{best}` ({points(changes[best]):+.1f} points)"
                if points(changes[best]) > 0 else "no type gains")
        loss = (f"the largest loss on `{worst}` ({points(changes[worst]):+.1f} points)"
                if points(changes[worst]) < 0 else "no type loses")
        text += f". By type, {gain} and {loss}"
    original_a, original_b = ORIGINALS.get(with_name), ORIGINALS.get(without_name)
    if original_a is not None and original_b is not None:
        # The original report gives one figure per row and no spread: its sign is quoted, not judged.
        text += (f". In the original report the same change gave {original_a:.2f} vs {original_b:.2f} "
                 f"({points(original_a - original_b):+.1f} points)")
        if result in ("better", "worse"):
            direction = "better" if original_a > original_b else "worse"
            text += f"; the direction here {'agrees' if direction == result else 'does not agree'}"
    return f"**{title}** (`{with_name}` vs `{without_name}`): {text}.\n"


def figures(rows: Mapping[str, Row], out: Path, stem: str) -> list[str]:
    """Validation F1 and training / validation loss per epoch (lowest seed of each row)."""
    present = {variant: rows[variant].first for _, variant, _, _ in ROWS if variant in rows}
    lines = []
    f1 = {name: run.series("epoch", "val_f1") for name, run in present.items()}
    losses = {}
    for name, run in present.items():
        losses[f"{name} train"] = run.series("epoch", "train_loss")
        losses[f"{name} val"] = run.series("epoch", "val_loss")
    plots = ((f1, "val_f1", "Validation entity micro-F1 per epoch", "val micro-F1"),
             (losses, "loss", "Loss per token, training and validation", "loss"))
    for series, suffix, title, ylabel in plots:
        series = {name: xy for name, xy in series.items() if xy[0]}
        if series:
            path = plot_curves(series, out.parent / f"q5_{suffix}_{stem}.png", title=title, ylabel=ylabel)
            lines.append(f"![{title}]({path.name})")
    return lines


def seconds_per_epoch(row: Row) -> float | None:
    """Mean seconds per epoch (training and the validation pass) over the row's runs."""
    times = [m["epoch_time"] for run in row.runs for m in run.metrics if m.get("epoch_time") is not None]
    return statistics.fmean(times) if times else None


def conll_section(rows: Mapping[tuple[str, str, str], Row]) -> list[str]:
    """CoNLL-2003 taggers on the gold training labels (Q1's upper bound): per-type test F1, the
    verdict against CONLL_TARGET with what falls short, and the ablation of each recipe on
    validation (rows that undo one of the recipe's settings)."""
    here = {(variant, recipe): row for (data, variant, recipe), row in rows.items() if data == "conll2003"}
    if not here:
        return []
    table = []
    for (variant, recipe), row in here.items():
        s = row.summary
        per_type = [s["per_class"]["test"].get(name, {}).get("f1") for name in ("LOC", "MISC", "ORG", "PER")]
        table.append([variant, recipe, epochs_cell(row), row.cell("val_f1"), row.cell("test_precision"),
                      row.cell("test_recall"), row.cell("test_f1"), *per_type])
    parts = ["## CoNLL-2003: the tagger on gold labels\n",
             "The upper bound of Q1's taggers trained on weak labels (q1_weak_supervision/README.md): "
             "the same tagger on the gold training labels, selected on the validation split. Per-type "
             "columns: test F1 (of the lowest seed).\n",
             markdown_table(["variant", "recipe", "epochs: best / run (max)", "val F1", "test P", "test R",
                             "test F1", "LOC", "MISC", "ORG", "PER"], table, align=["l", "l"] + ["r"] * 9)]
    for (variant, recipe), row in here.items():
        if variant != "glove-char-crf" or recipe not in RECIPES:
            continue
        f1 = row.mean("test_f1")
        verdict = "meets" if f1 >= CONLL_TARGET else "misses"
        parts.append(f"`{variant}` ({recipe} recipe): test micro-F1 {row.cell('test_f1')} {verdict} the "
                     f"target of {CONLL_TARGET:.2f}{target_noise(row.values('test_f1'), CONLL_TARGET)} "
                     f"(Lample et al. 2016: {LAMPLE_2016_F1:.4f} with 100-d embeddings; these runs use the "
                     f"embeddings of `--glove`, {row.summary.get('embed_dim')}-d); validation F1 at the "
                     f"selected epoch {fmt(row.mean('val_f1'))}."
                     + (" " + shortfall(row) if verdict == "misses" else "") + "\n")
    parts += conll_ablation(here)
    return parts


def shortfall(row: Row) -> str:
    """Where a row below its target loses: test precision and recall, the validation-to-test gap,
    and the weakest type (means over the seeds) among the types with at least 1% of the test
    entities (GMB's art, eve and nat, a few dozen each, are named apart: they move the micro-F1
    little)."""
    tables = [run.summary.get("per_class", {}).get("test", {}) for run in row.runs]
    types = sorted(set.intersection(*(set(table) for table in tables))) if tables else []
    support = {name: statistics.fmean(table[name].get("support", 0) for table in tables) for name in types}
    all_f1 = {name: statistics.fmean(table[name]["f1"] for table in tables) for name in types}
    rare = [name for name in types if support[name] < 0.01 * sum(support.values())]
    type_f1 = {name: all_f1[name] for name in ([n for n in types if n not in rare] or types)}
    weakest = min(type_f1, key=type_f1.get) if type_f1 else None
    gap = points(row.mean("val_f1") - row.mean("test_f1"))
    text = (f"Measured: test precision {fmt(row.mean('test_precision'))}, recall "
            f"{fmt(row.mean('test_recall'))}; validation F1 is {gap:.1f} points above test F1")
    if weakest:
        text += (f"; the weakest type is {weakest} (test F1 {fmt(type_f1[weakest])}, against "
                 + ", ".join(f"{name} {fmt(value)}" for name, value in type_f1.items() if name != weakest)
                 + ")")
    if rare and len(rare) < len(types):
        text += ("; the rare types, under 1% of the test entities: "
                 + ", ".join(f"{name} {fmt(all_f1[name])} ({support[name]:.0f})" for name in rare))
    return text + "."


def conll_ablation(here: Mapping[tuple[str, str], Row]) -> list[str]:
    """Per recipe with rows that depart from it: validation F1 of the recipe and of each departure,
    seed 0 against seed 0 (the same data order and initialisation), with seconds per epoch and wall
    time. Chosen on validation only: no test figure here."""
    parts = []
    for recipe in RECIPES:
        members = {(variant, name): row for (variant, name), row in here.items()
                   if name == recipe or name.startswith(recipe + " (")}
        plain = {variant: row for (variant, name), row in members.items() if name == recipe}
        if len(members) < 2 or not plain:
            continue
        table = []
        for (variant, name), row in sorted(members.items(),
                                           key=lambda item: (item[0][0], item[0][1] != recipe, item[0][1])):
            reference = plain.get(variant)
            seed0 = [run.summary["val_f1"] for run in row.runs if run.summary.get("seed") == 0]
            ref0 = ([run.summary["val_f1"] for run in reference.runs if run.summary.get("seed") == 0]
                    if reference else [])
            change = f"{100 * (seed0[0] - ref0[0]):+.2f}" if seed0 and ref0 and name != recipe else "—"
            per_epoch = seconds_per_epoch(row)
            wall = [run.summary.get("train_time_s") for run in row.runs if run.summary.get("train_time_s")]
            table.append([variant, name, len(row.runs), row.cell("val_f1"), seed0[0] if seed0 else None,
                          change, epochs_cell(row), f"{per_epoch:.1f}" if per_epoch else "—",
                          f"{statistics.fmean(wall) / 60:.1f}" if wall else "—"])
        parts += [f"### Ablation of the `{recipe}` recipe on validation\n",
                  f"Each row undoes settings of `{recipe}` (`--no-casing`, `--no-iobes`, "
                  "`--no-locked-dropout`, `--clip-norm 5`); chosen on the validation split only. Seconds "
                  "per epoch include the validation pass; wall time is training with validation, the mean "
                  "over seeds.\n",
                  markdown_table(["variant", "recipe", "seeds", "val F1", "val F1 seed 0",
                                  f"vs `{recipe}` seed 0 (points)", "epochs: best / run (max)", "s / epoch",
                                  "wall time (min)"], table, align=["l", "l"] + ["r"] * 7)]
    return parts


def multilingual_table(rows: Mapping[tuple[str, str, str], Row]) -> str | None:
    table = []
    for (data, variant, recipe), row in rows.items():
        if not data.startswith("multiconer"):
            continue
        s = row.summary
        tokens = s.get("token_report", {}).get("test", {})
        padded = s.get("token_report_with_padding", {}).get("test", {})
        table.append([s.get("lang"), s.get("granularity"), s.get("num_tags"), row.cell("test_f1"),
                      row.cell("test_macro_f1"), row.cell("test_weighted_f1"),
                      *[cell for report in (tokens, padded) for cell in
                        (fmt_pct(report.get("accuracy")), fmt(report.get("macro_f1")),
                         fmt(report.get("weighted_f1")))], epochs_cell(row)])
    if not table:
        return None
    return markdown_table(["lang", "types", "labels", "entity micro-F1", "entity macro-F1",
                           "entity weighted F1", "token acc", "token macro F1", "token weighted F1",
                           "token acc (padded)", "token macro F1 (padded)", "token weighted F1 (padded)",
                           "epochs: best / run"], table, align=["l", "l"] + ["r"] * 11)


def multilingual_observations(rows: Mapping[tuple[str, str, str], Row]) -> str:
    multi = [row.summary for (data, _, _), row in rows.items() if data.startswith("multiconer")]
    sentences = []
    padded = [s for s in multi if "test_token_accuracy_with_padding" in s]
    if padded:
        gap = max(points(s["test_token_accuracy_with_padding"] - s["test_token_accuracy"]) for s in padded)
        sentences.append(f"Counting padding as correct, as report 2 did, raises token accuracy by up to "
                         f"{gap:.1f} points; entity F1 is unaffected by padding and is the figure to "
                         "compare.")
    by_lang: dict[str, dict[str, Row]] = {}
    for (data, _, _), row in rows.items():
        if data.startswith("multiconer"):
            by_lang.setdefault(row.summary["lang"], {})[row.summary["granularity"]] = row
    for lang, pair in sorted(by_lang.items()):
        if "fine" not in pair or "coarse" not in pair:
            continue
        coarse, fine = pair["coarse"], pair["fine"]
        a, b = coarse.mean("test_f1"), fine.mean("test_f1")
        figures_cf = f"{fmt(a)} vs {fmt(b)}, {points(a - b):+.1f} points"
        unlike = comparability(coarse, fine)
        result = seed_verdict(coarse.values("test_f1"), fine.values("test_f1"))
        if unlike:
            sentences.append(f"{lang}: coarse vs fine tags {figures_cf}: {unlike}.")
        elif result == "one seed":
            sentences.append(f"{lang}: coarse vs fine tags, entity F1 {figures_cf}; cannot judge from one "
                             "seed per row.")
        else:
            relation = {"no clear difference": "no clear difference in entity F1 from",
                        "better": "a higher entity F1 than", "worse": "a lower entity F1 than"}[result]
            sentences.append(f"{lang}: coarse tags give {relation} fine tags ({figures_cf}).")
    return " ".join(sentences)


def headline_rows(runs_dir: str | Path) -> list[list]:
    """results/README.md rows: [study, row, measure, ours, original, target]. Report 1's tables come
    first, by recipe name (literature, modern, report), in the report's row order; the modern and
    report recipes list the rows they have no run of as such. The best row on validation
    micro-F1 of the modern and literature recipes carries the BEST_TARGET."""
    rows = group_runs(load_runs(str(Path(runs_dir) / "q5_ner_crf" / "*")))
    lines = []
    for (data, recipe), table in report1_tables(rows).items():
        best = best_on_validation(table) if recipe not in ("report",) else None
        listed = [*ORIGINALS, *sorted(set(table) - set(ORIGINALS))]
        for variant in listed if recipe in FULL_TABLE_RECIPES else [v for v in listed if v in table]:
            original = ORIGINALS.get(variant)
            targets = [f">= {original + TARGET_MARGIN:.2f}"] if recipe == "modern" and original else []
            if variant == best:
                targets.append(f">= {BEST_TARGET} (best row on validation)")
            lines.append([f"Q5 {data.upper()} ({recipe} recipe)", variant, "test entity micro-F1",
                          table[variant].cell("test_f1") if variant in table else "not run",
                          fmt(original, 2) if original else "—", "; ".join(targets) or "—"])
    for (data, variant, recipe), row in rows.items():
        if data == "conll2003" and recipe in RECIPES:  # the ablation's rows stay in results/q5.md
            target = f">= {CONLL_TARGET:.2f}" if variant == "glove-char-crf" else "—"
            lines.append([f"Q5 CoNLL-2003 ({recipe} recipe)", variant, "test entity micro-F1",
                          row.cell("test_f1"), "—", target])
    for (data, variant, recipe), row in rows.items():
        if data.startswith("multiconer"):
            lines.append(["Q5 MultiCoNER II", f"{data.removeprefix('multiconer-')} {variant}",
                          "dev entity micro-F1", row.cell("test_f1"), "—", "—"])
    return lines


@entry_point
def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    runs_dir = Path(args.runs_dir)
    # Runs trained on a --train-file (Q1's weak labels) are Q1's rows: its report shows them.
    runs = [run for run in load_runs(str(runs_dir / "q5_ner_crf" / "*")) if not run.summary.get("train_file")]
    if not runs:
        raise DataError(f"no Q5 runs under {runs_dir / 'q5_ner_crf'}; run scripts/reproduce_q5.sh "
                        "(or with --smoke) first")
    rows = group_runs(runs)
    out = Path(args.out)

    parts = ["# Q5: BiLSTM NER taggers, a CRF from scratch, multilingual NER\n",
             data_description(runs) + "\n",
             "Entity scores are seqeval's strict IOB2 averages (an entity counts only with exact boundaries "
             "and type): micro, weighted (by support) and macro over types; token accuracy excludes padding. "
             "Each model is evaluated at its best validation epoch. The original report's figures are "
             "quoted as published.\n"]
    for (data, recipe), here in report1_tables(rows).items():
        first = next(iter(here.values())).summary
        parts.append(f"## Report 1: taggers on {data.upper()}, {recipe} recipe\n")
        parts.append(f"Recipe `{recipe}`: {first.get('optimizer', 'sgd')} lr {first.get('lr', '?')}, batch "
                     f"{first.get('batch_size', '?')}; the last column gives each row's epochs.\n")
        parts.append(report1_table(here, recipe))
        parts += [line + "\n" for line in figures(here, out, f"{data}_{recipe}")]
        parts.append("### Test F1 per entity type\n")
        parts.append(per_type_table(here))
        if recipe not in FULL_TABLE_RECIPES:
            continue  # one row: nothing to compare within the table
        parts.append("### Comparisons\n")
        parts.append(f"Rule: {VERDICT_RULE}.\n")
        for title, with_name, without_name, feature in COMPARISONS:
            parts.append(comparison(title, here.get(with_name), here.get(without_name), with_name,
                                    without_name, feature))
    parts += conll_section(rows)
    table = multilingual_table(rows)
    parts.append("## Report 2: multilingual NER (MultiCoNER II)\n")
    if table is not None:
        sources = sorted({row.summary.get("data_source", "") for (d, _, _), row in rows.items()
                          if d.startswith("multiconer")})
        parts += [table, "", multilingual_observations(rows) + "\n",
                  "Data: " + "; ".join(f"`{source}`" for source in sources) + ". The original report's "
                  "token-level tables are not reproduced here: their figures are not in this repository.\n"]
    else:
        parts.append("No MultiCoNER runs found (set MULTICONER_DIR for scripts/reproduce_q5.sh).\n")
    parts.append(provenance_section(runs, runs_dir))
    text = "\n".join(parts)
    write_report(out, text)
    return text


if __name__ == "__main__":
    main()
