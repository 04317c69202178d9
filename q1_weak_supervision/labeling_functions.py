"""Snorkel labeling functions for CoNLL-2003, at the report's sentence level and at token level.

Labels (ABSTAIN = -1): sentence level 0 = MISC/DATE, 1 = ORG; token level 0 = MISC, 1 = ORG,
2 = PER, 3 = LOC, so `lf_year` and `lf_org_suffix` vote the same number at both levels. A sentence
row has `x.tokens`; a token row has its sentence in `x.tokens` and its index in `x.position`.
`--lf-definition tokens` (default) makes `lf_year` match whole tokens 1900-2099; `report` keeps the
report's regex `\\b(19|20)\\d{2}\\b`, which also fires on dateline dates such as `1996-08-30`.

Every token LF is a function `tokens -> positions it votes on` with one label; `token_lfs()` wraps
them as Snorkel LabelingFunctions and `token_label_matrix()` applies them a sentence at a time
(the same matrix as Snorkel's PandasLFApplier, without a pandas row per token). The gazetteers
come from installed packages (q1_weak_supervision/gazetteers.py); no LF reads a gold label or a
list taken from any split's annotations. What each LF votes on: q1_weak_supervision/README.md.
"""

from __future__ import annotations

import functools
import re
import sys
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from snorkel.labeling import LabelingFunction, PandasLFApplier, labeling_function

from q1_weak_supervision import gazetteers

ABSTAIN = -1
MISC, ORG, PER, LOC = 0, 1, 2, 3
SENTENCE_CLASSES = ("MISC", "ORG")            # label id -> CoNLL entity type
TOKEN_CLASSES = ("MISC", "ORG", "PER", "LOC")  # label id -> CoNLL entity type

YEAR_PATTERN = re.compile(r"\b(19|20)\d{2}\b")  # the report's regex
YEAR_TOKEN = re.compile(r"(19|20)\d{2}")        # a whole token 1900-2099
DATE_TOKEN = re.compile(r"\d{4}-\d{2}-\d{2}")  # a dateline's date, 1996-08-30
INTEGER = re.compile(r"\d+")
INITIAL = re.compile(r"[A-Z]\.")               # J. (of J. Smith)
DOTTED_ACRONYM = re.compile(r"([A-Z]\.){2,4}")  # U.N.
NUMBER = re.compile(r"\d*\.?\d+|\d+/\d+")       # 72, .545, 1/2 (standings columns)
ROMAN_NUMERAL = re.compile(r"[IVXLC]+")
ORG_SUFFIXES = frozenset({"Inc.", "Corp.", "Ltd."})  # the report's lf_org_suffix
PERSON_TITLES = frozenset(gazetteers.PERSON_TITLES)
NATIONALITIES = frozenset(gazetteers.NATIONALITIES)
MONTHS_AND_DAYS = frozenset(gazetteers.MONTHS_AND_DAYS)
ORG_WORDS = frozenset(gazetteers.ORG_WORDS)
ORG_NAMES = frozenset(gazetteers.ORG_NAMES)
MISC_EVENT_WORDS = frozenset(gazetteers.MISC_EVENT_WORDS)
NOT_NAMES = frozenset(gazetteers.NOT_NAMES)
SPEECH_VERBS = frozenset({"said", "says", "told", "added", "wrote", "asked", "declared"})
# Upper-case tokens that are not organisations.
NOT_ACRONYMS = frozenset({"TV", "CEO", "GMT", "AM", "PM", "OK", "EST", "EDT", "BST", "CET", "NOTE",
                          "ET", "DM", "BFR", "FFR", "STG", "CDT", "AD", "BC", "ID", "MP", "MPS",
                          "PCT", "VS", "IT", "USD", "YR", "PR", "CD", "LP", "DJ", "HIV", "AIDS"})
LF_DEFINITIONS = ("report", "tokens")
# Token LFs left out of the aggregation (label model, majority vote, the weakly labelled files):
# the report's two. `lf_year` votes on dates, which CoNLL-2003 does not annotate as entities;
# `lf_org_suffix` is a subset of `lf_company_suffix`, and a copy of one LF's votes would count twice.
NOT_AGGREGATED = ("lf_year", "lf_org_suffix")


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


def is_title_word(token: str) -> bool:
    """A capitalised word of letters (and inner `-` or `'`) with a lower-case letter: `Smith`,
    `McDonald`, `Jean-Pierre`; not `IBM`, `U.S.` or `1996`."""
    return (is_capitalised(token) and any(c.islower() for c in token)
            and token.replace("-", "").replace("'", "").isalpha())


def is_headline(tokens: Sequence[str]) -> bool:
    """Most words are upper case (`SOCCER - JAPAN GET LUCKY WIN`): capitalisation says nothing."""
    words = [t for t in tokens if sum(c.isalpha() for c in t) >= 2]
    upper = sum(t.isupper() for t in words)
    return upper >= 2 and upper >= 0.6 * len(words)


def capitalised_run(tokens: Sequence[str], start: int) -> range:
    """Positions start, start+1, ... while the tokens are capitalised (empty if tokens[start]
    is not)."""
    end = start
    while end < len(tokens) and is_capitalised(tokens[end]):
        end += 1
    return range(start, end)


def run_around(tokens: Sequence[str], position: int) -> range:
    """The maximal run of capitalised tokens holding `position` (empty if it is not capitalised)."""
    if not is_capitalised(tokens[position]):
        return range(position, position)
    start = position
    while start > 0 and is_capitalised(tokens[start - 1]):
        start -= 1
    return capitalised_run(tokens, start)


class PhraseMatcher:
    """Finds gazetteer phrases in a sentence, longest first, as written and, with `upper`, also in
    upper case (`JAPAN`)."""

    def __init__(self, phrases, upper: bool = True):
        self.by_first: dict[str, list[tuple[str, ...]]] = {}
        for phrase in phrases:
            for form in {phrase, tuple(word.upper() for word in phrase) if upper else phrase}:
                self.by_first.setdefault(form[0], []).append(form)
        for candidates in self.by_first.values():
            candidates.sort(key=len, reverse=True)

    def spans(self, tokens: Sequence[str]) -> list[range]:
        """Non-overlapping matches, left to right, the longest at each start."""
        found, i = [], 0
        while i < len(tokens):
            for phrase in self.by_first.get(tokens[i], ()):
                if tuple(tokens[i:i + len(phrase)]) == phrase:
                    found.append(range(i, i + len(phrase)))
                    i += len(phrase)
                    break
            else:
                i += 1
        return found


@functools.cache
def matcher(gazetteer: str) -> PhraseMatcher:
    """The matcher of gazetteers.<gazetteer>() (built once; the lists take a second to load)."""
    # Upper-case city names are often words in headlines (SURPRISE, Arizona); countries are not.
    return PhraseMatcher(getattr(gazetteers, gazetteer)(), upper=gazetteer != "cities")


def is_place(tokens: Sequence[str], gazetteers_used=("countries", "cities")) -> bool:
    """The tokens are exactly one country (or city) of the gazetteers."""
    return any(len(span) == len(tokens) for name in gazetteers_used
               for span in matcher(name).spans(tuple(tokens)))


def mentions_known_word(tokens: Sequence[str]) -> bool:
    """Any token is an organisation word, an event word, a nationality, a title, a month, a
    weekday or one of NOT_NAMES, or the tokens hold a country or city: not a bare person name."""
    known = (ORG_WORDS | ORG_NAMES | MISC_EVENT_WORDS | NATIONALITIES | PERSON_TITLES | MONTHS_AND_DAYS
             | NOT_NAMES)
    if any(token in known or token.lower() in gazetteers.company_suffixes() for token in tokens):
        return True
    return any(matcher(name).spans(tokens) for name in ("countries", "cities"))


# ---- positions: one function per token LF, tokens -> the positions it votes on --------------
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
def company_suffix_positions(tokens: tuple[str, ...]) -> frozenset[int]:
    """A cleanco legal form (`Inc`, `plc`, `AG`, `S.A.`, written capitalised) after a capitalised
    run, with that run (`&` may sit inside it: `Procter & Gamble Co`). Not in headlines, where
    `AS` or `CO` are words."""
    if is_headline(tokens):
        return frozenset()
    suffixes = gazetteers.company_suffixes()
    positions = set()
    for i, token in enumerate(tokens):
        if i == 0 or not is_capitalised(token) or token.lower() not in suffixes:
            continue
        j = i - 1
        while j >= 0 and (is_capitalised(tokens[j]) or (tokens[j] == "&" and j > 0
                                                          and is_capitalised(tokens[j - 1]))):
            j -= 1
        if j < i - 1:
            positions.update(range(j + 1, i + 1))
    return frozenset(positions)


@functools.lru_cache(maxsize=4096)
def person_title_positions(tokens: tuple[str, ...]) -> frozenset[int]:
    """The capitalised run right after a title (`Mr. John Smith` -> John, Smith), titles in the
    run left out; nothing when the run holds an organisation word (`General Motors`)."""
    positions = set()
    for i, token in enumerate(tokens[:-1]):
        if token in PERSON_TITLES:
            run = [j for j in capitalised_run(tokens, i + 1) if tokens[j] not in PERSON_TITLES]
            if run and not any(tokens[j] in ORG_WORDS | NATIONALITIES for j in run):
                positions.update(run)
    return frozenset(positions)


def _places(tokens: tuple[str, ...], gazetteer: str) -> frozenset[int]:
    """Gazetteer matches that are a whole capitalised run (`Japan` in `in Japan`, not in
    `Japan Airlines`) and not the `of` part of a name (`Bank of Japan`); in headlines every
    match."""
    headline = is_headline(tokens)
    positions = set()
    for span in matcher(gazetteer).spans(tokens):
        before = span.start == 0 or not is_capitalised(tokens[span.start - 1])
        after = span.stop == len(tokens) or not is_capitalised(tokens[span.stop])
        of_name = span.start >= 2 and tokens[span.start - 1] == "of" and is_capitalised(
            tokens[span.start - 2])
        if headline or (before and after and not of_name):
            positions.update(span)
    return frozenset(positions)


@functools.lru_cache(maxsize=4096)
def country_positions(tokens: tuple[str, ...]) -> frozenset[int]:
    """GeoNames countries and continents and common aliases (`U.S.`, `Britain`)."""
    return _places(tokens, "countries")


@functools.lru_cache(maxsize=4096)
def city_positions(tokens: tuple[str, ...]) -> frozenset[int]:
    """GeoNames cities of 100,000+ people and US states, except teams in a results line (`Leeds 2
    Ipswich 0`: clubs are ORG)."""
    return _places(tokens, "cities") - sports_result_positions(tokens)


def location_positions(tokens: tuple[str, ...]) -> frozenset[int]:
    """Countries and cities together."""
    return country_positions(tokens) | city_positions(tokens)


@functools.lru_cache(maxsize=4096)
def dateline_positions(tokens: tuple[str, ...]) -> frozenset[int]:
    """The place of a Reuters dateline: a sentence `LONDON 1996-08-30` or `NEW YORK 1996-08-22`,
    a capitalised run and a date."""
    if len(tokens) >= 2 and DATE_TOKEN.fullmatch(tokens[-1]):
        run = capitalised_run(tokens, 0)
        if run.stop == len(tokens) - 1:
            return frozenset(run)
    return frozenset()


@functools.lru_cache(maxsize=4096)
def in_at_positions(tokens: tuple[str, ...]) -> frozenset[int]:
    """The capitalised run right after a lower-case `in`/`at`, unless it starts with a month or
    a weekday (`in January`)."""
    positions = set()
    for i, token in enumerate(tokens[:-1]):
        if token in ("in", "at") and tokens[i + 1] not in MONTHS_AND_DAYS:
            positions.update(capitalised_run(tokens, i + 1))
    return frozenset(positions)


@functools.lru_cache(maxsize=4096)
def nationality_positions(tokens: tuple[str, ...]) -> frozenset[int]:
    """Nationality adjectives, demonyms and religions (`German`, `South Korean`, `Muslims`), not
    inside a country's name (`Czech Republic`)."""
    found = frozenset(p for span in matcher("nationalities").spans(tokens) for p in span)
    return found - country_positions(tokens)


@functools.lru_cache(maxsize=4096)
def misc_event_positions(tokens: tuple[str, ...]) -> frozenset[int]:
    """A capitalised run of two or more tokens that ends in an event word (`World Cup`,
    `U.S. Open`, `Gulf War`); in a headline the event word and the word before it (`WORLD CUP`)."""
    if is_headline(tokens):
        upper_words = {word.upper() for word in MISC_EVENT_WORDS}
        return frozenset(p for i, token in enumerate(tokens) if i > 0 and token in upper_words
                         and tokens[i - 1].isalpha() and tokens[i - 1].isupper() for p in (i - 1, i))
    positions, i = set(), 0
    while i < len(tokens):
        run = capitalised_run(tokens, i)
        if len(run) >= 2 and tokens[run.stop - 1] in MISC_EVENT_WORDS and tokens[run.start] != "The":
            positions.update(run)
        i = max(run.stop, i + 1)
    return frozenset(positions)


@functools.lru_cache(maxsize=4096)
def given_name_positions(tokens: tuple[str, ...]) -> frozenset[int]:
    """A census given name followed by one or two capitalised words that are no known word
    (`Bill Clinton`, `John van`... not: `Grant Thornton Group`)."""
    if is_headline(tokens):
        return frozenset()
    names, positions = gazetteers.given_names(), set()
    for i, token in enumerate(tokens[:-1]):
        if token in names:
            run = [j for j in capitalised_run(tokens, i + 1)][:2]
            if run and all(is_title_word(tokens[j]) for j in run) and not mentions_known_word(
                    [tokens[j] for j in run]) and not (run[-1] + 1 < len(tokens)
                                                       and is_capitalised(tokens[run[-1] + 1])):
                positions.update([i, *run])
    return frozenset(positions)


@functools.lru_cache(maxsize=4096)
def surname_positions(tokens: tuple[str, ...]) -> frozenset[int]:
    """A census surname standing alone inside a sentence (`Clinton said`, `beat Collins`): not
    first, no capitalised word beside it, no known word."""
    if is_headline(tokens):
        return frozenset()
    found = gazetteers.surnames()
    return frozenset(i for i in range(1, len(tokens)) if tokens[i] in found
                     and not is_capitalised(tokens[i - 1]) and tokens[i - 1] not in (".", "\"", "-")
                     and (i + 1 == len(tokens) or not is_capitalised(tokens[i + 1]))
                     and not mentions_known_word([tokens[i]]))


@functools.lru_cache(maxsize=4096)
def initial_positions(tokens: tuple[str, ...]) -> frozenset[int]:
    """An initial and a surname (`J. Smith`, sports results' usual form)."""
    positions = set()
    for i, token in enumerate(tokens[:-1]):
        if INITIAL.fullmatch(token) and is_title_word(tokens[i + 1]) and not mentions_known_word(
                [tokens[i + 1]]):
            positions.update((i, i + 1))
    return frozenset(positions)


@functools.lru_cache(maxsize=4096)
def said_positions(tokens: tuple[str, ...]) -> frozenset[int]:
    """Two or three capitalised words right before `said`/`told`/... (`Boris Yeltsin said`),
    none of them a known word (`Foreign Ministry said` is not a person)."""
    positions = set()
    for i, token in enumerate(tokens):
        if token in SPEECH_VERBS and i >= 2:
            start = i
            while start > 0 and is_title_word(tokens[start - 1]):
                start -= 1
            if 2 <= i - start <= 3 and not mentions_known_word(tokens[start:i]) and (
                    start == 0 or tokens[start - 1] != "&"):
                positions.update(range(start, i))
    return frozenset(positions)


@functools.lru_cache(maxsize=4096)
def org_keyword_positions(tokens: tuple[str, ...]) -> frozenset[int]:
    """A capitalised run of two or more words holding an organisation word (`World Bank`,
    `Foreign Ministry`, `Manchester United`) or any run holding a one-word organisation name
    (`Reuters`, `Fed`), continued by `of` + a capitalised run (`Bank of Japan`); not a place
    (`United States`)."""
    if is_headline(tokens):
        return frozenset()
    positions, i = set(), 0
    while i < len(tokens):
        run = capitalised_run(tokens, i)
        words = [tokens[j] for j in run]
        span = [j for j in run if not (j == run.start and tokens[j] == "The")]
        if (run and run.stop + 1 < len(tokens) and tokens[run.stop] == "of"
                and is_capitalised(tokens[run.stop + 1])):
            span += [run.stop, *capitalised_run(tokens, run.stop + 1)]
        if span and (any(word in ORG_NAMES for word in words)
                     or len(span) >= 2 and any(word in ORG_WORDS for word in words)) and not is_place(words):
            positions.update(span)
            i = span[-1] + 1
        else:
            i = max(run.stop, i + 1)
    return frozenset(positions)


def _run_then_number(tokens: tuple[str, ...], start: int) -> tuple[range, int] | None:
    """A capitalised run from `start` (allowing `St.`-like tokens) and the position of the integer
    right after it, or None."""
    run = capitalised_run(tokens, start)
    if run and run.stop < len(tokens) and INTEGER.fullmatch(tokens[run.stop]):
        return run, run.stop
    return None


@functools.lru_cache(maxsize=4096)
def sports_result_positions(tokens: tuple[str, ...]) -> frozenset[int]:
    """Team names in a result line `Leeds 2 Ipswich 0` or a standings line
    `Barcelona 3 2 1 0 5 2 7`; teams that are countries (`Japan 2 Syria 1`) are left to the
    country LF (CoNLL-2003 tags national teams LOC)."""
    first = _run_then_number(tokens, 0)
    if first is None:
        return frozenset()
    run, number = first
    teams = []
    second = _run_then_number(tokens, number + 1) if number + 1 < len(tokens) else None
    if second is not None and second[1] == len(tokens) - 1 or (
            second is not None and not any(is_capitalised(t) for t in tokens[second[1] + 1:])):
        teams = [run, second[0]]
    elif len(tokens) - number >= 3 and all(NUMBER.fullmatch(t) or t == "-" for t in tokens[number:]):
        teams = [run]  # a standings row: wins, losses, percentages
    positions = set()
    for team in teams:
        if not is_place(tokens[team.start:team.stop], ("countries",)):
            positions.update(team)
    return frozenset(positions)


@functools.lru_cache(maxsize=4096)
def person_country_positions(tokens: tuple[str, ...]) -> frozenset[int]:
    """One to three capitalised words before `( <country or nationality> )`, the way results
    list athletes: `Michael Johnson ( U.S. ) 19.32`."""
    positions = set()
    for i, token in enumerate(tokens):
        if token != "(" or i == 0:
            continue
        close = next((k for k in range(i + 2, min(len(tokens), i + 6)) if tokens[k] == ")"), None)
        if close is None:
            continue
        inside = tokens[i + 1:close]
        if not (is_place(inside) or tuple(inside) in gazetteers.nationalities()):
            continue
        start = i
        while start > 0 and i - start < 3 and is_title_word(tokens[start - 1]):
            start -= 1
        if start < i and not mentions_known_word(tokens[start:i]):
            positions.update(range(start, i))
    return frozenset(positions)


@functools.lru_cache(maxsize=4096)
def acronym_positions(tokens: tuple[str, ...]) -> frozenset[int]:
    """An upper-case word of 2-5 letters outside headlines (`NATO`, `IBM`, `EU`), or of initials
    (`U.N.`), that is no place, nationality, Roman numeral or common abbreviation (`CEO`, `GMT`)."""
    if is_headline(tokens):
        return frozenset()
    places = location_positions(tokens) | nationality_positions(tokens)
    return frozenset(i for i, token in enumerate(tokens)
                     if (2 <= len(token) <= 5 and token.isalpha() and token.isupper()
                         or DOTTED_ACRONYM.fullmatch(token))
                     and i not in places and token not in NOT_ACRONYMS
                     and not ROMAN_NUMERAL.fullmatch(token) and not is_place([token]))


@functools.lru_cache(maxsize=4096)
def capitalised_pair_positions(tokens: tuple[str, ...]) -> frozenset[int]:
    """Exactly two capitalised words inside a sentence (not at its start, lower-case or
    punctuation around them), neither a known word: the usual shape of a person's name."""
    if is_headline(tokens):
        return frozenset()
    positions = set()
    for i in range(1, len(tokens) - 1):
        pair = tokens[i:i + 2]
        if (all(is_title_word(t) and len(t) >= 2 for t in pair) and not is_capitalised(tokens[i - 1])
                and tokens[i - 1] not in (".", "\"", "-", "&")
                and (i + 2 == len(tokens) or not is_capitalised(tokens[i + 2]))
                and not mentions_known_word(pair)):
            positions.update((i, i + 1))
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


def token_lf(name: str, label: int, positions: Callable[[tuple[str, ...]], frozenset[int]]
             ) -> LabelingFunction:
    """A Snorkel LF over token rows that votes `label` where `positions(x.tokens)` holds
    `x.position`; `.label` and `.positions` let `token_label_matrix` apply it per sentence."""
    lf = LabelingFunction(name=name, f=lambda x: label if x.position in positions(tuple(x.tokens))
                          else ABSTAIN)
    lf.label, lf.positions = label, positions
    return lf


def token_lfs(definition: str = "tokens") -> list[LabelingFunction]:
    """All token-level LFs: the report's two, then the ones of this repository (the README's
    table). `aggregation_lfs` drops NOT_AGGREGATED."""
    if definition not in LF_DEFINITIONS:
        raise ValueError(f"unknown LF definition {definition!r}; choose one of {LF_DEFINITIONS}")

    def year_positions(tokens):
        return frozenset(i for i, token in enumerate(tokens) if is_year_token(token, definition))

    return [
        token_lf("lf_year", MISC, year_positions),
        token_lf("lf_org_suffix", ORG, org_suffix_positions),
        token_lf("lf_country", LOC, country_positions),
        token_lf("lf_city", LOC, city_positions),
        token_lf("lf_dateline", LOC, dateline_positions),
        token_lf("lf_in_at_capitalised", LOC, in_at_positions),
        token_lf("lf_nationality", MISC, nationality_positions),
        token_lf("lf_misc_event", MISC, misc_event_positions),
        token_lf("lf_person_title", PER, person_title_positions),
        token_lf("lf_given_name", PER, given_name_positions),
        token_lf("lf_initial_surname", PER, initial_positions),
        token_lf("lf_surname", PER, surname_positions),
        token_lf("lf_person_said", PER, said_positions),
        token_lf("lf_person_country", PER, person_country_positions),
        token_lf("lf_capitalised_pair", PER, capitalised_pair_positions),
        token_lf("lf_company_suffix", ORG, company_suffix_positions),
        token_lf("lf_org_keyword", ORG, org_keyword_positions),
        token_lf("lf_sports_team", ORG, sports_result_positions),
        token_lf("lf_acronym", ORG, acronym_positions),
    ]


def aggregation_lfs(definition: str = "tokens") -> list[LabelingFunction]:
    """The token LFs whose votes are aggregated into labels (all but NOT_AGGREGATED)."""
    return [lf for lf in token_lfs(definition) if lf.name not in NOT_AGGREGATED]


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


def token_label_matrix(sentences, lfs: list[LabelingFunction]) -> np.ndarray:
    """The (tokens, LFs) label matrix of token LFs over the sentences' tokens in order: what
    PandasLFApplier gives on `token_frame(sentences)`, one positions call per sentence and LF."""
    lengths = [len(s.tokens) for s in sentences]
    L = np.full((sum(lengths), len(lfs)), ABSTAIN, dtype=int)
    offset = 0
    for sentence, length in zip(sentences, lengths):
        tokens = tuple(sentence.tokens)
        for j, lf in enumerate(lfs):
            for position in lf.positions(tokens):
                L[offset + position, j] = lf.label
        offset += length
    return L
