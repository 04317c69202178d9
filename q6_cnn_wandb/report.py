"""Render reports/q6.md from the question-6 run folders: LeNet-5's parameter table, the test
accuracy of the four configurations and of the MLP on ResNet-34 features, the best and worst
class of each, one figure with the four confusion matrices, the training curves, the yes/no
answer to "do the pre-trained features beat the best of the four configurations?", and the
theory answers.

    python -m q6_cnn_wandb.report                                    # runs/ -> reports/q6.md
    python -m q6_cnn_wandb.report --runs-dir runs/smoke --out reports/q6.md

Reads `<runs-dir>/q6_cnn_wandb/*/` (summary.json, metrics.jsonl, config.json) and writes the
report and its figures (`reports/q6_*.png`). Every number and every conclusion is computed from
those files; the paragraphs branch on the values. Takes a few seconds.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np

from common.cli import HelpFormatter, entry_point
from common.errors import DataError
from common.report import (SEED_VERDICT_RULE, RunRecord, data_kind, fmt_pct, load_runs, markdown_table,
                           plot_curves, provenance_section, save_figure, seed_verdict, spread_cell,
                           write_report)
from q6_cnn_wandb.model import LeNet5, format_size, parameter_table
from q6_cnn_wandb.results import confusion_figure
from q6_cnn_wandb.theory import QUESTIONS, run_checks
from q6_cnn_wandb.train import CONFIGS, OPTIMIZERS, PROJECT, QUESTION, gradient_ratio_at_uniform

# A run "barely moved" when its test accuracy stays within this of chance.
NEAR_CHANCE_MARGIN = 0.05
# The test accuracy the best LeNet run of this reproduction is asked to reach on CIFAR-10.
TARGET_ACCURACY = 0.65
LOSS_NAMES = {"ce": "cross-entropy", "mse": "squared error (softmax vs one-hot)"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--runs-dir", default="runs", help="root folder of the run folders")
    parser.add_argument("--out", default="reports/q6.md", help="markdown report to write")
    return parser.parse_args(argv)


# ---- sections ----------------------------------------------------------------------------------

def describe_data(runs: list[RunRecord]) -> str:
    datasets = sorted({run.summary.get("dataset", run.config.get("dataset", "?")) for run in runs})
    kind = data_kind(runs)
    text = f"Data: {', '.join(datasets)}"
    if kind == "mixed":
        text += " — a mix of built-in smoke data and CIFAR-10 runs: compare rows with care."
    elif kind == "smoke" or any(name != "cifar10" for name in datasets):
        text += (" — built-in smoke data (synthetic coloured shapes, small subsets, a few epochs), "
                 "not CIFAR-10: the numbers check the pipeline and say nothing about the study's "
                 "question. Run `bash scripts/reproduce_q6.sh` with CIFAR-10 under data/ for the real "
                 "table.")
    else:
        text += " (CIFAR-10: 50,000 training and 10,000 test images, 10 classes)."
    return text


def parameter_section(cnn_runs: list[RunRecord]) -> str:
    config = cnn_runs[0].config if cnn_runs else {}
    widths = [config.get(key, default) for key, default in
              (("conv1", 6), ("conv2", 16), ("fc1", 120), ("fc2", 84))]
    model = LeNet5(*widths)
    rows = parameter_table(model, (3, 32, 32))
    total = sum(row.params for row in rows)
    table = markdown_table(["layer", "input size", "output size", "parameters"],
                           [[row.layer, format_size(row.input_size), format_size(row.output_size),
                             f"{row.params:,}"] for row in rows] + [["**total**", "", "", f"**{total:,}**"]])
    return (f"LeNet-5 as in PyTorch's CIFAR-10 tutorial (widths conv1={widths[0]}, conv2={widths[1]}, "
            f"fc1={widths[2]}, fc2={widths[3]}; the assignment's diagram is not available). Sizes are "
            f"channels x height x width without the batch dimension, measured by forward hooks on the "
            f"module (`q6_cnn_wandb/model.py`).\n\n{table}")


def config_label(summary: dict[str, Any]) -> str:
    number = summary.get("config_id")
    optimizer = summary.get("optimizer", "?")
    name = optimizer.upper() if optimizer == "sgd" else optimizer.capitalize()
    text = f"{name} lr {summary.get('lr', 0):g}"
    if summary.get("momentum"):
        text += f", momentum {summary['momentum']:g}"
    text += f", {LOSS_NAMES.get(summary.get('loss'), summary.get('loss'))}"
    if summary.get("augment"):
        text += f", crop+flip augmentation, {summary.get('epochs')} epochs"
    return f"config {number}: {text}" if number else f"custom: {text}"


def class_cell(summary: dict[str, Any], which: str) -> str:
    return f"{summary[which + '_class']} ({fmt_pct(summary[which + '_class_accuracy'], 1)})"


def by_setting(runs: list[RunRecord]) -> dict[str, list[RunRecord]]:
    """Runs that differ only in --seed, under their configuration label, lowest seed first."""
    groups: dict[str, list[RunRecord]] = {}
    for run in sorted(runs, key=lambda run: run.summary.get("seed", 0)):
        groups.setdefault(config_label(run.summary), []).append(run)
    return groups


def accuracy_cell(runs: list[RunRecord]) -> str:
    """Test accuracy of one run, or mean ± sample std over seeds with their number."""
    return spread_cell([run.summary["test_accuracy"] for run in runs], fmt_pct)


def best_on_validation(groups: dict[str, list[RunRecord]]) -> str | None:
    """The label of the group with the highest mean validation accuracy at its kept epoch, over the
    groups whose every run kept its epoch on validation; None when no group did (test is never
    what picks a best row)."""
    scores = {label: float(np.mean([run.summary["best_selection_accuracy"] for run in runs]))
              for label, runs in groups.items()
              if all(run.summary.get("selected_on") == "validation" for run in runs)}
    return max(scores, key=scores.get) if scores else None


def accuracy_section(cnn_runs: list[RunRecord], mlp_runs: list[RunRecord]) -> str:
    rows = []
    for label, runs in by_setting(cnn_runs).items():
        s = runs[0].summary
        rows.append([label, runs[0].name, f"{s['epochs_run']}",
                     f"{s['best_epoch']} ({s['selected_on']} {fmt_pct(s['best_selection_accuracy'])})",
                     accuracy_cell(runs), class_cell(s, "best"), class_cell(s, "worst")])
    for run in mlp_runs:
        s = run.summary
        rows.append([f"ResNet-34 features ({s['weights_label']}, {s['image_size']} px) + MLP", run.name,
                     f"{s['epochs_run']} ({'converged' if s['converged'] else 'not converged'})",
                     "final model", fmt_pct(s["test_accuracy"]), class_cell(s, "best"),
                     class_cell(s, "worst")])
    table = markdown_table(["configuration", "run", "epochs", "kept epoch (selected on)", "test accuracy",
                            "best class", "worst class"], rows, align=["l", "l", "r", "r", "r", "l", "l"])
    notes = ["Runs that differ only in the seed share a row: test accuracy as mean ± sample std over the "
             "seeds (n); the other cells are the lowest seed's. "
             "\"Kept epoch\" is the checkpoint reloaded for the figures: LeNet runs keep the epoch with "
             "the best accuracy on the split in brackets (by default 10% of the training images held out; "
             "`--select-on test` is the assignment's optimistic choice). The MLP's figure is its final "
             "model's. Best and worst class are by per-class accuracy (recall) in the kept model's "
             "confusion matrix."]
    if cnn_runs and all(run.summary.get("dataset") == "cifar10" for run in cnn_runs):
        groups = by_setting(cnn_runs)
        label = best_on_validation(groups)
        if label is None:
            notes.append("No LeNet-5 row kept its epoch on a validation split, so none is named best "
                         "(the test split does not pick one).")
        else:
            best = groups[label]
            test = float(np.mean([run.summary["test_accuracy"] for run in best]))
            notes.append(f"Best LeNet-5 row, picked on validation accuracy: {label} (validation "
                         f"{fmt_pct(float(np.mean([r.summary['best_selection_accuracy'] for r in best])))}), "
                         f"test accuracy {accuracy_cell(best)}, "
                         f"{'**reaching**' if test >= TARGET_ACCURACY else '**below**'} the "
                         f"{fmt_pct(TARGET_ACCURACY, 0)} target.")
    selected_on = {run.summary["selected_on"] for run in cnn_runs}
    if len(selected_on) > 1:
        notes.append("The LeNet runs were selected on different splits (" + ", ".join(sorted(selected_on))
                     + "): compare them with care.")
    return table + "\n" + " ".join(notes)


def confusion_section(cnn_runs: list[RunRecord], out: Path) -> str:
    """One confusion matrix per row of the accuracy table: its lowest seed's, as in the table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = by_setting(cnn_runs)
    several = any(len(group) > 1 for group in groups.values())
    cnn_runs = [group[0] for group in groups.values()]

    columns = 2 if len(cnn_runs) > 1 else 1
    rows = -(-len(cnn_runs) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(6.2 * columns, 5.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, run in zip(axes.flat, cnn_runs):
        ax.axis("on")
        s = run.summary
        confusion_figure(np.array(s["confusion_matrix"]), s["class_names"],
                         f"{config_label(s)}\ntest acc {fmt_pct(s['test_accuracy'])}; "
                         f"best {s['best_class']}, "
                         f"worst {s['worst_class']}", ax=ax)
    figure.tight_layout()
    path = save_figure(figure, out.with_name(f"{out.stem}_confusion_matrices.png"))
    plt.close(figure)
    lines = [f"![confusion matrices of the four configurations]({path.name})", ""]
    if several:
        lines += ["Rows with several seeds show their lowest seed's matrix.", ""]
    for run in cnn_runs:
        s = run.summary
        lines.append(f"- {config_label(s)}: best class **{class_cell(s, 'best')}**, worst class "
                     f"**{class_cell(s, 'worst')}** ({sum(map(sum, s['confusion_matrix'])):,} test images).")
    return "\n".join(lines)


def curves_section(runs: list[RunRecord], out: Path) -> str:
    figures = []
    plots = (("train_loss", "training loss", True), ("val_loss", "validation loss", True),
             ("val_accuracy", "validation accuracy", False), ("test_accuracy", "test accuracy", False))
    for key, title, logy in plots:
        series = {run.name: run.series("epoch", key) for run in runs if run.series("epoch", key)[0]}
        if not series:
            continue
        path = plot_curves(series, out.with_name(f"{out.stem}_{key}.png"), title=title, ylabel=key, logy=logy)
        figures.append(f"![{title}]({path.name})")
    return ("Per epoch, as logged to W&B. Losses are on a log scale: the squared-error losses are an "
            "order of magnitude below the cross-entropy ones by construction (0.09 against ln 10 = 2.30 "
            "for the uniform prediction over 10 classes).\n\n"
            + "\n".join(figures))


def mse_section(cnn_runs: list[RunRecord]) -> str:
    """The SGD + squared-error finding, stated from the numbers."""
    runs = [run for run in cnn_runs
            if run.summary.get("loss") == "mse" and run.summary.get("optimizer") == "sgd"]
    if not runs:
        return "No run with SGD and the squared error was found."
    paragraphs = []
    for run in runs:
        s = run.summary
        num_classes = len(s["class_names"])
        chance = 1 / num_classes
        ratio = gradient_ratio_at_uniform(num_classes)
        _, losses = run.series("epoch", "train_loss")
        first, last = losses[0], losses[-1]
        uniform = s["uniform_prediction_loss"]
        reason = (f"At the uniform prediction the gradient of this loss with respect to the logits is "
                  f"{ratio:.3f} times the cross-entropy's (autograd, K = {num_classes}; 2/K^2 by hand): SGD "
                  f"at lr {s['lr']:g} steps like cross-entropy at lr {s['lr'] * ratio:.1e}.")
        moved = abs(last - first) / first
        if s["test_accuracy"] < chance + NEAR_CHANCE_MARGIN and moved < 0.05:
            paragraphs.append(
                f"**{config_label(s)} barely moves.** Its training loss went from {first:.4f} to {last:.4f} "
                f"in {len(losses)} epochs ({100 * moved:.1f}% change); the uniform prediction scores "
                f"{uniform:.4f} = (K-1)/K^2, and the test accuracy, {fmt_pct(s['test_accuracy'])}, is "
                f"not above chance ({fmt_pct(chance)}). {reason}")
        else:
            # Whether the first epoch already left the uniform prediction is read from the run.
            first_drop = (uniform - first) / uniform
            paragraphs.append(
                f"**{config_label(s)} did learn here**: training loss {first:.4f} -> {last:.4f} in "
                f"{len(losses)} epochs (the uniform prediction scores {uniform:.4f}), test accuracy "
                f"{fmt_pct(s['test_accuracy'])} against {fmt_pct(chance)} chance. After the first epoch "
                f"the training loss was {100 * first_drop:.1f}% below the uniform prediction's. {reason}")
    return "\n\n".join(paragraphs)


def answer_section(cnn_runs: list[RunRecord], mlp_runs: list[RunRecord]) -> str:
    """Do the pre-trained features beat the best of the four configurations? Judged over seeds by
    SEED_VERDICT_RULE; with one seed on either side the numbers are given without a verdict."""
    # The four configurations share one recipe; the longer augmented row is not one of them.
    four = [run for run in cnn_runs
            if run.summary.get("config_id") in CONFIGS and not run.summary.get("augment")]
    if not four or not mlp_runs:
        return ("Cannot answer: the report needs the four LeNet runs and a ResNet-34 run "
                f"({len(four)} LeNet runs of the four configurations and {len(mlp_runs)} ResNet-34 runs "
                "found).")

    def mean(runs: list[RunRecord]) -> float:
        return float(np.mean([run.summary["test_accuracy"] for run in runs]))

    four_groups = by_setting(four)
    best_label = best_on_validation(four_groups)
    best_cnn = four_groups[best_label] if best_label else max(four_groups.values(), key=mean)
    pretrained = [run for run in mlp_runs if run.summary.get("pretrained")]
    mlp_groups: dict[tuple, list[RunRecord]] = {}
    for run in sorted(pretrained or mlp_runs, key=lambda run: run.summary.get("seed", 0)):
        mlp_groups.setdefault((run.summary["weights_label"], run.summary.get("image_size")), []).append(run)
    mlp = max(mlp_groups.values(), key=mean)
    cnn_acc, mlp_acc = mean(best_cnn), mean(mlp)
    gap = 100 * (mlp_acc - cnn_acc)
    s_cnn, s_mlp = best_cnn[0].summary, mlp[0].summary
    comparison = (f"ResNet-34 features ({s_mlp['weights_label']}) + MLP: {accuracy_cell(mlp)} test "
                  f"accuracy (final model); best of the four LeNet configurations "
                  f"({'on validation accuracy' if best_label else 'on test accuracy: no validation split'}), "
                  f"{config_label(s_cnn)}: "
                  f"{accuracy_cell(best_cnn)} (epoch selected on {s_cnn['selected_on']}); "
                  f"difference {gap:+.2f} points.")
    if not pretrained:
        return (f"**Not answered by these runs**: the ResNet-34 features came from **random weights** "
                f"(`--weights none`), so they are not pre-trained "
                f"features and the question does not apply. For the record: {comparison} "
                f"Run `python q6_cnn_wandb/resnet34_features.py --weights imagenet` with "
                f"resnet34-b627a593.pth in torchvision's cache to answer it.")
    datasets = {run.summary.get("dataset") for run in [*best_cnn, *mlp]}
    caveat = ("" if len(datasets) == 1 else
              f" Caution: the runs used different data ({', '.join(sorted(map(str, datasets)))}), so the "
              f"comparison is not like for like.")
    result = seed_verdict([run.summary["test_accuracy"] for run in mlp],
                          [run.summary["test_accuracy"] for run in best_cnn])
    if result == "one seed":
        return (f"**Cannot judge from these runs**: {len(mlp)} and {len(best_cnn)} seed(s), and a verdict "
                f"needs at least two on each side for a measured spread. {comparison}{caveat}")
    answer = {"better": "Yes", "worse": "No", "no clear difference": "No clear difference"}[result]
    return (f"**{answer}** ({len(mlp)} and {len(best_cnn)} seeds; {SEED_VERDICT_RULE}). "
            f"{comparison}{caveat}")


def theory_section() -> str:
    checks = run_checks()
    parts = []
    for answer_fn, _ in QUESTIONS:
        parts.append("```text\n" + answer_fn() + "\n```")
    failed = [check for check in checks if not check.passed]
    status = (f"All {len(checks)} numeric and symbolic checks of `python q6_cnn_wandb/theory.py` pass."
              if not failed else f"{len(failed)} of {len(checks)} checks FAIL: "
              + ", ".join(check.name for check in failed))
    return "\n\n".join(parts) + "\n\n" + status + "\n\n" + "\n".join(f"- {check.line()}" for check in checks)


def wandb_section(runs: list[RunRecord], out: Path) -> str:
    modes = sorted({str(run.config.get("wandb_mode", "offline")) for run in runs})
    lines = [f"Every run logs `train_loss`, `test_loss` and `test_accuracy` per epoch, the confusion "
             f"matrix (`confusion_matrix_plot`) and a table of sample test images with predicted and true "
             f"labels (`sample_predictions_table`) to the W&B project `{PROJECT}` (mode: "
             f"{', '.join(modes)}). Offline runs upload with `wandb sync <run folder>/wandb/offline-run-*`. "
             f"The same figures are in the run folders:"]
    for run in runs:
        grid = run.dir / "sample_predictions.png"
        link = os.path.relpath(grid, out.parent) if grid.exists() else None
        lines.append(f"- `{run.dir}`" + (f": [sample predictions]({link})" if link else ""))
    return "\n".join(lines)


@entry_point
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    out = Path(args.out)
    runs = load_runs(str(Path(args.runs_dir) / QUESTION / "*"))
    if not runs:
        raise DataError(f"no finished run under {Path(args.runs_dir) / QUESTION}; run "
                        f"`bash scripts/reproduce_q6.sh` (or with --smoke) first")
    cnn_runs = sorted([run for run in runs if run.summary.get("kind") == "cnn"],
                      key=lambda run: (run.summary.get("config_id") or 99, run.name))
    mlp_runs = [run for run in runs if run.summary.get("kind") == "resnet34_mlp"]
    missing = sorted(set(CONFIGS) - {run.summary.get("config_id") for run in cnn_runs})

    sections = [
        "# Q6: a 5x5 CNN on CIFAR-10 under four training configurations, ResNet-34 features, theory",
        describe_data(runs),
        f"Runs: {len(cnn_runs)} LeNet-5 and {len(mlp_runs)} ResNet-34 runs from `{args.runs_dir}`."
        + (f" Missing configurations: {', '.join(map(str, missing))}." if missing else ""),
        "## The CNN's parameters", parameter_section(cnn_runs),
        "## Test accuracy", accuracy_section(cnn_runs, mlp_runs),
        f"Configurations: SGD uses lr {OPTIMIZERS['sgd']['lr']:g} and momentum "
        f"{OPTIMIZERS['sgd']['momentum']:g}, "
        f"Adam lr {OPTIMIZERS['adam']['lr']:g}; the squared error is between the softmax probabilities and "
        f"the one-hot targets, averaged over batch and classes (`nn.MSELoss` on softmax outputs).",
        "## Squared error with SGD", mse_section(cnn_runs),
        "## Confusion matrices", confusion_section(cnn_runs, out) if cnn_runs else "No LeNet run found.",
        "## Curves", curves_section(cnn_runs + mlp_runs, out),
        "## Do the pre-trained features beat the best of the four configurations?",
        answer_section(cnn_runs, mlp_runs),
        "## Weights & Biases", wandb_section(cnn_runs + mlp_runs, out),
        "## Theory", theory_section(),
        provenance_section(runs, args.runs_dir),
    ]
    write_report(out, "\n\n".join(sections) + "\n")
    return {"cnn_runs": len(cnn_runs), "mlp_runs": len(mlp_runs), "out": str(out)}


def headline_rows(runs_dir: str | Path) -> list[list]:
    """results/README.md rows: [study, row, measure, ours, original, target]."""
    rows = []
    runs = load_runs(str(Path(runs_dir) / QUESTION / "*"))
    groups = by_setting([run for run in runs if run.summary.get("kind") == "cnn"])
    best = best_on_validation(groups)
    for label, group in groups.items():
        target = f">= {fmt_pct(TARGET_ACCURACY, 0)} (best row on validation)" if label == best else "—"
        measure = f"test accuracy (epoch selected on {group[0].summary['selected_on']})"
        rows.append(["Q6 CIFAR-10", label, measure, accuracy_cell(group), "—", target])
    for run in runs:
        s = run.summary
        if s.get("kind") != "cnn":
            row = f"ResNet-34 features ({s['weights_label']}, {s['image_size']} px) + MLP"
            rows.append(["Q6 CIFAR-10", row, "test accuracy", fmt_pct(s["test_accuracy"]), "—", "—"])
    return rows


if __name__ == "__main__":
    main()
