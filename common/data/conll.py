"""NER corpora as lists of `Sentence`: CoNLL column files, CoNLL-2003 from the HuggingFace Hub,
the Kaggle GMB csv, and a built-in corpus that needs no network.

Every reader returns `Sentence` objects whose `ner` tags are IOB2 (`B-X` opens an entity, `I-X`
continues one of the same type), whatever the input used, so seqeval's strict IOB2 mode and a CRF
see one scheme everywhere.

CoNLL column format (`read_conll`, `load_conll_dir`, `write_conll`), as in the CoNLL-2003 files:

    -DOCSTART- -X- -X- O

    EU NNP I-NP I-ORG
    rejects VBZ I-VP O
    German JJ I-NP I-MISC
    call NN I-NP O
    . . O O

    Peter NNP I-NP I-PER
    Blackburn NNP I-NP I-PER

One token per line, columns separated by single spaces (tabs accepted), a blank line after each
sentence. The first column is the token and the last the NER tag; with 3 columns the middle one is
POS (`token POS NER`), with 4 or more the POS and chunk tags are the third- and second-to-last
(`token POS chunk NER`; the German files' `token lemma POS chunk NER` reads alike); 2-column files
(`token NER`) have no POS or chunk. `-DOCSTART-` lines separate documents: dropped by default, or
kept (`keep_docstart=True`) as one-token sentences with `is_docstart=True`, which is how the
original report counted the training set (14,041 sentences + 946 DOCSTART = 14,987 rows).

The original files use IOB1 for NER and chunk tags (`I-X` opens an entity unless it continues one
of the same type; `B-X` only separates two adjacent entities of the same type), so the example
above becomes `B-ORG O B-MISC O O` and `B-PER I-PER`. Converting IOB1 to IOB2 leaves IOB2 input
unchanged, so `tag_scheme="auto"` simply converts; `tag_scheme="iob2"` instead rejects a file
whose tags are not IOB2.

Kaggle GMB csv (`read_gmb_csv`, "Annotated Corpus for Named Entity Recognition", latin-1):

    Sentence #,Word,POS,Tag
    Sentence: 1,Thousands,NNS,O
    ,of,IN,O
    ,London,NNP,B-geo
    Sentence: 2,Families,NNS,O

Only the first token of a sentence carries its id; types are art, eve, geo, gpe, nat, org, per, tim.

HuggingFace (`load_conll2003_hf`): `eriktks/conll2003` through its parquet conversion (datasets >= 4
no longer runs loading scripts), already IOB2. That conversion drops the `-DOCSTART-` lines, so the
report's 14,987-row count needs the original files through `load_conll_dir`.

Built-in corpus (`builtin_ner_corpus`, `builtin_conll_splits`): deterministic news-like sentences
from templates and small gazetteers, in CoNLL-2003 (PER/ORG/LOC/MISC) or GMB tags, with POS and
chunk columns; validation and test draw part of their names from a held-out slice of the
gazetteers, so a tagger must generalise from context, not only memorise names.

Missing or malformed data raises `common.errors.DataError` with one line naming the file (and line
number) and the fix.
"""

from __future__ import annotations

import collections
import os
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common.atomic import atomic_write_text
from common.errors import DataError

DOCSTART = "-DOCSTART-"
PLACEHOLDER = "-X-"  # the POS/chunk value of DOCSTART lines; written where a sentence has none
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
    HuggingFace row id); it is left out of `==`, so a sentence read back from a written file
    compares equal to the original.
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


def is_iob2(tags: Sequence[str]) -> bool:
    """True when every tag is valid and every `I-X` follows a `B-X` or `I-X` of the same type."""
    previous = "O"
    for tag in tags:
        if not is_valid_tag(tag):
            return False
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            return False
        previous = tag
    return True


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


def tag_counts(sentences: Iterable[Sentence]) -> collections.Counter:
    """Counter of NER tags over all tokens; DOCSTART separators are not text and are skipped."""
    counts: collections.Counter = collections.Counter()
    for sentence in sentences:
        if not sentence.is_docstart:
            counts.update(sentence.ner)
    return counts


# ---- CoNLL column files ----


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_line(error: Exception) -> str:
    """An exception's message cut to one short line, for a one-line DataError."""
    lines = str(error).strip().splitlines()
    return _shorten(lines[0], 100) if lines else ""


def _read_text(path: Path, encoding: str | None) -> str:
    """The file's text with newlines normalised (CRLF and CR become LF).

    Without an explicit encoding: UTF-8 (a BOM is dropped), else latin-1, the encoding of the
    German CoNLL-2003 files; latin-1 decodes any byte, so this never fails on encoding.
    """
    if encoding is not None:
        return path.read_text(encoding=encoding)
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        return path.read_text(encoding="latin-1")


def read_conll(
    path: str | os.PathLike,
    keep_docstart: bool = False,
    tag_scheme: str = "auto",
    encoding: str | None = None,
) -> list[Sentence]:
    """Read a CoNLL column file (format in the module docstring) into IOB2 sentences.

    keep_docstart: keep each `-DOCSTART-` line as a one-token sentence (`is_docstart=True`)
        instead of dropping it. A DOCSTART line always ends the sentence before it, with or
        without a blank line around it.
    tag_scheme: "auto" or "iob1" convert NER and chunk tags to IOB2 (a no-op on IOB2 input);
        "iob2" rejects NER tags that are not IOB2 (chunk tags are converted in every case, as the
        original files use IOB1 for them).

    A sentence whose POS (or chunk) column holds only `-X-` placeholders gets `pos` (or `chunk`)
    None, which is what `write_conll` writes for None.
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
            sentences.append(_sentence_from_rows(path, rows, n_columns, tag_scheme))
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
        if not is_valid_tag(columns[-1]):
            raise DataError(
                f"{path}:{lineno}: invalid NER tag {columns[-1]!r} (expected O, B-TYPE or I-TYPE)"
            )
        if n_columns >= 4 and columns[-2] != PLACEHOLDER and not is_valid_tag(columns[-2]):
            raise DataError(
                f"{path}:{lineno}: invalid chunk tag {columns[-2]!r} (expected O, B-TYPE or I-TYPE)"
            )
        rows.append((lineno, columns))
    end_sentence()  # a file without a final blank line or newline
    return sentences


def _sentence_from_rows(
    path: Path, rows: list[tuple[int, list[str]]], n_columns: int, tag_scheme: str
) -> Sentence:
    tokens = [columns[0] for _, columns in rows]
    ner = [columns[-1] for _, columns in rows]
    if tag_scheme == "iob2":
        bad = _first_non_iob2(ner)
        if bad >= 0:
            raise DataError(
                f"{path}:{rows[bad][0]}: tag {ner[bad]!r} does not continue an entity, so the file "
                "is not IOB2; read it with tag_scheme='auto' to convert IOB1"
            )
    else:
        ner = iob1_to_iob2(ner)

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


def write_conll(sentences: Iterable[Sentence], path: str | os.PathLike) -> None:
    """Write sentences in the 4-column format, atomically (a temp file renamed over `path`).

    DOCSTART separators become `-DOCSTART- -X- -X- O` plus a blank line, as in the original files;
    a None POS or chunk column is written as `-X-` placeholders, which `read_conll` reads back as
    None, so `read_conll(path, keep_docstart=True)` returns what was written (`meta` aside).
    """
    path = Path(path)
    lines = []
    for index, sentence in enumerate(sentences):
        if sentence.is_docstart:
            lines.append(f"{DOCSTART} {PLACEHOLDER} {PLACEHOLDER} O\n\n")
            continue
        n_tokens = len(sentence.tokens)
        pos = sentence.pos if sentence.pos is not None else [PLACEHOLDER] * n_tokens
        chunk = sentence.chunk if sentence.chunk is not None else [PLACEHOLDER] * n_tokens
        if n_tokens == 0 or not (len(sentence.ner) == len(pos) == len(chunk) == n_tokens):
            raise DataError(
                f"{path}: sentence {index} cannot be written: {n_tokens} tokens, "
                f"{len(sentence.ner)} NER, {len(pos)} POS and {len(chunk)} chunk tags"
            )
        for fields in zip(sentence.tokens, pos, chunk, sentence.ner):
            # A space inside a field would shift every later column when read back.
            if any(not value or _COLUMN_SEPARATOR.search(value) or "\n" in value for value in fields):
                raise DataError(
                    f"{path}: sentence {index} has an empty field or one with whitespace: {fields!r}"
                )
            lines.append(" ".join(fields) + "\n")
        lines.append("\n")

    atomic_write_text(path, "".join(lines))


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
# News-like sentences from templates. A template is a string of `word/POS` literals and `{slot}`
# fillers; each filler is one entity (or one O/time span) drawn from the gazetteers below. Names
# in the last fifth of each gazetteer never appear in the train split, so validation/test hold
# names a tagger has not seen. Some words are entities of different types in different templates
# (Washington the person and the city, Houston the city and the football club, Boston in
# "Boston Steel Corp."), and 4-digit counts that look like years are not entities, so the corpus
# is not solved by a word lookup alone.

_FIRST_NAMES = [
    "John", "Mary", "Peter", "Anna", "David", "Maria", "Michael", "Laura", "Thomas", "Sarah",
    "James", "Elena", "Robert", "Julia", "Carlos", "Sophie", "Ahmed", "Yuki", "Hans", "Ingrid",
    "Pierre", "Marco", "Olga", "Ivan", "Fatima", "Kenji", "Lars", "Nadia", "Pablo", "Grace",
    "Florence", "Victoria", "Georgia", "Austin", "Paris", "Dmitri", "Aisha", "Stefan", "Lucia",
    "Rahul", "Omar", "Helen", "Bruno", "Emma", "Felix", "Irene", "Jonas", "Kofi", "Mei", "Tomas",
]
_LAST_NAMES = [
    "Smith", "Johnson", "Blackburn", "Muller", "Rossi", "Dubois", "Tanaka", "Kowalski", "Petrov",
    "Garcia", "Silva", "Jensen", "Novak", "Schmidt", "Moreau", "Fischer", "Ivanova", "Haddad",
    "Okafor", "Lindqvist", "Costa", "Weber", "Nakamura", "Brown", "Taylor", "Clarke", "Walsh",
    "Becker", "Romano", "Kaminski", "Washington", "Jordan", "Lincoln", "Houston", "Chester",
    "Hughes", "Morgan", "Kelly", "Ortiz", "Suzuki", "Berg", "Horvat", "Yilmaz", "Papadopoulos",
    "Santos", "Nilsson", "Kumar", "Singh", "Zhang", "Wright", "Fleming", "Douglas", "Harper",
    "Mendes", "Varga", "Popescu", "Andersen", "Keller", "Bianchi", "Laurent",
]
_TITLES = ["Mr.", "Mrs.", "Ms.", "Dr.", "Prof.", "President", "Minister", "Judge", "Coach", "Senator"]
_CITIES = [
    "London", "Paris", "Berlin", "Madrid", "Rome", "Tokyo", "Moscow", "Brussels", "Vienna",
    "Geneva", "New York", "Athens", "Cairo", "Nairobi", "Lagos", "Sydney", "Toronto", "Chicago",
    "Boston", "Houston", "Austin", "Florence", "Victoria", "Washington", "Lincoln", "Chester",
    "Los Angeles", "Hong Kong", "Stockholm", "Warsaw", "Prague", "Dublin", "Seoul", "Mumbai",
    "Hamburg", "Munich", "Milan", "Buenos Aires", "Rio de Janeiro", "Frankfurt", "Zurich", "Bogota",
    "Manila", "Hanoi", "Ankara", "Lima", "Oslo", "Tel Aviv", "Kuala Lumpur", "Santiago",
]
_COUNTRIES = [
    "Germany", "France", "Britain", "Spain", "Italy", "Japan", "Russia", "Belgium", "Austria",
    "Switzerland", "United States", "Greece", "Egypt", "Kenya", "Nigeria", "Australia", "Canada",
    "Jordan", "Georgia", "Brazil", "Mexico", "China", "India", "Poland", "Sweden", "U.S.",
    "South Africa", "Turkey", "Iran", "Iraq", "Chile", "Peru", "Norway", "New Zealand", "Portugal",
    "Saudi Arabia", "Czech Republic", "Argentina", "Vietnam", "Denmark",
]
_NATIONALITIES = [
    "German", "French", "British", "Spanish", "Italian", "Japanese", "Russian", "Belgian",
    "Austrian", "Swiss", "American", "Greek", "Egyptian", "Kenyan", "Nigerian", "Australian",
    "Canadian", "Brazilian", "Mexican", "Chinese", "Indian", "Polish", "Swedish", "Norwegian",
    "Turkish", "Iranian", "Iraqi", "Chilean", "Dutch", "Danish",
]
_SPORT_EVENTS = [
    "World Cup", "Olympic Games", "Tour de France", "Davis Cup", "U.S. Open", "Champions League",
    "Asian Games", "Super Bowl", "Ryder Cup", "Berlin Marathon", "Grand Prix", "Euro Cup",
    "Winter Olympics", "Commonwealth Games", "Africa Cup of Nations",
]
_OTHER_EVENTS = [
    "Cannes Film Festival", "Paris Air Show", "Gulf War", "Cold War", "Frankfurt Book Fair",
    "Earth Summit", "Venice Biennale", "Geneva Motor Show", "World Economic Forum", "Carnival",
]
_ARTS = [
    "Windows 95", "Boeing 747", "Airbus A320", "Walkman", "Game Boy", "Model T", "Concorde",
    "PlayStation", "Mona Lisa", "Harry Potter", "Nobel Prize", "Beetle", "Macintosh", "Gazette",
    "Pentium", "Tamagotchi", "Discman", "Evening Standard", "Thinkpad", "Palm Pilot",
]
_NATURAL = [
    "Hurricane Andrew", "Hurricane Mitch", "Typhoon Haiyan", "Cyclone Tracy", "El Nino", "Ebola",
    "Hurricane Georges", "Tropical Storm Allison", "H5N1", "Typhoon Paka",
]
_FIXED_ORGS = [
    "United Nations", "European Union", "EU", "NATO", "Reuters", "World Bank", "Red Cross", "FIFA",
    "Bundesbank", "Interpol", "European Commission", "Greenpeace", "UEFA", "OPEC", "IMF",
    "Federal Reserve", "Labour Party", "Bank of England", "Supreme Court", "Bayern Munich",
]
_COMPANY_BASES = [
    "Acme", "Globex", "Initech", "Northwind", "Contoso", "Vandelay", "Stark", "Wayne", "Umbrella",
    "Tyrell", "Cyberdyne", "Soylent", "Hooli", "Massive", "Oceanic", "Pinnacle", "Summit", "Apex",
    "Zenith", "Horizon", "Atlas", "Orion", "Vertex", "Nimbus", "Falcon", "Granite", "Silverline",
    "Bluewater", "Redwood", "Ironclad",
]
_INDUSTRIES = [
    "Steel", "Motors", "Airlines", "Energy", "Systems", "Bank", "Holdings", "Chemicals", "Foods",
    "Pharmaceuticals", "Electronics", "Mining", "Insurance", "Telecom", "Group",
]
_COMPANY_SUFFIXES = ["Inc.", "Corp.", "Ltd."]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
]

_TEMPLATES = [
    "{per} ,/, chief/JJ executive/NN of/IN {org} ,/, said/VBD on/IN {day} that/IN profits/NNS "
    "rose/VBD {pct} percent/NN ./.",
    "{company} said/VBD it/PRP would/MD open/VB a/DT new/JJ plant/NN in/IN {city} in/IN {year} ./.",
    "{title} {last} told/VBD reporters/NNS in/IN {city} that/IN the/DT {nationality} "
    "government/NN would/MD act/VB ./.",
    "{CITY} {date}",
    "{country} beat/VBD {country} {score} in/IN their/PRP$ {cup} match/NN on/IN {day} ./.",
    "Shares/NNS in/IN {company} fell/VBD {num} cents/NNS to/TO {num} dollars/NNS ./.",
    "The/DT {event} will/MD be/VB held/VBN in/IN {city} ,/, {country} ,/, in/IN {year} ./.",
    "{per} ,/, who/WP joined/VBD {org} in/IN {year} ,/, was/VBD born/VBN in/IN {loc} ./.",
    "About/RB {count} people/NNS marched/VBD through/IN {city} on/IN {day} ./.",
    "{natural} hit/VBD {country} on/IN {date} ,/, killing/VBG {num} people/NNS ./.",
    "{company} launched/VBD the/DT {art} in/IN {month_year} ./.",
    "{nationality} officials/NNS met/VBD {title} {last} in/IN {city} on/IN {day} ./.",
    "The/DT company/NN ,/, based/VBN in/IN {city} ,/, employs/VBZ {count} workers/NNS ./.",
    "{rank} {per_full} (/( {country} )/) {time}",
    "{club} {goals} {club} {goals}",
    "The/DT index/NN rose/VBD {num} points/NNS to/TO {count} on/IN {day} ./.",
    "In/IN {year} ,/, {company} bought/VBD {org} for/IN {num} million/CD dollars/NNS ./.",
    "{per_full} won/VBD the/DT {year} {cup} in/IN {city} ./.",
    "{per_full} said/VBD {nationality} exports/NNS fell/VBD {pct} percent/NN in/IN {month} ./.",
    "SOCCER/NN -/: {COUNTRY} BEAT/VBD {COUNTRY} IN/IN {CUP} ./.",
    "He/PRP said/VBD the/DT talks/NNS in/IN {city} would/MD resume/VB in/IN {year} ./.",
    "{last} ,/, {age} ,/, moved/VBD to/TO {country} after/IN leaving/VBG {company} ./.",
    "{per_full} told/VBD {org} the/DT deal/NN was/VBD worth/IN {num} million/CD dollars/NNS ./.",
    "Police/NNS in/IN {city} arrested/VBD {num} people/NNS after/IN the/DT {club} match/NN ./.",
    "{org} and/CC {org} signed/VBD the/DT agreement/NN in/IN {city} on/IN {date} ./.",
    "{per_full} ,/, a/DT {nationality} citizen/NN ,/, flew/VBD from/IN {city} to/TO {city} ./.",
]

# Entity categories of the fillers, and their tag type in each tagset (None: tagged O). Years,
# dates, days and months are O in CoNLL-2003 but `tim` entities in GMB.
_TAGSET_TYPES = {
    "conll": {"per": "PER", "org": "ORG", "city": "LOC", "country": "LOC", "nationality": "MISC",
              "event": "MISC", "art": "MISC", "natural": "MISC", "time": None},
    "gmb": {"per": "per", "org": "org", "city": "geo", "country": "geo", "nationality": "gpe",
            "event": "eve", "art": "art", "natural": "nat", "time": "tim"},
}

# POS -> phrase type for the chunk column; runs of the same type form one chunk.
_CHUNK_OF_POS = {
    "NN": "NP", "NNS": "NP", "NNP": "NP", "NNPS": "NP", "DT": "NP", "JJ": "NP", "CD": "NP",
    "PRP": "NP", "PRP$": "NP", "WP": "NP", "$": "NP", "VB": "VP", "VBD": "VP", "VBG": "VP",
    "VBN": "VP", "VBP": "VP", "VBZ": "VP", "MD": "VP", "IN": "PP", "TO": "PP", "RB": "ADVP",
}
_SLOT = re.compile(r"\{(\w+)\}")


def _names(gazetteer: list[str], split: str) -> list[str]:
    """The train split sees the first four fifths of a gazetteer; the other splits all of it."""
    return gazetteer[: len(gazetteer) * 4 // 5] if split == "train" else gazetteer


def _fill_slot(slot: str, rng: random.Random, split: str) -> list[tuple[list[tuple[str, str]], str | None]]:
    """One filler as spans: (tokens with POS tags, entity category or None for O) per span."""

    def proper(name: str, category: str | None, pos: str = "NNP"):
        return [([(word, pos) for word in name.split()], category)]

    def number(text: str):
        return [([(text, "CD")], None)]

    if slot == "per":
        form = rng.random()
        if form < 0.6:
            return _fill_slot("per_full", rng, split)
        if form < 0.8:
            return _fill_slot("last", rng, split)
        # Titles are not part of the name in CoNLL-2003: "Mr./O Smith/B-PER".
        return proper(rng.choice(_TITLES), None) + _fill_slot("last", rng, split)
    if slot == "per_full":
        first, last = rng.choice(_names(_FIRST_NAMES, split)), rng.choice(_names(_LAST_NAMES, split))
        return proper(f"{first} {last}", "per")
    if slot == "last":
        return proper(rng.choice(_names(_LAST_NAMES, split)), "per")
    if slot == "title":
        return proper(rng.choice(_TITLES), None)
    if slot == "city":
        return proper(rng.choice(_names(_CITIES, split)), "city")
    if slot == "country":
        return proper(rng.choice(_names(_COUNTRIES, split)), "country")
    if slot == "loc":
        return _fill_slot(rng.choice(["city", "country"]), rng, split)
    if slot == "club":
        # Sports clubs named after their city are ORG in CoNLL-2003 ("Hamburg 1 Bayern Munich 2").
        return proper(rng.choice(_names(_CITIES, split)), "org")
    if slot == "nationality":
        return proper(rng.choice(_NATIONALITIES), "nationality", pos="JJ")
    if slot == "cup":
        return proper(rng.choice(_names(_SPORT_EVENTS, split)), "event")
    if slot == "event":
        return proper(rng.choice(_names(_SPORT_EVENTS, split) + _names(_OTHER_EVENTS, split)), "event")
    if slot == "art":
        return proper(rng.choice(_names(_ARTS, split)), "art")
    if slot == "natural":
        return proper(rng.choice(_names(_NATURAL, split)), "natural")
    if slot == "org":
        return _fill_slot("company", rng, split) if rng.random() < 0.5 else proper(
            rng.choice(_names(_FIXED_ORGS, split)), "org"
        )
    if slot == "company":
        # A city as the first word makes the city an ORG token here and a LOC token elsewhere.
        base = rng.choice(_names(_CITIES if rng.random() < 0.2 else _COMPANY_BASES, split))
        words = [base]
        if rng.random() < 0.6:
            words.append(rng.choice(_INDUSTRIES))
        if rng.random() < 0.5:
            words.append(rng.choice(_COMPANY_SUFFIXES))
        return proper(" ".join(words), "org")
    if slot == "year":
        return [([(str(rng.randint(1900, 2099)), "CD")], "time")]
    if slot == "date":
        text = f"{rng.randint(1990, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        return [([(text, "CD")], "time")]
    if slot == "day":
        return proper(rng.choice(_DAYS), "time")
    if slot == "month":
        return proper(rng.choice(_MONTHS), "time")
    if slot == "month_year":
        return [([(rng.choice(_MONTHS), "NNP"), (str(rng.randint(1900, 2099)), "CD")], "time")]
    if slot == "num":
        kind = rng.random()
        if kind < 0.4:
            return number(str(rng.randint(2, 99)))
        if kind < 0.7:
            return number(f"{rng.randint(1, 99)}.{rng.randint(0, 9)}")
        return number(f"{rng.randint(1, 9)},{rng.randint(0, 999):03d}")
    if slot == "pct":
        if rng.random() < 0.5:
            return number(str(rng.randint(1, 30)))
        return number(f"{rng.randint(0, 9)}.{rng.randint(1, 9)}")
    if slot == "count":
        # Four-digit counts, often in 1900-2099: they look like years but are not entities.
        return number(str(rng.randint(1000, 2500)))
    if slot == "score":
        return number(f"{rng.randint(0, 5)}-{rng.randint(0, 5)}")
    if slot == "goals":
        return number(str(rng.randint(0, 5)))
    if slot == "rank":
        return number(f"{rng.randint(1, 12)}.")
    if slot == "time":
        return number(f"{rng.randint(9, 59)}.{rng.randint(0, 99):02d}")
    if slot == "age":
        return number(str(rng.randint(19, 79)))
    raise KeyError(f"unknown template slot {slot!r}")


def _chunk_tags(pos_tags: list[str]) -> list[str]:
    """IOB2 chunk tags from POS tags: runs of one phrase type form a chunk; punctuation is O."""
    chunks, previous = [], None
    for pos in pos_tags:
        phrase = _CHUNK_OF_POS.get(pos)
        if phrase is None:
            chunks.append("O")
        else:
            chunks.append(("I-" if phrase == previous else "B-") + phrase)
        previous = phrase
    return chunks


def _generate_sentence(rng: random.Random, tagset: str, split: str) -> Sentence:
    template = rng.choice(_TEMPLATES)
    types = _TAGSET_TYPES[tagset]
    tokens, pos, ner = [], [], []
    for item in template.split():
        slot = _SLOT.fullmatch(item)
        if slot is None:
            word, _, tag = item.rpartition("/")
            tokens.append(word)
            pos.append(tag)
            ner.append("O")
            continue
        name = slot.group(1)
        for words, category in _fill_slot(name.lower(), rng, split):
            entity_type = types[category] if category else None
            for index, (word, tag) in enumerate(words):
                # Upper-case slots are headline or dateline words ("LONDON 1996-08-30").
                tokens.append(word.upper() if name.isupper() else word)
                pos.append(tag)
                ner.append("O" if entity_type is None else ("B-" if index == 0 else "I-") + entity_type)
    chunk = _chunk_tags(pos) if tagset == "conll" else None  # GMB has no chunk column
    return Sentence(tokens=tokens, ner=ner, pos=pos, chunk=chunk)


def builtin_ner_corpus(
    n_sentences: int = 3000, tagset: str = "conll", seed: int = 0, split: str = "train"
) -> list[Sentence]:
    """`n_sentences` deterministic template sentences in CoNLL-2003 ("conll") or GMB ("gmb") tags.

    split: "train" draws names from the first four fifths of each gazetteer only; any other value
        ("validation", "test") draws from all of it, so some names are unseen in training. The
        split also enters the random seed, so the splits hold different sentences.
    The same seed and split give the same text in both tagsets. GMB sentences have no chunk tags.
    """
    if tagset not in _TAGSET_TYPES:
        raise ValueError(f"tagset must be one of {sorted(_TAGSET_TYPES)}, got {tagset!r}")
    # A string seed keeps splits and seeds apart; random.Random hashes it with SHA-512, so it does
    # not depend on PYTHONHASHSEED.
    rng = random.Random(f"builtin-ner/{seed}/{split}")
    return [_generate_sentence(rng, tagset, split) for _ in range(n_sentences)]


def builtin_conll_splits(
    seed: int = 0,
    sizes: tuple[int, int, int] = (3000, 700, 700),
    keep_docstart: bool = False,
    tagset: str = "conll",
) -> dict[str, list[Sentence]]:
    """Built-in train/validation/test, shaped like `load_conll_dir`'s result.

    sizes count sentences; with keep_docstart a DOCSTART separator also opens each "document" of
    10 to 20 sentences (extra rows, as in the CoNLL-2003 files), and the sentences themselves are
    the same as without.
    """
    splits = {}
    for split, size in zip(("train", "validation", "test"), sizes):
        sentences = builtin_ner_corpus(size, tagset=tagset, seed=seed, split=split)
        if keep_docstart:
            rng = random.Random(f"builtin-ner/{seed}/{split}/docstart")
            with_docstart, next_docstart = [], 0
            for index, sentence in enumerate(sentences):
                if index == next_docstart:
                    with_docstart.append(docstart_sentence())
                    next_docstart += rng.randint(10, 20)
                with_docstart.append(sentence)
            sentences = with_docstart
        splits[split] = sentences
    return splits
