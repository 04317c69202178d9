"""Where the three q1 scripts get CoNLL-2003 from: one set of flags, one loader.

    --source hf (default)  `eriktks/conll2003` through HuggingFace `datasets` (parquet
                           conversion); offline this is a one-line error naming --conll-dir and
                           --smoke
    --conll-dir DIR        DIR/train.txt, valid.txt, test.txt (or eng.train, eng.testa,
                           eng.testb) in the CoNLL-2003 column format, IOB1 or IOB2
    --smoke                the built-in offline corpus (common.data.conll.builtin_conll_splits)
    --keep-docstart        keep each `-DOCSTART-` document separator as a one-token sample, as
                           the report did (14,041 + 946 = 14,987 training rows); needs
                           --conll-dir or --smoke, since the Hub conversion has no separators
"""

from __future__ import annotations

import argparse

from common.data.conll import (DOCSTART, Sentence, builtin_conll_splits, load_conll2003_hf,
                               load_conll_dir)
from common.errors import DataError

SPLITS = ("train", "validation", "test")
SOURCES = ("hf", "conll-dir", "builtin")
SMOKE_SIZES = (600, 150, 150)  # sentences per split under --smoke: every script runs in seconds


def add_source_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--source --conll-dir --hf-name --hf-revision --keep-docstart (--smoke comes from
    common.cli.add_common_args)."""
    group = parser.add_argument_group("data")
    group.add_argument("--source", default="hf", choices=SOURCES,
                       help="where CoNLL-2003 comes from; --conll-dir implies conll-dir and "
                            "--smoke implies builtin")
    group.add_argument("--conll-dir", default=None,
                       help="folder with train.txt/valid.txt/test.txt in the CoNLL-2003 format")
    group.add_argument("--hf-name", default="eriktks/conll2003", help="HuggingFace dataset name")
    group.add_argument("--hf-revision", default="refs/convert/parquet",
                       help="dataset revision (datasets >= 4 reads only the parquet conversion)")
    group.add_argument("--keep-docstart", action="store_true",
                       help="count -DOCSTART- document separators as samples, as the report did")
    return parser


def resolve_source(args: argparse.Namespace) -> str:
    """`builtin` under --smoke, `conll-dir` when --conll-dir is given, else --source."""
    if getattr(args, "smoke", False):
        return "builtin"
    if args.conll_dir is not None:
        return "conll-dir"
    return args.source


def run_name(args: argparse.Namespace, stage: str) -> str:
    """`<stage>-<source>[-<split>][-<lf definition>][-docstart]`, with `smoke-` in front under
    --smoke, e.g. `lfs-conll-dir-report-docstart`, `lfs-conll-dir-validation-tokens` (the split
    when it is not train, the LF definition only for scripts that take one)."""
    parts = [stage, resolve_source(args)]
    if getattr(args, "split", "train") != "train":
        parts.append(args.split)
    if getattr(args, "lf_definition", None):
        parts.append(args.lf_definition)
    if args.keep_docstart:
        parts.append("docstart")
    return ("smoke-" if args.smoke else "") + "-".join(parts)


def describe_source(args: argparse.Namespace) -> str:
    """One line naming the data, for the scripts' first printed line and the report."""
    source = resolve_source(args)
    if source == "builtin":
        text = f"built-in offline corpus (seed {args.seed}, {'/'.join(map(str, SMOKE_SIZES))} sentences)"
    elif source == "conll-dir":
        text = f"CoNLL files in {args.conll_dir}"
    else:
        text = f"HuggingFace {args.hf_name} ({args.hf_revision})"
    separators = ("-DOCSTART- separators counted as samples (as the report did)"
                  if args.keep_docstart else "-DOCSTART- separators dropped")
    return f"{text}; {separators}"


def load_documents(args: argparse.Namespace, dataset=None) -> dict[str, tuple[list[Sentence], list[int]]]:
    """{"train", "validation", "test"} -> (sentences, document number of each sentence), the
    separators dropped. The Hub's conversion has no `-DOCSTART-` lines: there every sentence is
    its own document. Errors as load_splits."""
    if resolve_source(args) == "hf":
        return {split: (sentences, list(range(len(sentences))))
                for split, sentences in load_splits(args, dataset).items()}
    with_separators = load_splits(argparse.Namespace(**{**vars(args), "keep_docstart": True}), dataset)
    documents = {}
    for split, sentences in with_separators.items():
        kept, ids, document = [], [], 0
        for sentence in sentences:
            if is_docstart(sentence):
                if ids and ids[-1] == document:  # the current document has sentences: open a new one
                    document += 1
                continue
            kept.append(sentence)
            ids.append(document)
        documents[split] = (kept, ids)
    return documents


def is_docstart(sentence: Sentence) -> bool:
    """A document separator, however the source marked it."""
    return sentence.is_docstart or list(sentence.tokens) == [DOCSTART]


def load_splits(args: argparse.Namespace, dataset=None) -> dict[str, list[Sentence]]:
    """{"train", "validation", "test"} -> sentences from the source the flags name.

    `dataset`: an already-built `datasets.DatasetDict` for the hf source (tests build one
    offline); the Hub is not contacted then. Raises common.errors.DataError (one line) when the
    data is missing. Separators are dropped unless --keep-docstart, whatever the source.
    """
    source = resolve_source(args)
    if source == "builtin":
        splits = builtin_conll_splits(seed=args.seed, sizes=SMOKE_SIZES,
                                      keep_docstart=args.keep_docstart)
    elif source == "conll-dir":
        if args.conll_dir is None:
            raise DataError("--source conll-dir needs --conll-dir DIR holding train.txt, valid.txt "
                            "and test.txt; or pass --smoke for the built-in corpus")
        splits = load_conll_dir(args.conll_dir, keep_docstart=args.keep_docstart)
    else:
        splits = load_conll2003_hf(args.hf_name, revision=args.hf_revision, dataset=dataset,
                                   keep_docstart=args.keep_docstart)
    if not args.keep_docstart:
        splits = {split: [s for s in sentences if not is_docstart(s)]
                  for split, sentences in splits.items()}
    return {split: splits[split] for split in SPLITS}
