"""k-center greedy (Core-set selection): `q3_active_learning.sampling.k_center_greedy` against
the reference algorithm of the public Core-set implementations, in the same run on the same
features.

    python benchmarks/bench_coreset.py            # pool 50,000 x 512, 1,000 labeled, 1,000 picks
    python benchmarks/bench_coreset.py --small    # pool 10,000 x 128, 200 labeled, 200 picks
    python benchmarks/bench_coreset.py --device cuda   # ours on the GPU (the reference stays numpy)

The reference (as in svdesai/coreset-al's `Coreset_Greedy`): scikit-learn `pairwise_distances`
from the whole pool to the labeled set, the minimum over axis 1, then per pick `np.argmax` of the
minimum distances and an `np.minimum` update with `pairwise_distances(pool, pool[pick])`.

Both get the same float64 features (embedding-like: non-negative, clustered), generated once
from `--seed`: float64 so that both compute the same squared-distance formula to ~1e-16 and
the picks cannot differ on rounding near-ties (in float32 the two summation orders can swap two
candidates whose distances agree to 7 digits). The script asserts that both pick the same
indices in the same order, and times each twice, keeping the faster run (the machine may be
shared). Runtime: 3-7 minutes at the default size on 2 busy CPU cores, almost all of it the
reference; ours spends most of its time in the first step (the pool-to-labeled distances, the
same matrix product the reference does), because its picks refresh only the few candidates that
compete for the next pick (see `k_center_greedy`).
It prints the timings and, last, exactly `ratio kcenter_time ours/reference = X`.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.metrics import pairwise_distances

from common.cli import HelpFormatter
from common.device import pick_device
from q3_active_learning.sampling import k_center_greedy


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--pool", type=int, default=50_000, help="pool size N")
    parser.add_argument("--dim", type=int, default=512, help="feature dimension D")
    parser.add_argument("--labeled", type=int, default=1_000, help="already-labeled points")
    parser.add_argument("--picks", type=int, default=1_000, help="points to select")
    parser.add_argument("--small", action="store_true",
                        help="quick run: pool 10,000 x 128, 200 labeled, 200 picks")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each; the fastest counts")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"],
                        help="device for ours (the reference is numpy on the CPU)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the features and labeled set")
    args = parser.parse_args(argv)
    if args.small:
        args.pool, args.dim, args.labeled, args.picks = 10_000, 128, 200, 200
    return args


def make_features(pool: int, dim: int, seed: int) -> np.ndarray:
    """Embedding-like float64 features: ReLU of 50 Gaussian clusters plus noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, dim))
    assignment = rng.integers(0, 50, size=pool)
    return np.maximum(centres[assignment] + 0.7 * rng.normal(size=(pool, dim)), 0.0)


def reference_k_center_greedy(features: np.ndarray, labeled_idx: np.ndarray, budget: int) -> list[int]:
    """The public implementations' algorithm, kept as written there (including the full N x L
    distance matrix of the first step)."""
    min_distances = pairwise_distances(features, features[labeled_idx], metric="euclidean")
    min_distances = np.min(min_distances, axis=1).reshape(-1, 1)
    picks: list[int] = []
    for _ in range(budget):
        index = int(np.argmax(min_distances))
        distances = pairwise_distances(features, features[[index]], metric="euclidean")
        min_distances = np.minimum(min_distances, distances)
        picks.append(index)
    return picks


def timed(function, repeats: int, synchronize=lambda: None):
    best, result = float("inf"), None
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        result = function()
        synchronize()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv=None) -> float:
    args = parse_args(argv)
    device = pick_device(args.device)
    features = make_features(args.pool, args.dim, args.seed)
    labeled_idx = np.random.default_rng(args.seed + 1).choice(args.pool, args.labeled, replace=False)
    print(f"pool {args.pool:,} x {args.dim}, {args.labeled:,} labeled, {args.picks:,} picks, float64; "
          f"ours on {device}, torch threads {torch.get_num_threads()}")

    ours_features = torch.from_numpy(features).to(device)
    ours_labeled = torch.from_numpy(labeled_idx).to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    ours_time, ours_picks = timed(lambda: k_center_greedy(ours_features, ours_labeled, args.picks),
                                  args.repeats, sync)
    reference_time, reference_picks = timed(
        lambda: reference_k_center_greedy(features, labeled_idx, args.picks), args.repeats)

    ours_picks = ours_picks.cpu().tolist()
    if ours_picks != reference_picks:
        first = next(i for i, (a, b) in enumerate(zip(ours_picks, reference_picks)) if a != b)
        raise SystemExit(f"picks differ from pick {first} on: ours {ours_picks[first:first + 5]} "
                         f"reference {reference_picks[first:first + 5]}")
    assert len(set(ours_picks)) == args.picks and not set(ours_picks) & set(labeled_idx.tolist())
    print(f"picks identical: {args.picks} of {args.picks}, none labeled, none repeated")
    print(f"{'implementation':<44} {'seconds':>9}")
    print(f"{'ours (torch, chunked, incremental)':<44} {ours_time:>9.3f}")
    print(f"{'reference (sklearn pairwise_distances)':<44} {reference_time:>9.3f}")
    ratio = ours_time / reference_time
    print(f"ratio kcenter_time ours/reference = {ratio:.2f}")
    return ratio


if __name__ == "__main__":
    main()
