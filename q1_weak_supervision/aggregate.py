"""Aggregate the labeling functions' votes and score the result against gold (Q1, step 3 of 3).

Reproduces the report's "Aggregated Label Distribution" (Snorkel's `MajorityLabelVoter` over the
two sentence-level LFs), scores the aggregated labels, and at token level sets `MajorityLabelVoter`
against `LabelModel` over the six token-level LFs as named-entity taggers.

    python q1_weak_supervision/aggregate.py                          # HF, correct year definition
    python q1_weak_supervision/aggregate.py --conll-dir data/conll2003 --keep-docstart \\
        --lf-definition report                                       # the report's distribution
    python q1_weak_supervision/aggregate.py --smoke                  # built-in corpus, offline

Prints the distribution with the sentence labels' coverage and accuracy, per token-level method
token and entity P/R/F1 per type, and a paragraph computed from them. Scoring rules, LabelModel's
settings and the departures from the report: q1_weak_supervision/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings

import numpy as np
import torch
from seqeval.metrics import classification_report as seqeval_report
from seqeval.scheme import IOB2
from snorkel.labeling.model import LabelModel, MajorityLabelVoter

from common.cli import HelpFormatter, add_common_args, entry_point
from common.seed import seed_everything
from common.tracking import start_run
from q1_weak_supervision.analyze_lfs import format_table
from q1_weak_supervision.corpus import (SPLITS, add_source_args, describe_source, load_splits,
                                        resolve_source, run_name)
from q1_weak_supervision.labeling_functions import (ABSTAIN, LF_DEFINITIONS, SENTENCE_CLASSES,
                                                    TOKEN_CLASSES, aggregation_lfs, apply_lfs,
                                                    sentence_frame, sentence_lfs, token_frame,
                                                    token_gold_labels, token_label_matrix)

PROJECT = "Q1-weak-supervision-ner"
METHODS = ("majority", "label_model")
METHOD_TITLES = {"majority": "MajorityLabelVoter", "label_model": "LabelModel"}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--split", default="train", choices=SPLITS,
                        help="the split labelled and scored (the report used train)")
    parser.add_argument("--lf-definition", default="tokens", choices=sorted(LF_DEFINITIONS),
                        help="tokens: whole year tokens 1900-2099; report: the report's regex")
    parser.add_argument("--label-model-epochs", type=int, default=500,
                        help="LabelModel.fit n_epochs (Snorkel's tutorials use 500)")
    parser.add_argument("--label-model-lr", type=float, default=0.01, help="LabelModel.fit lr")
    add_source_args(parser)
    add_common_args(parser)
    return parser.parse_args(argv)


def majority_vote(L: np.ndarray, cardinality: int) -> np.ndarray:
    """Snorkel's MajorityLabelVoter: the most frequent vote per row; ties and rows without a
    vote give -1."""
    if len(L) == 0:
        return np.zeros(0, dtype=int)
    return MajorityLabelVoter(cardinality=cardinality).predict(L, tie_break_policy="abstain")


def fit_label_model(L: np.ndarray, cardinality: int, epochs: int, lr: float, seed: int,
                    progress_bar: bool = False) -> LabelModel:
    """Snorkel's LabelModel fitted on the votes L alone (no gold, no class balance)."""
    model = LabelModel(cardinality=cardinality, verbose=False)
    with one_torch_thread():
        model.fit(L, n_epochs=epochs, lr=lr, seed=seed, log_freq=max(epochs // 5, 1),
                  progress_bar=progress_bar)
    return model


def label_model_predict(model: LabelModel, L: np.ndarray) -> np.ndarray:
    """The fitted model's labels for L; rows without any vote are set to -1 (see docstring)."""
    if len(L) == 0:
        return np.zeros(0, dtype=int)
    with one_torch_thread():
        predictions = model.predict(L, tie_break_policy="abstain")
    predictions[(L == ABSTAIN).all(axis=1)] = ABSTAIN
    return predictions


def label_model_vote(L: np.ndarray, cardinality: int, epochs: int, lr: float, seed: int,
                     progress_bar: bool = False) -> np.ndarray:
    """Snorkel's LabelModel fitted on L and applied to it."""
    return label_model_predict(fit_label_model(L, cardinality, epochs, lr, seed, progress_bar), L)


@contextlib.contextmanager
def one_torch_thread():
    """The model's tensors are (LFs * classes)-wide: with more than one torch thread each of the
    500 tiny steps pays for thread hand-offs, measured 4x slower on 2 busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def label_distribution(predictions: np.ndarray, cardinality: int) -> dict[str, int]:
    """{"-1": n, "0": n, ...}: counts of every label including abstain (string keys for JSON)."""
    return {str(label): int((predictions == label).sum()) for label in range(-1, cardinality)}


def sentence_scores(predictions: np.ndarray, types) -> dict[str, float]:
    """Coverage (rows with a label) and accuracy (labelled rows whose sentence contains a gold
    entity of the label's type)."""
    labelled = predictions != ABSTAIN
    correct = sum(SENTENCE_CLASSES[p] in t for p, t in zip(predictions, types) if p != ABSTAIN)
    return {"coverage": float(labelled.mean()) if len(predictions) else float("nan"),
            "accuracy": correct / int(labelled.sum()) if labelled.any() else float("nan"),
            "labelled": int(labelled.sum()), "correct": int(correct)}


def votes_to_iob2(labels) -> list[str]:
    """Token label ids of one sentence -> IOB2 tags: a run of one type is one entity."""
    tags, previous = [], ABSTAIN
    for label in labels:
        label = int(label)
        if label == ABSTAIN:
            tags.append("O")
        else:
            tags.append(("I-" if label == previous else "B-") + TOKEN_CLASSES[label])
        previous = label
    return tags


def _prf(tp: int, predicted: int, actual: int) -> tuple[float, float, float]:
    precision = tp / predicted if predicted else 0.0
    recall = tp / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def token_scores(predictions: np.ndarray, gold: np.ndarray,
                 gold_tags: list[list[str]]) -> dict[str, float]:
    """Token-level P/R/F1 per type and micro over the four types (abstain and `O` are not a
    class), coverage, and seqeval's strict IOB2 entity-level scores per type and micro.
    `predictions`/`gold` hold the tokens of the sentences in `gold_tags`, in order."""
    scores = {"coverage": float((predictions != ABSTAIN).mean()) if len(predictions) else float("nan")}
    for label, name in [(None, "micro")] + list(enumerate(TOKEN_CLASSES)):
        predicted = predictions != ABSTAIN if label is None else predictions == label
        actual = gold != ABSTAIN if label is None else gold == label
        tp = int((predicted & actual & (predictions == gold)).sum())
        prefix = "" if label is None else f"{name}_"
        (scores[f"{prefix}precision"], scores[f"{prefix}recall"],
         scores[f"{prefix}f1"]) = _prf(tp, int(predicted.sum()), int(actual.sum()))

    predicted_tags, start = [], 0
    for tags in gold_tags:
        predicted_tags.append(votes_to_iob2(predictions[start:start + len(tags)]))
        start += len(tags)
    if start != len(predictions):
        raise ValueError(f"{len(predictions)} token predictions for {start} gold tokens")
    scores.update(entity_scores(gold_tags, predicted_tags))
    return scores


def entity_scores(gold_tags: list[list[str]], predicted_tags: list[list[str]]) -> dict[str, float]:
    """seqeval's strict IOB2 entity precision, recall and F1, micro (`entity_*`) and per type
    (`<TYPE>_entity_*`), of IOB2 tag sequences against gold."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns about types that are never predicted
        report = seqeval_report(gold_tags, predicted_tags, mode="strict", scheme=IOB2,
                                output_dict=True, zero_division=0)
    micro = report.get("micro avg", {})
    scores = {"entity_precision": float(micro.get("precision", 0.0)),
              "entity_recall": float(micro.get("recall", 0.0)),
              "entity_f1": float(micro.get("f1-score", 0.0))}
    for name in TOKEN_CLASSES:
        entry = report.get(name, {})
        scores[f"{name}_entity_precision"] = float(entry.get("precision", 0.0))
        scores[f"{name}_entity_recall"] = float(entry.get("recall", 0.0))
        scores[f"{name}_entity_f1"] = float(entry.get("f1-score", 0.0))
    return scores


def aggregation_rows(summary: dict) -> list[list]:
    """Table rows (method, type, token P/R/F1, entity P/R/F1) read from a summary dict."""
    rows = []
    for method in METHODS:
        for name in ("micro", *TOKEN_CLASSES):
            prefix = "" if name == "micro" else f"{name}_"
            key = f"token/{method}/{prefix}"
            rows.append([METHOD_TITLES[method], "all" if name == "micro" else name,
                         summary[f"{key}precision"], summary[f"{key}recall"], summary[f"{key}f1"],
                         summary[f"{key}entity_precision"], summary[f"{key}entity_recall"],
                         summary[f"{key}entity_f1"]])
    return rows


AGGREGATION_HEADERS = ["method", "type", "token P", "token R", "token F1", "entity P",
                       "entity R", "entity F1"]


def conclusions(summary: dict) -> list[str]:
    """Sentences whose content is decided by the numbers in an aggregate run's summary."""
    lines = []
    distribution = summary["aggregated_label_distribution"]
    coverage, accuracy = summary["sentence_majority_coverage"], summary["sentence_majority_accuracy"]
    total = sum(distribution.values())
    lines.append(
        f"At sentence level the majority vote labels {coverage:.1%} of the {total} sentences "
        f"({distribution['0']} MISC/DATE, {distribution['1']} ORG, {distribution['-1']} abstain)"
        + (f"; {accuracy:.1%} of those labels are right (the sentence holds a gold entity of "
           f"the voted type)." if accuracy == accuracy else "; no sentence gets a label.")
    )
    if summary.get("sentence_majority_ties", 0):
        lines.append(f"{summary['sentence_majority_ties']} sentences get -1 from a tie between "
                     "the two LFs, not from abstention.")
    majority, model = summary["token/majority/entity_f1"], summary["token/label_model/entity_f1"]
    difference = 100 * (model - majority)
    if abs(difference) < 0.05:
        verdict = "the LabelModel and the majority vote reach the same entity F1"
    elif difference > 0:
        verdict = f"the LabelModel beats the majority vote by {difference:.1f} entity-F1 points"
    else:
        verdict = f"the majority vote beats the LabelModel by {-difference:.1f} entity-F1 points"
    lines.append(f"At token level {verdict} (LabelModel {model:.3f}, majority vote {majority:.3f}; "
                 "seqeval strict IOB2 spans).")
    best_method = "label_model" if model > majority else "majority"
    f1s = {name: summary[f"token/{best_method}/{name}_f1"] for name in TOKEN_CLASSES}
    best, worst = max(f1s, key=f1s.get), min(f1s, key=f1s.get)
    lines.append(f"With the {METHOD_TITLES[best_method]}, {best} is the easiest type (token F1 "
                 f"{f1s[best]:.3f}) and {worst} the hardest ({f1s[worst]:.3f}).")
    precision = summary[f"token/{best_method}/precision"]
    recall = summary[f"token/{best_method}/recall"]
    bound = summary["token_entity_vote_coverage"]
    if recall < precision:
        lines.append(f"Recall ({recall:.3f}) trails precision ({precision:.3f}): the LFs vote on "
                     f"only {bound:.1%} of the gold entity tokens, which bounds the recall of "
                     "any aggregation of them.")
    else:
        lines.append(f"Precision ({precision:.3f}) trails recall ({recall:.3f}): the LFs cover "
                     f"{bound:.1%} of the gold entity tokens but disagree with gold often.")
    return lines


@entry_point
def main(argv=None) -> dict:
    args = parse_args(argv)
    seed_everything(args.seed)
    source = resolve_source(args)
    name = run_name(args, "aggregate")
    data = describe_source(args)
    print(f"[Q1] data: {data}; split {args.split}; LF definition {args.lf_definition}")
    sentences = load_splits(args)[args.split]
    run = start_run(args, project=PROJECT, question="q1_weak_supervision", default_name=name,
                    job_type="aggregate")
    progress_bar = sys.stderr.isatty()
    summary = {"stage": "aggregate", "data": data, "source": source, "split": args.split,
               "keep_docstart": args.keep_docstart, "lf_definition": args.lf_definition}

    # ---- sentence level: the report's aggregation ----
    frame = sentence_frame(sentences)
    L = apply_lfs(frame, sentence_lfs(args.lf_definition), progress_bar=progress_bar)
    predictions = majority_vote(L, len(SENTENCE_CLASSES))
    distribution = label_distribution(predictions, len(SENTENCE_CLASSES))
    scores = sentence_scores(predictions, frame["types"])
    ties = int(((L != ABSTAIN).any(axis=1) & (predictions == ABSTAIN)).sum())
    print("Aggregated Label Distribution: " + ", ".join(f"{k} {v}" for k, v in distribution.items()))
    print(f"sentence level | coverage {scores['coverage']:.4f} | accuracy {scores['accuracy']:.4f} "
          f"({scores['correct']}/{scores['labelled']}) | ties -> -1: {ties}")
    summary.update({"aggregated_label_distribution": distribution,
                    "sentence_majority_coverage": scores["coverage"],
                    "sentence_majority_accuracy": scores["accuracy"],
                    "sentence_majority_labelled": scores["labelled"],
                    "sentence_majority_correct": scores["correct"],
                    "sentence_majority_ties": ties, "sentence_rows": len(predictions)})

    # ---- token level: MajorityLabelVoter vs LabelModel over all token LFs ----
    frame = token_frame(sentences)
    lfs = aggregation_lfs(args.lf_definition)
    L = token_label_matrix(sentences, lfs)
    gold = token_gold_labels(frame)
    gold_tags = [list(s.ner) for s in sentences]
    summary["token_rows"] = len(gold)
    summary["token_lfs"] = [lf.name for lf in lfs]
    entity_tokens = gold != ABSTAIN
    summary["token_entity_vote_coverage"] = (float((L[entity_tokens] != ABSTAIN).any(axis=1).mean())
                                             if entity_tokens.any() else float("nan"))
    predictions = {
        "majority": majority_vote(L, len(TOKEN_CLASSES)),
        "label_model": label_model_vote(L, len(TOKEN_CLASSES), args.label_model_epochs,
                                        args.label_model_lr, args.seed, progress_bar),
    }
    for method, predicted in predictions.items():
        token_distribution = {TOKEN_CLASSES[int(k)] if k != "-1" else "abstain": v
                              for k, v in label_distribution(predicted, len(TOKEN_CLASSES)).items()}
        print(f"{METHOD_TITLES[method]} token labels: {token_distribution}")
        summary[f"token/{method}/label_distribution"] = token_distribution
        for key, value in token_scores(predicted, gold, gold_tags).items():
            summary[f"token/{method}/{key}"] = value

    rows = aggregation_rows(summary)
    print(f"\nToken-level aggregation on {args.split} ({len(gold)} tokens; token scores per "
          f"type, entity scores by seqeval strict IOB2):")
    print(format_table(AGGREGATION_HEADERS, rows))
    paragraph = conclusions(summary)
    print("\n" + " ".join(paragraph))

    run.log({k: v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
            step=0)
    run.table("aggregation_token", AGGREGATION_HEADERS, rows)
    run.summary(summary)
    run.finish()
    return summary


if __name__ == "__main__":
    main()
