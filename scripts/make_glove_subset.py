"""Write the rows of a GloVe text file whose word occurs in the given corpora: the smaller GloVe
files the Q1 and Q5 runs in results/ used.

    python scripts/make_glove_subset.py --glove data/glove.6B.50d.txt \
        --gmb data/ner_dataset.csv --out data/glove.6B.50d.gmb.txt
    python scripts/make_glove_subset.py --glove data/glove.6B.50d.txt \
        --gmb data/ner_dataset.csv --conll-dir data/conll2003 --out data/glove.6B.50d.conll2003-gmb.txt

A word is kept when it occurs in any split of a corpus, as written or lower-cased: the same words
`q5_ner_crf.embeddings.wanted_words` keeps when the taggers read the full file, so a tagger gets the
same vectors from the subset as from the full file (glove.6B is lower-case). Rows are copied byte for
byte in the file's order; the output is written atomically. Takes about a minute for glove.6B.50d.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common.atomic import atomic_write
from common.cli import HelpFormatter, entry_point
from common.data.conll import load_conll_dir, read_gmb_csv
from common.errors import DataError
from q5_ner_crf.embeddings import wanted_words


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--glove", required=True, help="the full GloVe text file, e.g. data/glove.6B.50d.txt")
    parser.add_argument("--gmb", default=None, help="GMB ner_dataset.csv (Kaggle) whose words to keep")
    parser.add_argument("--conll-dir", default=None,
                        help="folder with CoNLL-2003 train.txt, valid.txt, test.txt whose words to keep")
    parser.add_argument("--out", required=True, help="the GloVe file to write")
    args = parser.parse_args(argv)
    if not args.gmb and not args.conll_dir:
        parser.error("give at least one corpus: --gmb and/or --conll-dir")
    return args


def corpus_words(gmb: str | None, conll_dir: str | None) -> set[str]:
    tokens: set[str] = set()
    if gmb:
        tokens.update(token for sentence in read_gmb_csv(gmb) for token in sentence.tokens)
    if conll_dir:
        tokens.update(token for sentences in load_conll_dir(conll_dir).values()
                      for sentence in sentences for token in sentence.tokens)
    return wanted_words(tokens)


@entry_point
def main(argv: list[str] | None = None) -> dict[str, int]:
    args = parse_args(argv)
    glove = Path(args.glove)
    if not glove.is_file():
        raise DataError(f"{glove}: GloVe file not found; get glove.6B.zip from "
                        "https://nlp.stanford.edu/projects/glove/ and unzip it under data/")
    wanted = corpus_words(args.gmb, args.conll_dir)
    counts = {"rows": 0, "kept": 0}

    def write(handle) -> None:
        with open(glove, "rb") as source:
            for line in source:
                counts["rows"] += 1
                # The word is everything before the first space (glove.840B has words with spaces
                # only in a few rows, which no corpus token matches).
                if line.split(b" ", 1)[0].decode("utf-8", errors="replace") in wanted:
                    handle.write(line)
                    counts["kept"] += 1

    atomic_write(args.out, write)
    print(f"{args.out}: {counts['kept']:,} of {counts['rows']:,} GloVe rows "
          f"({len(wanted):,} corpus words as written or lower-cased)")
    return counts


if __name__ == "__main__":
    main()
