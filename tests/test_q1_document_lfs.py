"""Q1's document-level and sentence-context labeling functions on hand-made sentences (where each
must vote and where it must abstain), the documents read from a CoNLL folder, and the list of
missed entities."""

import argparse

import numpy as np
import pytest

from common.data.conll import Sentence
from q1_weak_supervision.aggregate import majority_vote
from q1_weak_supervision.context_lfs import (company_context_positions, dateline_city_positions,
                                             versus_positions)
from q1_weak_supervision.corpus import load_documents
from q1_weak_supervision.document_lfs import (doc_majority_votes, doc_surname_votes,
                                              document_label_matrix, labelled_spans)
from q1_weak_supervision.labeling_functions import (ABSTAIN, LOC, MISC, ORG, PER, aggregation_lfs,
                                                    token_label_matrix)
from q1_weak_supervision.weak_labels import missed_entities
from tests.test_q1_scripts import conll_dir  # noqa: F401  (the tiny IOB1 folder fixture)

_ = ABSTAIN


def flat(sentences):
    return [text.split() for text in sentences]


def test_labelled_spans():
    assert labelled_spans([_, LOC, LOC, _, PER, ORG, ORG]) == [(1, 3, LOC), (4, 5, PER), (5, 7, ORG)]
    assert labelled_spans([]) == [] and labelled_spans([_, _]) == []


def test_doc_majority_votes_the_documents_label_on_every_whole_mention():
    sentences = flat(["Talks in Bonn ended .",        # doc 0: Bonn labelled LOC
                      "Bonn said no .",               # doc 0: unlabelled mention -> LOC
                      "He flew Bonn Air today .",     # doc 0: inside a longer run -> abstain
                      "Bonn rejected it .",           # doc 1: another document -> abstain
                      "Acme rose and Acme fell ; Acme won ."])  # doc 2: ORG twice, LOC once -> ORG
    labels = np.array([_, _, LOC, _, _,
                       _, _, _, _,
                       _, _, _, _, _, _,
                       _, _, _, _,
                       ORG, _, _, ORG, _, _, LOC, _, _])
    votes = doc_majority_votes(sentences, [0, 0, 0, 1, 2], labels)
    expected = np.array([_, _, LOC, _, _,
                         LOC, _, _, _,
                         _, _, _, _, _, _,
                         _, _, _, _,
                         ORG, _, _, ORG, _, _, ORG, _, _])
    np.testing.assert_array_equal(votes, expected)


def test_doc_majority_abstains_on_a_tie_and_on_lower_case_spans():
    sentences = flat(["Jordan beat Jordan .", "Jordan won .", "the euro fell ; euro"])
    labels = np.array([PER, _, LOC, _, _, _, _, _, MISC, _, _, _])
    votes = doc_majority_votes(sentences, [0, 0, 0], labels)
    assert (votes == ABSTAIN).all()


def test_doc_surname_votes_after_a_full_name_in_the_same_document():
    sentences = flat(["Yeltsin spoke first .",              # before the full name: abstain
                      "Boris Yeltsin met Lebed , and Yeltsin smiled .",  # after it, same sentence
                      "Then , Yeltsin left the Yeltsin Foundation .",    # alone: PER; in a run: no
                      "Yeltsin returned ."])               # another document: abstain
    labels = np.full(sum(map(len, sentences)), ABSTAIN)
    labels[4:6] = PER   # Boris Yeltsin
    labels[7] = PER     # Lebed: one word, not a full name
    votes = doc_surname_votes(sentences, [0, 0, 0, 1], labels)
    voted = [(i, t) for i, t in enumerate(sum(sentences, [])) if votes[i] == PER]
    assert voted == [(10, "Yeltsin"), (15, "Yeltsin")]


def test_doc_surname_needs_a_name_of_two_or_three_title_words():
    sentences = flat(["Jean Claude Van Damme arrived .", "Damme left .",
                      "IBM CORP said .", "CORP fell ."])
    labels = np.full(sum(map(len, sentences)), ABSTAIN)
    labels[0:4] = PER
    labels[9:11] = PER  # upper case words are no surname
    assert (doc_surname_votes(sentences, [0, 0, 0, 0], labels) == ABSTAIN).all()


def test_document_lfs_on_the_sentence_lfs_majority_vote():
    """The whole first stage on a hand-made story: the title LF names `John Smith`; `Smith` at
    the start of a later sentence gets no sentence-level vote, the document LFs label it."""
    sentences = [Sentence(tokens=text.split(), ner=["O"] * len(text.split()))
                 for text in ("Mr. John Smith arrived in Paris on Monday .", "Smith said he was happy .")]
    L = token_label_matrix(sentences, aggregation_lfs())
    base = majority_vote(L, 4)
    assert base[1] == base[2] == PER and base[9] == ABSTAIN
    D = document_label_matrix([s.tokens for s in sentences], [0, 0], base)
    assert D[9, 1] == PER            # lf_doc_surname: `Smith`
    assert D[5, 0] == LOC            # lf_doc_majority repeats `Paris` on itself
    assert D[1, 0] == D[2, 0] == ABSTAIN  # `John Smith` sits in the run `Mr. John Smith`
    assert D[9, 0] == ABSTAIN        # `Smith` alone is another name than `John Smith`
    assert D[2, 1] == ABSTAIN        # the full name itself is not a later mention
    assert (D[[0, 3, 4, 6, 7, 8, 10, 11, 12, 13, 14], :] == ABSTAIN).all()


def test_load_documents_numbers_documents_by_their_separators(conll_dir):  # noqa: F811
    args = argparse.Namespace(smoke=False, conll_dir=str(conll_dir), source="conll-dir",
                              keep_docstart=False, seed=0, hf_name="x", hf_revision="y")
    documents = load_documents(args)
    sentences, ids = documents["train"]
    assert len(sentences) == 7 and ids == [0, 0, 1, 1, 1, 1, 1]
    assert documents["validation"][1] == [0] and documents["test"][1] == [0, 0]
    assert not any(s.is_docstart for s in sentences)


def test_missed_entities_by_hand():
    sentences = [Sentence(tokens="Boris Yeltsin met Lebed in Moscow".split(),
                          ner=["B-PER", "I-PER", "O", "B-PER", "O", "B-LOC"]),
                 Sentence(tokens="Lebed left".split(), ner=["B-PER", "O"])]
    # Yeltsin's span cut short (missed), Lebed found once of twice, Moscow typed ORG (missed).
    predictions = np.array([_, PER, _, PER, _, ORG, _, _])
    missed = missed_entities(sentences, predictions)
    assert missed["PER"] == {"Boris Yeltsin": 1, "Lebed": 1}
    assert missed["LOC"] == {"Moscow": 1} and not missed["ORG"] and not missed["MISC"]


@pytest.mark.parametrize("text, positions", [
    ("Essex v Yorkshire", {0, 2}),
    ("May 15 v Worcestershire", {3}),                  # the date before `v` is no team
    ("Leeds United vs. Ipswich Town", {0, 1, 3, 4}),
    ("May 15 v Durham", set()),                        # a city of the gazetteer: left to the LOC LFs
    ("Pete Sampras ( U.S. ) vs. Adrian Voinea ( Romania )", set()),  # a tennis draw: people
    ("England v Pakistan", set()),                     # national teams are LOC
    ("ESSEX V YORKSHIRE", set()),                      # a headline
    ("he said v for victory", set()),
])
def test_versus_on_hand_made_sentences(text, positions):
    assert versus_positions(tuple(text.split())) == positions


@pytest.mark.parametrize("text, positions", [
    ("He bought shares in Acme Holdings last week .", {4, 5}),
    ("a Honda spokesman said", {1}),
    ("Gencor 's shares fell", set()),                  # a run starting the sentence may be any word
    ("Traders sold Gencor 's shares", {2}),
    ("a stake in The Body Shop", {4, 5}),
    ("shares in Germany fell", set()),                 # a place
    ("a German spokesman said", set()),                # a nationality
    ("shares in the bank fell", set()),
    ("SHARES IN ACME FELL SHARPLY", set()),            # a headline
])
def test_company_context_on_hand_made_sentences(text, positions):
    assert company_context_positions(tuple(text.split())) == positions


@pytest.mark.parametrize("text, positions", [
    ("PARIS 1996-08-22", {0}),
    ("NEW YORK 1996-08-22", {0, 1}),
    ("Paris 1996-08-22", set()),                      # lf_dateline alone votes there
    ("REUTERS 1996-08-22", set()),                     # no city
    ("PARIS fell 1996-08-22", set()),                  # no dateline
])
def test_dateline_city_on_hand_made_sentences(text, positions):
    assert dateline_city_positions(tuple(text.split())) == positions
