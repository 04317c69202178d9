"""Our CRF (q5_ner_crf/crf.py) against pytorch-crf on the same inputs.

    python benchmarks/bench_crf.py                 # B=128, T=40, K=17, mixed lengths, CPU
    python benchmarks/bench_crf.py --device cuda

Both CRFs get the same parameters (pytorch-crf's own random initialisation, copied into ours
through the shared state-dict names), the same emissions, gold tags and prefix masks with
sentence lengths drawn from [5, T]. The script first checks that the numbers agree: the
per-sentence log-likelihoods within 1e-4 and identical Viterbi paths (it stops with an error
otherwise). Then it times, interleaving the two implementations so that load from other
processes hits both alike, and prints median milliseconds:

    nll fwd+bwd: -log-likelihood averaged over the batch, then backward() (gradients w.r.t. the
                 emissions and the CRF parameters), as in a training step;
    decode:      Viterbi decoding of the batch (pytorch-crf returns lists, ours a tensor).

Last line, the ratios of our time to pytorch-crf's (lower is faster; targets X <= 0.8,
Y <= 0.3):

    ratio crf ours/pytorch-crf nll_fwd_bwd = X decode = Y

`--threads 1` (the default) because ops on (128, 17, 17) tensors gain nothing from intra-op
threads and one thread keeps the ratio steady on a shared machine. Takes about 10 s on a CPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from torchcrf import CRF as TorchCRF

from common.cli import HelpFormatter, positive_int
from common.device import pick_device
from q5_ner_crf.crf import CRF


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--batch", type=int, default=128, help="sentences per batch (B)")
    parser.add_argument("--steps", type=int, default=40, help="padded sentence length (T)")
    parser.add_argument("--tags", type=int, default=17, help="number of tags (K)")
    parser.add_argument("--repeats", type=int, default=30, help="timed repetitions per measurement")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch intra-op threads on the CPU")
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def make_inputs(batch: int, steps: int, tags: int, device: torch.device, seed: int):
    generator = torch.Generator().manual_seed(seed)
    emissions = torch.randn(batch, steps, tags, generator=generator)
    lengths = torch.randint(5, steps + 1, (batch,), generator=generator)
    lengths[0] = steps  # at least one full-length sentence, so no column is all padding
    mask = torch.arange(steps)[None, :] < lengths[:, None]
    gold = torch.randint(0, tags, (batch, steps), generator=generator)
    return emissions.to(device), gold.to(device), mask.to(device)


def interleaved_medians(functions, repeats: int, device: torch.device) -> list[float]:
    """Median seconds of each function, timed in turn A, B, A, B, ... after a warm-up."""
    for function in functions:
        for _ in range(3):
            function()
    times = [[] for _ in functions]
    for _ in range(repeats):
        for index, function in enumerate(functions):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            function()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[index].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    torch.manual_seed(args.seed)
    reference = TorchCRF(args.tags, batch_first=True).to(device)
    ours = CRF(args.tags).to(device)
    ours.load_state_dict(reference.state_dict())
    emissions, gold, mask = make_inputs(args.batch, args.steps, args.tags, device, args.seed)

    # ---- the numbers must agree before the timings mean anything ----
    ll_reference = reference(emissions, gold, mask, reduction="none")
    ll_ours = ours.log_likelihood(emissions, gold, mask)
    ll_gap = float((ll_reference - ll_ours).detach().abs().max())
    paths_reference = reference.decode(emissions, mask)
    paths_ours = ours.decode(emissions, mask).tolist()
    same_paths = all(paths_ours[b][:len(path)] == path for b, path in enumerate(paths_reference))
    print(f"B={args.batch} T={args.steps} K={args.tags} device={device.type} threads={args.threads}")
    mean_ll = float(ll_ours.detach().mean())
    print(f"max |log-likelihood ours - pytorch-crf| = {ll_gap:.2e} (mean LL {mean_ll:.3f})")
    print(f"Viterbi paths identical: {same_paths}")
    if ll_gap > 1e-4 or not same_paths:
        print("error: our CRF disagrees with pytorch-crf", file=sys.stderr)
        raise SystemExit(1)

    # ---- timings ----
    emissions_grad = emissions.clone().requires_grad_(True)

    def nll_reference():
        (-reference(emissions_grad, gold, mask, reduction="none").mean()).backward()

    def nll_ours():
        (-ours.log_likelihood(emissions_grad, gold, mask).mean()).backward()

    def decode_reference():
        reference.decode(emissions, mask)

    def decode_ours():
        ours.decode(emissions, mask)

    nll_ref_s, nll_ours_s = interleaved_medians([nll_reference, nll_ours], args.repeats, device)
    dec_ref_s, dec_ours_s = interleaved_medians([decode_reference, decode_ours], args.repeats, device)
    print(f"{'':14}{'pytorch-crf':>14}{'ours':>12}")
    print(f"{'nll fwd+bwd':14}{nll_ref_s * 1e3:>11.2f} ms{nll_ours_s * 1e3:>9.2f} ms")
    print(f"{'decode':14}{dec_ref_s * 1e3:>11.2f} ms{dec_ours_s * 1e3:>9.2f} ms")
    ratios = {"nll_fwd_bwd": nll_ours_s / nll_ref_s, "decode": dec_ours_s / dec_ref_s}
    print(f"ratio crf ours/pytorch-crf nll_fwd_bwd = {ratios['nll_fwd_bwd']:.2f} "
          f"decode = {ratios['decode']:.2f}")
    return ratios


if __name__ == "__main__":
    main()
