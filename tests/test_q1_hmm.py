"""Q1's HMM aggregate against brute-force enumeration of its posterior, EM's likelihood and its
start from the majority vote's counts."""

import itertools

import numpy as np
import pytest

from q1_weak_supervision.aggregate import majority_vote
from q1_weak_supervision.hmm import (HMMParameters, fit_hmm, hmm_predict, initial_parameters,
                                     posteriors)
from q1_weak_supervision.labeling_functions import ABSTAIN

_ = ABSTAIN


def random_parameters(rng, lfs, cardinality):
    K = cardinality + 1
    return HMMParameters(rng.dirichlet(np.ones(K)), rng.dirichlet(np.ones(K), size=K),
                         rng.dirichlet(np.ones(K), size=(lfs, K)))


def brute_force_posteriors(params, L):
    """P(state of each token | votes) of one sentence by summing over every state sequence."""
    K, T = len(params.start), len(L)
    marginals = np.zeros((T, K))
    for states in itertools.product(range(K), repeat=T):
        p = params.start[states[0]]
        for t in range(1, T):
            p *= params.transition[states[t - 1], states[t]]
        for t in range(T):
            for j, vote in enumerate(L[t]):
                p *= params.emission[j, states[t], vote + 1]
        for t in range(T):
            marginals[t, states[t]] += p
    return marginals / marginals.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hmm_posteriors_equal_brute_force(seed):
    rng = np.random.default_rng(seed)
    cardinality, lfs = 2, 3
    params = random_parameters(rng, lfs, cardinality)
    lengths = [4, 1, 3]  # padding in the batch: sentences of different lengths
    L = rng.integers(-1, cardinality, size=(sum(lengths), lfs))
    got = posteriors(params, L, lengths)
    start = 0
    for length in lengths:
        np.testing.assert_allclose(got[start:start + length],
                                   brute_force_posteriors(params, L[start:start + length]), atol=1e-12)
        start += length


def test_hmm_posteriors_survive_underflow():
    """Thousands of tokens in one sentence: probabilities underflow, log space does not."""
    rng = np.random.default_rng(3)
    params = random_parameters(rng, 4, 2)
    L = rng.integers(-1, 2, size=(3000, 4))
    got = posteriors(params, L, [3000])
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got.sum(axis=1), 1.0)


def test_em_never_lowers_the_likelihood_without_smoothing():
    rng = np.random.default_rng(4)
    lengths = rng.integers(1, 8, size=40)
    L = rng.integers(-1, 3, size=(lengths.sum(), 3))
    _, history = fit_hmm(L, lengths, majority_vote(L, 3), 3, iterations=15, smoothing=0.0)
    assert all(b >= a - 1e-9 for a, b in zip(history, history[1:]))
    assert history[-1] > history[0]


def test_initial_parameters_are_the_majority_vote_counts():
    # One LF; votes: sentence 1 [0, 0, -1], sentence 2 [-1]. States (label + 1): [1, 1, 0], [0].
    L = np.array([[0], [0], [-1], [-1]])
    params = initial_parameters(L, [3, 1], np.array([0, 0, -1, -1]), cardinality=1, smoothing=1.0)
    np.testing.assert_allclose(params.start, [2 / 4, 2 / 4])             # starts O, 1 (+1 each)
    np.testing.assert_allclose(params.transition, [[1 / 2, 1 / 2],       # O -> nothing seen
                                                   [2 / 4, 2 / 4]])      # 1 -> 1, 1 -> O
    np.testing.assert_allclose(params.emission[0], [[3 / 4, 1 / 4],      # O: abstain twice
                                                    [1 / 4, 3 / 4]])     # 1: voted 0 twice


def test_hmm_predict_maps_the_o_state_to_abstain():
    params = HMMParameters(np.array([0.5, 0.5]), np.full((2, 2), 0.5),
                           np.array([[[0.9, 0.1], [0.1, 0.9]]]))
    np.testing.assert_array_equal(hmm_predict(params, np.array([[-1], [0], [-1]]), [3]), [_, 0, _])
    with pytest.raises(ValueError, match="lengths"):
        hmm_predict(params, np.array([[-1], [0]]), [3])
