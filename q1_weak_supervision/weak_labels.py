"""Weak token labels for every split and the files a tagger trains on (Q1, step 4 of 4).

Applies the aggregated token LFs (labeling_functions.aggregation_lfs) to train, validation and
test; turns each token's votes into one label with Snorkel's MajorityLabelVoter and with its
LabelModel (fitted on the training split's votes alone: no gold label anywhere); writes the
training and validation splits as IOB2 CoNLL files; and scores each aggregate against the gold
labels of every split (seqeval strict IOB2 entity scores, per type).

    python q1_weak_supervision/weak_labels.py --conll-dir data/conll2003
    python q1_weak_supervision/weak_labels.py --smoke                  # built-in corpus, offline

Writes `<run>/labels/<method>/train.txt` and `valid.txt` (`token TAG` per line, a blank line
between sentences) for method `majority` and `label_model`: q5_ner_crf/train.py reads them with
`--train-file` and `--validation-file`. The chain and what the scores mean:
q1_weak_supervision/README.md ("From labeling functions to a tagger").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from common.atomic import atomic_write_text
from common.cli import HelpFormatter, add_common_args, entry_point
from common.seed import seed_everything
from common.tracking import start_run
from q1_weak_supervision.aggregate import (METHOD_TITLES, METHODS, fit_label_model, label_distribution,
                                           label_model_predict, majority_vote, token_scores,
                                           votes_to_iob2)
from q1_weak_supervision.analyze_lfs import format_table
from q1_weak_supervision.corpus import (SPLITS, add_source_args, describe_source, load_splits,
                                        resolve_source, run_name)
from q1_weak_supervision.labeling_functions import (ABSTAIN, TOKEN_CLASSES, aggregation_lfs,
                                                    token_frame, token_gold_labels,
                                                    token_label_matrix)

PROJECT = "Q1-weak-supervision-ner"
# The splits written as files, by the names common.data.conll.load_conll_dir reads.
WRITTEN = {"train": "train.txt", "validation": "valid.txt"}
TABLE_HEADERS = ["method", "split", "type", "entity P", "entity R", "entity F1"]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--label-model-epochs", type=int, default=500,
                        help="LabelModel.fit n_epochs (Snorkel's tutorials use 500)")
    parser.add_argument("--label-model-lr", type=float, default=0.01, help="LabelModel.fit lr")
    add_source_args(parser)
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.keep_docstart:
        parser.error("--keep-docstart makes no sense here: separators are not sentences to label")
    if args.label_model_epochs < 1 or args.label_model_lr <= 0:
        parser.error("--label-model-epochs and --label-model-lr must be positive")
    return args


def write_conll(path: Path, sentences, predictions: np.ndarray) -> Path:
    """`token TAG` lines (IOB2 from votes_to_iob2), a blank line after each sentence; written
    atomically. `predictions` holds the label ids of the sentences' tokens in order."""
    lines, start = [], 0
    for sentence in sentences:
        tags = votes_to_iob2(predictions[start:start + len(sentence)])
        lines += [f"{token} {tag}\n" for token, tag in zip(sentence.tokens, tags)]
        lines.append("\n")
        start += len(sentence)
    return atomic_write_text(path, "".join(lines))


def score_rows(summary: dict) -> list[list]:
    """Table rows (method, split, type, entity P/R/F1) from a weak_labels summary."""
    rows = []
    for method in METHODS:
        for split in SPLITS:
            for name in ("all", *TOKEN_CLASSES):
                key = f"weak/{method}/{split}/" + ("" if name == "all" else f"{name}_")
                rows.append([METHOD_TITLES[method], split, name, summary[f"{key}entity_precision"],
                             summary[f"{key}entity_recall"], summary[f"{key}entity_f1"]])
    return rows


@entry_point
def main(argv=None) -> dict:
    args = parse_args(argv)
    seed_everything(args.seed)
    source = resolve_source(args)
    data = describe_source(args)
    print(f"[Q1] data: {data}")
    splits = load_splits(args)
    run = start_run(args, project=PROJECT, question="q1_weak_supervision",
                    default_name=run_name(args, "weak-labels"), job_type="weak_labels")
    lfs = aggregation_lfs()
    summary = {"stage": "weak_labels", "data": data, "source": source, "lfs": [lf.name for lf in lfs],
               "label_model_epochs": args.label_model_epochs, "label_model_lr": args.label_model_lr}

    matrices = {split: token_label_matrix(sentences, lfs) for split, sentences in splits.items()}
    # The label model sees the training split's votes only; dev and test are labelled by the
    # fitted model, as a tagger's inputs would be.
    model = fit_label_model(matrices["train"], len(TOKEN_CLASSES), args.label_model_epochs,
                            args.label_model_lr, args.seed, progress_bar=sys.stderr.isatty())
    for split, sentences in splits.items():
        L = matrices[split]
        gold = token_gold_labels(token_frame(sentences))
        gold_tags = [list(s.ner) for s in sentences]
        entity_tokens = gold != ABSTAIN
        summary[f"weak/{split}/tokens"] = len(gold)
        summary[f"weak/{split}/sentences"] = len(sentences)
        summary[f"weak/{split}/token_coverage"] = float((L != ABSTAIN).any(axis=1).mean()) if len(L) else 0.0
        summary[f"weak/{split}/entity_token_vote_coverage"] = (
            float((L[entity_tokens] != ABSTAIN).any(axis=1).mean()) if entity_tokens.any() else float("nan"))
        predictions = {"majority": majority_vote(L, len(TOKEN_CLASSES)),
                       "label_model": label_model_predict(model, L)}
        for method, predicted in predictions.items():
            prefix = f"weak/{method}/{split}/"
            summary[prefix + "label_distribution"] = {
                (TOKEN_CLASSES[int(k)] if k != "-1" else "O"): v
                for k, v in label_distribution(predicted, len(TOKEN_CLASSES)).items()}
            for key, value in token_scores(predicted, gold, gold_tags).items():
                summary[prefix + key] = value
            if split in WRITTEN:
                path = write_conll(run.dir / "labels" / method / WRITTEN[split], sentences, predicted)
                summary[prefix + "file"] = str(path)
                print(f"wrote {path}")

    rows = score_rows(summary)
    print("\nWeak labels against gold (seqeval strict IOB2 entity scores; the label model was "
          "fitted on the training split's votes):")
    print(format_table(TABLE_HEADERS, rows))
    run.log({k: v for k, v in summary.items() if isinstance(v, float)}, step=0)
    run.table("weak_label_scores", TABLE_HEADERS, rows)
    run.summary(summary)
    run.finish()
    return summary


if __name__ == "__main__":
    main()
