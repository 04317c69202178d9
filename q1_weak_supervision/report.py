"""Render reports/q1.md and q1_entity_distribution.png from the summaries of dataset_stats.py,
analyze_lfs.py and aggregate.py under `<runs-dir>/q1_weak_supervision/`. Nothing in it is typed by
hand except the original report's numbers, quoted for comparison.

    python -m q1_weak_supervision.report --runs-dir runs/smoke --out reports/q1.md
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib.pyplot as plt

from common.cli import HelpFormatter, entry_point
from common.errors import DataError
from common.report import fmt, load_runs, markdown_table, save_figure, write_report
from q1_weak_supervision.aggregate import AGGREGATION_HEADERS, aggregation_rows, conclusions
from q1_weak_supervision.analyze_lfs import polarity_names
from q1_weak_supervision.dataset_stats import distribution_figure
from q1_weak_supervision.labeling_functions import SENTENCE_CLASSES, TOKEN_CLASSES

QUESTION = "q1_weak_supervision"
# The original report's printed numbers (train split, DOCSTART rows counted, its regex), quoted
# for comparison with a run made under the same conditions.
ORIGINAL_REPORT = {
    "num_train_samples": 14987,
    "lf_year_coverage": 0.095549, "lf_org_suffix_coverage": 0.001201,
    "lf_year_overlaps": 0.000133, "lf_org_suffix_overlaps": 0.000133,
    "lf_year_conflicts": 0.000133, "lf_org_suffix_conflicts": 0.000133,
    "aggregated_label_distribution": {"-1": 13541, "0": 1430, "1": 16},
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--runs-dir", default="runs", help="root of the run folders")
    parser.add_argument("--out", default="reports/q1.md", help="markdown file to write")
    return parser.parse_args(argv)


def run_label(run) -> str:
    """How a run differs from the defaults, e.g. `--keep-docstart --lf-definition report`."""
    flags = (("--keep-docstart", run.summary.get("keep_docstart")),
             ("--lf-definition report", run.summary.get("lf_definition") == "report"))
    return " ".join(flag for flag, given in flags if given) or "defaults"


def data_sentence(runs) -> str:
    """Which data the runs used, from their config.json (and summary)."""
    smoke = {bool(run.config.get("smoke")) for run in runs}
    descriptions = sorted({run.summary.get("data", "?").split(";")[0] for run in runs})
    if smoke == {True}:
        kind = ("**built-in smoke data** (common.data.conll.builtin_conll_splits), not CoNLL-2003: "
                "the numbers show the pipeline working, not the study's results")
    elif smoke == {False}:
        kind = "**real data** (not the built-in corpus)"
    else:
        kind = "**a mix of built-in smoke data and real data** (see each run's source)"
    return f"Data: {kind}. Sources: {'; '.join(descriptions)}."


def stats_section(runs, figure_path: Path) -> list[str]:
    names = ("train", "validation", "test")
    rows = [[run.name, run_label(run), *(run.summary[f"num_{split}_samples"] for split in names),
             run.summary.get("num_train_docstart", 0)] for run in runs]
    out = ["## 1. Dataset statistics", "", markdown_table(["run", "flags", *names, "-DOCSTART- in train"],
                                                          rows, align=["l", "l"] + ["r"] * 4)]
    default = next((r for r in runs if not r.summary.get("keep_docstart")), runs[0])
    splits = {split: default.summary["entity_distribution" + ("" if split == "train" else f"_{split}")]
              for split in names}
    tags = sorted({tag for counts in splits.values() for tag in counts},
                  key=lambda t: (t != "O", t[2:], t[:1]))
    figure = distribution_figure({split: {"distribution": counts} for split, counts in splits.items()}, tags)
    save_figure(figure, figure_path)
    plt.close(figure)
    out += [f"Tag distribution of `{default.name}` ({run_label(default)}):\n",
            markdown_table(["tag", *splits], [[tag, *(counts.get(tag, 0) for counts in splits.values())]
                                              for tag in tags]),
            f"![tag distribution]({figure_path.name})\n"]
    total = sum(splits["train"].values())
    if total:
        share = sum(v for t, v in splits["train"].items() if t != "O") / total
        out.append(f"In the training split {share:.1%} of the tokens belong to an "
                   f"entity; `O` is the remaining {1 - share:.1%}.\n")
    run = next((r for r in runs if r.summary.get("keep_docstart")), None)
    if run is not None:
        out.append(f"With `--keep-docstart` the training split has {run.summary['num_train_samples']} "
                   f"samples, {run.summary['num_train_docstart']} of them `-DOCSTART-` separators "
                   "counted as samples the way the report counted them.\n")
    return out


LF_FIELDS = ("polarity", "coverage", "overlaps", "conflicts", "snorkel_correct", "snorkel_incorrect",
             "snorkel_emp_acc", "votes", "accuracy")
LF_HEADERS = ["LF", "votes for", "coverage", "overlaps", "conflicts", "Snorkel correct",
              "Snorkel incorrect", "Snorkel Emp. Acc.", "votes", "accuracy"]


def lf_rows(run, level: str) -> list[list]:
    prefix, classes = ("", SENTENCE_CLASSES) if level == "sentence" else ("token/", TOKEN_CLASSES)
    rows = []
    for name in run.summary[f"{level}_lfs"]:
        value = {field: run.summary[f"{prefix}{name}_{field}"] for field in LF_FIELDS}
        rows.append([name, polarity_names(value["polarity"], classes),
                     *(fmt(value[field], 6) for field in LF_FIELDS[1:4]),
                     *(value[field] for field in LF_FIELDS[4:])])
    return rows


def lf_section(runs) -> list[str]:
    out = ["## 2. Labeling functions", "",
           "Coverage, overlaps and conflicts are Snorkel's `LFAnalysis` fractions of all rows; "
           "**accuracy** is correct votes / votes as defined in q1_weak_supervision/README.md "
           "(\"Accuracy, precisely\"); Snorkel's Emp. Acc. is shown for comparison.", ""]
    for run in runs:
        out += [f"### `{run.name}` ({run_label(run)}, split {run.summary['split']})\n",
                f"Sentence level ({run.summary['sentence_rows']} rows):\n",
                markdown_table(LF_HEADERS, lf_rows(run, "sentence")),
                f"Token level ({run.summary['token_rows']} rows):\n",
                markdown_table(LF_HEADERS, lf_rows(run, "token")), " ".join(lf_findings(run)) + "\n"]
    return out


def lf_findings(run) -> list[str]:
    """Computed remarks on one analyze_lfs run."""
    s = run.summary
    lines = []
    accuracies = {name: s[f"token/{name}_accuracy"] for name in s["token_lfs"]
                  if not math.isnan(s[f"token/{name}_accuracy"])}
    if accuracies:
        best = max(accuracies, key=accuracies.get)
        worst = min(accuracies, key=accuracies.get)
        lines.append(f"The most accurate token LF is `{best}` ({accuracies[best]:.1%}), the least "
                     f"`{worst}` ({accuracies[worst]:.1%}).")
    for level, prefix in (("sentence", ""), ("token", "token/")):
        pairs = {name: (s[f"{prefix}{name}_snorkel_emp_acc"], s[f"{prefix}{name}_accuracy"])
                 for name in s[f"{level}_lfs"] if s[f"{prefix}{name}_votes"]}
        gaps = [f"`{name}` ({emp:.3f} against {acc:.3f})" for name, (emp, acc) in pairs.items()
                if abs(emp - acc) > 1e-9]
        lines.append(f"At {level} level Snorkel's Emp. Acc. differs from the measured accuracy for "
                     f"{', '.join(gaps)}." if gaps else
                     f"At {level} level Snorkel's Emp. Acc. equals the measured accuracy.")
    return lines


def definition_comparison(lf_runs) -> list[str]:
    """lf_year's votes under the report's regex and under whole year tokens, on the same source."""
    lines = []
    for run in (r for r in lf_runs if r.summary["lf_definition"] == "report"):
        partner = next((r for r in lf_runs if r.summary["lf_definition"] == "tokens"
                        and r.summary["source"] == run.summary["source"]), None)
        # Votes, not coverage: --keep-docstart adds rows (on which no LF votes) to one run only.
        if partner is not None:
            lines.append(f"`lf_year` votes on {run.summary['lf_year_votes']} sentences with the report's "
                         f"regex and {partner.summary['lf_year_votes']} with whole year tokens.")
    return lines


def original_comparison(lf_runs, aggregate_runs, stats_runs) -> list[str]:
    """The report's own numbers beside a run made under the report's conditions."""
    lf_run, agg_run = (next((r for r in runs if r.summary["lf_definition"] == "report"
                             and r.summary["keep_docstart"] and r.summary["split"] == "train"), None)
                       for runs in (lf_runs, aggregate_runs))
    stats_run = next((r for r in stats_runs if r.summary["keep_docstart"]), None)
    if lf_run is None and agg_run is None:
        return []
    pairs = []  # (quantity, the report's number, this run's)
    if stats_run is not None:
        pairs.append(("training samples", ORIGINAL_REPORT["num_train_samples"],
                      stats_run.summary["num_train_samples"]))
    if lf_run is not None:
        pairs += [(key, ORIGINAL_REPORT[key], round(lf_run.summary[key], 6))
                  for key in ORIGINAL_REPORT if key.startswith("lf_")]
    if agg_run is not None:
        measured = agg_run.summary["aggregated_label_distribution"]
        pairs += [(f"aggregated label {label}", count, measured[label])
                  for label, count in ORIGINAL_REPORT["aggregated_label_distribution"].items()]
    rows = [[label, fmt(original, 6), fmt(measured, 6), measured == original]
            for label, original, measured in pairs]
    differ = sum(not row[3] for row in rows)
    out = ["## 4. Against the original report", "",
           "The original report's printed numbers (train split, `-DOCSTART-` rows counted, its "
           "year regex) beside the runs made with `--keep-docstart --lf-definition report`:", "",
           markdown_table(["quantity", "original report", "this run", "same"], rows)]
    if not differ:
        out.append("Every number matches the original report.\n")
    elif not any(r.config.get("smoke") for r in (lf_run, agg_run, stats_run) if r is not None):
        out.append(f"{differ} of {len(rows)} numbers differ from the original report on this data.\n")
    else:
        out.append(f"These runs used the built-in corpus, not CoNLL-2003 ({differ} of {len(rows)} "
                   "numbers differ); run `scripts/reproduce_q1.sh --conll-dir DIR` on the original "
                   "files to compare.\n")
    return out


def aggregate_section(runs) -> list[str]:
    rows = [[run.name, run_label(run),
             *(run.summary["aggregated_label_distribution"][k] for k in ("-1", "0", "1")),
             *(run.summary[f"sentence_majority_{k}"] for k in ("ties", "coverage", "accuracy"))]
            for run in runs]
    out = ["## 3. Label aggregation", "",
           "Sentence level, `MajorityLabelVoter` over `lf_year` and `lf_org_suffix` (a label is "
           "correct when the sentence contains a gold entity of its type):\n",
           markdown_table(["run", "flags", "-1", "0 (MISC/DATE)", "1 (ORG)", "ties", "coverage", "accuracy"],
                          rows, align=["l", "l"] + ["r"] * 6)]
    for run in runs:
        out += [f"Token level, `{run.name}` ({run_label(run)}): `MajorityLabelVoter` vs `LabelModel` over "
                f"{len(run.summary['token_lfs'])} LFs on {run.summary['token_rows']} tokens; entity scores "
                "by seqeval (`mode=\"strict\", scheme=IOB2`):\n",
                markdown_table(AGGREGATION_HEADERS, aggregation_rows(run.summary),
                               align=["l", "l"] + ["r"] * 6),
                " ".join(conclusions(run.summary)) + "\n"]
    return out


@entry_point
def main(argv=None) -> str:
    args = parse_args(argv)
    runs = load_runs(str(Path(args.runs_dir) / QUESTION / "*"))
    by_stage = {stage: [r for r in runs if r.summary.get("stage") == stage]
                for stage in ("dataset_stats", "analyze_lfs", "aggregate")}
    if not any(by_stage.values()):
        raise DataError(f"no finished q1 runs under {Path(args.runs_dir) / QUESTION}; run "
                        "scripts/reproduce_q1.sh (add --smoke for the built-in data) first")
    out_path = Path(args.out)
    figure_path = out_path.with_name(f"{out_path.stem}_entity_distribution.png")

    lines = ["# Q1: Weak supervision for NER on CoNLL-2003", "",
             data_sentence([r for stage in by_stage.values() for r in stage]), "",
             "Rendered by `python -m q1_weak_supervision.report` from the run folders under "
             f"`{args.runs_dir}/{QUESTION}/`; W&B project `Q1-weak-supervision-ner`.", ""]
    if by_stage["dataset_stats"]:
        lines += stats_section(by_stage["dataset_stats"], figure_path)
    if by_stage["analyze_lfs"]:
        lines += lf_section(by_stage["analyze_lfs"])
        comparison = definition_comparison(by_stage["analyze_lfs"])
        if comparison:
            lines += [" ".join(comparison), ""]
    if by_stage["aggregate"]:
        lines += aggregate_section(by_stage["aggregate"])
    lines += original_comparison(*(by_stage[s] for s in ("analyze_lfs", "aggregate", "dataset_stats")))
    text = "\n".join(lines).rstrip() + "\n"
    write_report(out_path, text)
    return text


if __name__ == "__main__":
    main()
