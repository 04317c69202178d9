"""NER corpora as lists of `Sentence` with IOB2 `ner` tags, whatever the input used, so seqeval's
strict IOB2 mode and a CRF see one scheme everywhere.

Sources: CoNLL column files (`read_conll`, `load_conll_dir`), CoNLL-2003 from the HuggingFace Hub
(`load_conll2003_hf`), the Kaggle GMB csv (`read_gmb_csv`), and a built-in corpus shipped with the
package that needs no network (`builtin_ner_corpus`, `builtin_conll_splits`).

CoNLL column format, as in the CoNLL-2003 files (plain or gzipped):

    -DOCSTART- -X- -X- O

    EU NNP I-NP I-ORG
    rejects VBZ I-VP O

One token per line (spaces or tabs between columns), a blank line after each sentence. The first
column is the token, the last the NER tag; with 3 columns the middle one is POS, with 4 or more
the POS and chunk tags are the third- and second-to-last; 2-column files have neither.
`-DOCSTART-` lines are dropped, or kept (`keep_docstart=True`) as one-token sentences, which is
how the original report counted the training set (14,041 sentences + 946 DOCSTART = 14,987 rows).
The original files use IOB1 (`I-X` opens an entity; `B-X` only splits two adjacent ones of one
type); converting IOB1 to IOB2 leaves IOB2 unchanged, so the default `tag_scheme="auto"` converts.

GMB csv (latin-1, `Sentence #,Word,POS,Tag`, the id only on each sentence's first row; types art,
eve, geo, gpe, nat, org, per, tim). The Hub's parquet conversion of CoNLL-2003 (datasets >= 4 runs
no loading scripts) has no `-DOCSTART-` lines, so the 14,987-row count needs the original files.

Missing or malformed data raises `common.errors.DataError` with one line naming the file (and line
number) and the fix.
"""

from __future__ import annotations

import gzip
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import DataError

DOCSTART = "-DOCSTART-"
PLACEHOLDER = "-X-"  # the POS/chunk value of DOCSTART lines: "no such column"
TAG_SCHEMES = ("auto", "iob1", "iob2")

# The label names of the HuggingFace conll2003 dataset (its original loading script). Used only when
# a dataset's features are plain integers and carry no names.
CONLL2003_NER_NAMES = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
CONLL2003_POS_NAMES = [
    '"', "''", "#", "$", "(", ")", ",", ".", ":", "``", "CC", "CD", "DT", "EX", "FW", "IN", "JJ",
    "JJR", "JJS", "LS", "MD", "NN", "NNP", "NNPS", "NNS", "NN|SYM", "PDT", "POS", "PRP", "PRP$",
    "RB", "RBR", "RBS", "RP", "SYM", "TO", "UH", "VB", "VBD", "VBG", "VBN", "VBP", "VBZ", "WDT",
    "WP", "WP$", "WRB",
]
CONLL2003_CHUNK_NAMES = [
    "O", "B-ADJP", "I-ADJP", "B-ADVP", "I-ADVP", "B-CONJP", "I-CONJP", "B-INTJ", "I-INTJ",
    "B-LST", "I-LST", "B-NP", "I-NP", "B-PP", "I-PP", "B-PRT", "I-PRT", "B-SBAR", "I-SBAR",
    "B-UCP", "I-UCP", "B-VP", "I-VP",
]

CONLL_TYPES = ("PER", "ORG", "LOC", "MISC")
GMB_TYPES = ("art", "eve", "geo", "gpe", "nat", "org", "per", "tim")
GMB_COLUMNS = ("Sentence #", "Word", "POS", "Tag")

# File names accepted per split, preferred first: the HuggingFace script's names, then the
# original CoNLL-2003 distribution's.
CONLL_SPLIT_FILES = {
    "train": ("train.txt", "eng.train"),
    "validation": ("valid.txt", "eng.testa", "dev.txt"),
    "test": ("test.txt", "eng.testb"),
}
_EXPECTED_DIR_LAYOUT = "train.txt, valid.txt, test.txt (or eng.train, eng.testa, eng.testb)"
_EXPECTED_FILE_LAYOUT = (
    "one 'token POS chunk NER' (or 'token NER') line per token, a blank line between sentences"
)

_COLUMN_SEPARATOR = re.compile(r"[ \t]+")
_TAG = re.compile(r"O|[BI]-\S+")


@dataclass
class Sentence:
    """One sentence (or one DOCSTART separator when `is_docstart`).

    `ner` is always IOB2. `pos`/`chunk` are None when the source has no such column (2-column
    files, GMB has no chunk, DOCSTART separators). `meta` holds provenance (a GMB sentence id, a
    HuggingFace row id); it is left out of `==`, so sentences compare by their text and tags.
    """

    tokens: list[str]
    ner: list[str]
    pos: list[str] | None = None
    chunk: list[str] | None = None
    is_docstart: bool = False
    meta: dict = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return len(self.tokens)


def docstart_sentence() -> Sentence:
    """The separator `read_conll(..., keep_docstart=True)` yields for a `-DOCSTART-` line."""
    return Sentence(tokens=[DOCSTART], ner=["O"], is_docstart=True)


# ---- tag schemes ----


def is_valid_tag(tag: str) -> bool:
    """`O`, `B-TYPE` or `I-TYPE` (TYPE non-empty)."""
    return _TAG.fullmatch(tag) is not None


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """Convert IOB1 tags to IOB2: an `I-X` that does not continue an X entity opens one (`B-X`).

    >>> iob1_to_iob2(["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG", "I-PER"])
    ['B-PER', 'I-PER', 'O', 'B-LOC', 'B-LOC', 'B-ORG', 'B-PER']

    IOB2 input comes back unchanged. Raises ValueError on a tag that is not O/B-X/I-X.
    """
    converted = []
    previous = "O"
    for tag in tags:
        if not is_valid_tag(tag):
            raise ValueError(f"invalid tag {tag!r} (expected O, B-TYPE or I-TYPE)")
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        converted.append(tag)
        previous = tag
    return converted


def _first_non_iob2(tags: Sequence[str]) -> int:
    """Index of the first tag that breaks IOB2 (tags are already known to be valid)."""
    previous = "O"
    for index, tag in enumerate(tags):
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            return index
        previous = tag
    return -1


# ---- CoNLL column files ----


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_line(error: Exception) -> str:
    """An exception's message cut to one short line, for a one-line DataError."""
    lines = str(error).strip().splitlines()
    return _shorten(lines[0], 100) if lines else ""


def _read_text(path: Path, encoding: str | None) -> str:
    """The file's text (gunzipped for `.gz`) with newlines normalised (CRLF and CR become LF).

    Without an explicit encoding: UTF-8 (a BOM is dropped), else latin-1, the encoding of the
    German CoNLL-2003 files; latin-1 decodes any byte, so this never fails on encoding.
    """
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise DataError(f"{path}: not a readable gzip file ({_first_line(error)})") from None
    if encoding is not None:
        text = data.decode(encoding)
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_conll(
    path: str | os.PathLike,
    keep_docstart: bool = False,
    tag_scheme: str = "auto",
    encoding: str | None = None,
    unlabelled_tag: str | None = None,
) -> list[Sentence]:
    """Read a CoNLL column file (format in the module docstring) into IOB2 sentences.

    keep_docstart: keep each `-DOCSTART-` line as a one-token sentence (`is_docstart=True`)
        instead of dropping it. A DOCSTART line always ends the sentence before it, with or
        without a blank line around it.
    tag_scheme: "auto" or "iob1" convert NER and chunk tags to IOB2 (a no-op on IOB2 input);
        "iob2" rejects NER tags that are not IOB2 (chunk tags are converted in every case, as the
        original files use IOB1 for them).

    unlabelled_tag: a tag that marks a token whose NER tag is unknown (partially annotated files,
        for example "-"); it is kept as it is and read as `O` by the IOB1/IOB2 checks. None: no
        such tag, every NER tag must be O/B-X/I-X.

    A sentence whose POS (or chunk) column holds only `-X-` placeholders gets `pos` (or `chunk`)
    None. A path ending in `.gz` is decompressed first.
    """
    if tag_scheme not in TAG_SCHEMES:
        raise ValueError(f"tag_scheme must be one of {TAG_SCHEMES}, got {tag_scheme!r}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; expected a CoNLL column file: {_EXPECTED_FILE_LAYOUT}")

    sentences: list[Sentence] = []
    rows: list[tuple[int, list[str]]] = []  # (line number, columns) of the sentence being read
    n_columns = 0  # fixed by the first token line; DOCSTART lines vary between copies, so not them

    def end_sentence() -> None:
        if rows:
            sentences.append(_sentence_from_rows(path, rows, n_columns, tag_scheme, unlabelled_tag))
            rows.clear()

    for lineno, line in enumerate(_read_text(path, encoding).split("\n"), start=1):
        stripped = line.strip(" \t")
        if not stripped:
            end_sentence()
            continue
        columns = _COLUMN_SEPARATOR.split(stripped)
        if columns[0] == DOCSTART:
            end_sentence()
            if keep_docstart:
                sentences.append(docstart_sentence())
            continue
        if n_columns == 0:
            if len(columns) < 2:
                raise DataError(
                    f"{path}:{lineno}: expected at least 2 columns ('token NER'), found 1: "
                    f"{_shorten(stripped)!r}"
                )
            n_columns = len(columns)
        elif len(columns) != n_columns:
            raise DataError(
                f"{path}:{lineno}: expected {n_columns} columns like the file's first line, "
                f"found {len(columns)}: {_shorten(stripped)!r}"
            )
        if not is_valid_tag(columns[-1]) and columns[-1] != unlabelled_tag:
            also = f" or {unlabelled_tag} (unlabelled)" if unlabelled_tag else ""
            raise DataError(
                f"{path}:{lineno}: invalid NER tag {columns[-1]!r} (expected O, B-TYPE or I-TYPE{also})"
            )
        if n_columns >= 4 and columns[-2] != PLACEHOLDER and not is_valid_tag(columns[-2]):
            raise DataError(
                f"{path}:{lineno}: invalid chunk tag {columns[-2]!r} (expected O, B-TYPE or I-TYPE)"
            )
        rows.append((lineno, columns))
    end_sentence()  # a file without a final blank line or newline
    return sentences


def _sentence_from_rows(
    path: Path, rows: list[tuple[int, list[str]]], n_columns: int, tag_scheme: str,
    unlabelled_tag: str | None = None,
) -> Sentence:
    tokens = [columns[0] for _, columns in rows]
    unlabelled = [columns[-1] == unlabelled_tag for _, columns in rows]
    ner = ["O" if unknown else columns[-1] for (_, columns), unknown in zip(rows, unlabelled)]
    if tag_scheme == "iob2":
        bad = _first_non_iob2(ner)
        if bad >= 0:
            raise DataError(
                f"{path}:{rows[bad][0]}: tag {ner[bad]!r} does not continue an entity, so the file "
                "is not IOB2; read it with tag_scheme='auto' to convert IOB1"
            )
    else:
        ner = iob1_to_iob2(ner)
    ner = [unlabelled_tag if unknown else tag for tag, unknown in zip(ner, unlabelled)]

    pos = chunk = None
    if n_columns == 3:
        pos = [columns[1] for _, columns in rows]
    elif n_columns >= 4:
        pos = [columns[-3] for _, columns in rows]
        chunk = [columns[-2] for _, columns in rows]
    if pos is not None and all(tag == PLACEHOLDER for tag in pos):
        pos = None
    if chunk is not None:
        if all(tag == PLACEHOLDER for tag in chunk):
            chunk = None
        elif PLACEHOLDER in chunk:
            lineno = rows[chunk.index(PLACEHOLDER)][0]
            raise DataError(f"{path}:{lineno}: chunk placeholder {PLACEHOLDER} among real chunk tags")
        else:
            chunk = iob1_to_iob2(chunk)
    return Sentence(tokens=tokens, ner=ner, pos=pos, chunk=chunk)


def load_conll_dir(
    conll_dir: str | os.PathLike, keep_docstart: bool = False, tag_scheme: str = "auto"
) -> dict[str, list[Sentence]]:
    """Read train/validation/test from a folder of CoNLL files (names in `CONLL_SPLIT_FILES`)."""
    conll_dir = Path(conll_dir)
    if not conll_dir.is_dir():
        raise DataError(
            f"CoNLL directory {conll_dir} not found: it should hold {_EXPECTED_DIR_LAYOUT} in the "
            "CoNLL-2003 column format; pass --smoke for the built-in corpus"
        )
    splits = {}
    for split, names in CONLL_SPLIT_FILES.items():
        path = next((conll_dir / name for name in names if (conll_dir / name).is_file()), None)
        if path is None:
            raise DataError(
                f"{conll_dir}: no {' or '.join(names)} for the {split} split; expected "
                f"{_EXPECTED_DIR_LAYOUT}; pass --smoke for the built-in corpus"
            )
        splits[split] = read_conll(path, keep_docstart=keep_docstart, tag_scheme=tag_scheme)
    return splits


# ---- CoNLL-2003 from the HuggingFace Hub ----


def load_conll2003_hf(
    name: str = "eriktks/conll2003",
    revision: str = "refs/convert/parquet",
    dataset=None,
    keep_docstart: bool = False,
) -> dict[str, list[Sentence]]:
    """CoNLL-2003 train/validation/test from HuggingFace `datasets`.

    dataset: an already-built `datasets.DatasetDict` (tests build one offline); when None the
        dataset is loaded with `datasets.load_dataset(name, revision=revision)`.
    keep_docstart: must stay False: the conversion on the Hub has no `-DOCSTART-` lines (the
        original loading script skipped them); asking for them is a DataError pointing to
        `--conll-dir`.

    Label ids are mapped to names through the dataset's own ClassLabel features; plain integer
    features fall back to the conll2003 name lists above. Any failure to load (offline, unknown
    name or revision) is a one-line DataError naming `--conll-dir` and `--smoke`.
    """
    if keep_docstart:
        raise DataError(
            f"{name} on the HuggingFace Hub has no -DOCSTART- lines: pass --conll-dir DIR with the "
            "original train.txt/valid.txt/test.txt to keep them"
        )
    if dataset is None:
        try:
            import datasets  # imported here: slow to import and only this path needs it

            dataset = datasets.load_dataset(name, revision=revision)
        except Exception as error:  # offline, missing, renamed: the user's fix is the same
            reason = _first_line(error)
            raise DataError(
                f"could not load {name} from the HuggingFace Hub ({type(error).__name__}"
                f"{': ' + reason if reason else ''}): pass --conll-dir DIR with "
                "train.txt/valid.txt/test.txt or --smoke for the built-in corpus"
            ) from error
    splits = {}
    for split in ("train", "validation", "test"):
        if split not in dataset:
            raise DataError(
                f"{name}: no {split!r} split (found {sorted(dataset)}); pass --conll-dir DIR with "
                "train.txt/valid.txt/test.txt or --smoke for the built-in corpus"
            )
        splits[split] = _sentences_from_hf(dataset[split], f"{name}[{split}]")
    return splits


def _label_names(features, column: str, fallback: list[str]) -> list[str]:
    """A sequence feature's ClassLabel names, or `fallback` when it is a plain int sequence."""
    inner = getattr(features.get(column), "feature", None)
    names = getattr(inner, "names", None)
    return list(names) if names else fallback


def _sentences_from_hf(split_dataset, where: str) -> list[Sentence]:
    features = split_dataset.features
    for column in ("tokens", "ner_tags"):
        if column not in features:
            raise DataError(f"{where}: no {column!r} column (found {sorted(features)})")
    columns = split_dataset.with_format(None)[:]  # one Arrow -> Python conversion, not row by row
    names = {
        "ner_tags": _label_names(features, "ner_tags", CONLL2003_NER_NAMES),
        "pos_tags": _label_names(features, "pos_tags", CONLL2003_POS_NAMES),
        "chunk_tags": _label_names(features, "chunk_tags", CONLL2003_CHUNK_NAMES),
    }

    def to_names(column: str, row: int) -> list[str] | None:
        if column not in columns:
            return None
        values = columns[column][row]
        try:
            return [value if isinstance(value, str) else names[column][value] for value in values]
        except IndexError:
            raise DataError(
                f"{where}: row {row}: {column} id out of range for {len(names[column])} names"
            ) from None

    sentences = []
    for row, tokens in enumerate(columns["tokens"]):
        ner, pos, chunk = to_names("ner_tags", row), to_names("pos_tags", row), to_names("chunk_tags", row)
        try:
            # Already IOB2 on the Hub; converting is a no-op then and repairs any IOB1 copy.
            ner = iob1_to_iob2(ner)
            chunk = iob1_to_iob2(chunk) if chunk is not None else None
        except ValueError as error:
            raise DataError(f"{where}: row {row}: {error}") from None
        meta = {"id": columns["id"][row]} if "id" in columns else {}
        sentences.append(Sentence(tokens=list(tokens), ner=ner, pos=pos, chunk=chunk, meta=meta))
    return sentences


# ---- GMB (Kaggle ner_dataset.csv) ----


def read_gmb_csv(path: str | os.PathLike) -> list[Sentence]:
    """Read the Kaggle GMB `ner_dataset.csv` (format in the module docstring) into IOB2 sentences.

    The sentence id, given only on each sentence's first row, is carried forward to the rows below
    and kept as `meta["sentence_id"]`. `chunk` is None (the file has no chunk column). A stray
    `I-X` that opens an entity is read as `B-X`, so the output is valid IOB2.
    """
    import pandas as pd  # imported here: pandas is slow to import and only this reader needs it

    path = Path(path)
    expected = "the Kaggle GMB ner_dataset.csv (latin-1, header 'Sentence #,Word,POS,Tag')"
    if not path.is_file():
        raise DataError(f"{path}: no such file; expected {expected}")
    try:
        # keep_default_na=False: the words "NA", "null" and "nan" are tokens, not missing values.
        frame = pd.read_csv(path, encoding="latin-1", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as error:
        raise DataError(f"{path}: not a readable CSV ({_first_line(error)}); expected {expected}") from None
    frame.columns = [str(column).strip() for column in frame.columns]
    missing = [column for column in GMB_COLUMNS if column not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing columns {missing} (found {list(frame.columns)}); expected {expected}"
        )
    if frame.empty:
        return []

    ids = frame["Sentence #"].str.strip().tolist()
    words = frame["Word"].tolist()
    pos = frame["POS"].tolist()
    tags = frame["Tag"].str.strip().tolist()
    # Line numbers below assume one physical line per row (row i is line i + 2 after the header).
    if not ids[0]:
        raise DataError(f"{path}:2: a row before any sentence id; the 'Sentence #' column must be "
                        "filled on each sentence's first row")
    for row, tag in enumerate(tags):
        if not is_valid_tag(tag):
            raise DataError(f"{path}:{row + 2}: invalid tag {tag!r} (expected O, B-TYPE or I-TYPE)")

    starts = [row for row, sentence_id in enumerate(ids) if sentence_id]
    ends = starts[1:] + [len(ids)]
    return [
        Sentence(
            tokens=words[start:end],
            ner=iob1_to_iob2(tags[start:end]),
            pos=pos[start:end],
            chunk=None,
            meta={"sentence_id": ids[start]},
        )
        for start, end in zip(starts, ends)
    ]


# ---- built-in corpus ----
#
# News-like sentences from templates filled from small gazetteers, generated once and shipped as
# builtin_ner/<split>.txt.gz: CoNLL columns `token POS chunk NER` with GMB tags, documents of 10 to
# 20 sentences opened by -DOCSTART-. Names in the last fifth of each gazetteer never occur in
# train, so validation and test hold names a tagger has not seen; some words are entities of
# different types in different sentences (Washington the person and the city), and 4-digit counts
# that look like years are not entities, so the corpus is not solved by a word lookup alone.

BUILTIN_DIR = Path(__file__).with_name("builtin_ner")
BUILTIN_SPLITS = ("train", "validation", "test", "unlabelled")
# CoNLL-2003 tags follow from GMB's; dates and times are entities (tim) only in GMB.
_CONLL_TYPE_OF_GMB = {"per": "PER", "org": "ORG", "geo": "LOC", "gpe": "MISC", "eve": "MISC",
                      "art": "MISC", "nat": "MISC", "tim": None}


def _gmb_to_conll(tags: list[str]) -> list[str]:
    types = [None if tag == "O" else _CONLL_TYPE_OF_GMB[tag[2:]] for tag in tags]
    return ["O" if kind is None else tag[:2] + kind for tag, kind in zip(tags, types)]


def builtin_ner_corpus(n_sentences: int = 3000, tagset: str = "conll", seed: int = 0,
                       split: str = "train", keep_docstart: bool = False) -> list[Sentence]:
    """`n_sentences` sentences of the built-in `split` (3000 train, 700 validation, 700 test and
    2000 unlabelled sentences at most), in CoNLL-2003 ("conll") or GMB ("gmb") tags.

    seed: shuffles the split's documents; the first `n_sentences` sentences in that order are
        returned (the last document cut short), so with one seed a smaller corpus is the start of
        a larger one, and different seeds draw different documents.
    keep_docstart: a DOCSTART separator opens each document, as in the CoNLL-2003 files.
    The same seed and split give the same text in both tagsets. GMB sentences have no chunk tags.
    """
    if tagset not in ("conll", "gmb"):
        raise ValueError(f"tagset must be 'conll' or 'gmb', got {tagset!r}")
    if split not in BUILTIN_SPLITS:
        raise ValueError(f"split must be one of {BUILTIN_SPLITS}, got {split!r}")
    documents: list[list[Sentence]] = []
    for sentence in read_conll(BUILTIN_DIR / f"{split}.txt.gz", keep_docstart=True):
        if sentence.is_docstart:
            documents.append([])
            continue
        if tagset == "gmb":
            sentence.chunk = None  # like the GMB csv
        else:
            sentence.ner = _gmb_to_conll(sentence.ner)
        documents[-1].append(sentence)
    available = sum(len(document) for document in documents)
    if not 0 <= n_sentences <= available:
        raise ValueError(f"the built-in {split} split has {available} sentences, asked for {n_sentences}")
    # A string seed keeps splits and seeds apart; random.Random hashes it with SHA-512, so it does
    # not depend on PYTHONHASHSEED.
    random.Random(f"builtin-ner/{seed}/{split}").shuffle(documents)
    chosen, remaining = [], n_sentences
    for document in documents:
        if remaining <= 0:
            break
        if keep_docstart:
            chosen.append(docstart_sentence())
        chosen.extend(document[:remaining])
        remaining -= len(document)
    return chosen


def builtin_conll_splits(seed: int = 0, sizes: tuple[int, int, int] = (3000, 700, 700),
                         keep_docstart: bool = False, tagset: str = "conll") -> dict[str, list[Sentence]]:
    """Built-in train/validation/test (`builtin_ner_corpus`), shaped like `load_conll_dir`'s result."""
    return {split: builtin_ner_corpus(size, tagset, seed, split, keep_docstart)
            for split, size in zip(("train", "validation", "test"), sizes)}
