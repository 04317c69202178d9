"""Render reports/q1.md and q1_entity_distribution.png from the summaries of dataset_stats.py,
analyze_lfs.py, aggregate.py and weak_labels.py under `<runs-dir>/q1_weak_supervision/` and of the
CoNLL-2003 tagger runs under `<runs-dir>/q5_ner_crf/` (read as files; the chain's hand-off). Nothing
in it is typed by hand except the original report's numbers and the goals, quoted for comparison.

    python -m q1_weak_supervision.report --runs-dir runs/smoke --out reports/q1.md
    python -m q1_weak_supervision.report --runs-dir results/runs --out results/q1.md
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib.pyplot as plt

from common.cli import HelpFormatter, entry_point
from common.errors import DataError
from common.report import (RunRecord, data_kind, fmt, load_runs, markdown_table, provenance_section,
                           save_figure, write_report)
from q1_weak_supervision.aggregate import (AGGREGATION_HEADERS, METHODS, aggregation_rows,
                                           conclusions)
from q1_weak_supervision.analyze_lfs import polarity_names
from q1_weak_supervision.dataset_stats import distribution_figure
from q1_weak_supervision.labeling_functions import (NOT_AGGREGATED, SENTENCE_CLASSES, TOKEN_CLASSES,
                                                    token_lfs)
from q1_weak_supervision.weak_labels import LABEL_METHODS, LABEL_TITLES, PARTIAL_METHOD
from q5_ner_crf.report import recipe_of

QUESTION = "q1_weak_supervision"
TAGGER_QUESTION = "q5_ner_crf"  # the tagger runs of the chain live with Q5's runs
# Q5's recipes the chain's taggers have been trained with (scripts/reproduce_q1.sh TAGGER_RECIPE),
# the current one first: each gets its own table, so that every row of a table shares one recipe.
TAGGER_RECIPES = ("literature", "modern")
# The goals set for this reproduction (test entity F1, seqeval strict IOB2), and the published
# figure the supervised goal is set against (Lample et al. 2016, BiLSTM-CRF, 100-d embeddings).
WEAK_GOAL, SUPERVISED_GOAL, LAMPLE_2016_F1 = 0.65, 0.91, 0.9094
# The chain's goal: each of its taggers (on the context and document LFs' majority labels, on
# their partial versions, each self-training student: is_chain), trained and selected without any
# gold label.
CHAIN_GOAL = 0.80
# The original report's printed sample counts: -DOCSTART- rows counted, validation and test swapped.
ORIGINAL_SAMPLES = {"train": 14987, "validation": 3684, "test": 3466}
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
    descriptions = sorted({run.summary.get("data", "?").split(";")[0] for run in runs})
    used = data_kind(runs)
    if used == "smoke":
        kind = ("**built-in smoke data** (common.data.conll.builtin_conll_splits), not CoNLL-2003: "
                "the numbers show the pipeline working, not the study's results")
    elif used == "real":
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
        out += samples_against_report(default, run)
    return out


def samples_against_report(sentences_run, docstart_run) -> list[str]:
    """Sentences per split, the same with separators, and what the original report printed."""
    names = ("train", "validation", "test")
    counted = {split: docstart_run.summary[f"num_{split}_samples"] for split in names}
    rows = [[split, sentences_run.summary[f"num_{split}_samples"],
             docstart_run.summary[f"num_{split}_docstart"], counted[split], ORIGINAL_SAMPLES[split]]
            for split in names]
    out = ["Samples per split: sentences, and sentences plus `-DOCSTART-` rows beside the original "
           "report's printed counts:\n",
           markdown_table(["split", "sentences", "-DOCSTART-", "sentences + separators", "original report"],
                          rows, align=["l", "r", "r", "r", "r"])]
    swapped = (counted["validation"] == ORIGINAL_SAMPLES["test"]
               and counted["test"] == ORIGINAL_SAMPLES["validation"])
    if counted["train"] == ORIGINAL_SAMPLES["train"] and swapped:
        out.append("The report's counts are the sentences plus separators, with validation and test "
                   "printed in each other's place.\n")
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
                        and r.summary["source"] == run.summary["source"]
                        and r.summary["split"] == run.summary["split"]), None)
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


# ---- from labeling functions to a tagger -----------------------------------------------------
def tagger_runs(runs_dir, recipe: str) -> dict[str, RunRecord]:
    """The chain's CoNLL-2003 GloVe + characters + CRF taggers of one Q5 recipe (seed 0, none of
    the recipe's settings changed) by training labels: each label set of weak_labels.py (its
    --train-file folder's name), the self-training rounds, and "gold"."""
    found: dict[str, RunRecord] = {}
    for run in load_runs(str(Path(runs_dir) / TAGGER_QUESTION / "*")):
        s = run.summary
        if not (s.get("dataset") == "conll2003" and s.get("embeddings") == "glove" and s.get("char")
                and s.get("crf") and s.get("layer_norm") in (None, False, "none")
                and s.get("seed", 0) == 0 and recipe_of(run) == recipe):
            continue
        key = Path(s["train_file"]).parent.name if s.get("train_file") else "gold"
        if key == PARTIAL_METHOD:  # one row per choice of the types an unlabelled token may take
            key += ":" + (s.get("unlabelled_types") or "any")
        if key in ("gold", *LABEL_METHODS) or key.startswith((PARTIAL_METHOD, SELF_TRAIN_PREFIX)):
            found.setdefault(key, run)
    return found


def tagger_tables(runs_dir) -> dict[str, dict[str, RunRecord]]:
    """{recipe: tagger_runs} for each of TAGGER_RECIPES with a tagger on weak labels; the first
    recipe's (with no rows run) when none has one."""
    by_recipe = {recipe: tagger_runs(runs_dir, recipe) for recipe in TAGGER_RECIPES}
    tables = {recipe: runs for recipe, runs in by_recipe.items() if set(runs) - {"gold"}}
    return tables or {TAGGER_RECIPES[0]: by_recipe[TAGGER_RECIPES[0]]}


def budget(run: RunRecord) -> str:
    """`best / run / allowed` epochs and the early-stopping patience of a tagger run."""
    s = run.summary
    patience = run.config.get("patience")
    epochs = f"{s['best_epoch']} / {s['epochs_run']} / {s['epochs']}"
    return epochs + (f", patience {patience}" if patience else "")


def type_f1s(per_class: dict) -> list:
    return [per_class.get(name, {}).get("f1") for name in ("LOC", "MISC", "ORG", "PER")]


def weak_methods(weak) -> list[str]:
    """The label sets a weak_labels run wrote (older runs: the two of aggregate.METHODS)."""
    return list(weak.summary.get("methods", METHODS))


SELF_TRAIN_PREFIX = "self_train_round"  # self_train.py's label folders: self_train_round<r>


def label_title(key: str) -> str:
    """A label set's name in the tables: a weak_labels method, or a self-training round."""
    if key.startswith(SELF_TRAIN_PREFIX):
        return f"self-training round {key[len(SELF_TRAIN_PREFIX):]}"
    if key.startswith(PARTIAL_METHOD + ":"):
        types = key.split(":", 1)[1]
        return LABEL_TITLES[PARTIAL_METHOD] + (" (any type)" if types == "any" else
                                               f" (O or {', '.join(types.split(','))})")
    return LABEL_TITLES[key]


def tagger_keys(weak, taggers) -> list[str]:
    """The tagger rows in order: each weak label set, the partial one when a tagger trained on
    it, then the self-training rounds run."""
    rounds = sorted((k for k in taggers if k.startswith(SELF_TRAIN_PREFIX)),
                    key=lambda k: int(k[len(SELF_TRAIN_PREFIX):]))
    partial = sorted(k for k in taggers if k.startswith(PARTIAL_METHOD))
    return weak_methods(weak) + partial + rounds


def is_chain(key: str) -> bool:
    """A tagger of the chain without gold: on majority_doc labels, on them partly unlabelled, or a
    self-training student (CHAIN_GOAL)."""
    return key == "majority_doc" or key.startswith((PARTIAL_METHOD, SELF_TRAIN_PREFIX))


def weak_label_section(weak, taggers_by_recipe: dict[str, dict[str, RunRecord]], lf_runs=(),
                       self_train_runs=()) -> list[str]:
    s = weak.summary
    methods = weak_methods(weak)
    rows = [[LABEL_TITLES[m], split, *(s[f"weak/{m}/{split}/{key}"] for key in
                                       ("coverage", "entity_precision", "entity_recall", "entity_f1"))]
            for m in methods for split in ("train", "validation", "test")]
    out = ["## 5. From labeling functions to a tagger", "",
           f"`{weak.name}`: the {len(s['lfs'])} aggregated token LFs (all but "
           f"{', '.join(f'`{n}`' for n in NOT_AGGREGATED)}) on every split. `MajorityLabelVoter` and "
           f"`LabelModel` ({s['label_model_epochs']} epochs, lr {s['label_model_lr']}, fitted on the "
           "training split's votes only, no gold) give each token one label; a token without votes is `O`. "
           "Entity scores: seqeval strict IOB2 against the gold tags.\n"]
    if "document_lfs" in s:
        out.append(f"The `+ context and document LFs` rows add the sentence-context LFs "
                   f"{', '.join(f'`{n}`' for n in s['context_lfs'])} (q1_weak_supervision/context_lfs.py) "
                   f"and the document LFs {', '.join(f'`{n}`' for n in s['document_lfs'])} "
                   "(q1_weak_supervision/document_lfs.py: they read the sentence-level LFs' majority vote of "
                   f"each document; documents per split: train {s['documents']['train']}, validation "
                   f"{s['documents']['validation']}, test {s['documents']['test']}) and aggregate the "
                   "extended votes by majority, by the LabelModel, and by an HMM over each sentence "
                   f"(q1_weak_supervision/hmm.py, {s['hmm_iterations']} EM iterations from the majority "
                   "vote's counts, fitted on the training split's votes only; a token's label is its "
                   "most probable state, `O` included).\n")
    out += [
           "### 5.1 The aggregated labels against gold\n",
           markdown_table(["labels", "split", "share of tokens labelled", "entity P", "entity R",
                           "entity F1"], rows, align=["l", "l", "r", "r", "r", "r"])]
    coverage = ", ".join(f"{split} {s[f'weak/{split}/entity_token_vote_coverage']:.1%}"
                         for split in ("train", "validation", "test"))
    out.append(f"Share of gold entity tokens with at least one LF vote (a bound on the token recall of "
               f"an aggregate that labels voted tokens only): {coverage}"
               + ("; with the context and document LFs " + ", ".join(
                   f"{split} {s[f'weak/{split}/entity_token_vote_coverage_doc']:.1%}"
                   for split in ("train", "validation", "test")) if "document_lfs" in s else "") + ".\n")
    per_type = [[LABEL_TITLES[m], name, s[f"weak/{m}/test/{name}_entity_precision"],
                 s[f"weak/{m}/test/{name}_entity_recall"], s[f"weak/{m}/test/{name}_entity_f1"]]
                for m in methods for name in ("LOC", "MISC", "ORG", "PER")]
    out += ["Per type on the test split:\n",
            markdown_table(["labels", "type", "entity P", "entity R", "entity F1"], per_type,
                           align=["l", "l", "r", "r", "r"])]
    out += ablation_section(s)
    out += misses_section(s)
    for number, (recipe, taggers) in enumerate(taggers_by_recipe.items(), start=2):
        # Each self-training round goes with the recipe of its teacher.
        rounds = [r for r in self_train_runs if any(r.summary.get("teacher_run") == run.name
                                                    for run in taggers.values())]
        out += tagger_section(weak, taggers, recipe, f"5.{number}", rounds)
    out.append(f"### 5.{len(taggers_by_recipe) + 2} Goals\n")
    for recipe, taggers in taggers_by_recipe.items():
        if len(taggers_by_recipe) > 1:
            out.append(f"The `{recipe}` recipe:\n")
        out += goal_lines(weak, taggers, lf_runs)
    return out


def tagger_section(weak, taggers: dict[str, RunRecord], recipe: str, number: str,
                   self_train_runs=()) -> list[str]:
    """The taggers of one Q5 recipe: test scores of each, weak-dev and gold-dev selected, under the
    labels themselves; its self-training rounds; then the dev ablation of the chain."""
    s = weak.summary
    out = [f"### {number} The tagger trained on them: `{recipe}` recipe\n",
           f"Q5's tagger (`q5_ner_crf/train.py --recipe {recipe}`, GloVe + character BiLSTM + CRF) "
           "trained on the weakly labelled training file, and on the gold training labels for the upper "
           "bound; every figure is test entity P/R/F1 (per-type columns: F1). A weak row selects its epoch "
           "on the weak dev labels (no gold label used anywhere), or on the gold dev split (WRENCH's "
           "protocol), from the same run. Epochs: best / run / allowed.\n"]
    if any(key.startswith(PARTIAL_METHOD) for key in taggers):
        out.append(partial_sentence(s))
    table = []
    for method in weak_methods(weak):
        prefix = f"weak/{method}/test/"
        table.append([f"{LABEL_TITLES[method]} labels themselves", "—", "—", "—",
                      s[prefix + "entity_precision"], s[prefix + "entity_recall"], s[prefix + "entity_f1"],
                      *(s[f"{prefix}{name}_entity_f1"] for name in ("LOC", "MISC", "ORG", "PER"))])
    for key in (*tagger_keys(weak, taggers), "gold"):
        run = taggers.get(key)
        labels = "gold training labels" if key == "gold" else f"{label_title(key)} labels"
        if run is None:
            table.append([f"tagger on {labels}", "not run", "—", "—", *["—"] * 7])
            continue
        r = run.summary
        selection = "gold dev" if key == "gold" else "weak dev labels (no gold)"
        table.append([f"tagger on {labels}", selection, budget(run), f"{r['train_time_s'] / 60:.1f} min",
                      r["test_precision"], r["test_recall"], r["test_f1"], *type_f1s(r["per_class"]["test"])])
        if key != "gold" and r.get("gold_selection"):
            g = r["gold_selection"]
            table.append([f"tagger on {labels}", "gold dev (WRENCH)",
                          f"{g['best_epoch']} / {r['epochs_run']} / {r['epochs']}", "same run",
                          g["test_precision"], g["test_recall"], g["test_f1"],
                          *type_f1s(g["test_per_class"])])
    out.append(markdown_table(["row", "selected on", "epochs", "train time", "test P", "test R", "test F1",
                               "LOC", "MISC", "ORG", "PER"], table, align=["l", "l", "l", "r"] + ["r"] * 7))
    out += self_train_section(self_train_runs)
    out += chain_ablation(weak, taggers)
    return out


def partial_sentence(s: dict) -> str:
    """What the partial label set leaves unlabelled, measured on the training split."""
    if "partial/train/unlabelled_tokens" not in s:
        return ""
    return (f"The `{LABEL_TITLES[PARTIAL_METHOD]}` labels are the majority_doc labels with the tokens no "
            "function voted on that look like part of a name (a capital first letter, not first in the "
            "sentence, not a stop word, month or day, not in a sentence all in capitals) left unlabelled: "
            "the tagger's CRF sums over their tags instead of learning `O` for them "
            "(`weak_labels.name_shaped_unvoted`), over every tag or over `O` and the types in brackets "
            "(`q5_ner_crf/train.py --unlabelled-types`). On the training split that is "
            f"{s['partial/train/unlabelled_tokens']:,} tokens ({s['partial/train/unlabelled_share']:.1%}); "
            f"against gold (analysis only) {s['partial/train/unlabelled_gold_entity_share']:.1%} of them are "
            "entity tokens, and they are "
            f"{s['partial/train/missed_entity_tokens_unlabelled']:.1%} of the gold entity tokens the labels "
            "miss. Its dev file is majority_doc's.\n")


def chain_ablation(weak, taggers) -> list[str]:
    """Gold dev entity scores of each step of the chain without gold: the 17 LFs' majority vote,
    the tagger on it, the majority vote with the context and document LFs, the tagger on it, the
    taggers on its partial labels, and each self-training student; taggers at the epoch the weak
    dev labels select."""
    s = weak.summary
    steps = [("MajorityLabelVoter labels (17 LFs)", "majority", None), ("tagger on them", None, "majority")]
    if "weak/majority_doc/validation/entity_f1" in s:
        steps += [("MajorityLabelVoter labels (+ context and document LFs)", "majority_doc", None),
                  ("tagger on them (the first teacher)", None, "majority_doc")]
        # The partial labels' taggers: alternatives to the first teacher, each compared with it.
        steps += [(f"tagger on them, {label_title(key).removeprefix(LABEL_TITLES['majority_doc'] + ', ')}",
                   None, key) for key in tagger_keys(weak, taggers) if key.startswith(PARTIAL_METHOD)]
    steps += [(f"student of {label_title(key)}", None, key)
              for key in tagger_keys(weak, taggers) if key.startswith(SELF_TRAIN_PREFIX)]
    rows, previous = [], None
    for name, labels, tagger in steps:
        if labels is not None:
            values = [s[f"weak/{labels}/validation/entity_{key}"] for key in ("precision", "recall", "f1")]
        elif tagger in taggers:
            r = taggers[tagger].summary
            values = [r["val_gold_precision"], r["val_gold_recall"], r["val_gold_f1"]]
        else:
            rows.append([name, "not run", "—", "—", "—"])
            continue
        rows.append([name, *values, "—" if previous is None else f"{100 * (values[2] - previous):+.2f}"])
        if not (tagger or "").startswith(PARTIAL_METHOD):
            previous = values[2]
    if len(rows) < 3:
        return []
    return ["#### Dev ablation of the chain\n",
            "Each step's entity scores on the gold dev split (for analysis: no step selects on them); a "
            "tagger at the epoch its weak dev labels select. The change is against the row above; a "
            "tagger on partial labels, an alternative to the first teacher, is compared with the first "
            "teacher (or the row above it when the teacher has no run), and so are the students.\n",
            markdown_table(["step", "dev P", "dev R", "dev F1", "dev F1 change (points)"], rows,
                           align=["l", "r", "r", "r", "r"])]


def self_train_section(runs) -> list[str]:
    """Each self-training round's labels against gold: the weak labels, the teacher's tags and the
    student's labels (the weak entities plus the teacher's others) on train and dev."""
    if not runs:
        return []
    rows = [[r.summary["round"], r.summary["teacher_run"], labels, split,
             *(r.summary[f"{labels}/{split}/{key}"] for key in
               ("entity_precision", "entity_recall", "entity_f1", "entities"))]
            for r in sorted(runs, key=lambda r: r.summary["round"])
            for labels in ("weak", "teacher", "student") for split in ("train", "validation")]
    return ["Self-training (q1_weak_supervision/self_train.py): in each round the teacher tags the "
            "training and dev sentences, and the student's file keeps the weak labels' entities and adds "
            "the teacher's entities that overlap none of them; the student is the same tagger and recipe. "
            "The labels against gold (analysis only):\n",
            markdown_table(["round", "teacher", "labels", "split", "entity P", "entity R", "entity F1",
                            "entities"], rows, align=["r", "l", "l", "l", "r", "r", "r", "r"])]


def ablation_section(s: dict) -> list[str]:
    """The majority vote's entity scores on dev and test as each group of added LFs joins."""
    if "ablation_steps" not in s:
        return []
    rows, previous = [], None
    for step, name in enumerate(s["ablation_steps"]):
        f1 = s[f"ablation/{step}/validation/entity_f1"]
        rows.append([name, *(s[f"ablation/{step}/validation/entity_{key}"] for key in ("precision", "recall")),
                     f1,
                     "—" if previous is None else f"{100 * (f1 - previous):+.2f}",
                     *(s[f"ablation/{step}/test/entity_{key}"] for key in ("precision", "recall", "f1"))])
        previous = f1
    return ["### 5.1.1 What each added LF group gives the majority vote\n",
            "Cumulative: each row adds its LFs to the row above (the document LFs read the majority vote "
            "of the 17 and the context LFs). Entity scores, seqeval strict IOB2.\n",
            markdown_table(["LFs", "dev P", "dev R", "dev F1", "dev F1 change (points)", "test P", "test R",
                            "test F1"], rows, align=["l"] + ["r"] * 7)]


def misses_section(s: dict) -> list[str]:
    """Per type, the gold entities of the training split the chosen labels miss most often."""
    if "misses_method" not in s:
        return []
    rows = [[name, s[f"misses/train/{name}_entities"],
             ", ".join(f"{text} ({count})" for text, count in s[f"misses/train/{name}"])]
            for name in ("LOC", "MISC", "ORG", "PER")]
    return ["### 5.1.2 What the labels miss on the training split\n",
            f"Gold entities of the training split that the {LABEL_TITLES[s['misses_method']]} labels do "
            "not give (same span and type), per type, with the most frequent texts. For analysis only: "
            "this list reads gold annotations, so no labeling function is built from it.\n",
            markdown_table(["type", "missed entities", "most frequent missed texts (count)"], rows,
                           align=["l", "r", "l"])]


def lfs_of_type(lf_runs, name: str) -> str:
    """The aggregated LFs voting `name`, with their coverage and precision on the gold dev split."""
    label = TOKEN_CLASSES.index(name)
    run = next((r for r in lf_runs if r.summary.get("split") == "validation"), None)
    lfs = [lf.name for lf in token_lfs() if lf.name not in NOT_AGGREGATED and lf.label == label]
    if run is None:
        return ", ".join(f"`{lf}`" for lf in lfs)
    return ", ".join(f"`{lf}` (dev coverage {run.summary[f'token/{lf}_coverage']:.2%}, precision "
                     f"{run.summary[f'token/{lf}_accuracy']:.3f})" for lf in lfs
                     if f"token/{lf}_coverage" in run.summary)


def goal_lines(weak, taggers, lf_runs=()) -> list[str]:
    """Each goal met or missed, and for a miss the measured reason: the weakest type, whether
    precision or recall is short, and (weak rows) what the labels and the LFs gave that type."""
    out = []
    for key in tagger_keys(weak, taggers):
        run = taggers.get(key)
        if run is None:
            continue
        r = run.summary
        choices = [("weak dev labels", r["test_f1"], r["per_class"]["test"])]
        if r.get("gold_selection"):
            chosen = r["gold_selection"]
            choices.append(("gold dev", chosen["test_f1"], chosen["test_per_class"]))
        for selection, f1, per_class in choices:
            verdict = "meets" if f1 >= WEAK_GOAL else "misses"
            line = (f"Tagger on {label_title(key)} labels, selected on {selection}: test F1 {f1:.4f} "
                    f"{verdict} the goal of {WEAK_GOAL:.2f}.")
            if f1 < WEAK_GOAL:
                name = weakest(per_class)
                line += (f" {weakest_type(per_class, weak.summary, key if key in LABEL_TITLES else None)} "
                         f"The LFs voting {name}: "
                         f"{lfs_of_type(lf_runs, name)}.")
            out.append(line + "\n")
    out += chain_goal_line(weak, taggers)
    gold = taggers.get("gold")
    if gold is not None:
        f1 = gold.summary["test_f1"]
        verdict = "meets" if f1 >= SUPERVISED_GOAL else "misses"
        line = (f"Tagger on gold labels: test F1 {f1:.4f} {verdict} the goal of {SUPERVISED_GOAL:.2f} "
                f"(Lample et al. 2016: {LAMPLE_2016_F1:.4f} with 100-d embeddings; here 50-d GloVe).")
        if f1 < SUPERVISED_GOAL:
            line += (f" {weakest_type(gold.summary['per_class']['test'])} Its dev F1 at the selected epoch "
                     f"is {gold.summary['val_f1']:.4f}: test is {100 * (gold.summary['val_f1'] - f1):.1f} "
                     "points lower.")
        out.append(line + "\n")
    return out


def chain_goal_line(weak, taggers) -> list[str]:
    """Each tagger of the chain without gold (is_chain), selected on weak dev labels, against
    CHAIN_GOAL; for a miss, its weakest type, and the share of gold entity tokens the LFs vote on."""
    out = []
    for key in (key for key in tagger_keys(weak, taggers) if is_chain(key) and key in taggers):
        r = taggers[key].summary
        f1 = r["test_f1"]
        line = (f"The chain's tagger on {label_title(key)} labels (selected on weak dev labels, no gold "
                f"label anywhere): test F1 {f1:.4f} {'meets' if f1 >= CHAIN_GOAL else 'misses'} the goal of "
                f"{CHAIN_GOAL:.2f}.")
        if f1 < CHAIN_GOAL:
            s = weak.summary
            method = "majority_doc" if "majority_doc" in s.get("methods", ()) else None
            line += f" Test P {r['test_precision']:.4f}, R {r['test_recall']:.4f}. " \
                    f"{weakest_type(r['per_class']['test'], s, method)}"
            if "weak/test/entity_token_vote_coverage_doc" in s:
                line += (f" The LFs vote on {s['weak/test/entity_token_vote_coverage_doc']:.1%} of the test "
                         "split's gold entity tokens.")
        out.append(line + "\n")
    return out


def weakest(per_class: dict) -> str:
    """The entity type with the lowest F1 in a per-type table."""
    return min((name for name in per_class if name in TOKEN_CLASSES), key=lambda t: per_class[t]["f1"])


def weakest_type(per_class: dict, weak_summary: dict | None = None, method: str | None = None) -> str:
    """`The weakest type is ORG (F1 ..; P .., R ..: recall is short).` from a per-type table, with
    what the weak training labels gave that type."""
    name = weakest(per_class)
    v = per_class[name]
    short = "recall" if v["recall"] < v["precision"] else "precision"
    text = (f"The weakest type is {name} (F1 {v['f1']:.3f}; P {v['precision']:.3f}, R {v['recall']:.3f}: "
            f"{short} is short).")
    if weak_summary is not None and method is not None:
        prefix = f"weak/{method}/train/{name}_entity_"
        text += (f" The {LABEL_TITLES[method]} training labels give {name} entity P "
                 f"{weak_summary[prefix + 'precision']:.3f}, R {weak_summary[prefix + 'recall']:.3f} "
                 "against gold.")
    return text


def headline_rows(runs_dir) -> list[list]:
    """results/README.md rows: [study, row, measure, ours, original, target]."""
    runs_dir = Path(runs_dir)
    runs = load_runs(str(runs_dir / QUESTION / "*"))
    weak = next((r for r in runs if r.summary.get("stage") == "weak_labels"), None)
    if weak is None:
        return [["Q1 CoNLL-2003", "weak labels and taggers", "test entity F1", "not run", "—", "—"]]
    methods = weak_methods(weak)
    rows = [["Q1 CoNLL-2003", f"{LABEL_TITLES[method]} labels", "test entity F1",
             fmt(weak.summary[f"weak/{method}/test/entity_f1"]), "—", "—"] for method in methods]
    for recipe, taggers in tagger_tables(runs_dir).items():
        for method in tagger_keys(weak, taggers):
            run = taggers.get(method)
            if run is None and method not in METHODS:
                continue  # the newer label sets get a row once a tagger has been trained on them
            for selection in ("weak dev labels", "gold dev"):
                if run is None:
                    f1 = "not run"
                elif selection == "gold dev":
                    f1 = fmt(run.summary.get("gold_selection", {}).get("test_f1"))
                else:
                    f1 = fmt(run.summary["test_f1"])
                if is_chain(method):
                    target = f">= {CHAIN_GOAL:.2f}" if selection == "weak dev labels" else "—"
                else:
                    target = f">= {WEAK_GOAL:.2f}"
                rows.append(["Q1 CoNLL-2003", f"tagger on {label_title(method)} labels ({recipe} recipe), "
                             f"selected on {selection}", "test entity F1", f1, "—", target])
        gold = taggers.get("gold")
        rows.append(["Q1 CoNLL-2003", f"tagger on gold labels ({recipe} recipe, upper bound)",
                     "test entity F1",
                     fmt(gold.summary["test_f1"]) if gold else "not run", "—",
                     f">= {SUPERVISED_GOAL:.2f}"])
    return rows


@entry_point
def main(argv=None) -> str:
    args = parse_args(argv)
    runs = load_runs(str(Path(args.runs_dir) / QUESTION / "*"))
    by_stage = {stage: [r for r in runs if r.summary.get("stage") == stage]
                for stage in ("dataset_stats", "analyze_lfs", "aggregate")}
    if not any(by_stage.values()) and not any(r.summary.get("stage") == "weak_labels" for r in runs):
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
    weak = [r for r in runs if r.summary.get("stage") == "weak_labels"]
    tables = tagger_tables(args.runs_dir)
    if weak:
        lines += weak_label_section(weak[0], tables, by_stage["analyze_lfs"],
                                    [r for r in runs if r.summary.get("stage") == "self_train"])
    taggers = {run.name: run for table in tables.values() for run in table.values()}
    lines.append(provenance_section(runs + list(taggers.values()), args.runs_dir))
    text = "\n".join(lines).rstrip() + "\n"
    write_report(out_path, text)
    return text


if __name__ == "__main__":
    main()
