"""Q5: BiLSTM named-entity taggers (random embeddings, GloVe, characters, LayerNorm-LSTM, CRF) and
the multilingual MultiCoNER II tagger: one run of a row of report 1's table or of report 2's.

    python q5_ner_crf/train.py --data-path data/ner_dataset.csv --embeddings glove \\
        --glove data/glove.6B.50d.gmb.txt --char --layer-norm --crf
    python q5_ner_crf/train.py --smoke --embeddings glove --char --crf      # built-in data, seconds
    python q5_ner_crf/train.py --dataset conll2003 --data-path data/conll2003 --recipe literature \
        --embeddings glove --glove data/glove.6B.50d.conll2003-gmb.txt --char --crf
    bash scripts/reproduce_q5.sh [--smoke]                                  # every row -> reports/q5.md

Prints one line per epoch (training loss, validation entity F1, token accuracy), then, with the
best validation checkpoint, token accuracy and entity P/R/micro-F1/macro-F1 on every split and the
per-type test table; writes them to runs/q5_ner_crf/<run>/ and W&B (project Q5-ner-crf).
`--recipe` picks the training recipe (RECIPES below: report, modern, literature); the literature
recipe's pieces can be undone one at a time (--no-casing, --no-iobes, --no-locked-dropout,
--clip-norm 5). Each row's flags, report 2's command, the data, the runtime, the recipes and the
departures from the reports and why: see q5_ner_crf/README.md.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import torch
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2
from sklearn.metrics import classification_report as sklearn_report
from tqdm import tqdm

from common.checkpoint import load_checkpoint, resume_if_requested, save_checkpoint
from common.cli import HelpFormatter, add_common_args, add_threads_arg, entry_point, fill_defaults
from common.data.conll import builtin_ner_corpus, read_conll
from common.device import pick_device
from common.divergence import check_finite_loss
from common.errors import DataError
from common.report import text_table
from common.seed import seed_everything
from common.tracking import start_run
from q5_ner_crf.data import (DATASETS, GRANULARITIES, LANGUAGES, UNLABELLED_TAG, NERDataset,
                             build_vocabularies, iob2_to_iobes, iobes_to_iob2, load_splits, tag_names,
                             truncate)
from q5_ner_crf.embeddings import embedding_matrix, load_glove, lookup, wanted_words, write_smoke_glove
from q5_ner_crf.lstm import LAYER_NORMS
from q5_ner_crf.model import Tagger, count_parameters, model_variant

PROJECT = "Q5-ner-crf"
QUESTION = "q5_ner_crf"
SPLIT_NAMES = {"train": "train", "validation": "val", "test": "test", "gold_validation": "val_gold"}
SMOKE_SIZES = (600, 200, 200)
# Training recipes (`--recipe`): the report's SGD settings; Adam with early stopping on
# validation F1; and "literature", modern plus what Reimers & Gurevych (2017) measured to help a
# BiLSTM-CRF on CoNLL-2003: a casing feature, IOBES tags for training (scored in IOB2), gradient
# norm clipped at 1, variational (locked) dropout, and a longer patience so that no seed stops in
# the first epochs. Flags given on the command line override single settings (--no-casing, ...).
_OFF = {"casing": False, "iobes": False, "locked_dropout": False}
RECIPES = {
    "report": {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 1e-4, "clip_norm": 5.0,
               "batch_size": 128, "epochs": 10, "patience": 0, **_OFF},
    "modern": {"optimizer": "adam", "lr": 0.002, "momentum": 0.9, "weight_decay": 0.0, "clip_norm": 5.0,
               "batch_size": 64, "epochs": 20, "patience": 2, **_OFF},
    "literature": {"optimizer": "adam", "lr": 0.002, "momentum": 0.9, "weight_decay": 0.0, "clip_norm": 1.0,
                   "batch_size": 64, "epochs": 30, "patience": 4,
                   "casing": True, "iobes": True, "locked_dropout": True},
}
DEFAULTS = {"hidden": 100, "embed_dim": 100, "dropout": 0.5}
# 600 sentences in batches of 128 would be 5 SGD steps an epoch: the smoke run takes smaller
# batches and larger steps so that it learns within seconds.
SMOKE_DEFAULTS = {"epochs": 3, "hidden": 50, "embed_dim": 50, "batch_size": 16, "dropout": 0.2}
SMOKE_LR = {"sgd": 0.03, "adam": 0.01}
# A checkpoint's settings must match the resumed command's, or the result would be a mixture.
RESUME_MUST_MATCH = ("dataset", "data_path", "train_file", "validation_file", "unlabelled_types",
                     "split", "lang", "granularity", "embeddings", "glove", "char",
                     "layer_norm", "crf", "casing", "iobes", "locked_dropout", "embed_dim", "hidden",
                     "char_dim", "char_hidden", "dropout",
                     "unidirectional", "lstm", "lowercase", "min_freq", "max_len", "batch_size", "lr",
                     "optimizer", "momentum", "weight_decay", "clip_norm", "seed", "split_seed", "smoke")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default="gmb", choices=DATASETS, help="corpus")
    data.add_argument("--data-path", default=None,
                      help="GMB ner_dataset.csv, CoNLL-2003 folder or MultiCoNER II folder "
                           "(defaults in the docstring)")
    data.add_argument("--train-file", default=None,
                      help="train on this CoNLL file (token ... TAG columns, IOB1 or IOB2) instead of "
                           "the dataset's training split, e.g. Q1's weakly labelled train.txt; a tag "
                           "of '-' leaves a token unlabelled (the loss sums over its tags)")
    data.add_argument("--unlabelled-types", default=None, metavar="TYPES",
                      help="comma-separated entity types an unlabelled token ('-' in --train-file) may "
                           "take besides O, e.g. LOC,MISC,ORG (default: every type)")
    data.add_argument("--validation-file", default=None,
                      help="select the checkpoint on this CoNLL file instead of the dataset's "
                           "validation split; that split is then also scored every epoch and the "
                           "checkpoint it selects is reported beside (see the README)")
    data.add_argument("--split", type=float, nargs=3, default=[0.6, 0.2, 0.2],
                      metavar=("TRAIN", "VAL", "TEST"), help="GMB sentence-level split fractions")
    data.add_argument("--split-seed", type=int, default=0,
                      help="seed of the GMB split (and of MultiCoNER's held-out validation); --seed "
                           "changes the initialisation, not the test set")
    data.add_argument("--lang", default="en", choices=LANGUAGES, help="MultiCoNER II language")
    data.add_argument("--granularity", default="fine", choices=GRANULARITIES,
                      help="MultiCoNER II tags: 33 fine types or the 6 coarse ones")
    data.add_argument("--max-len", type=int, default=0,
                      help="cut every sentence of every split to this many tokens (0: no cut; report 2: 25)")
    data.add_argument("--lowercase", action="store_true", help="lower-case words for the word vocabulary")
    data.add_argument("--min-freq", type=int, default=1,
                      help="training-set count for a word to get its own id")
    model = parser.add_argument_group("model")
    model.add_argument("--embeddings", default="random", choices=["random", "glove"],
                       help="word embeddings trained from scratch, or initialised from GloVe and fine-tuned")
    model.add_argument("--glove", default=None, help="GloVe text file (any dimension) for --embeddings glove")
    model.add_argument("--char", action="store_true", help="add character-BiLSTM word features")
    model.add_argument("--layer-norm", nargs="?", const="gates", default="none", choices=LAYER_NORMS,
                       help="LayerNorm in the LSTM cells: hidden = report 1's (on h_t), gates = Ba et al. "
                            "2016 (on the gates and the cell; what a bare --layer-norm means)")
    model.add_argument("--crf", action="store_true", help="linear-chain CRF output layer instead of softmax")
    model.add_argument("--casing", action=argparse.BooleanOptionalAction, default=None,
                       help="add an embedding of each token's casing class (the recipe's; on in literature)")
    model.add_argument("--locked-dropout", action=argparse.BooleanOptionalAction, default=None,
                       help="variational dropout: one mask per sentence for all time steps (the "
                            "recipe's; on in literature)")
    model.add_argument("--embed-dim", type=int, default=None,
                       help="random word embedding size (default 100; 50 with --smoke; GloVe: the file's)")
    model.add_argument("--hidden", type=int, default=None,
                       help="LSTM size per direction (default 100; 50 with --smoke)")
    model.add_argument("--char-dim", type=int, default=25, help="character embedding size")
    model.add_argument("--char-hidden", type=int, default=25, help="character LSTM size per direction")
    model.add_argument("--dropout", type=float, default=None,
                       help="dropout on the LSTM's input and output (default 0.5; 0.2 with --smoke)")
    model.add_argument("--unidirectional", action="store_true", help="forward-only LSTM (report 2's tagger)")
    model.add_argument("--lstm", default="auto", choices=["auto", "scratch", "torch"],
                       help="LSTM code: auto = nn.LSTM (cuDNN) unless --layer-norm, scratch = ours always")
    train = parser.add_argument_group("training")
    train.add_argument("--recipe", default="report", choices=sorted(RECIPES),
                       help="report: SGD lr 0.01, momentum 0.9, wd 1e-4, clip 5, batch 128, 10 epochs; "
                            "modern: Adam lr 0.002, clip 5, batch 64, up to 20 epochs, early stopping "
                            "after 2 epochs without a better validation F1; literature: modern with "
                            "casing, IOBES, clip 1, locked dropout, up to 30 epochs, patience 4")
    train.add_argument("--iobes", action=argparse.BooleanOptionalAction, default=None,
                       help="train on IOBES tags (predictions are turned back into IOB2 to be scored; "
                            "the recipe's, on in literature)")
    train.add_argument("--optimizer", default=None, choices=["sgd", "adam"], help="optimizer (the recipe's)")
    train.add_argument("--epochs", type=int, default=None, help="epochs (the recipe's; 3 with --smoke)")
    train.add_argument("--batch-size", type=int, default=None,
                       help="sentences per batch (the recipe's; 16 with --smoke)")
    train.add_argument("--lr", type=float, default=None,
                       help="learning rate (the recipe's; with --smoke sgd 0.03, adam 0.01)")
    train.add_argument("--momentum", type=float, default=None, help="SGD momentum (0.9)")
    train.add_argument("--weight-decay", type=float, default=None, help="weight decay (the recipe's)")
    train.add_argument("--clip-norm", type=float, default=None,
                       help="clip the gradients' global L2 norm (0: off; the recipe's: 5, literature 1)")
    train.add_argument("--patience", type=int, default=None,
                       help="stop after this many epochs without a better validation F1 "
                            "(0: off; the recipe's)")
    train.add_argument("--eval-batch-size", type=int, default=512, help="sentences per evaluation batch")
    add_threads_arg(train, why=". On a machine busy with other jobs, 1 can be several times faster "
                               "for these small matrices")
    add_common_args(parser)
    args = parser.parse_args(argv)

    fill_defaults(args, DEFAULTS, SMOKE_DEFAULTS)
    for key, value in RECIPES[args.recipe].items():
        if getattr(args, key) is None:
            setattr(args, key, SMOKE_LR[args.optimizer] if key == "lr" and args.smoke else value)
    if args.embeddings == "glove" and not args.glove and not args.smoke:
        parser.error("--embeddings glove needs --glove PATH (a GloVe text file such as glove.6B.100d.txt)")
    if args.glove and args.embeddings != "glove":
        parser.error("--glove is used only with --embeddings glove")
    sizes = (args.epochs, args.batch_size, args.hidden, args.embed_dim, args.eval_batch_size)
    if min(sizes) < 1 or args.lr <= 0:
        parser.error("--epochs, --batch-size, --hidden, --embed-dim, --eval-batch-size and --lr "
                     "must be positive")
    if not 0 <= args.dropout < 1:
        parser.error("--dropout must be in [0, 1)")
    if args.max_len < 0 or args.min_freq < 1 or args.patience < 0:
        parser.error("--max-len and --patience must be >= 0 and --min-freq >= 1")
    for flag, path in (("--train-file", args.train_file), ("--validation-file", args.validation_file)):
        if path and not Path(path).is_file():
            parser.error(f"{flag} {path}: no such file (a CoNLL column file: token ... TAG per line)")
    if args.unlabelled_types is not None and not args.train_file:
        parser.error("--unlabelled-types needs --train-file (only a training file has unlabelled tokens)")
    if args.lstm == "torch" and args.layer_norm != "none":
        parser.error("--lstm torch has no layer normalisation; use --lstm auto or scratch")
    return args


def variant_name(args: argparse.Namespace) -> str:
    """The model's flags: random, glove-char-ln-hidden-crf, random-uni, ..."""
    return model_variant(args.embeddings, args.char, args.layer_norm, args.crf, args.unidirectional)


def data_name(args: argparse.Namespace) -> str:
    """gmb, conll2003, multiconer-hi-coarse."""
    if args.dataset == "multiconer":
        return f"multiconer-{args.lang}-{args.granularity}"
    return args.dataset


def run_name(args: argparse.Namespace) -> str:
    """gmb-glove-char-ln-hidden-crf-report-seed0, multiconer-hi-coarse-random-uni-modern-seed1, ...;
    with --train-file the file's folder names the labels: conll2003-majority-labels-glove-..."""
    data = data_name(args)
    if args.train_file:
        path = Path(args.train_file)
        data += f"-{path.parent.name or path.stem}-labels"
    name = f"{data}-{variant_name(args)}-{args.recipe}-seed{args.seed}"
    return ("smoke-" if args.smoke else "") + name


# ---- evaluation ----


@torch.no_grad()
def predict(model: Tagger, dataset: NERDataset, batch_size: int, device: torch.device):
    """IOB2 tag-name predictions per sentence, and the summed loss over real tokens."""
    model.eval()
    predictions: list[list[str]] = [[] for _ in range(len(dataset))]
    loss_sum = 0.0
    for batch in dataset.batches(batch_size):
        batch = batch.to(device)
        emissions = model.emissions(batch)
        loss_sum += float(model.loss_from_emissions(emissions, batch)) * len(batch.indices)
        tags = model.predict_from_emissions(emissions, batch.mask).cpu().tolist()
        lengths = batch.mask.sum(1).tolist()
        for index, row, length in zip(batch.indices, tags, lengths):
            # A tagger trained on IOBES tags answers in IOB2 (identity on IOB2 tags).
            predictions[index] = iobes_to_iob2([dataset.tag_names[t] for t in row[:length]])
    return predictions, loss_sum


def evaluate(model: Tagger, dataset: NERDataset, args: argparse.Namespace,
             device: torch.device) -> dict[str, Any]:
    """seqeval strict-IOB2 entity scores, token accuracy without padding, and per-type reports."""
    predictions, loss_sum = predict(model, dataset, args.eval_batch_size, device)
    # An unlabelled training token (a partial --train-file) is scored as O.
    gold = [iobes_to_iob2(["O" if tag == UNLABELLED_TAG else tag for tag in sentence.ner])
            for sentence in dataset.sentences]
    tokens = sum(len(tags) for tags in gold)
    correct = sum(p == g for pred, true in zip(predictions, gold) for p, g in zip(pred, true))
    report = classification_report(gold, predictions, mode="strict", scheme=IOB2, output_dict=True,
                                   zero_division=0)
    micro = report.get("micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
    per_class = {name: {"precision": float(v["precision"]), "recall": float(v["recall"]),
                        "f1": float(v["f1-score"]), "support": int(v["support"])}
                 for name, v in report.items() if not name.endswith(" avg")}
    macro = report.get("macro avg", {"f1-score": 0.0})
    weighted = report.get("weighted avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0})
    result = {"f1": float(micro["f1-score"]), "precision": float(micro["precision"]),
              "recall": float(micro["recall"]), "macro_f1": float(macro["f1-score"]),
              "weighted_f1": float(weighted["f1-score"]), "weighted_precision": float(weighted["precision"]),
              "weighted_recall": float(weighted["recall"]),
              "token_accuracy": correct / max(1, tokens), "loss": loss_sum / max(1, tokens),
              "tokens": tokens, "sentences": len(gold), "per_class": per_class}
    if args.max_len:
        # Report 2's figures: a scikit-learn classification report over tags, without and with
        # every sentence padded to max_len (padding counted as a correctly predicted class).
        result["token_report"] = token_report(gold, predictions)
        result["token_report_with_padding"] = token_report(gold, predictions, pad_to=args.max_len)
        result["token_accuracy_with_padding"] = result["token_report_with_padding"]["accuracy"]
    return result


def token_report(gold: list[list[str]], predicted: list[list[str]], pad_to: int = 0) -> dict[str, float]:
    """Token-level accuracy and macro / weighted precision, recall and F1 over tags (scikit-learn's
    classification_report), the measure of report 2. With `pad_to`, each sentence is padded to that
    length with a <pad> tag that is also predicted, as a tagger scored on padded batches is."""
    if pad_to:
        gold = [tags + ["<pad>"] * (pad_to - len(tags)) for tags in gold]
        predicted = [tags + ["<pad>"] * (pad_to - len(tags)) for tags in predicted]
    flat_gold = [t for tags in gold for t in tags]
    flat_predicted = [t for tags in predicted for t in tags]
    report = sklearn_report(flat_gold, flat_predicted, output_dict=True, zero_division=0)
    result = {"accuracy": float(report["accuracy"]), "support": len(flat_gold)}
    for average in ("macro", "weighted"):
        for key in ("precision", "recall", "f1-score"):
            result[f"{average}_{key.split('-')[0]}"] = float(report[f"{average} avg"][key])
    return result


# ---- training ----


def train_one_epoch(model: Tagger, dataset: NERDataset, optimizer: torch.optim.Optimizer,
                    args: argparse.Namespace, epoch: int, device: torch.device, run) -> float:
    """One pass over the shuffled training set; returns the mean loss per token (the optimised
    loss is per sentence, see model.py)."""
    model.train()
    loss_sum, token_count = 0.0, 0
    batches = dataset.batches(args.batch_size, shuffle=True, seed=args.seed, epoch=epoch)
    bar = tqdm(batches, total=dataset.num_batches(args.batch_size), desc=f"epoch {epoch}", leave=False,
               disable=not sys.stderr.isatty())
    for step, batch in enumerate(bar):
        batch = batch.to(device)
        loss = model.loss(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if args.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip_norm)
        optimizer.step()
        value = check_finite_loss(loss, run, where=f"epoch {epoch} step {step}")
        loss_sum += value * len(batch.indices)
        token_count += int(batch.mask.sum())
        bar.set_postfix(loss=f"{loss_sum / token_count:.3f}")
    return loss_sum / max(1, token_count)


def build_optimizer(model: Tagger, args: argparse.Namespace) -> torch.optim.Optimizer:
    if args.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                               weight_decay=args.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)


def prepare_embeddings(args, splits, words_only_train, run_dir: Path):
    """GloVe vectors (or None for random embeddings) and the words to add to the vocabulary."""
    if args.embeddings != "glove":
        return None, []
    path = args.glove
    if path is None:  # --smoke: a GloVe-format file from unlabelled built-in text
        unlabelled = builtin_ner_corpus(2000, tagset="gmb", seed=args.seed, split="unlabelled")
        path = write_smoke_glove([s.tokens for s in unlabelled], run_dir / "smoke-glove.50d.txt")
    all_words = [token for sentences in splits.values() for s in sentences for token in s.tokens]
    glove = load_glove(path, wanted_words(all_words))
    extra = [w for w in dict.fromkeys(all_words)
             if w not in words_only_train and lookup(glove, w) is not None]
    return glove, extra


def check_known_tags(sentences: list, path: str, scored_tags: list[str], unlabelled: bool = False) -> list:
    """`sentences` unchanged if each of their tags is one the dataset's validation and test splits
    use (or, with `unlabelled`, UNLABELLED_TAG); else a DataError naming the first other tag: a type
    the scored splits never use (B-XYZ) would train, score 0 and say nothing."""
    known = set(scored_tags) | ({UNLABELLED_TAG} if unlabelled else set())
    unknown = next((tag for s in sentences for tag in s.ner if tag not in known), None)
    if unknown is not None:
        raise DataError(f"{path}: tag {unknown} is not used by the validation and test splits; "
                        f"expected one of {' '.join(scored_tags)}")
    return sentences


def unlabelled_tag_mask(types: str, tags: list[str]) -> torch.Tensor:
    """bool (K,): the tags an unlabelled training token may take under --unlabelled-types TYPES, O
    and every tag (B-, I-, E-, S-) of the listed types; a type the tag set lacks is a DataError."""
    wanted = [name.strip() for name in types.split(",") if name.strip()]
    known = sorted({tag[2:] for tag in tags if tag != "O"})
    unknown = [name for name in wanted if name not in known]
    if not wanted or unknown:
        raise DataError(f"--unlabelled-types {types!r}: {', '.join(unknown) or 'no type'} is not an entity "
                        f"type of this data; expected some of {','.join(known)}")
    return torch.tensor([tag == "O" or tag[2:] in wanted for tag in tags])


def select_on_gold(model: Tagger, dataset: NERDataset, args: argparse.Namespace, device: torch.device,
                   epoch: int, entry: dict, state: dict, path: Path, vocabularies: dict) -> None:
    """With --validation-file: score the dataset's own (gold) validation split too, and keep the
    checkpoint it would select, so that one run reports both selections."""
    gold = evaluate(model, dataset, args, device)
    entry.update(val_gold_f1=gold["f1"], val_gold_precision=gold["precision"], val_gold_recall=gold["recall"])
    if gold["f1"] > state.get("best_gold_f1", -1.0):
        state.update(best_gold_f1=gold["f1"], best_gold_epoch=epoch)
        save_checkpoint(path, model, None, None, epoch, gold["f1"], args, vocabularies)


def print_results(results: dict[str, dict], title: str) -> None:
    print(f"\n{title} (best checkpoint)")
    print(text_table(["split", "tokens", "token acc", "precision", "recall", "micro F1", "macro F1"],
                     [[split, f"{r['tokens']:,}", f"{100 * r['token_accuracy']:.2f}%",
                       *(f"{r[key]:.4f}" for key in ("precision", "recall", "f1", "macro_f1"))]
                      for split, r in results.items()]))
    if "token_accuracy_with_padding" in results["test"]:
        print("token accuracy with padding counted (report 2's measure): " + ", ".join(
            f"{split} {100 * r['token_accuracy_with_padding']:.2f}%" for split, r in results.items()))
    per_type = [[name, *(f"{v[key]:.4f}" for key in ("precision", "recall", "f1")), f"{v['support']:,}"]
                for name, v in sorted(results["test"]["per_class"].items())]
    print("\n" + text_table(["test type", "precision", "recall", "F1", "support"], per_type))


@entry_point
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads or args.smoke:
        # Tiny models gain nothing from intra-op threads, and on a busy machine extra threads
        # make every op several times slower.
        torch.set_num_threads(args.threads or 1)
    seed_everything(args.seed)
    device = pick_device(args.device)
    run = start_run(args, project=PROJECT, question=QUESTION, default_name=run_name(args))
    label = f"{data_name(args).upper()} {variant_name(args)}"

    # ---- data ----
    splits, source = load_splits(args.dataset, args.data_path, args.data_root, args.smoke, args.split_seed,
                                 args.split, args.lang, args.granularity, SMOKE_SIZES,
                                 work_dir=run.dir / "smoke-data")
    # Labels from files (Q1's weak labels): the dataset's own validation split stays as the gold one.
    scored_tags = tag_names({name: splits[name] for name in ("validation", "test")})
    if args.train_file:
        splits["train"] = check_known_tags(read_conll(args.train_file, unlabelled_tag=UNLABELLED_TAG),
                                           args.train_file, scored_tags, unlabelled=True)
        source += f"; training labels from {args.train_file}"
        unlabelled = sum(tag == UNLABELLED_TAG for sentence in splits["train"] for tag in sentence.ner)
        if unlabelled:
            source += f" ({unlabelled:,} tokens unlabelled)"
    if args.validation_file:
        splits["gold_validation"] = splits["validation"]
        splits["validation"] = check_known_tags(read_conll(args.validation_file), args.validation_file,
                                                scored_tags)
        source += f"; selection on {args.validation_file}"
    splits = {name: truncate(sentences, args.max_len) for name, sentences in splits.items()}
    if args.iobes:  # every split, so that the tag vocabulary is IOBES; scored in IOB2 (evaluate)
        splits = {name: [dataclasses.replace(s, ner=iob2_to_iobes(s.ner)) for s in sentences]
                  for name, sentences in splits.items()}
    if not splits["train"] or not splits["validation"]:
        raise DataError(f"{source}: the train and validation splits must not be empty")
    train_words, _ = build_vocabularies(splits, args.min_freq, args.lowercase)
    glove, extra_words = prepare_embeddings(args, splits, train_words, run.dir)
    words, chars = build_vocabularies(splits, args.min_freq, args.lowercase, extra_words)
    tags = tag_names(splits)
    datasets = {name: NERDataset(sentences, words, chars, tags) for name, sentences in splits.items()}
    pretrained, coverage = None, {}
    if glove is not None:
        counts = collections.Counter(t for s in splits["train"] for t in s.tokens)
        pretrained, coverage = embedding_matrix(words, glove, seed=args.seed, token_counts=counts)

    # ---- model ----
    model = Tagger(len(words), len(tags), len(chars), args.embed_dim, args.hidden, use_char=args.char,
                   char_dim=args.char_dim, char_hidden=args.char_hidden, layer_norm=args.layer_norm,
                   use_crf=args.crf, dropout=args.dropout, bidirectional=not args.unidirectional,
                   lstm_implementation=args.lstm, pretrained=pretrained, use_casing=args.casing,
                   locked_dropout=args.locked_dropout).to(device)
    if args.unlabelled_types is not None:
        model.unlabelled_tags = unlabelled_tag_mask(args.unlabelled_types, tags).to(device)
    optimizer = build_optimizer(model, args)
    parameters = count_parameters(model)
    sizes = " / ".join(f"{len(datasets[s]):,}" for s in ("train", "validation", "test"))
    print(f"{source}: {sizes} sentences (train/val/test), {len(tags)} tags, {len(words):,} words, "
          f"{len(chars):,} characters")
    if glove is not None:
        print(f"GloVe {glove.path} ({glove.dim}-d, {glove.rows:,} rows): "
              f"{coverage['glove_words_found']:,} of {coverage['glove_vocab_size']:,} vocabulary words found "
              f"({100 * coverage['glove_coverage']:.1f}%), "
              f"{100 * coverage['glove_token_coverage']:.1f}% of training tokens; the rest drawn from "
              f"N(0, {coverage['glove_unknown_std']:.3f}^2)")
    momentum = f", momentum {args.momentum}" if args.optimizer == "sgd" else ""
    stop = f", early stop after {args.patience}" if args.patience else ""
    extras = "".join(f", {name}" for name, on in (("casing", args.casing), ("IOBES", args.iobes),
                                                   ("locked dropout", args.locked_dropout)) if on)
    print(f"Tagger {label}: {parameters:,} parameters | recipe {args.recipe}: {args.optimizer} lr {args.lr:g}"
          f"{momentum}, wd {args.weight_decay:g}, clip {args.clip_norm:g}, batch {args.batch_size}, "
          f"{args.epochs} epochs{stop}{extras} | "
          f"device {device} | run {run.dir}")

    checkpoint_dir = run.dir / "checkpoints"
    vocabularies = {"words": words.state_dict(), "chars": chars.state_dict(), "tags": tags}
    state: dict[str, Any] = {"best_f1": -1.0, "best_epoch": 0, "history": [], "stale_epochs": 0}
    start_epoch = 1
    # The random stream (dropout) continues exactly: the RNG state is restored last.
    resume = resume_if_requested(args, checkpoint_dir / "last.pt", model, optimizer,
                                 must_match=RESUME_MUST_MATCH, map_location=device)
    if resume is not None:
        state = resume["extra"]["state"]
        start_epoch = resume["epoch"] + 1
        run.rewind(resume["epoch"])
        print(f"resuming {run.dir} after epoch {resume['epoch']}")

    # ---- training loop ----
    started = time.time()
    for epoch in range(start_epoch, args.epochs + 1):
        epoch_start = time.time()
        loss = train_one_epoch(model, datasets["train"], optimizer, args, epoch, device, run)
        val = evaluate(model, datasets["validation"], args, device)
        entry = {"epoch": epoch, "train_loss": loss, "val_loss": val["loss"], "val_f1": val["f1"],
                 "val_precision": val["precision"], "val_recall": val["recall"],
                 "val_token_accuracy": val["token_accuracy"], "epoch_time": time.time() - epoch_start}
        if "gold_validation" in datasets:
            select_on_gold(model, datasets["gold_validation"], args, device, epoch, entry, state,
                           checkpoint_dir / "best-gold.pt", vocabularies)
        state["history"].append(entry)
        run.log(entry, step=epoch)
        print(f"[{label}] Epoch {epoch}/{args.epochs} | loss {loss:.3f} | val F1 {val['f1']:.4f} "
              f"(P {val['precision']:.4f} R {val['recall']:.4f}) "
              f"| val acc {100 * val['token_accuracy']:.2f}% "
              f"| {entry['epoch_time']:.1f} s")
        if "val_gold_f1" in entry:
            print(f"    gold validation F1 {entry['val_gold_f1']:.4f} (P {entry['val_gold_precision']:.4f} "
                  f"R {entry['val_gold_recall']:.4f}); the selection split above is {args.validation_file}")
        if val["f1"] > state["best_f1"]:
            state.update(best_f1=val["f1"], best_epoch=epoch, stale_epochs=0)
            save_checkpoint(checkpoint_dir / "best.pt", model, None, None, epoch, val["f1"], args,
                            vocabularies)
        else:
            state["stale_epochs"] = state.get("stale_epochs", 0) + 1
        save_checkpoint(checkpoint_dir / "last.pt", model, optimizer, None, epoch, state["best_f1"], args,
                        {"state": state, **vocabularies})
        if args.patience and state["stale_epochs"] >= args.patience:
            print(f"early stop: no better validation F1 for {args.patience} epochs")
            break
    # ---- end of training loop ----

    best = load_checkpoint(checkpoint_dir / "best.pt", model, map_location=device, restore_rng=False)
    results = {SPLIT_NAMES[name]: evaluate(model, dataset, args, device)
               for name, dataset in datasets.items()}
    summary: dict[str, Any] = {
        "dataset": args.dataset, "data_source": source, "smoke": args.smoke, "lang": args.lang,
        "granularity": args.granularity, "embeddings": args.embeddings, "char": args.char,
        "layer_norm": args.layer_norm, "crf": args.crf, "unidirectional": args.unidirectional,
        "casing": args.casing, "iobes": args.iobes, "locked_dropout": args.locked_dropout,
        "clip_norm": args.clip_norm, "patience": args.patience,
        "embed_dim": model.embedding.embedding_dim, "hidden": args.hidden, "parameters": parameters,
        "best_epoch": best["epoch"], "epochs": args.epochs, "epochs_run": len(state["history"]),
        "recipe": args.recipe, "optimizer": args.optimizer, "lr": args.lr, "batch_size": args.batch_size,
        "seed": args.seed, "split_seed": args.split_seed, "diverged": False,
        "train_time_s": time.time() - started, "num_tags": len(tags), "vocab_size": len(words),
        **coverage,
    }
    for split, result in results.items():
        summary.update({f"{split}_{key}": value for key, value in result.items()
                        if key not in ("per_class", "token_report", "token_report_with_padding")})
        for key in ("token_report", "token_report_with_padding"):
            if key in result:
                summary.setdefault(key, {})[split] = result[key]
        run.table(f"per_class_{split}", ["type", "precision", "recall", "f1", "support"],
                  [[name, v["precision"], v["recall"], v["f1"], v["support"]]
                   for name, v in sorted(result["per_class"].items())])
    summary["per_class"] = {split: result["per_class"] for split, result in results.items()}
    summary.update(train_file=args.train_file, validation_file=args.validation_file)
    summary["train_unlabelled_tokens"] = sum(tag == UNLABELLED_TAG for sentence in splits["train"]
                                             for tag in sentence.ner)
    summary["unlabelled_types"] = args.unlabelled_types
    if "gold_validation" in datasets:
        load_checkpoint(checkpoint_dir / "best-gold.pt", model, map_location=device, restore_rng=False)
        test = evaluate(model, datasets["test"], args, device)
        summary["gold_selection"] = {
            "best_epoch": state["best_gold_epoch"], "val_gold_f1": state["best_gold_f1"],
            **{f"test_{key}": test[key] for key in ("f1", "precision", "recall", "macro_f1")},
            "test_per_class": test["per_class"]}
    run.summary(summary)
    print_results(results, f"[{label}] {source}")
    if "gold_selection" in summary:
        chosen = summary["gold_selection"]
        print(f"\nSelected on the gold validation split instead: epoch {chosen['best_epoch']} "
              f"(val F1 {chosen['val_gold_f1']:.4f}) | test F1 {chosen['test_f1']:.4f} "
              f"(P {chosen['test_precision']:.4f} R {chosen['test_recall']:.4f})")
    run.finish()
    return summary


if __name__ == "__main__":
    main()
