"""Snorkel labeling functions for CoNLL-2003, at the report's sentence level and at token level.

Labels (ABSTAIN = -1): sentence level 0 = MISC/DATE, 1 = ORG; token level 0 = MISC, 1 = ORG,
2 = PER, 3 = LOC, so `lf_year` and `lf_org_suffix` vote the same number at both levels. A sentence
row has `x.tokens`; a token row has its sentence in `x.tokens` and its index in `x.position`.
`--lf-definition tokens` (default) makes `lf_year` match whole tokens 1900-2099; `report` keeps the
report's regex `\\b(19|20)\\d{2}\\b`, which also fires on dateline dates such as `1996-08-30`.
What each LF votes on: the table in q1_weak_supervision/README.md.
"""

from __future__ import annotations

import functools
import re
import sys
from typing import Sequence

import numpy as np
import pandas as pd
from snorkel.labeling import LabelingFunction, PandasLFApplier, labeling_function

ABSTAIN = -1
MISC, ORG, PER, LOC = 0, 1, 2, 3
SENTENCE_CLASSES = ("MISC", "ORG")            # label id -> CoNLL entity type
TOKEN_CLASSES = ("MISC", "ORG", "PER", "LOC")  # label id -> CoNLL entity type

YEAR_PATTERN = re.compile(r"\b(19|20)\d{2}\b")  # the report's regex
YEAR_TOKEN = re.compile(r"(19|20)\d{2}")        # a whole token 1900-2099
ORG_SUFFIXES = frozenset({"Inc.", "Corp.", "Ltd."})
PERSON_TITLES = frozenset({
    "Mr", "Mr.", "Mrs", "Mrs.", "Ms", "Ms.", "Dr", "Dr.", "Prof", "Prof.", "Sir", "Lady",
    "President", "Minister", "Premier", "Chancellor", "Senator", "Governor", "Gen.", "Judge",
    "Pope", "coach", "striker", "midfielder", "spokesman", "spokeswoman", "chairman", "captain",
})
LOCATIONS = (
    "U.S.", "United States", "Britain", "Great Britain", "England", "Scotland", "Wales",
    "Ireland", "France", "Germany", "Italy", "Spain", "Portugal", "Netherlands", "Belgium",
    "Switzerland", "Austria", "Sweden", "Norway", "Denmark", "Finland", "Poland", "Russia",
    "Ukraine", "Turkey", "Greece", "Israel", "Iraq", "Iran", "Egypt", "Syria", "Lebanon",
    "Jordan", "China", "Japan", "India", "Pakistan", "Australia", "New Zealand", "Canada",
    "Mexico", "Brazil", "Argentina", "South Africa", "Nigeria", "Kenya", "Bosnia", "Serbia",
    "Croatia", "Chechnya", "Hong Kong", "Taiwan", "Indonesia", "Europe", "Asia", "Africa",
    "London", "Paris", "Berlin", "Bonn", "Frankfurt", "Rome", "Madrid", "Moscow", "Washington",
    "New York", "Tokyo", "Beijing", "Jerusalem", "Baghdad", "Sydney", "Brussels", "Amsterdam",
)
NATIONALITIES = frozenset({
    "American", "British", "English", "Scottish", "Welsh", "Irish", "French", "German",
    "Italian", "Spanish", "Portuguese", "Dutch", "Belgian", "Swiss", "Austrian", "Swedish",
    "Norwegian", "Danish", "Finnish", "Polish", "Czech", "Hungarian", "Russian", "Ukrainian",
    "Turkish", "Greek", "Israeli", "Palestinian", "Arab", "Iraqi", "Iranian", "Egyptian",
    "Syrian", "Lebanese", "Chinese", "Japanese", "Korean", "Indian", "Pakistani", "Australian",
    "Canadian", "Mexican", "Brazilian", "Argentine", "African", "Nigerian", "Kenyan", "European",
    "Asian", "Bosnian", "Serb", "Serbian", "Croat", "Croatian", "Muslim", "Kurdish", "Chechen",
})
MONTHS_AND_DAYS = frozenset({
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
    "Saturday", "Sunday", "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct",
    "Nov", "Dec",
})
LF_DEFINITIONS = ("report", "tokens")


# ---- token tests (plain functions: the LFs below are thin wrappers, the tests call both) ----
def is_year_token(token: str, definition: str = "tokens") -> bool:
    """`tokens`: the whole token is a year 1900-2099. `report`: the report's regex finds a
    1900-2099 number between word boundaries anywhere in the token (`1996-08-30` fires)."""
    if definition == "report":
        return YEAR_PATTERN.search(token) is not None
    if definition == "tokens":
        return YEAR_TOKEN.fullmatch(token) is not None
    raise ValueError(f"unknown LF definition {definition!r}; choose one of {LF_DEFINITIONS}")


def sentence_has_year(tokens: Sequence[str], definition: str = "tokens") -> bool:
    """The report searched its regex in `" ".join(tokens)`; no match can cross a space, so
    that equals searching token by token, which is what `report` does here too."""
    if definition == "report":
        return YEAR_PATTERN.search(" ".join(tokens)) is not None
    return any(is_year_token(token, definition) for token in tokens)


def is_capitalised(token: str) -> bool:
    """Starts with an upper-case letter (`Microsoft`, `U.S.`, `IBM`)."""
    return token[:1].isupper()


def capitalised_run(tokens: Sequence[str], start: int) -> range:
    """Positions start, start+1, ... while the tokens are capitalised (empty if tokens[start]
    is not)."""
    end = start
    while end < len(tokens) and is_capitalised(tokens[end]):
        end += 1
    return range(start, end)


@functools.lru_cache(maxsize=4096)
def org_suffix_positions(tokens: tuple[str, ...]) -> frozenset[int]:
    """Each `Inc.`/`Corp.`/`Ltd.` token and the run of capitalised tokens right before it."""
    positions = set()
    for i, token in enumerate(tokens):
        if token in ORG_SUFFIXES:
            positions.add(i)
            j = i - 1
            while j >= 0 and is_capitalised(tokens[j]) and tokens[j] not in ORG_SUFFIXES:
                positions.add(j)
                j -= 1
    return frozenset(positions)


@functools.lru_cache(maxsize=4096)
def person_title_positions(tokens: tuple[str, ...]) -> frozenset[int]:
    """The capitalised run right after a title (`Mr. John Smith` -> John, Smith)."""
    positions = set()
    for i, token in enumerate(tokens[:-1]):
        if token in PERSON_TITLES:
            positions.update(j for j in capitalised_run(tokens, i + 1)
                             if tokens[j] not in PERSON_TITLES)
    return frozenset(positions)


_LOCATION_PHRASES = sorted((tuple(name.split()) for name in LOCATIONS), key=len, reverse=True)


@functools.lru_cache(maxsize=4096)
def location_positions(tokens: tuple[str, ...]) -> frozenset[int]:
    """Every token of a gazetteer phrase found in the sentence (longest phrases first)."""
    positions = set()
    for phrase in _LOCATION_PHRASES:
        width = len(phrase)
        for i in range(len(tokens) - width + 1):
            if tokens[i:i + width] == phrase:
                positions.update(range(i, i + width))
    return frozenset(positions)


@functools.lru_cache(maxsize=4096)
def in_at_positions(tokens: tuple[str, ...]) -> frozenset[int]:
    """The capitalised run right after a lower-case `in`/`at`, unless it starts with a month or
    a weekday (`in January`)."""
    positions = set()
    for i, token in enumerate(tokens[:-1]):
        if token in ("in", "at") and tokens[i + 1] not in MONTHS_AND_DAYS:
            positions.update(capitalised_run(tokens, i + 1))
    return frozenset(positions)


# ---- labeling functions ---------------------------------------------------------------------
def sentence_lfs(definition: str = "tokens") -> list[LabelingFunction]:
    """The report's two LFs over sentence rows (`x.tokens`), with the chosen year definition."""
    if definition not in LF_DEFINITIONS:
        raise ValueError(f"unknown LF definition {definition!r}; choose one of {LF_DEFINITIONS}")

    @labeling_function(name="lf_year")
    def lf_year(x):
        return MISC if sentence_has_year(x.tokens, definition) else ABSTAIN

    @labeling_function(name="lf_org_suffix")
    def lf_org_suffix(x):
        return ORG if any(token in ORG_SUFFIXES for token in x.tokens) else ABSTAIN

    return [lf_year, lf_org_suffix]


def token_lfs(definition: str = "tokens") -> list[LabelingFunction]:
    """All token-level LFs over token rows (`x.tokens` the sentence tuple, `x.position` the
    position): the report's two, then four of this repository's design."""
    if definition not in LF_DEFINITIONS:
        raise ValueError(f"unknown LF definition {definition!r}; choose one of {LF_DEFINITIONS}")

    @labeling_function(name="lf_year")
    def lf_year(x):
        return MISC if is_year_token(x.tokens[x.position], definition) else ABSTAIN

    @labeling_function(name="lf_org_suffix")
    def lf_org_suffix(x):
        return ORG if x.position in org_suffix_positions(x.tokens) else ABSTAIN

    @labeling_function(name="lf_person_title")
    def lf_person_title(x):
        return PER if x.position in person_title_positions(x.tokens) else ABSTAIN

    @labeling_function(name="lf_location_gazetteer")
    def lf_location_gazetteer(x):
        return LOC if x.position in location_positions(x.tokens) else ABSTAIN

    @labeling_function(name="lf_nationality")
    def lf_nationality(x):
        return MISC if x.tokens[x.position] in NATIONALITIES else ABSTAIN

    @labeling_function(name="lf_in_at_capitalised")
    def lf_in_at_capitalised(x):
        return LOC if x.position in in_at_positions(x.tokens) else ABSTAIN

    return [lf_year, lf_org_suffix, lf_person_title, lf_location_gazetteer, lf_nationality,
            lf_in_at_capitalised]


# ---- data frames, gold labels and the label matrix -------------------------------------------
def entity_type(tag: str) -> str | None:
    """`B-ORG`/`I-ORG` -> `ORG`; `O` -> None."""
    return None if tag == "O" else tag.split("-", 1)[1]


def sentence_frame(sentences) -> pd.DataFrame:
    """One row per sentence: `tokens` (tuple), `text` (space-joined), `types` (frozenset of the
    gold entity types in it)."""
    return pd.DataFrame({
        "tokens": [tuple(s.tokens) for s in sentences],
        "text": [" ".join(s.tokens) for s in sentences],
        "types": [frozenset(t for t in map(entity_type, s.ner) if t) for s in sentences],
    })


def token_frame(sentences) -> pd.DataFrame:
    """One row per token: `tokens` (its sentence, a tuple shared by the sentence's rows),
    `position`, `token`, `sentence` (sentence number) and `gold` (the gold entity type, `O` for
    none)."""
    rows = {"tokens": [], "position": [], "token": [], "sentence": [], "gold": []}
    for number, sentence in enumerate(sentences):
        tokens = tuple(sentence.tokens)
        for index, (token, tag) in enumerate(zip(tokens, sentence.ner)):
            rows["tokens"].append(tokens)
            rows["position"].append(index)
            rows["token"].append(token)
            rows["sentence"].append(number)
            rows["gold"].append(entity_type(tag) or "O")
    return pd.DataFrame(rows)


def sentence_gold_labels(frame: pd.DataFrame) -> np.ndarray:
    """One gold label per sentence for Snorkel's `lf_summary(Y=...)`, which needs exactly one:
    ORG (1) if the sentence holds an ORG entity, else MISC (0) if it holds a MISC entity, else
    -1. A sentence with both types therefore counts a MISC vote as wrong in Snorkel's table;
    this module's own accuracy (`vote_correctness_sentence`) has no such problem."""
    return np.array([ORG if "ORG" in types else MISC if "MISC" in types else ABSTAIN
                     for types in frame["types"]], dtype=int)


def token_gold_labels(frame: pd.DataFrame) -> np.ndarray:
    """The gold entity type of every token as a token-level label id, -1 for `O`."""
    index = {name: i for i, name in enumerate(TOKEN_CLASSES)}
    return np.array([index.get(g, ABSTAIN) for g in frame["gold"]], dtype=int)


def apply_lfs(frame: pd.DataFrame, lfs: list[LabelingFunction],
              progress_bar: bool | None = None) -> np.ndarray:
    """The (rows, LFs) label matrix from Snorkel's `PandasLFApplier` (tqdm bar on a terminal)."""
    if progress_bar is None:
        progress_bar = sys.stderr.isatty()
    if len(frame) == 0:
        return np.full((0, len(lfs)), ABSTAIN, dtype=int)
    return PandasLFApplier(lfs=lfs).apply(frame, progress_bar=progress_bar)
