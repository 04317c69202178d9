"""Active-learning query strategies: which unlabeled pool images the oracle labels next.

    from q3_active_learning.sampling import STRATEGIES
    picks = STRATEGIES["coreset"](model, pool_images, labeled_idx, unlabeled_idx, budget=100,
                                  generator=generator, device=device, mean=mean, std=std)

Every strategy has the same signature and returns a LongTensor of `budget` distinct pool indices
taken from `unlabeled_idx`:

- `random`: a uniform draw from `generator`.
- `coreset` (Sener & Savarese, ICLR 2018): k-center greedy on the network's embeddings of the
  labeled and unlabeled images: repeatedly label the unlabeled image farthest from its nearest
  labeled (or already picked) image.
- `entropy`: the largest predictive entropy H[mean_t p_t] of the MC-dropout prediction.
- `bald` (Houlsby et al. 2011; Gal et al. 2017): the largest mutual information between the label
  and the weights, H[mean_t p_t] - mean_t H[p_t], over MC-dropout samples p_t.

Ties are broken by the lowest pool index everywhere, so a selection is reproducible.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from common.data.images import ImageLoader


# ---------------------------------------------------------------------------------------------
# k-center greedy
# ---------------------------------------------------------------------------------------------

def _as_mask(labeled: torch.Tensor, count: int, device: torch.device) -> torch.Tensor:
    labeled = torch.as_tensor(labeled, device=device)
    if labeled.dtype == torch.bool:
        if labeled.shape != (count,):
            raise ValueError(f"labeled mask has shape {tuple(labeled.shape)}, expected ({count},)")
        return labeled
    mask = torch.zeros(count, dtype=torch.bool, device=device)
    mask[labeled.long()] = True
    return mask


def min_squared_distances(features: torch.Tensor, centres: torch.Tensor,
                          chunk_size: int = 4096) -> torch.Tensor:
    """(N,) squared Euclidean distance from every row of `features` to its nearest row of
    `centres`, computed tile by tile (at most chunk_size x chunk_size distances at once), so that
    memory stays linear in N: the N x L matrix is never held. Same formula as scikit-learn's
    `euclidean_distances`: |x|^2 - 2 x.c + |c|^2, clamped at 0."""
    feature_norms = features.pow(2).sum(1)
    centre_norms = centres.pow(2).sum(1)
    result = torch.empty(len(features), dtype=features.dtype, device=features.device)
    for start in range(0, len(features), chunk_size):
        rows = slice(start, start + chunk_size)
        best = torch.full_like(feature_norms[rows], float("inf"))
        for centre_start in range(0, len(centres), chunk_size):
            chunk = slice(centre_start, centre_start + chunk_size)
            distances = torch.addmm(feature_norms[rows].unsqueeze(1), features[rows],
                                    centres[chunk].T, alpha=-2)
            distances += centre_norms[chunk]
            best = torch.minimum(best, distances.min(dim=1).values)
        result[rows] = best.clamp_(min=0)
    return result


def k_center_greedy(features: torch.Tensor, labeled: torch.Tensor, budget: int,
                    chunk_size: int = 4096, candidates: int = 32) -> torch.Tensor:
    """Greedy k-center selection: `budget` row indices of `features` (N, D), none of them
    labeled, in the order picked.

    labeled: a bool mask (N,) or a tensor of row indices of the already-labeled points.
    Each pick is the unlabeled point whose squared distance to its nearest centre (labeled or
    already picked) is largest, the lowest index on ties: exactly the greedy algorithm of Sener &
    Savarese (Algorithm 1), i.e. the reference's argmax + np.minimum loop.

    How it is computed: a vector `min_distance` (N,) starts as every point's squared distance to
    its nearest labeled point, computed in tiles by `min_squared_distances` (memory linear in N).
    After a pick, the distances to the new centre are folded in lazily: each point remembers how
    many picks its entry already accounts for, so the entry is an upper bound of the true value.
    To pick, the `candidates` largest entries are brought up to date (one small tile of distances
    to the picks they have not seen); if the best refreshed value is strictly above every other
    entry's upper bound, it is the exact maximum; otherwise the candidate set grows 4x and the
    check repeats (in the worst case, every point is brought up to date: the eager update). Every
    (point, centre) distance is computed at most once, so the work is at most the eager
    algorithm's one (N, D) x (D,) product per pick, and far less in practice, because a new centre
    rarely changes the far-away points that compete for the next pick.

    With no labeled point the first pick is the point farthest from the mean of all features
    (deterministic; the reference implementation draws it at random). Squared distances are
    compared: the same order as distances, without square roots. Runs on the features' device
    and dtype (float64 to rule out rounding near-ties against a float64 reference).
    """
    if features.dim() != 2:
        raise ValueError(f"features must be (N, D), got shape {tuple(features.shape)}")
    count, device = len(features), features.device
    mask = _as_mask(labeled, count, device)
    available = count - int(mask.sum())
    if not 0 <= budget <= available:
        raise ValueError(f"budget {budget} must be between 0 and the {available} unlabeled points")
    picks = torch.empty(budget, dtype=torch.long, device=device)
    if budget == 0:
        return picks

    norms = features.pow(2).sum(1)
    seen = torch.zeros(count, dtype=torch.long, device=device)  # picks folded into each entry
    first = 0
    if mask.any():
        min_distance = min_squared_distances(features, features[mask], chunk_size)
    else:
        picks[0] = torch.argmax((features - features.mean(0)).pow(2).sum(1))
        min_distance = (norms - 2 * (features @ features[picks[0]]) + norms[picks[0]]).clamp_(min=0)
        seen.fill_(1)
        mask = mask.clone()
        mask[picks[0]] = True
        first = 1
    # Labeled points and picks can never win: -inf stays -inf under minimum().
    min_distance.masked_fill_(mask, float("-inf"))

    def bring_up_to_date(rows: torch.Tensor, step: int) -> None:
        """Fold picks[seen[r]:step] into min_distance[r] for every r in `rows`."""
        behind = seen[rows]
        oldest = int(behind.min())
        if oldest >= step:
            return
        centres = picks[oldest:step]
        for start in range(0, len(rows), chunk_size):
            block, block_seen = rows[start:start + chunk_size], behind[start:start + chunk_size]
            best = min_distance[block]
            for centre_start in range(0, len(centres), chunk_size):
                chunk = centres[centre_start:centre_start + chunk_size]
                distances = torch.addmm(norms[block].unsqueeze(1), features[block],
                                        features[chunk].T, alpha=-2)
                distances.add_(norms[chunk]).clamp_(min=0)
                # Centres a row has already seen are left out, so each distance enters once.
                position = torch.arange(oldest + centre_start, oldest + centre_start + len(chunk),
                                        device=device)
                distances.masked_fill_(position.unsqueeze(0) < block_seen.unsqueeze(1), float("inf"))
                best = torch.minimum(best, distances.min(dim=1).values)
            min_distance[block] = best
        seen[rows] = step

    # The picks are many small operations: on the CPU one thread does them faster than two,
    # whose start-up and synchronisation cost more than the work (and far more on a busy machine).
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        for step in range(first, budget):
            size = candidates
            while True:
                size = min(size, count)
                values, order = torch.topk(min_distance, min(size + 1, count))
                head = order[:size]
                bound = values[size] if size < count else None  # bounds every other entry
                bring_up_to_date(head, step)
                best = min_distance[head].max()
                if bound is None or bool(best > bound):
                    break
                size *= 4
            # The exact maximum; the lowest index among the candidates that reach it.
            pick = head[min_distance[head] == best].min()
            picks[step] = pick
            min_distance[pick] = float("-inf")
    finally:
        torch.set_num_threads(threads)
    return picks


# ---------------------------------------------------------------------------------------------
# model outputs over the pool
# ---------------------------------------------------------------------------------------------

def pool_batches(pool_images: torch.Tensor, indices: torch.Tensor, batch_size: int,
                 mean: Sequence[float], std: Sequence[float], device: torch.device):
    """Normalised float batches of `pool_images[indices]` in order (no augmentation), the same
    preprocessing as training."""
    indices = torch.as_tensor(indices, dtype=torch.long).cpu()
    loader = ImageLoader(pool_images[indices], torch.zeros(len(indices), dtype=torch.long),
                         batch_size=batch_size, shuffle=False, augment=False, mean=mean, std=std,
                         device=device)
    for images, _ in loader:
        yield images


@torch.no_grad()
def embed(model: torch.nn.Module, pool_images: torch.Tensor, indices: torch.Tensor, *,
          device: torch.device, mean: Sequence[float], std: Sequence[float],
          batch_size: int = 1000) -> torch.Tensor:
    """(len(indices), D) `model.features` of the pool images, dropout off, on `device`."""
    model.eval()
    return torch.cat([model.features(images)
                      for images in pool_batches(pool_images, indices, batch_size, mean, std, device)])


@torch.no_grad()
def mc_probabilities(model: torch.nn.Module, pool_images: torch.Tensor, indices: torch.Tensor, *,
                     samples: int, device: torch.device, mean: Sequence[float],
                     std: Sequence[float], batch_size: int = 1000) -> torch.Tensor:
    """(samples, len(indices), C) MC-dropout class probabilities of the pool images."""
    model.eval()
    return torch.cat([model.mc_probabilities(images, samples)
                      for images in pool_batches(pool_images, indices, batch_size, mean, std, device)],
                     dim=1)


def entropy(probabilities: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) over the last axis, with 0 log 0 = 0."""
    return -torch.special.xlogy(probabilities, probabilities).sum(-1)


def predictive_entropy(samples: torch.Tensor) -> torch.Tensor:
    """H[mean_t p_t] for MC samples (T, N, C) -> (N,)."""
    return entropy(samples.mean(0))


def mutual_information(samples: torch.Tensor) -> torch.Tensor:
    """BALD score H[mean_t p_t] - mean_t H[p_t] for MC samples (T, N, C) -> (N,).

    Non-negative in exact arithmetic (entropy is concave); clamped at 0 because the two terms are
    computed separately and can differ by a rounding error when the samples agree."""
    return (predictive_entropy(samples) - entropy(samples).mean(0)).clamp_(min=0)


def top_scoring(scores: torch.Tensor, candidates: torch.Tensor, budget: int) -> torch.Tensor:
    """The `budget` candidates with the highest scores; the lowest pool index first among equal
    scores (candidates are sorted first, then a stable sort on the scores)."""
    candidates = torch.as_tensor(candidates, dtype=torch.long).cpu()
    scores = scores.detach().cpu()
    by_index = torch.argsort(candidates)
    candidates, scores = candidates[by_index], scores[by_index]
    order = torch.sort(scores, descending=True, stable=True).indices
    return candidates[order[:budget]]


# ---------------------------------------------------------------------------------------------
# the strategies
# ---------------------------------------------------------------------------------------------

def _check_budget(unlabeled_idx: torch.Tensor, budget: int) -> None:
    if not 0 <= budget <= len(unlabeled_idx):
        raise ValueError(f"budget {budget} must be between 0 and the {len(unlabeled_idx)} "
                         f"unlabeled pool images")


def select_random(model, pool_images, labeled_idx, unlabeled_idx, budget, *, generator,
                  device, mean, std, batch_size=1000, mc_samples=10) -> torch.Tensor:
    """A uniform random `budget` of the unlabeled images (the report's baseline)."""
    _check_budget(unlabeled_idx, budget)
    unlabeled_idx = torch.as_tensor(unlabeled_idx, dtype=torch.long).cpu()
    return unlabeled_idx[torch.randperm(len(unlabeled_idx), generator=generator)[:budget]]


def select_coreset(model, pool_images, labeled_idx, unlabeled_idx, budget, *, generator,
                   device, mean, std, batch_size=1000, mc_samples=10) -> torch.Tensor:
    """k-center greedy on the embeddings of the labeled and unlabeled images."""
    _check_budget(unlabeled_idx, budget)
    labeled_idx = torch.as_tensor(labeled_idx, dtype=torch.long).cpu()
    unlabeled_idx = torch.as_tensor(unlabeled_idx, dtype=torch.long).cpu()
    # Pool order, so that "lowest index on ties" means the lowest pool index.
    points = torch.cat([labeled_idx, unlabeled_idx]).sort().values
    is_labeled = torch.isin(points, labeled_idx)
    features = embed(model, pool_images, points, device=device, mean=mean, std=std,
                     batch_size=batch_size)
    picks = k_center_greedy(features, is_labeled.to(features.device), budget)
    return points[picks.cpu()]


def select_entropy(model, pool_images, labeled_idx, unlabeled_idx, budget, *, generator,
                   device, mean, std, batch_size=1000, mc_samples=10) -> torch.Tensor:
    """The highest predictive entropy of the MC-dropout mean prediction."""
    _check_budget(unlabeled_idx, budget)
    samples = mc_probabilities(model, pool_images, unlabeled_idx, samples=mc_samples,
                               device=device, mean=mean, std=std, batch_size=batch_size)
    return top_scoring(predictive_entropy(samples), unlabeled_idx, budget)


def select_bald(model, pool_images, labeled_idx, unlabeled_idx, budget, *, generator,
                device, mean, std, batch_size=1000, mc_samples=10) -> torch.Tensor:
    """The highest mutual information between label and weights (BALD) over MC dropout."""
    _check_budget(unlabeled_idx, budget)
    samples = mc_probabilities(model, pool_images, unlabeled_idx, samples=mc_samples,
                               device=device, mean=mean, std=std, batch_size=batch_size)
    return top_scoring(mutual_information(samples), unlabeled_idx, budget)


Strategy = Callable[..., torch.Tensor]
STRATEGIES: dict[str, Strategy] = {
    "random": select_random,
    "coreset": select_coreset,
    "entropy": select_entropy,
    "bald": select_bald,
}
