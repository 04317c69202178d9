"""Q1 labeling functions, LF statistics and aggregation, checked against hand counts and against
Snorkel's own LFAnalysis and PandasLFApplier; every token LF on hand-made sentences where it must
vote and where it must abstain."""

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from snorkel.labeling import LFAnalysis, PandasLFApplier

from common.data.conll import Sentence
from q1_weak_supervision.aggregate import (label_distribution, label_model_vote, majority_vote,
                                           sentence_scores, token_scores, votes_to_iob2)
from q1_weak_supervision.analyze_lfs import (lf_statistics, vote_correctness_sentence,
                                             vote_correctness_token)
from q1_weak_supervision.labeling_functions import (NOT_AGGREGATED, TOKEN_CLASSES, aggregation_lfs,
                                                    apply_lfs, in_at_positions, is_headline,
                                                    is_year_token, location_positions,
                                                    org_suffix_positions, person_title_positions,
                                                    sentence_frame, sentence_gold_labels,
                                                    sentence_lfs, token_frame, token_gold_labels,
                                                    token_label_matrix, token_lfs)


def sentence(text: str, tags: str) -> Sentence:
    return Sentence(tokens=text.split(), ner=tags.split())


# A tiny corpus whose LF votes are counted by hand in the tests below.
CORPUS = [
    sentence("LONDON 1996-08-30", "B-LOC O"),                                        # s0
    sentence("Acme Corp. was founded in 1990 .", "B-ORG I-ORG O O O O O"),           # s1
    sentence("Globex Inc. rose .", "B-ORG I-ORG O O"),                               # s2
    sentence("The 1899 and 2100 figures , Inc .", "O O O O O O O O"),                # s3
    sentence("German exports rose in 2099 .", "B-MISC O O O O O"),                   # s4
    sentence("Peter Blackburn", "B-PER I-PER"),                                      # s5
]


def sentence_row(text):
    return SimpleNamespace(tokens=tuple(text.split()))


@pytest.mark.parametrize("token, tokens_def, report_def", [
    ("1899", False, False), ("1900", True, True), ("2099", True, True), ("2100", False, False),
    ("1996", True, True),
    ("1996-08-30", False, True),   # the report's regex finds 1996 between word boundaries
    ("19960", False, False), ("(1996)", False, True), ("A1996", False, False),
])
def test_year_definitions(token, tokens_def, report_def):
    assert is_year_token(token, "tokens") is tokens_def
    assert is_year_token(token, "report") is report_def


@pytest.mark.parametrize("definition", ["tokens", "report"])
def test_sentence_lfs_on_hand_written_sentences(definition):
    lf_year, lf_org_suffix = sentence_lfs(definition)
    assert lf_year(sentence_row("Sales fell in 1899 .")) == -1
    assert lf_year(sentence_row("Sales fell in 1900 .")) == 0
    assert lf_year(sentence_row("Sales will fall in 2099 .")) == 0
    assert lf_year(sentence_row("Sales will fall in 2100 .")) == -1
    assert lf_year(sentence_row("LONDON 1996-08-30")) == (0 if definition == "report" else -1)
    assert lf_org_suffix(sentence_row("Acme Inc. said")) == 1
    assert lf_org_suffix(sentence_row("Acme Inc said")) == -1
    assert lf_org_suffix(sentence_row("Acme Corp. and Initech Ltd. said")) == 1
    assert lf_org_suffix(sentence_row("Incorporated . Inc.orporated")) == -1


def test_token_position_helpers():
    tokens = tuple("Mr. John Smith of Acme Steel Corp. met Dr. Who in New York on Monday".split())
    assert person_title_positions(tokens) == {1, 2, 9}
    assert org_suffix_positions(tokens) == {4, 5, 6}
    assert location_positions(tokens) == {11, 12}
    assert in_at_positions(tokens) == {11, 12}
    # A month after "in" is not a place; a lower-case word after "at" neither.
    assert in_at_positions(tuple("talks in January at the office".split())) == frozenset()
    assert org_suffix_positions(tuple("shares of the Inc fell".split())) == frozenset()


def test_token_lfs_on_a_hand_written_sentence():
    tokens = tuple("German Mr. Smith said Acme Corp. , based in Paris , grew in 1996 ; 1996-08-30".split())
    lfs = {lf.name: lf for lf in token_lfs("tokens")}
    votes = {name: [lf(SimpleNamespace(tokens=tokens, position=i)) for i in range(len(tokens))]
             for name, lf in lfs.items()}
    #            German Mr. Smith said Acme Corp. ,  based in Paris , grew in 1996 ; 1996-08-30
    assert votes["lf_year"] == [-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, -1, -1]
    assert votes["lf_org_suffix"] == [-1, -1, -1, -1, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1]
    assert votes["lf_person_title"] == [-1, -1, 2, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1]
    assert votes["lf_city"] == [-1] * 9 + [3] + [-1] * 6
    assert votes["lf_nationality"] == [0] + [-1] * 15
    assert votes["lf_in_at_capitalised"] == [-1] * 9 + [3] + [-1] * 6
    report_year = token_lfs("report")[0]
    assert [report_year(SimpleNamespace(tokens=tokens, position=i)) for i in (13, 15)] == [0, 0]


@pytest.mark.parametrize("definition, year_rows", [("tokens", [1, 4]), ("report", [0, 1, 4])])
def test_sentence_statistics_match_hand_counts_and_snorkel(definition, year_rows):
    frame = sentence_frame(CORPUS)
    lfs = sentence_lfs(definition)
    L = apply_lfs(frame, lfs, progress_bar=False)
    # Hand counts: lf_year fires on year_rows, lf_org_suffix on s1 and s2 (not s3's "Inc").
    expected = np.full((6, 2), -1)
    expected[year_rows, 0] = 0
    expected[[1, 2], 1] = 1
    np.testing.assert_array_equal(L, expected)

    correct = vote_correctness_sentence(L, frame["types"])
    stats = lf_statistics(L, correct, [lf.name for lf in lfs])
    n = len(CORPUS)
    assert stats["lf_year"]["coverage"] == pytest.approx(len(year_rows) / n)
    assert stats["lf_org_suffix"]["coverage"] == pytest.approx(2 / n)
    # Only s1 has both LFs voting, with different labels: one overlap, one conflict each.
    for name in ("lf_year", "lf_org_suffix"):
        assert stats[name]["overlaps"] == pytest.approx(1 / n)
        assert stats[name]["conflicts"] == pytest.approx(1 / n)
    # Sentence accuracy: lf_year is right only on s4 (holds MISC); s0 (LOC) and s1 (ORG) wrong.
    assert stats["lf_year"]["correct"] == 1
    assert stats["lf_year"]["accuracy"] == pytest.approx(1 / len(year_rows))
    assert stats["lf_org_suffix"]["accuracy"] == 1.0

    # The same fractions from Snorkel's lf_summary, and its Emp. Acc. pitfall: gold is -1 on
    # s0 (LOC only), so Snorkel leaves s0 out of Correct/Incorrect but counts it wrong in
    # Emp. Acc.
    with warnings.catch_warnings():  # scipy's notice about Snorkel's own diags() call
        warnings.simplefilter("ignore", FutureWarning)
        summary = LFAnalysis(L, lfs).lf_summary(Y=sentence_gold_labels(frame))
    for name in ("lf_year", "lf_org_suffix"):
        for column, key in (("Coverage", "coverage"), ("Overlaps", "overlaps"), ("Conflicts", "conflicts")):
            assert summary.loc[name, column] == pytest.approx(stats[name][key])
    assert summary.loc["lf_year", "Correct"] == 1
    assert summary.loc["lf_year", "Incorrect"] == 1  # s1 (gold ORG); s0 is not counted
    assert summary.loc["lf_year", "Emp. Acc."] == pytest.approx(1 / len(year_rows))


def test_token_accuracy_counts_o_tokens_as_wrong():
    frame = token_frame(CORPUS)
    lfs = token_lfs("tokens")
    L = apply_lfs(frame, lfs, progress_bar=False)
    gold = token_gold_labels(frame)
    assert len(frame) == 2 + 7 + 4 + 8 + 6 + 2
    stats = lf_statistics(L, vote_correctness_token(L, gold), [lf.name for lf in lfs])
    # lf_year votes on "1990" and "2099", both O in gold: 2 votes, 0 correct.
    assert (stats["lf_year"]["votes"], stats["lf_year"]["correct"]) == (2, 0)
    # lf_org_suffix: Acme, Corp., Globex, Inc. -- all gold ORG.
    assert (stats["lf_org_suffix"]["votes"], stats["lf_org_suffix"]["correct"]) == (4, 4)
    # lf_nationality: German (gold MISC).
    assert (stats["lf_nationality"]["votes"], stats["lf_nationality"]["correct"]) == (1, 1)
    assert np.isnan(stats["lf_person_title"]["accuracy"])  # never votes


def test_majority_vote_ties_and_abstains_give_minus_one():
    L = np.array([[0, 1], [0, -1], [-1, -1], [1, 1], [-1, 1]])
    np.testing.assert_array_equal(majority_vote(L, 2), [-1, 0, -1, 1, 1])
    L4 = np.array([[0, 1, 2], [3, 3, 1], [2, -1, 2], [0, 1, -1]])
    np.testing.assert_array_equal(majority_vote(L4, 4), [-1, 3, 2, -1])
    assert label_distribution(np.array([-1, 0, -1, 1]), 2) == {"-1": 2, "0": 1, "1": 1}


def test_label_model_abstains_where_no_lf_votes():
    rng = np.random.default_rng(0)
    n = 300
    truth = rng.integers(0, 4, size=n)
    # Three LFs: each votes the truth 80% of the time on the rows it covers, else abstains.
    L = np.full((n, 3), -1)
    for j in range(3):
        covered = rng.random(n) < 0.6
        noisy = np.where(rng.random(n) < 0.8, truth, rng.integers(0, 4, size=n))
        L[covered, j] = noisy[covered]
    L[:50] = -1  # 50 rows without any vote
    predictions = label_model_vote(L, 4, epochs=50, lr=0.01, seed=0)
    assert (predictions[:50] == -1).all()
    voted = (L != -1).any(axis=1)
    assert (predictions[voted] != -1).mean() > 0.9
    # Better than chance (0.25) on the voted rows.
    assert (predictions[voted] == truth[voted]).mean() > 0.6


def test_sentence_scores_by_hand():
    types = [frozenset({"MISC"}), frozenset({"ORG"}), frozenset(), frozenset({"ORG", "MISC"})]
    scores = sentence_scores(np.array([0, 0, -1, 1]), types)
    # 3 labelled of 4; right: row 0 (MISC) and row 3 (ORG); wrong: row 1.
    assert scores["coverage"] == pytest.approx(0.75)
    assert scores["accuracy"] == pytest.approx(2 / 3)


def test_votes_to_iob2():
    assert votes_to_iob2([2, 2, -1, 3, 3, 1, 0]) == ["B-PER", "I-PER", "O", "B-LOC", "I-LOC",
                                                     "B-ORG", "B-MISC"]
    assert votes_to_iob2([]) == []


def test_token_scores_by_hand():
    gold_tags = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    gold = np.array([2, 2, -1, 3, 1, -1])
    predictions = np.array([2, 2, -1, 1, 1, 0])
    scores = token_scores(predictions, gold, gold_tags)
    # Tokens: 5 predicted (not abstain), 4 gold entity tokens, 3 right (2 PER + 1 ORG).
    assert scores["precision"] == pytest.approx(3 / 5)
    assert scores["recall"] == pytest.approx(3 / 4)
    # ORG: predicted 2 (one right), gold 1 -> P 0.5, R 1.
    assert (scores["ORG_precision"], scores["ORG_recall"]) == (pytest.approx(0.5), pytest.approx(1.0))
    assert scores["LOC_recall"] == 0.0
    # Spans: gold PER, LOC, ORG; predicted PER, ORG (s0), ORG, MISC (s1): PER and ORG(s1) right.
    assert scores["entity_precision"] == pytest.approx(2 / 4)
    assert scores["entity_recall"] == pytest.approx(2 / 3)
    assert scores["PER_entity_f1"] == pytest.approx(1.0)
    assert scores["coverage"] == pytest.approx(5 / 6)


# Each token LF on hand-made sentences: the positions it must vote on (an empty set: it must
# abstain on every token). The comment says what the case checks.
LF_CASES = [
    ("lf_country", "Talks in Japan ended .", {2}),
    ("lf_country", "Japan Airlines rose .", set()),             # part of a longer name
    ("lf_country", "the Bank of Japan said", set()),            # the `of` part of a name
    ("lf_country", "SOCCER - JAPAN WIN , CHINA LOSE", {2, 5}),  # upper case in a headline
    ("lf_city", "He lives in London .", {3}),
    ("lf_city", "Leeds 2 Ipswich 0", set()),                    # clubs in a results line
    ("lf_city", "SOCCER - SURPRISE WIN IN LONDON", set()),      # no upper-case cities
    ("lf_dateline", "LONDON 1996-08-30", {0}),
    ("lf_dateline", "NEW YORK 1996-08-22", {0, 1}),
    ("lf_dateline", "London rose 1996-08-30", set()),
    ("lf_nationality", "German exports rose", {0}),
    ("lf_nationality", "the Czech Republic won", set()),        # inside a country's name
    ("lf_nationality", "South Korean and Libyans", {0, 1, 3}),  # two words; a plural
    ("lf_misc_event", "won the World Cup final", {2, 3}),
    ("lf_misc_event", "won the Cup", set()),                    # one word is no name
    ("lf_misc_event", "SOCCER - WORLD CUP QUALIFIER", {2, 3}),
    ("lf_person_title", "said President Bill Clinton", {2, 3}),
    ("lf_person_title", "General Motors said", set()),          # an organisation word
    ("lf_given_name", "Bill Clinton said", {0, 1}),
    ("lf_given_name", "Grant Thornton Group said", set()),
    ("lf_given_name", "BILL CLINTON SAID", set()),              # headline
    ("lf_initial_surname", "J. Smith scored", {0, 1}),
    ("lf_initial_surname", "J. Reuters scored", set()),
    ("lf_surname", "he beat Collins in", {2}),
    ("lf_surname", "Collins won", set()),                       # sentence-initial
    ("lf_surname", "the Collins Group", set()),                 # inside a longer name
    ("lf_person_said", "Boris Yeltsin said", {0, 1}),
    ("lf_person_said", "Foreign Ministry said", set()),
    ("lf_person_said", "Yeltsin said", set()),                  # one word
    ("lf_person_country", "1. Michael Johnson ( U.S. ) 19.32", {1, 2}),
    ("lf_person_country", "Sales ( million ) rose", set()),
    ("lf_capitalised_pair", "he met Peter Smith on Monday", {2, 3}),
    ("lf_capitalised_pair", "Peter Smith met him", set()),      # sentence-initial
    ("lf_capitalised_pair", "he went to New York", set()),      # a place
    ("lf_capitalised_pair", "in the Foreign Ministry", set()),
    ("lf_company_suffix", "shares of Acme Holdings Plc rose", {2, 3, 4}),
    ("lf_company_suffix", "Procter & Gamble Co said", {0, 1, 2, 3}),
    ("lf_company_suffix", "SHARES AS ACME PLC FALLS", set()),   # headline
    ("lf_company_suffix", "Co said", set()),                    # nothing before the suffix
    ("lf_org_keyword", "the World Bank said", {1, 2}),
    ("lf_org_keyword", "the Bank of Japan said", {1, 2, 3}),
    ("lf_org_keyword", "the Bank of the year", set()),          # `of` then no name
    ("lf_org_keyword", "Bank shares rose", set()),              # one organisation noun
    ("lf_org_keyword", "the United States said", set()),        # a place
    ("lf_org_keyword", "he told Reuters", {2}),
    ("lf_sports_team", "Leeds 2 Ipswich 0", {0, 2}),
    ("lf_sports_team", "Japan 2 Syria 1", set()),               # national teams are LOC
    ("lf_sports_team", "Barcelona 3 2 1 0 5 2 7", {0}),
    ("lf_sports_team", "NEW YORK 72 60 .545 -", {0, 1}),
    ("lf_sports_team", "Clinton 2 said", set()),
    ("lf_acronym", "NATO troops left", {0}),
    ("lf_acronym", "the U.N. envoy", {1}),
    ("lf_acronym", "the CEO said", set()),
    ("lf_acronym", "USA won", set()),                           # a country
    ("lf_acronym", "World War II ended", set()),                # a Roman numeral
]


@pytest.mark.parametrize("name, text, positions", LF_CASES)
def test_token_lf_on_hand_made_sentences(name, text, positions):
    lf = {lf.name: lf for lf in token_lfs()}[name]
    tokens = tuple(text.split())
    votes = [lf(SimpleNamespace(tokens=tokens, position=i)) for i in range(len(tokens))]
    label = TOKEN_CLASSES.index({"lf_country": "LOC", "lf_city": "LOC", "lf_dateline": "LOC",
                                 "lf_nationality": "MISC", "lf_misc_event": "MISC",
                                 "lf_company_suffix": "ORG", "lf_org_keyword": "ORG",
                                 "lf_sports_team": "ORG", "lf_acronym": "ORG"}.get(name, "PER"))
    assert votes == [label if i in positions else -1 for i in range(len(tokens))]


def test_every_aggregated_lf_has_a_voting_and_an_abstaining_case():
    voting = {name for name, _, positions in LF_CASES if positions}
    abstaining = {name for name, _, positions in LF_CASES if not positions}
    names = {lf.name for lf in aggregation_lfs()} - {"lf_in_at_capitalised"}  # test_token_position_helpers
    assert names <= voting and names <= abstaining


def test_headline_detection():
    assert is_headline("SOCCER - JAPAN GET LUCKY WIN , CHINA IN SURPRISE DEFEAT .".split())
    assert not is_headline("Japan beat China in Tokyo on Monday .".split())
    assert not is_headline("NATO and the EU met .".split())


def test_label_matrix_equals_snorkels_applier_and_ignores_gold_tags():
    sentences = CORPUS + [
        sentence("Leeds 2 Ipswich 0", "B-ORG O B-ORG O"),
        sentence("Bill Clinton told Reuters in London", "B-PER I-PER O B-ORG O B-LOC"),
        sentence("SOCCER - JAPAN WIN WORLD CUP", "O O B-LOC O B-MISC I-MISC"),
    ]
    lfs = token_lfs("report")
    L = token_label_matrix(sentences, lfs)
    reference = PandasLFApplier(lfs=lfs).apply(token_frame(sentences), progress_bar=False)
    np.testing.assert_array_equal(L, reference)
    assert (L != -1).any(axis=0).sum() >= 8  # the corpus exercises most LFs
    # No LF reads a gold tag: the same tokens with every tag O give the same matrix.
    blank = [Sentence(tokens=s.tokens, ner=["O"] * len(s)) for s in sentences]
    np.testing.assert_array_equal(token_label_matrix(blank, lfs), L)


def test_aggregation_leaves_out_the_reports_two_lfs():
    names = [lf.name for lf in aggregation_lfs()]
    assert not set(NOT_AGGREGATED) & set(names)
    assert len(names) == len(token_lfs()) - len(NOT_AGGREGATED)
    labels = {lf.label for lf in aggregation_lfs()}
    assert labels == {0, 1, 2, 3}  # every CoNLL type has LFs
