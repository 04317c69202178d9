"""q3_active_learning: k-center greedy against brute force and scikit-learn, the query
strategies' guarantees, MC dropout and BALD."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import pairwise_distances

from q3_active_learning.model import Net
from q3_active_learning.sampling import (STRATEGIES, entropy, k_center_greedy, min_squared_distances,
                                         mutual_information, predictive_entropy, top_scoring)


def brute_force_k_center(features: torch.Tensor, labeled: list[int], budget: int) -> list[int]:
    """The greedy rule written out naively: before every pick, recompute the full distance
    matrix from every point to every centre (x - c directly, no expansion trick), take each
    point's nearest centre, and pick the farthest non-centre point, the first index on ties.
    With no labeled point the first pick is the point farthest from the mean."""
    centres, picks = list(labeled), []
    if not centres:
        first = int(torch.argmax(((features - features.mean(0)) ** 2).sum(1)))
        picks, centres = [first], [first]
    while len(picks) < budget:
        nearest = ((features[:, None, :] - features[centres][None]) ** 2).sum(-1).min(1).values
        nearest[centres] = -math.inf
        pick = int(torch.argmax(nearest))
        picks.append(pick)
        centres.append(pick)
    return picks


def random_problem(seed: int, integer: bool):
    generator = torch.Generator().manual_seed(seed)
    count = int(torch.randint(8, 120, (1,), generator=generator))
    dim = int(torch.randint(1, 8, (1,), generator=generator))
    if integer:  # a small integer grid: many exact ties, computed exactly in float64
        features = torch.randint(0, 4, (count, dim), generator=generator).double()
    else:
        features = torch.randn(count, dim, generator=generator, dtype=torch.float64)
    labeled = torch.randperm(count, generator=generator)[:int(torch.randint(0, count // 2, (1,),
                                                                            generator=generator))]
    budget = int(torch.randint(1, count - len(labeled) + 1, (1,), generator=generator))
    return features, labeled, budget


@pytest.mark.parametrize("integer", [False, True], ids=["gaussian", "integer-ties"])
@pytest.mark.parametrize("seed", range(12))
def test_k_center_greedy_equals_brute_force(seed, integer):
    features, labeled, budget = random_problem(seed, integer)
    # Tiny tiles and candidate sets exercise the chunking and the lazy re-checks.
    picks = k_center_greedy(features, labeled, budget, chunk_size=1 + seed % 7, candidates=1 + seed % 3)
    assert picks.tolist() == brute_force_k_center(features, labeled.tolist(), budget)


@pytest.mark.parametrize("seed", range(6))
def test_picks_are_never_labeled_nor_repeated(seed):
    features, labeled, _ = random_problem(seed, integer=True)
    budget = len(features) - len(labeled)  # everything: the hardest case for repeats
    picks = k_center_greedy(features, labeled, budget, chunk_size=5).tolist()
    assert len(set(picks)) == len(picks) == budget
    assert not set(picks) & set(labeled.tolist())
    # The labeled set as a bool mask gives the same picks as the index tensor.
    mask = torch.zeros(len(features), dtype=torch.bool)
    mask[labeled] = True
    assert k_center_greedy(features, mask, budget, chunk_size=5).tolist() == picks


def test_k_center_greedy_equals_the_sklearn_reference():
    # The public implementations' loop (pairwise_distances + np.minimum), as in the benchmark.
    rng = np.random.default_rng(0)
    features = np.maximum(rng.normal(size=(400, 16)), 0)
    labeled = rng.choice(400, 30, replace=False)
    minimum = pairwise_distances(features, features[labeled]).min(axis=1).reshape(-1, 1)
    reference = []
    for _ in range(40):
        index = int(np.argmax(minimum))
        minimum = np.minimum(minimum, pairwise_distances(features, features[[index]]))
        reference.append(index)
    picks = k_center_greedy(torch.from_numpy(features), torch.from_numpy(labeled), 40, chunk_size=64)
    assert picks.tolist() == reference


def test_min_squared_distances_matches_cdist():
    generator = torch.Generator().manual_seed(1)
    points, centres = torch.randn(37, 5, generator=generator), torch.randn(11, 5, generator=generator)
    expected = torch.cdist(points.double(), centres.double()).min(1).values ** 2
    torch.testing.assert_close(min_squared_distances(points.double(), centres.double(), chunk_size=4),
                               expected)


def test_k_center_greedy_rejects_a_budget_beyond_the_unlabeled_points():
    with pytest.raises(ValueError, match="budget"):
        k_center_greedy(torch.randn(5, 2), torch.tensor([0, 1]), 4)


# ---- MC dropout, entropy, BALD ----------------------------------------------------------------

def hand_forward(model: Net, images: torch.Tensor, conv_rate: float, hidden_rate: float) -> torch.Tensor:
    """One full pass of the documented layout with plain torch calls and dropout switched on:
    conv, ReLU, conv, ReLU, max-pool 2, channel dropout, fc, ReLU, dropout, fc, softmax."""
    x = torch.relu(torch.nn.functional.conv2d(images, model.conv1.weight, model.conv1.bias))
    x = torch.relu(torch.nn.functional.conv2d(x, model.conv2.weight, model.conv2.bias))
    x = torch.nn.functional.dropout2d(torch.nn.functional.max_pool2d(x, 2), conv_rate, training=True)
    x = torch.relu(x.flatten(1) @ model.fc1.weight.T + model.fc1.bias)
    x = torch.nn.functional.dropout(x, hidden_rate, training=True)
    return torch.softmax(x @ model.fc2.weight.T + model.fc2.bias, dim=1)


def test_mc_dropout_equals_full_passes_with_plain_torch_dropout():
    model = Net(num_classes=10, width=4).double().eval()  # eval: MC dropout must switch it on
    images = torch.randn(6, 3, 32, 32, dtype=torch.float64)
    torch.manual_seed(3)
    reference = torch.stack([hand_forward(model, images, 0.25, 0.5) for _ in range(8)])
    assert not torch.allclose(reference[0], reference[1])  # the masks do differ between samples
    torch.manual_seed(3)  # the same masks again, drawn in the same order
    torch.testing.assert_close(model.mc_probabilities(images, 8), reference)
    torch.manual_seed(3)
    torch.testing.assert_close(model.stochastic_pred(images, 8), reference.mean(0))


def test_mc_dropout_at_rate_zero_is_the_deterministic_forward_pass():
    model = Net(num_classes=10, width=4, conv_dropout=0.0, dropout=0.0).double().eval()
    images = torch.randn(5, 3, 32, 32, dtype=torch.float64)
    plain = hand_forward(model, images, 0.0, 0.0)
    torch.testing.assert_close(model(images).exp(), plain)
    torch.testing.assert_close(model.mc_probabilities(images, 3), plain.expand(3, -1, -1))


def test_entropy_and_bald_on_hand_computed_cases():
    # Two confident samples that disagree: H[mean] = ln 2, mean H = 0, so BALD = ln 2.
    disagree = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])
    torch.testing.assert_close(predictive_entropy(disagree), torch.tensor([math.log(2)]))
    torch.testing.assert_close(mutual_information(disagree), torch.tensor([math.log(2)]))
    # Two identical uniform samples: H[mean] = ln 3, no disagreement, BALD = 0.
    uniform = torch.full((2, 1, 3), 1 / 3)
    torch.testing.assert_close(entropy(uniform[0]), torch.tensor([math.log(3)]))
    torch.testing.assert_close(mutual_information(uniform), torch.tensor([0.0]))
    # Samples (1/2, 1/2) and (9/10, 1/10): mean (7/10, 3/10).
    mixed = torch.tensor([[[0.5, 0.5]], [[0.9, 0.1]]], dtype=torch.float64)
    h_mean = -(0.7 * math.log(0.7) + 0.3 * math.log(0.3))
    mean_h = (math.log(2) - (0.9 * math.log(0.9) + 0.1 * math.log(0.1))) / 2
    torch.testing.assert_close(predictive_entropy(mixed), torch.tensor([h_mean], dtype=torch.float64))
    torch.testing.assert_close(mutual_information(mixed),
                               torch.tensor([h_mean - mean_h], dtype=torch.float64))


def test_bald_is_never_negative():
    generator = torch.Generator().manual_seed(0)
    probabilities = torch.softmax(5 * torch.randn(10, 500, 7, generator=generator), -1)
    # Identical samples: the two terms cancel and rounding may leave -1e-8 without the clamp.
    identical = probabilities[:1].expand(10, -1, -1)
    for samples in (probabilities, identical):
        assert (mutual_information(samples) >= 0).all()


def test_top_scoring_breaks_ties_by_lowest_pool_index():
    candidates = torch.tensor([9, 2, 7, 4])
    scores = torch.tensor([0.5, 0.9, 0.5, 0.5])
    assert top_scoring(scores, candidates, 3).tolist() == [2, 4, 7]


# ---- the strategies on a pool -----------------------------------------------------------------

@pytest.mark.parametrize("method", sorted(STRATEGIES))
def test_every_strategy_picks_budget_distinct_unlabeled_images(method):
    generator = torch.Generator().manual_seed(0)
    pool = torch.randint(0, 256, (60, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labeled = torch.arange(0, 60, 3)
    unlabeled = torch.tensor([i for i in range(60) if i % 3])
    model = Net(num_classes=4, width=4)
    picks = STRATEGIES[method](model, pool, labeled, unlabeled, 15, generator=generator,
                               device=torch.device("cpu"), mean=(0.5,) * 3, std=(0.25,) * 3,
                               batch_size=16, mc_samples=3)
    assert picks.dtype == torch.long and len(picks) == 15 == len(set(picks.tolist()))
    assert set(picks.tolist()) <= set(unlabeled.tolist())
