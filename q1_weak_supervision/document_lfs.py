"""Labeling functions that read a whole document (CoNLL-2003 keeps its `-DOCSTART-` boundaries).

A news story names a person or an organisation in full once and then repeats the name, or only
the surname, where no sentence-level function finds it (`Yeltsin` in the middle of a sentence,
`Barclays` without `plc`). These functions read the sentence-level functions' majority vote (the
first-stage labels) of every sentence in a document and vote on the other mentions:

- `lf_doc_majority` (skweak's document-level majority, Lison et al. 2020): every labelled span of
  the first-stage labels is a name; each name gets the label most of its labelled mentions in the
  document have (a tie: none), and votes it on every mention of the name in the document that is
  a whole capitalised run (`Japan` in `in Japan`, not in `Japan Airlines`).
- `lf_doc_surname`: the last word of a person's name of two or three words (`Boris Yeltsin`)
  votes PER on each later mention of that word alone (a capitalised run of one word) in the same
  document.

Both read tokens and the first-stage votes only: no gold tag, and no list taken from any split's
annotations. A corpus without document boundaries (the Hub's conversion) gives one document per
sentence, where both functions can still see repeats inside the sentence only.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Sequence

import numpy as np

from q1_weak_supervision.labeling_functions import ABSTAIN, PER, is_capitalised, is_title_word

DOCUMENT_LFS = ("lf_doc_majority", "lf_doc_surname")


def labelled_spans(labels: Sequence[int]) -> list[tuple[int, int, int]]:
    """(start, stop, label) of each maximal run of one label (abstain ends a run), as
    aggregate.votes_to_iob2 turns them into entities."""
    spans, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            if labels[start] != ABSTAIN:
                spans.append((start, i, int(labels[start])))
            start = i
    return spans


def is_whole_run(tokens: Sequence[str], start: int, stop: int) -> bool:
    """tokens[start:stop] starts capitalised and no capitalised token touches it on either side."""
    return (is_capitalised(tokens[start])
            and (start == 0 or not is_capitalised(tokens[start - 1]))
            and (stop == len(tokens) or not is_capitalised(tokens[stop])))


def _mentions(tokens: Sequence[str], name: tuple[str, ...]):
    """Start positions of `name` in `tokens` as a whole capitalised run."""
    n = len(name)
    for start in range(len(tokens) - n + 1):
        if tuple(tokens[start:start + n]) == name and is_whole_run(tokens, start, start + n):
            yield start


def _documents(sentence_tokens, doc_ids, labels):
    """Per document: list of (token offset, tokens, first-stage labels) of its sentences."""
    documents, offset = defaultdict(list), 0
    for tokens, document in zip(sentence_tokens, doc_ids):
        documents[int(document)].append((offset, tuple(tokens), labels[offset:offset + len(tokens)]))
        offset += len(tokens)
    if offset != len(labels):
        raise ValueError(f"{len(labels)} labels for {offset} tokens")
    return documents.values()


def doc_majority_votes(sentence_tokens, doc_ids, labels: np.ndarray) -> np.ndarray:
    """lf_doc_majority's vote per token (-1: abstain). `sentence_tokens`: the token lists of the
    sentences in order; `doc_ids`: each sentence's document; `labels`: the first-stage label of
    every token in order."""
    votes = np.full(len(labels), ABSTAIN, dtype=int)
    for sentences in _documents(sentence_tokens, doc_ids, labels):
        counts: dict[tuple[str, ...], Counter] = defaultdict(Counter)
        for _, tokens, sentence_labels in sentences:
            for start, stop, label in labelled_spans(sentence_labels):
                if is_capitalised(tokens[start]):
                    counts[tokens[start:stop]][label] += 1
        for name, by_label in counts.items():
            (label, top), *rest = by_label.most_common(2) + [(None, 0)]
            if rest[0][1] == top:
                continue  # a tie between two labels: no confident label
            for offset, tokens, _ in sentences:
                for start in _mentions(tokens, name):
                    votes[offset + start:offset + start + len(name)] = label
    return votes


def doc_surname_votes(sentence_tokens, doc_ids, labels: np.ndarray) -> np.ndarray:
    """lf_doc_surname's vote per token (PER or -1), arguments as doc_majority_votes."""
    votes = np.full(len(labels), ABSTAIN, dtype=int)
    for sentences in _documents(sentence_tokens, doc_ids, labels):
        known: set[str] = set()  # surnames of full names met earlier in the document
        for offset, tokens, sentence_labels in sentences:
            named_here = {}  # surname -> position of the end of its full name in this sentence
            for start, stop, label in labelled_spans(sentence_labels):
                if label == PER and 2 <= stop - start <= 3 and all(
                        is_title_word(token) for token in tokens[start:stop]):
                    named_here.setdefault(tokens[stop - 1], stop)
            for position, token in enumerate(tokens):
                later = token in known or named_here.get(token, len(tokens)) <= position
                if later and is_whole_run(tokens, position, position + 1):
                    votes[offset + position] = PER
            known.update(named_here)
    return votes


def document_label_matrix(sentence_tokens, doc_ids, labels: np.ndarray) -> np.ndarray:
    """The (tokens, 2) label matrix of DOCUMENT_LFS from the first-stage labels."""
    return np.stack([doc_majority_votes(sentence_tokens, doc_ids, labels),
                     doc_surname_votes(sentence_tokens, doc_ids, labels)], axis=1)
