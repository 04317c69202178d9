"""A hidden Markov model over the token label matrix: the sequence-aware aggregate (skweak's HMM).

The majority vote and Snorkel's LabelModel label each token on its own. In skweak (Lison et al.
2020) the true labels of a sentence are the hidden states of an HMM and each labeling function's
votes are its observations: a token's label depends on its neighbour's (`New York Stock
Exchange` is one entity), and each function has its own confusion between true labels and votes.

    states     0 = O, 1..C = the token classes (label id + 1)
    emissions  per function j and state k a categorical over its outputs {abstain, 0..C-1},
               the functions independent given the state
    transitions a (C+1) x (C+1) matrix, and a start distribution

Fitted by EM (Baum-Welch, forward-backward in log space, all sentences at once as a padded
batch) on the votes alone, starting from the majority vote's labels (an abstaining token is O)
counted as if they were the states, with `smoothing` pseudo-counts on every count (a Dirichlet
prior that keeps a never-seen output possible). Labels are each token's most probable state.
Departure from skweak: skweak's states are BIO tags (a B- and an I- state per type) and its
emission priors come from each function's declared precision; here a state is a type (a run of
one type is one entity, as the other aggregates' labels are read) and the prior is uniform.
skweak 0.3.3 itself needs spaCy and reads spaCy documents; this module needs numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from q1_weak_supervision.labeling_functions import ABSTAIN


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.squeeze(top, axis=axis) + np.log(np.sum(np.exp(x - top), axis=axis))


def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(x)


@dataclass
class HMMParameters:
    """start (K,), transition (K, K) from row to column, emission (J, K, C + 1): the probability
    that function j outputs o (0 = abstain, 1 + c = class c) in state k; K = C + 1 (0 = O)."""

    start: np.ndarray
    transition: np.ndarray
    emission: np.ndarray


def _batch(L: np.ndarray, lengths) -> tuple[np.ndarray, np.ndarray]:
    """Votes shifted to outputs (abstain 0, class c -> c + 1), padded to (N, T, J), and the
    (N, T) mask of real tokens."""
    lengths = np.asarray(lengths, dtype=int)
    if lengths.sum() != len(L):
        raise ValueError(f"sentence lengths add up to {lengths.sum()}, the label matrix has {len(L)} rows")
    N, T = len(lengths), int(lengths.max()) if len(lengths) else 0
    mask = np.arange(T)[None, :] < lengths[:, None]
    outputs = np.zeros((N, T, L.shape[1]), dtype=int)
    outputs[mask] = L + 1
    return outputs, mask


def _log_emissions(params: HMMParameters, outputs: np.ndarray) -> np.ndarray:
    """(N, T, K): log P(all functions' outputs at the token | state)."""
    log_emission = _log(params.emission)  # (J, K, O)
    total = np.zeros(outputs.shape[:2] + (params.emission.shape[1],))
    for j in range(outputs.shape[2]):
        total += log_emission[j][:, outputs[:, :, j]].transpose(1, 2, 0)
    return total


def forward_backward(params: HMMParameters, outputs: np.ndarray, mask: np.ndarray):
    """Log forward and backward messages (N, T, K) and each sentence's log-likelihood (N,).
    Padded positions carry the last real position's messages, so they change nothing."""
    E = _log_emissions(params, outputs)
    log_start, log_transition = _log(params.start), _log(params.transition)
    N, T, K = E.shape
    alpha = np.zeros((N, T, K))
    beta = np.zeros((N, T, K))
    alpha[:, 0] = log_start + E[:, 0]
    for t in range(1, T):
        step = _logsumexp(alpha[:, t - 1, :, None] + log_transition[None], axis=1) + E[:, t]
        alpha[:, t] = np.where(mask[:, t, None], step, alpha[:, t - 1])
    for t in range(T - 2, -1, -1):
        step = _logsumexp(log_transition[None] + (E[:, t + 1] + beta[:, t + 1])[:, None, :], axis=2)
        beta[:, t] = np.where(mask[:, t + 1, None], step, 0.0)
    return alpha, beta, E, _logsumexp(alpha[:, -1], axis=1)


def posteriors(params: HMMParameters, L: np.ndarray, lengths) -> np.ndarray:
    """(tokens, K): P(state | all votes of its sentence) for every token in order."""
    outputs, mask = _batch(L, lengths)
    if not mask.size:
        return np.zeros((0, len(params.start)))
    alpha, beta, _, loglik = forward_backward(params, outputs, mask)
    return np.exp(alpha + beta - loglik[:, None, None])[mask]


def initial_parameters(L: np.ndarray, lengths, labels: np.ndarray, cardinality: int,
                       smoothing: float) -> HMMParameters:
    """Counts of states, transitions and outputs with `labels` (e.g. the majority vote; -1 = O)
    taken as the states, plus `smoothing` on every count."""
    states = np.where(labels == ABSTAIN, 0, labels + 1)
    gamma = np.eye(cardinality + 1)[states]
    outputs, mask = _batch(L, lengths)
    padded = np.zeros(mask.shape + (cardinality + 1,))
    padded[mask] = gamma
    xi = np.einsum("nti,ntj->ij", padded[:, :-1], padded[:, 1:] * mask[:, 1:, None])
    return _m_step(padded, xi, outputs, mask, cardinality, smoothing)


def _m_step(gamma: np.ndarray, xi: np.ndarray, outputs: np.ndarray, mask: np.ndarray,
            cardinality: int, smoothing: float) -> HMMParameters:
    """Parameters from expected counts: gamma (N, T, K) zero at padding, xi (K, K)."""
    K = cardinality + 1
    start = gamma[:, 0].sum(axis=0) + smoothing
    transition = xi + smoothing
    flat_gamma, flat_outputs = gamma[mask], outputs[mask]
    emission = np.stack([flat_gamma.T @ np.eye(K)[flat_outputs[:, j]]
                         for j in range(outputs.shape[2])]) + smoothing
    return HMMParameters(start / start.sum(), transition / transition.sum(axis=1, keepdims=True),
                         emission / emission.sum(axis=2, keepdims=True))


def fit_hmm(L: np.ndarray, lengths, labels: np.ndarray, cardinality: int, iterations: int = 10,
            smoothing: float = 1.0) -> tuple[HMMParameters, list[float]]:
    """EM from the `labels` start; returns the parameters and the log-likelihood of the votes
    before each iteration's M step (non-decreasing without smoothing)."""
    params = initial_parameters(L, lengths, labels, cardinality, smoothing)
    outputs, mask = _batch(L, lengths)
    history = []
    for _ in range(iterations):
        alpha, beta, E, loglik = forward_backward(params, outputs, mask)
        history.append(float(loglik.sum()))
        gamma = np.exp(alpha + beta - loglik[:, None, None]) * mask[..., None]
        log_transition = _log(params.transition)
        xi = np.zeros_like(params.transition)
        for t in range(1, outputs.shape[1]):
            joint = (alpha[:, t - 1, :, None] + log_transition[None]
                     + (E[:, t] + beta[:, t])[:, None, :] - loglik[:, None, None])
            xi += (np.exp(joint) * mask[:, t, None, None]).sum(axis=0)
        params = _m_step(gamma, xi, outputs, mask, cardinality, smoothing)
    return params, history


def hmm_predict(params: HMMParameters, L: np.ndarray, lengths) -> np.ndarray:
    """Each token's most probable state as a label id (-1 for O)."""
    if len(L) == 0:
        return np.zeros(0, dtype=int)
    states = posteriors(params, L, lengths).argmax(axis=1)
    return np.where(states == 0, ABSTAIN, states - 1)
