"""GloVe word vectors for the taggers (report 1, section 2.1.2).

    glove = load_glove("glove.6B.100d.txt", wanted_words)        # any dimension
    matrix, coverage = embedding_matrix(vocab, glove, seed=0)    # (len(vocab), d) float tensor

`load_glove` keeps only the wanted words, so glove.840B.300d needs no gigabytes of memory; a
word2vec-style `<count> <dim>` header is skipped. The format rules, the lookup and the
initialisation of words without a vector: q5_ner_crf/README.md, "Data". `write_smoke_glove` builds
the --smoke GloVe-format file from unlabelled built-in sentences, so smoke runs use the same loader.
"""

from __future__ import annotations

import collections
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from common.atomic import atomic_write_text
from common.errors import DataError
from q5_ner_crf.data import PAD, Vocab


@dataclass
class GloVe:
    vectors: dict[str, np.ndarray]  # only the wanted words that the file has
    dim: int
    path: str
    rows: int                       # vector lines in the file

    @property
    def std(self) -> float:
        """Standard deviation of all values of the kept vectors (the scale for unknown words)."""
        if not self.vectors:
            return 1.0 / math.sqrt(self.dim)
        return float(np.stack(list(self.vectors.values())).std())


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_glove(path: str | os.PathLike, wanted: Iterable[str] | None = None) -> GloVe:
    """Read a GloVe text file, keeping the vectors of `wanted` words (all when None)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: GloVe file not found; pass --glove PATH to a GloVe text file such as "
                        "glove.6B.100d.txt (https://nlp.stanford.edu/projects/glove/, glove.6B.zip), "
                        "or --smoke for a built-in one")
    wanted_set = None if wanted is None else set(wanted)
    vectors: dict[str, np.ndarray] = {}
    dim = None
    rows = 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        for lineno, line in enumerate(handle, start=1):
            fields = line.rstrip("\r\n").rstrip(" ").split(" ")
            if fields == [""]:
                continue  # blank line
            if dim is None:
                if lineno == 1 and len(fields) == 2 and all(f.isdigit() for f in fields):
                    continue  # word2vec-style header: "<count> <dim>"
                dim = len(fields) - 1
                if dim < 1:
                    raise DataError(f"{path}:{lineno}: expected 'word v1 ... vd', found one field")
            if len(fields) < dim + 1:
                raise DataError(f"{path}:{lineno}: {len(fields) - 1} values where the first row has {dim}; "
                                "every row must have the same dimension")
            extra = fields[1:len(fields) - dim]
            if extra and all(_is_number(f) for f in extra):
                raise DataError(f"{path}:{lineno}: {len(fields) - 1} values where the first row has {dim}; "
                                "every row must have the same dimension")
            rows += 1
            word = " ".join(fields[:len(fields) - dim])
            if wanted_set is not None and word not in wanted_set:
                continue  # not parsed: reading glove.840B stays fast
            try:
                vectors[word] = np.asarray(fields[len(fields) - dim:], dtype=np.float32)
            except ValueError:
                raise DataError(f"{path}:{lineno}: a value of {word!r} is not a number") from None
    if dim is None:
        raise DataError(f"{path}: empty GloVe file")
    return GloVe(vectors, dim, str(path), rows)


def wanted_words(words: Iterable[str]) -> set[str]:
    """The words to keep from a GloVe file: each word as is and lower-cased."""
    words = set(words)
    return words | {w.lower() for w in words}


def lookup(glove: GloVe, word: str) -> np.ndarray | None:
    vector = glove.vectors.get(word)
    return vector if vector is not None else glove.vectors.get(word.lower())


def embedding_matrix(vocab: Vocab, glove: GloVe, seed: int = 0,
                     token_counts: collections.Counter | None = None) -> tuple[torch.Tensor, dict]:
    """(len(vocab), glove.dim) initial embeddings and the coverage of the vocabulary.

    token_counts (word -> occurrences in the training text) adds the token-level coverage."""
    generator = np.random.default_rng(seed)
    scale = glove.std
    matrix = generator.normal(0.0, scale, size=(len(vocab), glove.dim)).astype(np.float32)
    found = 0
    regular = [w for w in vocab.itos if not (w.startswith("<") and w.endswith(">"))]
    for word in regular:
        vector = lookup(glove, word)
        if vector is not None:
            matrix[vocab.stoi[word]] = vector
            found += 1
    if PAD in vocab.stoi:
        matrix[vocab.stoi[PAD]] = 0.0
    coverage = {"glove_words_found": found, "glove_vocab_size": len(regular),
                "glove_coverage": found / max(1, len(regular)), "glove_dim": glove.dim,
                "glove_unknown_std": scale}
    if token_counts:
        total = sum(token_counts.values())
        covered = sum(n for w, n in token_counts.items() if lookup(glove, w) is not None)
        coverage["glove_token_coverage"] = covered / max(1, total)
    return torch.from_numpy(matrix), coverage


def write_smoke_glove(sentences: Sequence[Sequence[str]], path: str | os.PathLike, dim: int = 50,
                      window: int = 2, min_count: int = 2) -> Path:
    """A GloVe-format file from token lists: lower-cased words seen at least `min_count` times,
    positive PMI of their co-occurrence counts within `window`, factorised (the PPMI matrix is
    symmetric, so its eigenvectors scaled by sqrt|eigenvalue| are its SVD factors), scaled to
    GloVe-like magnitudes (std 0.4). Deterministic: no random projection."""
    counted = collections.Counter(token.lower() for tokens in sentences for token in tokens)
    words = sorted(word for word, n in counted.items() if n >= min_count)
    index = {word: i for i, word in enumerate(words)}
    counts = np.zeros((len(words), len(words)), dtype=np.float64)
    for tokens in sentences:
        ids = [index.get(t.lower()) for t in tokens]
        for i, a in enumerate(ids):
            for b in ids[max(0, i - window):i]:
                if a is not None and b is not None:
                    counts[a, b] += 1
                    counts[b, a] += 1
    total = counts.sum()
    row, column = counts.sum(1, keepdims=True), counts.sum(0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(counts * total / (row * column))
    ppmi = torch.from_numpy(np.where(np.isfinite(pmi) & (pmi > 0), pmi, 0.0))
    # One thread: a matrix this small gains nothing from more, and on a busy machine extra
    # threads make eigh ten times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        eigenvalues, eigenvectors = torch.linalg.eigh(ppmi)
    finally:
        torch.set_num_threads(threads)
    dim = min(dim, len(words))
    top = eigenvalues.abs().argsort(descending=True)[:dim]
    vectors = (eigenvectors[:, top] * eigenvalues[top].abs().sqrt()).numpy()
    vectors *= 0.4 / max(vectors.std(), 1e-12)
    lines = [word + " " + " ".join(f"{v:.5f}" for v in vector) + "\n" for word, vector in zip(words, vectors)]
    return atomic_write_text(path, "".join(lines))
