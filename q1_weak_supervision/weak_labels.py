"""Weak token labels for every split and the files a tagger trains on (Q1, step 4 of 4).

Applies the aggregated token LFs (labeling_functions.aggregation_lfs) to train, validation and
test; turns each token's votes into one label with Snorkel's MajorityLabelVoter and with its
LabelModel (fitted on the training split's votes alone: no gold label anywhere); then adds three
sentence-context LFs (context_lfs.py) and two document-level LFs (document_lfs.py, reading the
majority vote of the 17 + 3 over a whole document) and aggregates the extended matrix three ways:
majority vote, LabelModel and an HMM (hmm.py, fitted on the training split's votes). Writes the
training and validation splits as IOB2 CoNLL files;
scores each aggregate against the gold labels of every split (seqeval strict IOB2 entity scores,
per type); the majority vote's ablation as each group of added LFs joins; and, per type, the gold
entities of the training split that the majority vote with the added LFs misses most often
(analysis only: no LF reads that list).

    python q1_weak_supervision/weak_labels.py --conll-dir data/conll2003
    python q1_weak_supervision/weak_labels.py --smoke                  # built-in corpus, offline

Writes `<run>/labels/<method>/train.txt` and `valid.txt` (`token TAG` per line, a blank line
between sentences) for every method of LABEL_METHODS: q5_ner_crf/train.py reads them with
`--train-file` and `--validation-file`. Beside them, `<run>/labels/majority_doc_partial/` holds
the majority_doc labels with the name-shaped tokens no function voted on left unlabelled (tag `-`,
`name_shaped_unvoted`): a tagger trained on that file sums over those tokens' tags instead of
learning that they are `O` (its dev file is majority_doc's). The chain and what the scores mean:
q1_weak_supervision/README.md ("From labeling functions to a tagger").
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from seqeval.metrics.sequence_labeling import get_entities
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from common.atomic import atomic_write_text
from common.cli import HelpFormatter, add_common_args, entry_point
from common.seed import seed_everything
from common.tracking import start_run
from q1_weak_supervision.aggregate import (METHOD_TITLES, fit_label_model, label_distribution,
                                           label_model_predict, majority_vote, token_scores,
                                           votes_to_iob2)
from q1_weak_supervision.analyze_lfs import format_table
from q1_weak_supervision.corpus import (SPLITS, add_source_args, describe_source, load_documents,
                                        resolve_source, run_name)
from q1_weak_supervision.context_lfs import context_lfs
from q1_weak_supervision import gazetteers
from q1_weak_supervision.document_lfs import DOCUMENT_LFS, document_label_matrix
from q1_weak_supervision.hmm import fit_hmm, hmm_predict
from q1_weak_supervision.labeling_functions import (ABSTAIN, TOKEN_CLASSES, aggregation_lfs,
                                                    token_frame, token_gold_labels,
                                                    token_label_matrix)
from q5_ner_crf.data import UNLABELLED_TAG  # what q5_ner_crf/train.py --train-file reads as unlabelled

PROJECT = "Q1-weak-supervision-ner"
# The splits written as files, by the names common.data.conll.load_conll_dir reads.
WRITTEN = {"train": "train.txt", "validation": "valid.txt"}
TABLE_HEADERS = ["method", "split", "type", "entity P", "entity R", "entity F1"]
# Every label set written, in the report's order: the 17 sentence LFs' two aggregates, then the 17,
# the context LFs and the document LFs together under three aggregates (`_doc`).
LABEL_METHODS = ("majority", "label_model", "majority_doc", "label_model_doc", "hmm_doc")
# The partial label set: majority_doc with the unvoted name-shaped tokens unlabelled (training
# file only; the dev file is majority_doc's, so selection reads fully labelled weak dev labels).
PARTIAL_METHOD, PARTIAL_OF = "majority_doc_partial", "majority_doc"
LABEL_TITLES = {**METHOD_TITLES, "majority_doc": "MajorityLabelVoter + context and document LFs",
                "label_model_doc": "LabelModel + context and document LFs",
                "hmm_doc": "HMM + context and document LFs",
                PARTIAL_METHOD: "MajorityLabelVoter + context and document LFs, unvoted names unlabelled"}
# Capitalised words that are never names by themselves: function words (scikit-learn's English
# stop words), the months and days, and the gazetteer's capitalised non-names.
NOT_NAME_SHAPED = frozenset(ENGLISH_STOP_WORDS) | {w.lower() for w in (*gazetteers.MONTHS_AND_DAYS,
                                                                        *gazetteers.NOT_NAMES)}
MISSES_METHOD = "majority_doc"  # the aggregate whose misses on train the summary lists
MISSES_SHOWN = 15               # spans per type


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--label-model-epochs", type=int, default=500,
                        help="LabelModel.fit n_epochs (Snorkel's tutorials use 500)")
    parser.add_argument("--label-model-lr", type=float, default=0.01, help="LabelModel.fit lr")
    parser.add_argument("--hmm-iterations", type=int, default=10,
                        help="EM iterations of the HMM aggregate (0: the majority vote's counts)")
    add_source_args(parser)
    add_common_args(parser)
    args = parser.parse_args(argv)
    if args.keep_docstart:
        parser.error("--keep-docstart makes no sense here: separators are not sentences to label")
    if args.label_model_epochs < 1 or args.label_model_lr <= 0:
        parser.error("--label-model-epochs and --label-model-lr must be positive")
    if args.hmm_iterations < 0:
        parser.error("--hmm-iterations must be 0 or more")
    return args


def write_conll(path: Path, sentences, predictions: np.ndarray,
                unlabelled: np.ndarray | None = None) -> Path:
    """`token TAG` lines (IOB2 from votes_to_iob2), a blank line after each sentence; written
    atomically. `predictions` holds the label ids of the sentences' tokens in order; where
    `unlabelled` (partial_mask) is True the tag is UNLABELLED_TAG."""
    lines, start = [], 0
    for sentence in sentences:
        end = start + len(sentence)
        tags = votes_to_iob2(predictions[start:end])
        free = unlabelled[start:end] if unlabelled is not None else [False] * len(sentence)
        lines += [f"{token} {UNLABELLED_TAG if unknown else tag}\n"
                  for token, tag, unknown in zip(sentence.tokens, tags, free)]
        lines.append("\n")
        start = end
    return atomic_write_text(path, "".join(lines))


def name_shaped_unvoted(tokens: list[str], voted: np.ndarray) -> list[bool]:
    """Which tokens of a sentence a tagger should not be taught are `O`: no function voted on
    them, and they look like part of a name (a capital first letter, not a function word, month,
    day or other capitalised non-name). The sentence's first token is left out (capitalised
    whatever it is), and so is every token of a sentence in capitals (a headline: its case says
    nothing)."""
    letters = [token for token in tokens if any(c.isalpha() for c in token)]
    if letters and all(token.isupper() for token in letters):
        return [False] * len(tokens)
    return [index > 0 and not bool(voted[index]) and token[:1].isupper()
            and token.lower().rstrip(".") not in NOT_NAME_SHAPED
            for index, token in enumerate(tokens)]


def partial_mask(sentences, predictions: np.ndarray, votes: np.ndarray) -> np.ndarray:
    """Per token (in order), whether the partial file leaves it unlabelled: the aggregate says `O`
    and name_shaped_unvoted picks it (`votes`: the label matrix the predictions aggregate)."""
    voted = (votes != ABSTAIN).any(axis=1)
    free, start = [], 0
    for sentence in sentences:
        free += name_shaped_unvoted(sentence.tokens, voted[start:start + len(sentence)])
        start += len(sentence)
    return np.array(free, dtype=bool) & (predictions == ABSTAIN)


def score_rows(summary: dict) -> list[list]:
    """Table rows (method, split, type, entity P/R/F1) from a weak_labels summary."""
    rows = []
    for method in [m for m in LABEL_METHODS if f"weak/{m}/train/entity_f1" in summary]:
        for split in SPLITS:
            for name in ("all", *TOKEN_CLASSES):
                key = f"weak/{method}/{split}/" + ("" if name == "all" else f"{name}_")
                rows.append([LABEL_TITLES[method], split, name, summary[f"{key}entity_precision"],
                             summary[f"{key}entity_recall"], summary[f"{key}entity_f1"]])
    return rows


def ablation_steps(sentence_lfs: int) -> list[tuple[str, int]]:
    """(name, columns of the extended matrix it keeps): the 17 LFs, then the context LFs, then
    each document LF, cumulatively (the extended matrix's columns are in that order)."""
    context = len(context_lfs())
    return [(f"{sentence_lfs} LFs", sentence_lfs), ("+ context LFs", sentence_lfs + context),
            (f"+ {DOCUMENT_LFS[0]}", sentence_lfs + context + 1),
            (f"+ {DOCUMENT_LFS[1]}", sentence_lfs + context + 2)]


def missed_entities(sentences, predictions: np.ndarray) -> dict[str, Counter]:
    """Per type, how often each gold entity's text is not an entity of the predicted labels (same
    span and type). For analysis: it reads gold, so no LF may be built from it."""
    missed = {name: Counter() for name in TOKEN_CLASSES}
    start = 0
    for sentence in sentences:
        found = set(get_entities(votes_to_iob2(predictions[start:start + len(sentence)])))
        start += len(sentence)
        for entity in get_entities(list(sentence.ner)):
            if entity not in found and entity[0] in missed:
                missed[entity[0]][" ".join(sentence.tokens[entity[1]:entity[2] + 1])] += 1
    return missed


@entry_point
def main(argv=None) -> dict:
    args = parse_args(argv)
    seed_everything(args.seed)
    source = resolve_source(args)
    data = describe_source(args)
    print(f"[Q1] data: {data}")
    documents = load_documents(args)
    splits = {split: sentences for split, (sentences, _) in documents.items()}
    run = start_run(args, project=PROJECT, question="q1_weak_supervision",
                    default_name=run_name(args, "weak-labels"), job_type="weak_labels")
    lfs = aggregation_lfs()
    cardinality = len(TOKEN_CLASSES)
    summary = {"stage": "weak_labels", "data": data, "source": source, "lfs": [lf.name for lf in lfs],
               "context_lfs": [lf.name for lf in context_lfs()],
               "document_lfs": list(DOCUMENT_LFS), "methods": list(LABEL_METHODS),
               "label_model_epochs": args.label_model_epochs, "label_model_lr": args.label_model_lr,
               "hmm_iterations": args.hmm_iterations,
               "ablation_steps": [name for name, _ in ablation_steps(len(lfs))],
               "documents": {split: len(set(ids)) for split, (_, ids) in documents.items()}}

    matrices = {split: token_label_matrix(sentences, lfs) for split, sentences in splits.items()}
    sentence_level = {split: np.hstack([L, token_label_matrix(splits[split], context_lfs())])
                      for split, L in matrices.items()}
    # The document LFs read the sentence-level LFs' majority vote of the whole document.
    extended = {split: np.hstack([L, document_label_matrix(
        [s.tokens for s in splits[split]], documents[split][1], majority_vote(L, cardinality))])
        for split, L in sentence_level.items()}
    lengths = {split: [len(s) for s in sentences] for split, sentences in splits.items()}
    # The label models see the training split's votes only; dev and test are labelled by the
    # fitted model, as a tagger's inputs would be.
    model = fit_label_model(matrices["train"], cardinality, args.label_model_epochs,
                            args.label_model_lr, args.seed, progress_bar=sys.stderr.isatty())
    model_doc = fit_label_model(extended["train"], cardinality, args.label_model_epochs,
                                args.label_model_lr, args.seed, progress_bar=sys.stderr.isatty())
    hmm, history = fit_hmm(extended["train"], lengths["train"],
                           majority_vote(extended["train"], cardinality), cardinality,
                           iterations=args.hmm_iterations)
    summary["hmm_log_likelihood"] = history
    for split, sentences in splits.items():
        L, X = matrices[split], extended[split]
        gold = token_gold_labels(token_frame(sentences))
        gold_tags = [list(s.ner) for s in sentences]
        entity_tokens = gold != ABSTAIN
        summary[f"weak/{split}/tokens"] = len(gold)
        summary[f"weak/{split}/sentences"] = len(sentences)
        summary[f"weak/{split}/token_coverage"] = float((L != ABSTAIN).any(axis=1).mean()) if len(L) else 0.0
        summary[f"weak/{split}/entity_token_vote_coverage"] = (
            float((L[entity_tokens] != ABSTAIN).any(axis=1).mean()) if entity_tokens.any() else float("nan"))
        summary[f"weak/{split}/entity_token_vote_coverage_doc"] = (
            float((X[entity_tokens] != ABSTAIN).any(axis=1).mean()) if entity_tokens.any() else float("nan"))
        predictions = {"majority": majority_vote(L, cardinality),
                       "label_model": label_model_predict(model, L),
                       "majority_doc": majority_vote(X, cardinality),
                       "label_model_doc": label_model_predict(model_doc, X),
                       "hmm_doc": hmm_predict(hmm, X, lengths[split])}
        for method, predicted in predictions.items():
            prefix = f"weak/{method}/{split}/"
            summary[prefix + "label_distribution"] = {
                (TOKEN_CLASSES[int(k)] if k != "-1" else "O"): v
                for k, v in label_distribution(predicted, cardinality).items()}
            for key, value in token_scores(predicted, gold, gold_tags).items():
                summary[prefix + key] = value
            if split in WRITTEN:
                path = write_conll(run.dir / "labels" / method / WRITTEN[split], sentences, predicted)
                summary[prefix + "file"] = str(path)
                print(f"wrote {path}")
        if split in WRITTEN:
            # The partial training file; its dev file is the fully labelled one of PARTIAL_OF.
            folder = run.dir / "labels" / PARTIAL_METHOD
            if split == "train":
                free = partial_mask(sentences, predictions[PARTIAL_OF], X)
                path = write_conll(folder / WRITTEN[split], sentences, predictions[PARTIAL_OF], free)
                summary[f"partial/{split}/unlabelled_tokens"] = int(free.sum())
                summary[f"partial/{split}/unlabelled_share"] = float(free.mean()) if len(free) else 0.0
                # Analysis only (gold): which share of them are entity tokens, and which share of
                # the entity tokens the labels miss they cover.
                missed = entity_tokens & (predictions[PARTIAL_OF] == ABSTAIN)
                summary[f"partial/{split}/unlabelled_gold_entity_share"] = (
                    float(entity_tokens[free].mean()) if free.any() else 0.0)
                summary[f"partial/{split}/missed_entity_tokens_unlabelled"] = (
                    float(free[missed].mean()) if missed.any() else 0.0)
            else:
                path = atomic_write_text(folder / WRITTEN[split],
                                         (run.dir / "labels" / PARTIAL_OF / WRITTEN[split]).read_text())
            summary[f"partial/{split}/file"] = str(path)
            print(f"wrote {path}")
        # The ablation: the majority vote as each group of added LFs joins, in the matrix's order.
        for step, (_, columns) in enumerate(ablation_steps(len(lfs))):
            scores = token_scores(majority_vote(X[:, :columns], cardinality), gold, gold_tags)
            for key in ("entity_precision", "entity_recall", "entity_f1"):
                summary[f"ablation/{step}/{split}/{key}"] = scores[key]
        if split == "train":
            missed = missed_entities(sentences, predictions[MISSES_METHOD])
            summary["misses_method"] = MISSES_METHOD
            for name, counts in missed.items():
                summary[f"misses/train/{name}"] = [[text, n] for text, n in counts.most_common(MISSES_SHOWN)]
                summary[f"misses/train/{name}_entities"] = sum(counts.values())

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
