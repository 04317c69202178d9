"""Render reports/q2.md (mean ± std over seeds, verdicts by a stated rule) and q2_convergence.png
from the runs under `<runs-dir>/q2_transfer/`; of several runs of one order and seed, the newest
counts. What the numbers mean is discussed in q2_transfer/README.md.

    python -m q2_transfer.report --runs-dir runs/smoke --out reports/q2.md
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from statistics import fmean, stdev
from typing import Mapping, Sequence

from common.cli import HelpFormatter, entry_point
from common.errors import DataError
from common.report import RunRecord, data_kind, load_runs, markdown_table, plot_curves, write_report

# (target task, pre-trained order, from-scratch baseline order, source task)
PAIRS = (("CIFAR10", "c100-c10", "c10", "CIFAR100"), ("CIFAR100", "c10-c100", "c100", "CIFAR10"))
ORDER_NAMES = {"c100-c10": "CIFAR-100 → CIFAR-10", "c10-c100": "CIFAR-10 → CIFAR-100",
               "c10": "CIFAR-10 from scratch", "c100": "CIFAR-100 from scratch"}
TASK_NAMES = {"CIFAR10": "CIFAR-10", "CIFAR100": "CIFAR-100"}
# Settings every run should share; the seed is what varies.
SETTINGS = ("model", "epochs", "subset_ratio", "train_size", "test_size", "val_split", "split_seed", "bs",
            "lr", "augment", "smoke")
RULE = ("a verdict needs the mean over seeds more than two standard errors (2·std/√n, n seeds) away "
        "from 0, else \"no clear difference\"; one seed gives no verdict")
HEADERS = ["target task", "pre-trained on", "seeds", "test acc (%)", "vs from scratch (points, paired)",
           "selected epoch", "epochs to 90% of best val acc", "train − test (points)",
           "source test acc before → after (%)", "forgetting (points)"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--runs-dir", default="runs", help="root of the run folders (holds q2_transfer/)")
    parser.add_argument("--out", default="reports/q2.md", help="markdown file to write")
    return parser.parse_args(argv)


def runs_by_order(runs: list[RunRecord]) -> tuple[dict[str, list[RunRecord]], list[str]]:
    """{order: its runs, one per seed, in seed order}: of several runs of one order and seed the
    most recently started counts; the notes name the runs left out."""
    chosen: dict[tuple[str, int], RunRecord] = {}
    notes = []
    for run in sorted(runs, key=lambda run: run.config.get("_provenance", {}).get("started", "")):
        key = (run.summary["order"], seed_of(run))
        if key in chosen:
            notes.append(f"`{chosen[key].name}` left out: `{run.name}` is a newer run of order {key[0]}, "
                         f"seed {key[1]}")
        chosen[key] = run
    groups: dict[str, list[RunRecord]] = {}
    for (order, _), run in sorted(chosen.items()):
        groups.setdefault(order, []).append(run)
    return groups, notes


def seed_of(run: RunRecord) -> int:
    return run.config.get("seed", 0)


def values(runs: Sequence[RunRecord], key: str) -> list[float]:
    return [run.summary[key] for run in runs]


def paired(runs: Sequence[RunRecord], baseline: Sequence[RunRecord], key: str) -> list[float]:
    """run minus baseline in `key`, for every seed both hold (same seed, same images)."""
    base = {seed_of(run): run.summary[key] for run in baseline}
    return [run.summary[key] - base[seed_of(run)] for run in runs if seed_of(run) in base]


def cell(numbers: Sequence[float], scale: float = 100, digits: int = 2, sign: str = "") -> str | None:
    """'mean ± std' of `numbers` times `scale` (sample std, n - 1); the mean alone for one number."""
    if not numbers:
        return None
    text = f"{scale * fmean(numbers):{sign}.{digits}f}"
    return text + (f" ± {scale * stdev(numbers):.{digits}f}" if len(numbers) > 1 else "")


def verdict(numbers: Sequence[float], words: tuple[str, str]) -> str:
    """words[0] (mean above 0) or words[1] (below) by RULE, else 'no clear difference'."""
    if len(numbers) < 2:
        return "no verdict"
    margin, mean = 2 * stdev(numbers) / math.sqrt(len(numbers)), fmean(numbers)
    return words[0] if mean > margin else words[1] if mean < -margin else "no clear difference"


def results_rows(groups: Mapping[str, list[RunRecord]]) -> list[list]:
    """One row per order: its seeds, then each column's mean ± std over them."""
    rows = []
    for target, pretrained, baseline, source in PAIRS:
        for order, pretrain in ((baseline, "none (from scratch)"), (pretrained, TASK_NAMES[source])):
            runs = groups.get(order, [])
            if not runs:
                rows.append([TASK_NAMES[target], pretrain, 0, "missing run", *[None] * 6])
                continue
            two_stage = order == pretrained
            rows.append([TASK_NAMES[target], pretrain, len(runs), cell(values(runs, "target_test_accuracy")),
                         cell(paired(runs, groups.get(baseline, []), "target_test_accuracy"), sign="+")
                         if two_stage else None,
                         cell(values(runs, "target_selected_epoch"), 1, 1),
                         cell(values(runs, "target_epochs_to_90pct"), 1, 1),
                         cell([run.summary["target_train_accuracy"] - run.summary["target_test_accuracy"]
                               for run in runs]),
                         f"{cell(values(runs, 'source_test_accuracy_before'))} → "
                         f"{cell(values(runs, 'source_test_accuracy_after'))}" if two_stage else None,
                         cell(values(runs, "forgetting")) if two_stage else None])
    return rows


def verdicts(groups: Mapping[str, list[RunRecord]]) -> list[str]:
    """One line per transfer order against its baseline, the original's claim, and the rule."""
    lines, found = [], {}
    for target, pretrained, baseline, source in PAIRS:
        runs, base = groups.get(pretrained, []), groups.get(baseline, [])
        if not runs or not base:
            missing = ", ".join(order for order in (pretrained, baseline) if order not in groups)
            lines.append(f"- {ORDER_NAMES[pretrained]}: no comparison, missing run(s) {missing}.")
            continue
        gain = paired(runs, base, "target_test_accuracy")
        epochs = paired(runs, base, "target_epochs_to_90pct")
        change = [-lost for lost in values(runs, "forgetting")]
        found[pretrained] = (verdict(gain, ("higher", "lower")),
                             verdict([-difference for difference in epochs], ("faster", "slower")))
        lines.append(f"- {ORDER_NAMES[pretrained]} against {ORDER_NAMES[baseline]}, {len(gain)} paired "
                     f"seed(s): {TASK_NAMES[target]} test accuracy {cell(gain, sign='+')} points → "
                     f"**{found[pretrained][0]}**; epochs to 90% of the best val acc "
                     f"{cell(epochs, 1, 1, '+')} → **{found[pretrained][1]}**; {TASK_NAMES[source]} test "
                     f"accuracy after fine-tuning {cell(change, sign='+')} points over {len(change)} "
                     f"seed(s) → **{verdict(change, ('higher', 'lower'))}**.")
    if "c100-c10" in found:
        claim = ("no verdict" if "no verdict" in found["c100-c10"]
                 else "yes" if found["c100-c10"] == ("higher", "faster") else "no")
        lines.append(f"- The original's conclusion, CIFAR-100 → CIFAR-10 gives higher accuracy and faster "
                     f"convergence than from scratch: **{claim}** (yes when its verdicts above are higher "
                     f"and faster).")
    return lines + [f"- Rule: {RULE}."]


def convergence_figure(groups: Mapping[str, list[RunRecord]], path: Path) -> Path:
    """Target-task test accuracy per epoch of the target stage: mean over seeds, ± std band."""
    series, bands = {}, {}
    for target, pretrained, baseline, _ in PAIRS:
        for order in (baseline, pretrained):
            curves = [run.series("stage_epoch", f"{target}_test_accuracy") for run in groups.get(order, [])]
            if not curves:
                continue
            columns = [[100 * ys[i] for _, ys in curves] for i in range(min(len(ys) for _, ys in curves))]
            label = f"{ORDER_NAMES[order]} (n={len(curves)})"
            series[label] = (curves[0][0][:len(columns)], [fmean(column) for column in columns])
            if len(curves) > 1:
                bands[label] = tuple([fmean(column) + side * stdev(column) for column in columns]
                                     for side in (-1, 1))
    return plot_curves(series, path, title="Target-task test accuracy per epoch of the target stage",
                       xlabel="epoch of the target stage", ylabel="test accuracy (%)", bands=bands)


def data_statement(runs: Sequence[RunRecord]) -> str:
    """Which data the runs used, read from their config.json."""
    datasets = sorted({name for run in runs for name in run.config.get("datasets", {}).values()})
    kind = data_kind(runs)
    if kind == "smoke":
        return (f"**Data: built-in smoke sets** ({', '.join(datasets)}), not CIFAR: the numbers show the "
                f"pipeline working, not the study's result.")
    if kind == "real":
        return f"**Data: {', '.join(datasets)}** (the real datasets)."
    return (f"**Data: mixed** — some runs used the built-in smoke sets and some real data "
            f"({', '.join(datasets)}).")


def settings_statement(runs: Sequence[RunRecord]) -> str:
    """The shared settings of the runs and their seeds, or which setting differs between them."""
    differing = [key for key in SETTINGS if len({repr(run.config.get(key)) for run in runs}) > 1]
    first = runs[0].config
    train = (f"{first['train_size']} images" if first.get("train_size")
             else f"a {first.get('subset_ratio')} fraction")
    test = f"{first['test_size']} images" if first.get("test_size") else "the whole split"
    text = (f"Settings: model {first.get('model')}, {first.get('epochs')} epochs per stage, batch "
            f"{first.get('bs')}, Adam lr {first.get('lr')}, augmentation "
            f"{'on' if first.get('augment') else 'off'}; "
            f"train: {train} of each train split, {first.get('val_split')} of it held out for validation; "
            f"test: {test}; subsets stratified, split seed {first.get('split_seed')}. Seeds: "
            f"{', '.join(str(seed) for seed in sorted({seed_of(run) for run in runs}))}.")
    if differing:
        text += (f" **Warning: the runs differ in {', '.join(differing)}**, so the comparison is not "
                 f"like for like.")
    return text


@entry_point
def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    folder = Path(args.runs_dir) / "q2_transfer"
    groups, notes = runs_by_order(load_runs(str(folder / "*")))
    if not groups:
        raise DataError(f"no finished q2_transfer runs under {folder}; run "
                        f"`bash scripts/reproduce_q2.sh` (or with --smoke) first")
    runs = [run for group in groups.values() for run in group]
    out = Path(args.out)
    figure = convergence_figure(groups, out.parent / "q2_convergence.png")
    lines = ["# Q2: transfer between CIFAR-100 and CIFAR-10", "", data_statement(runs), "",
             settings_statement(runs), "", "Runs: " + ", ".join(f"`{run.name}`" for run in runs) + ".", ""]
    missing = [order for order in ORDER_NAMES if order not in groups]
    if missing:
        lines += [f"Missing runs: {', '.join(missing)} (their rows are empty).", ""]
    lines += [f"- {note}" for note in notes] + ([""] if notes else [])
    lines += ["## Results", "",
              "Mean ± standard deviation over seeds, at the epoch selected on validation accuracy; \"vs "
              "from scratch\" pairs runs by seed. The columns are defined in q2_transfer/README.md.", "",
              markdown_table(HEADERS, results_rows(groups), align=["l", "l"] + ["r"] * 8),
              f"![convergence]({figure.name})", "", "## Verdicts", "", *verdicts(groups), ""]
    text = "\n".join(lines)
    write_report(out, text)
    return text


if __name__ == "__main__":
    main()
