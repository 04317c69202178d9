"""Build and save the question-6 W&B Report, the assignment's deliverable, with W&B's Reports API
(`wandb-workspaces`) from the runs uploaded to the project `Q6-cnn-wandb`.

    wandb login
    wandb sync runs/q6_cnn_wandb/*/wandb/offline-run-*      # the runs are offline by default
    python -m q6_cnn_wandb.wandb_report --entity ENTITY --wandb-mode online

Prints the report's URL. Text blocks are report.py's sections rendered from --runs-dir; charts
read the same runs from W&B; the combined confusion-matrix figure is logged to a run of job type
`report`. Any mode but online, or no `wandb login`, stops with one line and exit status 2.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from common.cli import HelpFormatter, entry_point, fail
from common.errors import DataError
from common.report import RunRecord, load_runs
from q6_cnn_wandb.report import (accuracy_section, answer_section, confusion_section, describe_data,
                                 parameter_section, theory_section)
from q6_cnn_wandb.train import CONFIGS, PROJECT, QUESTION

TITLE = "Q6: a 5x5 CNN on CIFAR-10 under four training configurations"
FIGURE_KEY = "confusion_matrices"
SAMPLE_TABLE_KEY = "sample_predictions_table"  # logged by results.log_final_results
MAX_TITLE_LENGTH = 128  # the Reports API rejects longer titles


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--entity", required=True, help="W&B user or team that holds the uploaded runs")
    parser.add_argument("--project", default=PROJECT, help="W&B project of the runs and of the report")
    parser.add_argument("--title", default=TITLE, help="title of the report")
    parser.add_argument("--runs-dir", default="runs", help="root folder of the run folders")
    parser.add_argument("--wandb-mode", default="offline", choices=["online", "offline", "disabled"],
                        help="a report is saved only online; any other mode stops with exit status 2")
    args = parser.parse_args(argv)
    if len(args.title) > MAX_TITLE_LENGTH:
        parser.error(f"--title is {len(args.title)} characters long; W&B takes at most {MAX_TITLE_LENGTH}")
    return args


def build_report(entity: str, project: str, title: str, cnn_runs: list[RunRecord],
                 mlp_runs: list[RunRecord], figure_run_id: str):
    """The report object, not saved: building it needs no network or API key once `entity` is given
    (else the default entity is looked up on the server); saving it, and serialising a runset, do."""
    import wandb_workspaces.reports.v2 as wr
    from wandb_workspaces import expr

    names = [run.name for run in cnn_runs]
    configurations = wr.Runset(entity=entity, project=project, name="the four configurations",
                               filters=expr.And(expr.Config("config_id").isin(sorted(CONFIGS)),
                                                expr.Metric("Name").isin(names)))
    comparison = wr.Runset(entity=entity, project=project, name="four configurations and ResNet-34",
                           filters=expr.And(expr.Metric("Name").isin(names + [run.name for run in mlp_runs])))
    figures = wr.Runset(entity=entity, project=project, name="report figures",
                        filters=expr.And(expr.Metric("ID") == figure_run_id))
    wide = wr.Layout(w=24, h=16)
    intro = (f"{describe_data(cnn_runs + mlp_runs)}\n\nLeNet-5 trained under the assignment's four "
             f"configurations ({len(cnn_runs)} runs) and an MLP on ResNet-34 features ({len(mlp_runs)} "
             f"runs). The charts read the runs from W&B; the tables and verdicts are computed from their "
             f"run folders by `q6_cnn_wandb/report.py`, as in `reports/q6.md`.")
    return wr.Report(entity=entity, project=project, title=title, width="fluid", blocks=[
        wr.MarkdownBlock(intro),
        wr.H1("Training curves of the four configurations"),
        wr.PanelGrid(runsets=[configurations], panels=[
            wr.LinePlot(title="training loss", x="epoch", y=["train_loss"], log_y=True),
            wr.LinePlot(title="test and validation accuracy", x="epoch", y=["test_accuracy", "val_accuracy"]),
            wr.LinePlot(title="test loss", x="epoch", y=["test_loss"], log_y=True)]),
        wr.H1("Confusion matrices"),
        wr.PanelGrid(runsets=[figures], panels=[wr.MediaBrowser(media_keys=[FIGURE_KEY], layout=wide)]),
        wr.H1("Sample predictions"),
        wr.PanelGrid(runsets=[configurations],
                     panels=[wr.WeavePanelSummaryTable(table_name=SAMPLE_TABLE_KEY, layout=wide)]),
        wr.H1("The CNN's parameters"),
        wr.MarkdownBlock(parameter_section(cnn_runs)),
        wr.H1("ResNet-34 features against the four configurations"),
        wr.MarkdownBlock(accuracy_section(cnn_runs, mlp_runs) + "\n\n" + answer_section(cnn_runs, mlp_runs)),
        wr.PanelGrid(runsets=[comparison], panels=[
            wr.BarPlot(title="test accuracy", metrics=["test_accuracy"]),
            wr.LinePlot(title="test accuracy per epoch", x="epoch", y=["test_accuracy"])]),
        wr.H1("Theory"),
        wr.MarkdownBlock(theory_section()),
    ])


def log_confusion_figure(entity: str, project: str, cnn_runs: list[RunRecord]) -> str:
    """Draw the four confusion matrices as one figure, log it to a new run, return its id."""
    import wandb

    with tempfile.TemporaryDirectory() as folder:
        confusion_section(cnn_runs, Path(folder) / "q6.md")
        figure = next(Path(folder).glob("*.png"))
        run = wandb.init(entity=entity, project=project, name="q6-report-figures", job_type="report",
                         dir=folder, mode="online",
                         settings=wandb.Settings(silent=True, console="off", x_disable_stats=True))
        run.log({FIGURE_KEY: wandb.Image(str(figure), caption="the four configurations' confusion matrices")})
        run_id = run.id
        run.finish()
    return run_id


@entry_point
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    how = ("run `wandb login`, upload the runs (`wandb sync runs/q6_cnn_wandb/*/wandb/offline-run-*`) "
           "and rerun with `--wandb-mode online`")
    if args.wandb_mode != "online":
        fail(f"a W&B Report can only be saved online (--wandb-mode is {args.wandb_mode}): {how}", 2)
    import wandb

    try:
        wandb.Api()  # checks the API key with the server
    except wandb.errors.Error as exc:
        fail(f"cannot reach W&B to save the report ({exc}): {how}", 2)
    runs = load_runs(str(Path(args.runs_dir) / QUESTION / "*"))
    cnn_runs = sorted([run for run in runs if run.summary.get("config_id") in CONFIGS],
                      key=lambda run: (run.summary["config_id"], run.name))
    mlp_runs = [run for run in runs if run.summary.get("kind") == "resnet34_mlp"]
    if not cnn_runs:
        raise DataError(f"no finished run of the four configurations under {Path(args.runs_dir) / QUESTION}; "
                        f"run `bash scripts/reproduce_q6.sh` first")
    figure_run_id = log_confusion_figure(args.entity, args.project, cnn_runs)
    report = build_report(args.entity, args.project, args.title, cnn_runs, mlp_runs, figure_run_id)
    report.save()
    print(report.url)
    return {"url": report.url}


if __name__ == "__main__":
    main()
