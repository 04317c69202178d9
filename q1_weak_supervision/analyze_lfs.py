"""Apply the Q1 labeling functions and measure them at sentence and token level (Q1, step 2 of 3).

Reproduces the report's "Labeling Function Summary" (Snorkel's `LFAnalysis.lf_summary`) and adds
each LF's accuracy against the gold annotation, which the report never measured.

    python q1_weak_supervision/analyze_lfs.py                       # HF, correct year definition
    python q1_weak_supervision/analyze_lfs.py --conll-dir data/conll2003 --keep-docstart \\
        --lf-definition report                                      # the report's exact table
    python q1_weak_supervision/analyze_lfs.py --smoke               # built-in corpus, offline

Prints, per level, Snorkel's table and ours (votes, coverage, overlaps, conflicts, accuracy) and
logs `lf_<name>_<metric>` (`token/lf_<name>_<metric>` at token level). How accuracy is defined, why
it is not Snorkel's Emp. Acc., and the departures from the report: q1_weak_supervision/README.md.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings

import numpy as np
from snorkel.labeling import LFAnalysis

from common.cli import HelpFormatter, add_common_args, entry_point
from common.seed import seed_everything
from common.tracking import start_run
from q1_weak_supervision.corpus import (SPLITS, add_source_args, describe_source, load_splits,
                                        resolve_source, run_name)
from q1_weak_supervision.labeling_functions import (ABSTAIN, LF_DEFINITIONS, SENTENCE_CLASSES,
                                                    TOKEN_CLASSES, apply_lfs, sentence_frame,
                                                    sentence_gold_labels, sentence_lfs,
                                                    token_frame, token_gold_labels,
                                                    token_label_matrix, token_lfs)

PROJECT = "Q1-weak-supervision-ner"
LEVELS = ("sentence", "token")
KEY_PREFIX = {"sentence": "", "token": "token/"}  # W&B shows `token/...` as its own section


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--split", default="train", choices=SPLITS,
                        help="the split the LFs are applied to (the report used train)")
    parser.add_argument("--lf-definition", default="tokens", choices=sorted(LF_DEFINITIONS),
                        help="tokens: whole year tokens 1900-2099; report: the report's regex, "
                             "which also matches dates such as 1996-08-30")
    add_source_args(parser)
    add_common_args(parser)
    return parser.parse_args(argv)


def format_table(headers, rows) -> str:
    """A fixed-width text table: first column left-aligned, the others right-aligned; floats
    with 6 decimals (as pandas prints Snorkel's table), NaN as a dash."""
    def cell(value):
        if isinstance(value, float):
            return "-" if math.isnan(value) else f"{value:.6f}"
        return str(value)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(str(h).ljust(w) if i == 0 else str(h).rjust(w)
                       for i, (h, w) in enumerate(zip(headers, widths)))]
    lines += ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
              for r in cells]
    return "\n".join(lines)


def polarity_names(polarity, classes) -> str:
    """Snorkel's Polarity list as class names (`[0]` -> `MISC`); a dash when the LF never votes."""
    return ",".join(classes[int(label)] for label in polarity) or "-"


def vote_correctness_sentence(L: np.ndarray, types) -> np.ndarray:
    """(rows, LFs) bool: the LF voted and the sentence holds a gold entity of the voted type."""
    correct = np.zeros(L.shape, dtype=bool)
    for i, sentence_types in enumerate(types):
        for j, vote in enumerate(L[i]):
            correct[i, j] = vote != ABSTAIN and SENTENCE_CLASSES[vote] in sentence_types
    return correct


def vote_correctness_token(L: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """(rows, LFs) bool: the LF voted the token's gold entity type (an `O` token has gold -1,
    which no vote equals)."""
    return (L != ABSTAIN) & (L == gold[:, None])


def lf_statistics(L: np.ndarray, correct: np.ndarray, names) -> dict[str, dict]:
    """Per LF: votes, coverage, overlaps, conflicts (Snorkel's LFAnalysis) and correct votes and
    accuracy (as defined in the module docstring)."""
    analysis = LFAnalysis(L)
    with warnings.catch_warnings():  # scipy's notice about Snorkel's own diags() call
        warnings.filterwarnings("ignore", message="Input has data type", category=FutureWarning)
        coverage, overlaps, conflicts = (analysis.lf_coverages(), analysis.lf_overlaps(),
                                         analysis.lf_conflicts())
    votes = (L != ABSTAIN).sum(axis=0)
    n_correct = correct.sum(axis=0)
    return {name: {"votes": int(votes[j]), "coverage": float(coverage[j]),
                   "overlaps": float(overlaps[j]), "conflicts": float(conflicts[j]),
                   "correct": int(n_correct[j]),
                   "accuracy": float(n_correct[j] / votes[j]) if votes[j] else float("nan")}
            for j, name in enumerate(names)}


def analyze_level(level: str, sentences, definition: str, progress_bar: bool):
    """Apply one level's LFs; returns (lfs, L, Snorkel's summary frame, own statistics)."""
    if level == "sentence":
        frame, lfs = sentence_frame(sentences), sentence_lfs(definition)
        gold = sentence_gold_labels(frame)
        L = apply_lfs(frame, lfs, progress_bar=progress_bar)
    else:
        frame, lfs = token_frame(sentences), token_lfs(definition)
        gold = token_gold_labels(frame)
        L = token_label_matrix(sentences, lfs)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Input has data type", category=FutureWarning)
        snorkel_summary = LFAnalysis(L, lfs).lf_summary(Y=gold)
    correct = (vote_correctness_sentence(L, frame["types"]) if level == "sentence"
               else vote_correctness_token(L, gold))
    return lfs, L, snorkel_summary, lf_statistics(L, correct, [lf.name for lf in lfs])


@entry_point
def main(argv=None) -> dict:
    args = parse_args(argv)
    seed_everything(args.seed)
    source = resolve_source(args)
    name = run_name(args, "lfs")
    data = describe_source(args)
    print(f"[Q1] data: {data}; split {args.split}; LF definition {args.lf_definition}")
    sentences = load_splits(args)[args.split]
    run = start_run(args, project=PROJECT, question="q1_weak_supervision", default_name=name,
                    job_type="analyze_lfs")
    progress_bar = sys.stderr.isatty()

    summary = {"stage": "analyze_lfs", "data": data, "source": source, "split": args.split,
               "keep_docstart": args.keep_docstart, "lf_definition": args.lf_definition}
    metrics, tables = {}, {}
    for level in LEVELS:
        lfs, L, snorkel_summary, stats = analyze_level(level, sentences, args.lf_definition,
                                                       progress_bar)
        classes = SENTENCE_CLASSES if level == "sentence" else TOKEN_CLASSES
        print(f"\nLabeling Function Summary ({level} level, {L.shape[0]} rows; Snorkel's "
              f"LFAnalysis, classes {dict(enumerate(classes))}):")
        print(snorkel_summary.to_string())
        headers = ["LF", "label", "votes", "coverage", "overlaps", "conflicts", "correct",
                   f"accuracy ({level})"]
        rows = [[lf.name, polarity_names(snorkel_summary.loc[lf.name, "Polarity"], classes),
                 *(stats[lf.name][key] for key in ("votes", "coverage", "overlaps", "conflicts",
                                                   "correct", "accuracy"))]
                for lf in lfs]
        print(f"Measured accuracy ({level} level; see the definition in this script's docstring):")
        print(format_table(headers, rows))

        prefix = KEY_PREFIX[level]
        summary[f"{level}_lfs"] = [lf.name for lf in lfs]
        summary[f"{level}_rows"] = int(L.shape[0])
        for lf in lfs:
            s, snorkel_row = stats[lf.name], snorkel_summary.loc[lf.name]
            for key in ("coverage", "overlaps", "conflicts", "accuracy", "votes", "correct"):
                metrics[f"{prefix}{lf.name}_{key}"] = s[key]
            metrics[f"{prefix}{lf.name}_polarity"] = [int(p) for p in snorkel_row["Polarity"]]
            metrics[f"{prefix}{lf.name}_snorkel_correct"] = int(snorkel_row["Correct"])
            metrics[f"{prefix}{lf.name}_snorkel_incorrect"] = int(snorkel_row["Incorrect"])
            metrics[f"{prefix}{lf.name}_snorkel_emp_acc"] = float(snorkel_row["Emp. Acc."])
        tables[f"lf_summary_{level}"] = (
                  ["LF", "polarity", "coverage", "overlaps", "conflicts", "snorkel_correct",
                   "snorkel_incorrect", "snorkel_emp_acc", "votes", "correct", "accuracy"],
                  [[lf.name, str(list(snorkel_summary.loc[lf.name, "Polarity"])), s["coverage"],
                    s["overlaps"], s["conflicts"], int(snorkel_summary.loc[lf.name, "Correct"]),
                    int(snorkel_summary.loc[lf.name, "Incorrect"]),
                    float(snorkel_summary.loc[lf.name, "Emp. Acc."]), s["votes"], s["correct"],
                    s["accuracy"]] for lf, s in zip(lfs, stats.values())])
    # The metrics first, at step 0: W&B drops a step lower than one it has seen, and every
    # table logged without a step advances it.
    run.log({k: v for k, v in metrics.items() if not k.endswith("_polarity")}, step=0)
    for key, (columns, rows) in tables.items():
        run.table(key, columns, rows)
    summary.update(metrics)
    run.summary(summary)
    run.finish()
    return summary


if __name__ == "__main__":
    main()
