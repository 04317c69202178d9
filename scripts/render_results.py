"""Render results/README.md: one table over every study, ours against the original report's figure
and the target set for this reproduction, row by row, from the run folders in results/runs (each
study's report module supplies its rows; nothing here is typed by hand except what is not run).

    python scripts/render_results.py --runs-dir results/runs --out results/README.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common.cli import HelpFormatter, entry_point
from common.report import load_runs, markdown_table, wall_time_s, write_report
from q1_weak_supervision.report import headline_rows as q1_rows
from q3_active_learning.report import headline_rows as q3_rows
from q4_normalization.report import REPORT_TEST_ACCURACY
from q4_normalization.report import headline_rows as q4_rows
from q5_ner_crf.report import headline_rows as q5_rows
from q6_cnn_wandb.report import headline_rows as q6_rows

REPORTS = {"q1": "Q1 weak supervision", "q1-modern": "Q1 weak supervision, modern-recipe taggers",
           "q3": "Q3 active learning",
           "q4": "Q4 normalization", "q5": "Q5 NER with a CRF",
           "q6": "Q6 CNN tracked in W&B", "q4-converge": "Q4 normalization, to convergence"}
# The one command behind each study's runs in results/runs (environment, then the reproduce
# script's arguments; data under data/ as the README lays it out). results/README.md shows them and
# tests/test_common_results_commands.py checks that every committed run is one they issue.
STUDY_COMMANDS = {
    "q1": ('TAGGER_FLAGS="--threads 1"', "bash scripts/reproduce_q1.sh --conll-dir data/conll2003 --jobs 2"),
    "q1-modern": ('TAGGER_RECIPE=modern TAGGER_FLAGS="--threads 1"',
                  "bash scripts/reproduce_q1.sh --conll-dir data/conll2003 --jobs 2"),
    "q3": ("Q3_DATASETS=cifar10", "bash scripts/reproduce_q3.sh --data-root data --jobs 2"),
    "q4": ("", "bash scripts/reproduce_q4.sh --recipe cpu --jobs 2 --threads 1 --out-dir ../studies/q4"),
    "q4-converge": ("", "bash scripts/reproduce_q4.sh --recipe converge --jobs 1 --threads 1 "
                        "--out-dir ../studies/q4"),
    "q5": ("MULTICONER_DIR=data/multiconer2", "bash scripts/reproduce_q5.sh --jobs 2 --threads 1"),
    "q6": ("RESNET_WEIGHTS=none RESNET_IMAGE_SIZE=64",
           "bash scripts/reproduce_q6.sh --data-root data --jobs 2 --threads 1"),
}
# Studies whose data cannot be had here: stated, not measured.
NOT_MEASURED = [
    ["Q2 CIFAR-100 ⇄ CIFAR-10", "transfer in both orders", "—", "not run", "—", "—",
     "CIFAR-100 is not available offline"],
    ["Q3 Flowers102", "every method", "—", "not run", "—", "—", "Flowers102 is not available offline"],
    ["Q6 CIFAR-10", "ResNet-34 ImageNet features + MLP", "—", "not run", "—", "—",
     "the ResNet-34 ImageNet weights are not available offline"],
]


# Q1's taggers are Q5's train.py on CoNLL-2003, in the literature recipe (the Q1 command's default;
# its gold row is Q5's conll2003-literature-glove-char-crf-seed0, counted with Q5) and in the
# modern recipe (TAGGER_RECIPE=modern, the earlier rows and their self-training round).
Q1_STAGES = ["q1_weak_supervision/stats*", "q1_weak_supervision/lfs*", "q1_weak_supervision/aggregate*",
             "q1_weak_supervision/weak-labels*"]
STUDY_FOLDERS = {"q1": [*Q1_STAGES, "q1_weak_supervision/self-train-*-literature-*",
                        "q5_ner_crf/conll2003-weak-*-literature-*"],
                 "q1-modern": ["q1_weak_supervision/self-train-*-round[0-9]-conll-dir",
                               "q5_ner_crf/conll2003-*-modern-*"],
                 "q3": ["q3_active_learning"],
                 "q4": ["q4_normalization/*-cpu-*", "q4_lr_sweep/q4_normalization"],
                 "q4-converge": ["q4_normalization/*-converge-*", "q4_lr_sweep_converge/q4_normalization"],
                 "q5": ["q5_ner_crf/gmb-*", "q5_ner_crf/multiconer-*", "q5_ner_crf/conll2003-literature-*"],
                 "q6": ["q6_cnn_wandb"]}


def commands_table(runs_dir: Path) -> str:
    """Per study: the command behind its runs, how many of them are in results/runs and their wall
    time added up (each run's start to its last logged line; runs that went side by side overlap)."""
    rows = []
    for key, (env, command) in STUDY_COMMANDS.items():
        patterns = [str(runs_dir / folder / ("" if "*" in folder else "*")) for folder in STUDY_FOLDERS[key]]
        runs = [run for run in load_runs(patterns) if (run.dir / "config.json").is_file()]
        seconds = [wall_time_s(run) for run in runs]
        hours = sum(second for second in seconds if second is not None) / 3600
        rows.append([REPORTS[key], f"`{(env + ' ' + command).strip()}`", len(runs),
                     f"{hours:.2f} h" if runs else "—"])
    headers = ["study", "command (data under data/, see the README)", "runs", "wall time added up"]
    return markdown_table(headers, rows, align=["l", "l", "r", "r"])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--runs-dir", default="results/runs", help="the committed run folders")
    parser.add_argument("--out", default="results/README.md", help="markdown file to write")
    return parser.parse_args(argv)


@entry_point
def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    runs_dir, out = Path(args.runs_dir), Path(args.out)
    studies = (q1_rows(runs_dir), q3_rows(runs_dir), q5_rows(runs_dir), q6_rows(runs_dir))
    rows = [row + [""] for rows in studies for row in rows]
    rows += q4_rows(runs_dir) or [
        ["Q4 CIFAR-10", f"ResNet-14, {norm}, batch 128", "test accuracy", "not run", f"{100 * accuracy:.2f}%",
         "—", "the CPU study (reproduce_q4.sh --recipe cpu) has not finished"]
        for norm, accuracy in REPORT_TEST_ACCURACY.items()]
    rows += NOT_MEASURED
    reports = [f"[{name}]({key}.md)" for key, name in REPORTS.items() if (out.parent / f"{key}.md").is_file()]
    text = "\n".join([
        "# Results on real data\n",
        "Every figure below was measured by this repository's scripts on the real datasets and is "
        "rendered from the run folders in `results/runs/` (config, summary and per-epoch metrics of "
        "each run; no checkpoints) by `bash scripts/collect_results.sh`; `python "
        "scripts/render_results.py` re-renders this page and `python -m <study>.report --runs-dir "
        "results/runs --out results/qN.md` each study's report. \"original\" is the original "
        "report's figure where the repository quotes it; \"target\" is what this reproduction set "
        "out to reach. Cells with ± are mean ± sample std over seeds (n seeds); others are one seed.\n",
        "Reports: " + " · ".join(reports) + "\n",
        "Each study's runs come from one command, run from the repository root with the data laid "
        "out as the README's real-data table says (`tests/test_common_results_commands.py` checks "
        "that every run in `results/runs` is one of them). The machines are in "
        "`results/runs/machine.txt`; each report's provenance table gives every run's command, "
        "commit, wall time and threads.\n",
        commands_table(runs_dir) + "\n",
        markdown_table(["study", "row", "measure", "ours", "original", "target", "note"], rows,
                       align=["l", "l", "l", "r", "r", "r", "l"]),
    ])
    write_report(out, text)
    return text


if __name__ == "__main__":
    main()
