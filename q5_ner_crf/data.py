"""NER data for the taggers: the corpora, their splits, vocabularies and padded batches.

Every corpus becomes `common.data.conll.Sentence` lists with IOB2 tags: GMB split 60/20/20 at
sentence level with a seeded shuffle (GMB ships no split), CoNLL-2003, MultiCoNER II (fine or
coarse types) and the built-in `--smoke` corpus, written as MultiCoNER files for `multiconer` so
that the smoke run goes through the real reader. File formats: q5_ner_crf/README.md, "Data".
`Vocab` maps words to ids with `<pad>` = 0 and `<unk>` = 1; tags are a list with "O" first.
A training file may leave tokens unlabelled (partial annotation): their tag is UNLABELLED_TAG
("-"), which is no tag of the model; `NERDataset` encodes it as `crf.UNLABELLED` (-1).
`NERDataset` yields padded `Batch`es with masks; a batch's characters are encoded once per
distinct token (`chars`, `char_mask`, and `char_index` (B, T) pointing into them), and each token
has a casing class (`casing_class`, Reimers & Gurevych 2017's casing feature). `iob2_to_iobes` and
`iobes_to_iob2` convert tag sequences for training in the IOBES scheme.
"""

from __future__ import annotations

import collections
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch

from common.data.conll import (Sentence, builtin_conll_splits, is_valid_tag, iob1_to_iob2,
                               load_conll2003_hf, load_conll_dir, read_gmb_csv)
from common.errors import DataError
from q5_ner_crf.crf import UNLABELLED

UNLABELLED_TAG = "-"  # in a training file: this token's tag is unknown (q5_ner_crf/train.py --train-file)

DATASETS = ("gmb", "conll2003", "multiconer")
LANGUAGES = ("en", "hi", "bn")
GRANULARITIES = ("fine", "coarse")
SPLITS = ("train", "validation", "test")

# The official MultiCoNER II fine-to-coarse mapping, from the dataset card of
# https://huggingface.co/datasets/MultiCoNER/multiconer_v2 (README, "Dataset Summary"):
#   Location (LOC): Facility, OtherLOC, HumanSettlement, Station
#   Creative Work (CW): VisualWork, MusicalWork, WrittenWork, ArtWork, Software
#   Group (GRP): MusicalGRP, PublicCORP, PrivateCORP, AerospaceManufacturer, SportsGRP,
#                CarManufacturer, ORG
#   Person (PER): Scientist, Artist, Athlete, Politician, Cleric, SportsManager, OtherPER
#   Product (PROD): Clothing, Vehicle, Food, Drink, OtherPROD
#   Medical (MED): Medication/Vaccine, MedicalProcedure, AnatomicalStructure, Symptom, Disease
# 33 fine types. The data files spell some of them differently from the card (PublicCorp,
# PrivateCorp), so the lookup ignores case.
MULTICONER_COARSE_TYPES = {
    "LOC": ("Facility", "OtherLOC", "HumanSettlement", "Station"),
    "CW": ("VisualWork", "MusicalWork", "WrittenWork", "ArtWork", "Software"),
    "GRP": ("MusicalGRP", "PublicCORP", "PrivateCORP", "AerospaceManufacturer", "SportsGRP",
            "CarManufacturer", "ORG"),
    "PER": ("Scientist", "Artist", "Athlete", "Politician", "Cleric", "SportsManager", "OtherPER"),
    "PROD": ("Clothing", "Vehicle", "Food", "Drink", "OtherPROD"),
    "MED": ("Medication/Vaccine", "MedicalProcedure", "AnatomicalStructure", "Symptom", "Disease"),
}
FINE_TO_COARSE = {fine.lower(): coarse for coarse, fines in MULTICONER_COARSE_TYPES.items() for fine in fines}

# MultiCoNER II file names: <lang>_<split>.conll, in the folder or one level below it (the
# release has one folder per language, e.g. EN-English/en_train.conll).
MULTICONER_SPLIT_NAMES = {"train": "train", "validation": "dev", "test": "test"}

# Stand-in fine types for the built-in corpus written as MultiCoNER files under --smoke (the
# template corpus has GMB types); `tim` is not a MultiCoNER entity and becomes O.
_BUILTIN_AS_MULTICONER = {"per": "OtherPER", "org": "ORG", "geo": "HumanSettlement", "gpe": "OtherLOC",
                          "art": "Software", "eve": "VisualWork", "nat": "Disease", "tim": None}

PAD, UNK = "<pad>", "<unk>"


# ---- MultiCoNER II ----


def coarse_tag(tag: str) -> str:
    """B-Artist -> B-PER, I-Medication/Vaccine -> I-MED, O -> O (official MultiCoNER mapping)."""
    if tag == "O":
        return tag
    prefix, fine = tag[:2], tag[2:]
    coarse = FINE_TO_COARSE.get(fine.lower())
    if coarse is None:
        raise KeyError(fine)
    return prefix + coarse


def read_multiconer(path: str | os.PathLike, granularity: str = "fine") -> list[Sentence]:
    """Read one MultiCoNER II file; `granularity="coarse"` maps the 33 types to the 6 coarse ones.

    The comment line's id and domain are kept in `Sentence.meta`. Tags are made IOB2 (a stray
    `I-X` opening an entity becomes `B-X`). Malformed lines are a DataError with file:line."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; expected a MultiCoNER II .conll file "
                        "('# id ...' lines, 'token _ _ TAG' rows, blank lines between sentences)")
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    meta: dict = {}

    def end_sentence() -> None:
        if tokens:
            sentences.append(Sentence(tokens=list(tokens), ner=iob1_to_iob2(tags), meta=dict(meta)))
        tokens.clear()
        tags.clear()
        meta.clear()

    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                end_sentence()
                continue
            if line.startswith("# id "):  # opens a sentence, blank line before it or not
                end_sentence()
                fields = line[len("# id "):].split("\t")
                meta["id"] = fields[0].strip()
                for field in fields[1:]:
                    key, _, value = field.partition("=")
                    meta[key.strip()] = value.strip()
                continue
            columns = line.split()
            # A token line is 'token _ _ TAG'; some copies drop the placeholders ('token TAG').
            if len(columns) < 2:
                raise DataError(f"{path}:{lineno}: expected 'token _ _ TAG', found {line[:60]!r}")
            tag = columns[-1]
            if not is_valid_tag(tag):
                raise DataError(f"{path}:{lineno}: invalid tag {tag!r} (expected O, B-TYPE or I-TYPE)")
            if granularity == "coarse":
                try:
                    tag = coarse_tag(tag)
                except KeyError:
                    raise DataError(f"{path}:{lineno}: {tag[2:]!r} is not one of the 33 MultiCoNER II "
                                    "fine types, so it has no coarse type") from None
            tokens.append(columns[0])
            tags.append(tag)
    end_sentence()
    return sentences


def write_multiconer(sentences: Iterable[Sentence], path: str | os.PathLike, lang: str = "en") -> Path:
    """Write sentences in the MultiCoNER II format (used to build the --smoke files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for index, sentence in enumerate(sentences):
        lines.append(f"# id {sentence.meta.get('id', f'builtin-{index}')}\tdomain={lang}\n")
        lines += [f"{token} _ _ {tag}\n" for token, tag in zip(sentence.tokens, sentence.ner)]
        lines.append("\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


def find_multiconer_file(directory: Path, lang: str, split: str, required: bool = True) -> Path | None:
    name = f"{lang}_{MULTICONER_SPLIT_NAMES[split]}.conll"
    candidates = [directory / name] + sorted(directory.glob(f"*/{name}"))
    found = next((path for path in candidates if path.is_file()), None)
    if found is None and required:
        raise DataError(f"{directory}: no {name} (looked in the folder and its subfolders); expected the "
                        f"MultiCoNER II release, e.g. {directory}/EN-English/en_train.conll, en_dev.conll, "
                        "en_test.conll; get it from https://huggingface.co/datasets/MultiCoNER/multiconer_v2")
    return found


# Share of the training file held out for validation when the dev file has to serve as the test split.
HELD_OUT_VALIDATION = 0.1


def load_multiconer_dir(directory: str | os.PathLike, lang: str, granularity: str,
                        split_seed: int = 0) -> tuple[dict[str, list[Sentence]], str]:
    """train/validation/test sentences and a note on where each split comes from.

    The test labels of MultiCoNER II were released separately; where `<lang>_test.conll` is
    missing, the dev file is scored as the test split and a seeded 10% of the training file
    becomes the validation split, so that no model is ever selected on the split it is scored on."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"MultiCoNER folder {directory} not found: pass --data-path DIR holding "
                        f"<lang>_train.conll, <lang>_dev.conll, <lang>_test.conll (or its per-language "
                        "subfolders), or --smoke for the built-in corpus")
    train = read_multiconer(find_multiconer_file(directory, lang, "train"), granularity)
    dev = read_multiconer(find_multiconer_file(directory, lang, "validation"), granularity)
    test_file = find_multiconer_file(directory, lang, "test", required=False)
    if test_file is not None:
        return {"train": train, "validation": dev, "test": read_multiconer(test_file, granularity)}, ""
    held_out = split_sentences(train, (1 - HELD_OUT_VALIDATION, HELD_OUT_VALIDATION, 0.0), split_seed)
    note = (f"no {lang}_test.conll: the dev file is the test split, validation is a seeded "
            f"{HELD_OUT_VALIDATION:.0%} of train")
    return {"train": held_out["train"], "validation": held_out["validation"], "test": dev}, note


# ---- splits ----


def split_sentences(sentences: Sequence[Sentence], fractions: Sequence[float] = (0.6, 0.2, 0.2),
                    seed: int = 0) -> dict[str, list[Sentence]]:
    """Seeded sentence-level shuffle cut into train/validation/test by `fractions` (sum 1)."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    order = list(range(len(sentences)))
    random.Random(f"q5-split/{seed}").shuffle(order)
    n_train = round(fractions[0] * len(order))
    n_validation = round(fractions[1] * len(order))
    cuts = {"train": order[:n_train], "validation": order[n_train:n_train + n_validation],
            "test": order[n_train + n_validation:]}
    return {split: [sentences[i] for i in indices] for split, indices in cuts.items()}


def truncate(sentences: Iterable[Sentence], max_len: int | None) -> list[Sentence]:
    """Cut every sentence to its first `max_len` tokens (None or 0: unchanged). A cut through an
    entity leaves its first part, still valid IOB2."""
    if not max_len:
        return list(sentences)
    return [Sentence(tokens=s.tokens[:max_len], ner=s.ner[:max_len],
                     pos=s.pos[:max_len] if s.pos is not None else None,
                     chunk=s.chunk[:max_len] if s.chunk is not None else None, meta=s.meta)
            for s in sentences]


def builtin_splits(dataset: str, seed: int, sizes: tuple[int, int, int], work_dir: Path,
                   granularity: str = "fine") -> dict[str, list[Sentence]]:
    """The --smoke corpus: common.data.conll's templates in GMB tags (CoNLL-2003 tags for
    conll2003); for multiconer written as MultiCoNER files under `work_dir` with stand-in fine
    types and read back."""
    splits = builtin_conll_splits(seed=seed, sizes=sizes, tagset="conll" if dataset == "conll2003" else "gmb")
    if dataset != "multiconer":
        return splits
    result = {}
    for split, sentences in splits.items():
        converted = []
        for sentence in sentences:
            tags = []
            for tag in sentence.ner:
                fine = None if tag == "O" else _BUILTIN_AS_MULTICONER[tag[2:]]
                tags.append("O" if fine is None else tag[:2] + fine)
            converted.append(Sentence(tokens=sentence.tokens, ner=tags))
        path = write_multiconer(converted, work_dir / f"en_{MULTICONER_SPLIT_NAMES[split]}.conll")
        result[split] = read_multiconer(path, granularity)
    return result


def load_splits(dataset: str, data_path: str | None, data_root: str, smoke: bool, seed: int,
                fractions: Sequence[float] = (0.6, 0.2, 0.2), lang: str = "en", granularity: str = "fine",
                smoke_sizes: tuple[int, int, int] = (600, 200, 200),
                work_dir: Path | None = None) -> tuple[dict[str, list[Sentence]], str]:
    """train/validation/test sentences for `dataset` and a one-line description of the source."""
    if smoke:
        splits = builtin_splits(dataset, seed, smoke_sizes, work_dir or Path("."), granularity)
        written = ", as MultiCoNER files" if dataset == "multiconer" else ""
        tagset = "CoNLL-2003" if dataset == "conll2003" else "GMB"
        return splits, f"built-in template corpus ({tagset} tags{written})"
    if dataset == "gmb":
        path = Path(data_path or Path(data_root) / "ner_dataset.csv")
        if not path.is_file():
            raise DataError(f"{path}: GMB csv not found; pass --data-path PATH to the Kaggle "
                            "'Annotated Corpus for Named Entity Recognition' ner_dataset.csv "
                            "(kaggle.com/datasets/abhinavwalia95/entity-annotated-corpus) or --smoke")
        sentences = read_gmb_csv(path)
        if len(sentences) < 3:
            raise DataError(f"{path}: only {len(sentences)} sentences; too few for a "
                            "train/validation/test split")
        return split_sentences(sentences, fractions, seed), f"GMB {path} (seeded split {list(fractions)})"
    if dataset == "conll2003":
        if data_path:
            return load_conll_dir(data_path), f"CoNLL-2003 files in {data_path}"
        return load_conll2003_hf(), "CoNLL-2003 (eriktks/conll2003, HuggingFace)"
    if dataset == "multiconer":
        directory = Path(data_path or Path(data_root) / "multiconer2")
        splits, note = load_multiconer_dir(directory, lang, granularity, seed)
        return splits, f"MultiCoNER II {lang} {granularity} in {directory}" + (f" ({note})" if note else "")
    raise ValueError(f"unknown dataset {dataset!r}")


# ---- tagging schemes and casing ----


def iob2_to_iobes(tags: Sequence[str]) -> list[str]:
    """IOB2 -> IOBES: a one-token entity is S-X, the last token of a longer one E-X.

    >>> iob2_to_iobes(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "I-LOC"])
    ['B-PER', 'E-PER', 'O', 'S-LOC', 'B-LOC', 'I-LOC', 'E-LOC']
    """
    converted = []
    for index, tag in enumerate(tags):
        following = tags[index + 1] if index + 1 < len(tags) else "O"
        continues = following == "I-" + tag[2:]
        if tag.startswith("B-"):
            converted.append(tag if continues else "S-" + tag[2:])
        elif tag.startswith("I-"):
            converted.append(tag if continues else "E-" + tag[2:])
        else:
            converted.append(tag)
    return converted


def iobes_to_iob2(tags: Sequence[str]) -> list[str]:
    """IOBES -> IOB2 tag by tag: S-X -> B-X, E-X -> I-X, B/I/O unchanged. A predicted sequence
    that is not valid IOBES (an E-X after O) gives one that is not valid IOB2 either (an I-X
    after O), which strict IOB2 scoring does not count as an entity."""
    return ["B-" + tag[2:] if tag.startswith("S-") else "I-" + tag[2:] if tag.startswith("E-") else tag
            for tag in tags]


# Casing classes of a token (Reimers & Gurevych 2017, with "mixed" split off their "other"):
# the lower-cased GloVe vectors cannot tell "Bush" from "bush"; this feature, and the characters, can.
CASING_CLASSES = ("<pad>", "numeric", "mainly_numeric", "lower", "upper", "initial_upper", "mixed",
                  "contains_digit", "other")


def casing_class(token: str) -> int:
    """Index in CASING_CLASSES: numeric (all digits), mainly_numeric (more than half digits),
    lower, upper, initial_upper, mixed (upper-case letters, not first: iPhone), contains_digit,
    other (punctuation and the rest)."""
    digits = sum(char.isdigit() for char in token)
    if token.isdigit():
        name = "numeric"
    elif digits > len(token) / 2:
        name = "mainly_numeric"
    elif token.islower():
        name = "lower"
    elif token.isupper():
        name = "upper"
    elif token[:1].isupper():
        name = "initial_upper"
    elif any(char.isupper() for char in token):
        name = "mixed"
    elif digits:
        name = "contains_digit"
    else:
        name = "other"
    return CASING_CLASSES.index(name)


# ---- vocabularies ----


class Vocab:
    """Symbols <-> ids with <pad> = 0 and <unk> = 1 (unless `specials=()`)."""

    def __init__(self, symbols: Iterable[str] = (), specials: Sequence[str] = (PAD, UNK),
                 lowercase: bool = False):
        self.lowercase = lowercase
        self.itos: list[str] = []
        self.stoi: dict[str, int] = {}
        for symbol in list(specials) + list(symbols):
            self.add(symbol)
        self.unk_id = self.stoi.get(UNK)

    @classmethod
    def build(cls, sequences: Iterable[Iterable[str]], min_freq: int = 1, lowercase: bool = False,
              specials: Sequence[str] = (PAD, UNK)) -> "Vocab":
        """Symbols seen at least `min_freq` times, most frequent first (ties alphabetical)."""
        counts = collections.Counter(s.lower() if lowercase else s for seq in sequences for s in seq)
        kept = sorted((s for s, n in counts.items() if n >= min_freq), key=lambda s: (-counts[s], s))
        return cls(kept, specials, lowercase)

    def normalise(self, symbol: str) -> str:
        return symbol.lower() if self.lowercase else symbol

    def add(self, symbol: str) -> int:
        symbol = self.normalise(symbol)
        if symbol not in self.stoi:
            self.stoi[symbol] = len(self.itos)
            self.itos.append(symbol)
        return self.stoi[symbol]

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, symbol: str) -> bool:
        return self.normalise(symbol) in self.stoi

    def id(self, symbol: str) -> int:
        found = self.stoi.get(self.normalise(symbol), self.unk_id)
        if found is None:
            raise KeyError(symbol)
        return found

    def encode(self, symbols: Iterable[str]) -> list[int]:
        return [self.id(s) for s in symbols]

    def state_dict(self) -> dict:
        return {"itos": self.itos, "lowercase": self.lowercase}

    @classmethod
    def from_state_dict(cls, state: dict) -> "Vocab":
        vocab = cls(specials=(), lowercase=state["lowercase"])
        for symbol in state["itos"]:
            vocab.itos.append(symbol)
            vocab.stoi[symbol] = len(vocab.itos) - 1
        vocab.unk_id = vocab.stoi.get(UNK)
        return vocab


def tag_names(splits: dict[str, list[Sentence]]) -> list[str]:
    """Every tag of every split, "O" first, then sorted by type and B before I. Tags seen only in
    validation/test are included so that the output layer can represent (and miss) them."""
    tags = {tag for sentences in splits.values() for s in sentences for tag in s.ner} - {"O", UNLABELLED_TAG}
    return ["O"] + sorted(tags, key=lambda t: (t[2:], t[0]))


# ---- batches ----


@dataclass
class Batch:
    words: torch.Tensor       # (B, T) word ids, 0 at padding
    tags: torch.Tensor        # (B, T) tag ids, 0 ("O") at padding, UNLABELLED (-1) where unknown
    mask: torch.Tensor        # (B, T) bool, True on real tokens
    chars: torch.Tensor       # (U, W) char ids of the batch's U distinct tokens, 0 at padding
    char_mask: torch.Tensor   # (U, W) bool
    char_index: torch.Tensor  # (B, T) row of `chars` for each token (0 at padding)
    indices: list[int]        # positions of the batch's sentences in the dataset
    casing: torch.Tensor      # (B, T) casing class (CASING_CLASSES) of each token, 0 at padding

    def to(self, device: torch.device) -> "Batch":
        return Batch(*(t.to(device, non_blocking=True) for t in (self.words, self.tags, self.mask, self.chars,
                                                                self.char_mask, self.char_index)),
                     indices=self.indices, casing=self.casing.to(device, non_blocking=True))


class NERDataset:
    """Sentences encoded once with the vocabularies; batches padded to their longest sentence."""

    def __init__(self, sentences: Sequence[Sentence], words: Vocab, chars: Vocab, tags: Sequence[str],
                 max_word_length: int = 30):
        self.sentences = list(sentences)
        empty = next((i for i, s in enumerate(self.sentences) if len(s) == 0), None)
        if empty is not None:
            raise DataError(f"sentence {empty} has no tokens")
        tag_ids = {tag: index for index, tag in enumerate(tags)} | {UNLABELLED_TAG: UNLABELLED}
        self.tag_names = list(tags)
        self.word_ids = [words.encode(s.tokens) for s in self.sentences]
        self.tag_ids = [[tag_ids[t] for t in s.ner] for s in self.sentences]
        self.casing_ids = [[casing_class(token) for token in s.tokens] for s in self.sentences]
        self.chars, self.max_word_length = chars, max_word_length

    def __len__(self) -> int:
        return len(self.sentences)

    def batch(self, indices: Sequence[int]) -> Batch:
        lengths = [len(self.word_ids[i]) for i in indices]
        steps = max(lengths)
        words = torch.zeros(len(indices), steps, dtype=torch.long)
        tags = torch.zeros(len(indices), steps, dtype=torch.long)
        char_index = torch.zeros(len(indices), steps, dtype=torch.long)
        casing = torch.zeros(len(indices), steps, dtype=torch.long)
        distinct: dict[str, int] = {}
        for row, (index, length) in enumerate(zip(indices, lengths)):
            words[row, :length] = torch.tensor(self.word_ids[index])
            tags[row, :length] = torch.tensor(self.tag_ids[index])
            casing[row, :length] = torch.tensor(self.casing_ids[index])
            char_index[row, :length] = torch.tensor(
                [distinct.setdefault(token, len(distinct)) for token in self.sentences[index].tokens])
        # Long tokens (URLs, numbers) keep their first characters only: the char LSTM's cost grows
        # with the longest word of the batch.
        encoded = [self.chars.encode(token[:self.max_word_length]) or [self.chars.unk_id]
                   for token in distinct]
        width = max(len(ids) for ids in encoded)
        chars = torch.zeros(len(encoded), width, dtype=torch.long)
        for row, ids in enumerate(encoded):
            chars[row, :len(ids)] = torch.tensor(ids)
        mask = torch.arange(steps)[None, :] < torch.tensor(lengths)[:, None]
        return Batch(words, tags, mask, chars, chars != 0, char_index, list(indices), casing)

    def batches(self, batch_size: int, shuffle: bool = False, seed: int = 0,
                epoch: int = 0) -> Iterator[Batch]:
        """Batches in order, or shuffled with a permutation that depends only on (seed, epoch),
        so that a resumed run sees the same batches as an uninterrupted one."""
        order = list(range(len(self)))
        if shuffle:
            generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
            order = torch.randperm(len(self), generator=generator).tolist()
        for start in range(0, len(order), batch_size):
            yield self.batch(order[start:start + batch_size])

    def num_batches(self, batch_size: int) -> int:
        return (len(self) + batch_size - 1) // batch_size


def build_vocabularies(splits: dict[str, list[Sentence]], min_freq: int = 1, lowercase: bool = False,
                       extra_words: Iterable[str] = ()) -> tuple[Vocab, Vocab]:
    """Word vocabulary from the training sentences (plus `extra_words`, e.g. words of any split
    that have a pretrained vector) and the character vocabulary of the training sentences."""
    words = Vocab.build((s.tokens for s in splits["train"]), min_freq=min_freq, lowercase=lowercase)
    for word in extra_words:
        words.add(word)
    chars = Vocab.build((token for s in splits["train"] for token in s.tokens))
    return words, chars

