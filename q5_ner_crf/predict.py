"""Tag raw sentences with a trained Q5 tagger: the run folder's best checkpoint and vocabularies.

    python -m q5_ner_crf.predict --run-dir runs/q5_ner_crf/gmb-glove-char-ln-gates-crf-modern-seed0 \
        --input sentences.txt
    echo "John lives in New York ." | python -m q5_ner_crf.predict --run-dir RUN

Reads one sentence per line, tokens separated by whitespace (blank lines are skipped), and prints
`token<TAB>tag` lines with a blank line after each sentence. The model is rebuilt from the
checkpoint's recorded arguments and weights (`RUN/checkpoints/best.pt`, the epoch selected on
validation), words and characters are encoded with the vocabularies saved beside the weights, so
no data set or GloVe file is needed. Words unseen in training map to `<unk>`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterable, TextIO

import torch

from common.checkpoint import load_checkpoint
from common.cli import HelpFormatter, entry_point
from common.data.conll import Sentence
from common.device import DEVICE_CHOICES, pick_device
from common.errors import DataError
from q5_ner_crf.data import NERDataset, Vocab
from q5_ner_crf.model import Tagger
from q5_ner_crf.train import predict


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--run-dir", required=True, help="a Q5 run folder (holds checkpoints/best.pt)")
    parser.add_argument("--input", default=None,
                        help="text file, one whitespace-tokenised sentence per line (default: stdin)")
    parser.add_argument("--checkpoint", default="best.pt",
                        help="checkpoint file under RUN/checkpoints (default best.pt)")
    parser.add_argument("--batch-size", type=int, default=256, help="sentences per batch (default 256)")
    parser.add_argument("--device", default="cpu", choices=DEVICE_CHOICES,
                        help="where to run the model (default cpu)")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be >= 1")
    return args


def load_tagger(run_dir: str | Path, checkpoint: str = "best.pt",
                device: torch.device | str = "cpu") -> tuple[Tagger, Vocab, Vocab, list[str]]:
    """The tagger of a run folder in eval mode, with its word and character vocabularies and tags."""
    path = Path(run_dir) / "checkpoints" / checkpoint
    if not path.is_file():
        raise DataError(f"{path} not found: --run-dir must be a finished Q5 run folder "
                        "(python -m q5_ner_crf.train writes RUN/checkpoints/best.pt)")
    state = load_checkpoint(path, map_location="cpu", restore_rng=False)
    extra, args = state.get("extra") or {}, state.get("args") or {}
    if not {"words", "chars", "tags"} <= set(extra) or not args:
        raise DataError(f"{path} holds no Q5 vocabularies or arguments: not a q5_ner_crf.train checkpoint")
    words, chars = Vocab.from_state_dict(extra["words"]), Vocab.from_state_dict(extra["chars"])
    tags = list(extra["tags"])
    # With GloVe the embedding's size is the GloVe file's, not --embed-dim: read it from the weights.
    num_words, embed_dim = state["model"]["embedding.weight"].shape
    model = Tagger(num_words, len(tags), len(chars), embed_dim, args["hidden"], use_char=args["char"],
                   char_dim=args["char_dim"], char_hidden=args["char_hidden"], layer_norm=args["layer_norm"],
                   use_crf=args["crf"], dropout=args["dropout"], bidirectional=not args["unidirectional"],
                   lstm_implementation=args["lstm"], use_casing=bool(args.get("casing")),
                   locked_dropout=bool(args.get("locked_dropout")))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), words, chars, tags


def read_sentences(lines: Iterable[str]) -> list[list[str]]:
    """Whitespace-tokenised sentences, one per non-blank line."""
    return [line.split() for line in lines if line.strip()]


def tag_sentences(model: Tagger, words: Vocab, chars: Vocab, tags: list[str], sentences: list[list[str]],
                  batch_size: int = 256, device: torch.device | str = "cpu") -> list[list[str]]:
    """One tag per token of each sentence."""
    if not sentences:
        return []
    # The dataset needs gold tags to build batches; "O" placeholders are never read by prediction.
    dataset = NERDataset([Sentence(tokens, ["O"] * len(tokens)) for tokens in sentences], words, chars, tags)
    predicted, _ = predict(model, dataset, batch_size, torch.device(device))
    return predicted


def write_tagged(sentences: list[list[str]], predicted: list[list[str]], out: TextIO) -> None:
    for tokens, tags in zip(sentences, predicted):
        out.write("".join(f"{token}\t{tag}\n" for token, tag in zip(tokens, tags)) + "\n")


@entry_point
def main(argv: list[str] | None = None) -> list[list[str]]:
    args = parse_args(argv)
    device = pick_device(args.device)
    model, words, chars, tags = load_tagger(args.run_dir, args.checkpoint, device)
    if args.input is None:
        sentences = read_sentences(sys.stdin)
    else:
        path = Path(args.input)
        if not path.is_file():
            raise DataError(f"--input {path} not found (one whitespace-tokenised sentence per line)")
        sentences = read_sentences(path.read_text(encoding="utf-8").splitlines())
    predicted = tag_sentences(model, words, chars, tags, sentences, args.batch_size, device)
    write_tagged(sentences, predicted, sys.stdout)
    return predicted


if __name__ == "__main__":
    main()
