"""Time of one ResNet-14 training step with each from-scratch normalization against the same
network with torch's nn.BatchNorm2d, eager and/or under torch.compile (`--mode`).

    python benchmarks/bench_train_step.py                          # CPU, batch 128 and 8, eager
    python benchmarks/bench_train_step.py --threads 1 --mode compiled   # the CPU recipe's step
    python benchmarks/bench_train_step.py --device cuda --mode both     # GPU, eager and compiled
    python benchmarks/bench_train_step.py --steps 2 --batch-sizes 8   # a few seconds: does it run
    python benchmarks/bench_train_step.py --threads 1 --mode compiled --batch-sizes 128 --precision both
        # float32 against bf16 autocast + channels-last on the CPU (train.py --cpu-bf16)

A step is what q4_normalization/train.py does per batch: forward on 3x32x32 images, cross-entropy,
backward, SGD step (momentum 0.9, weight decay 5e-4, rho in its own group) and `clip_rho_`, in
float32 with the default memory format (the CPU recipe of q4_normalization/train.py trains one
thread per run under torch.compile: `--threads 1 --mode compiled` times that). The networks are
ResNet(n=2) with norm bn, in, bin, ln, gn (ours) and torch_bn (the reference), built from the same
seed and fed the same batch. Within one batch size and mode the networks take their steps in turn,
so load from other processes hits all of them alike; each time is the median over `--steps` steps
after `--warmup` untimed ones (those include the compilation). `--allocator keep` removes random
page-fault costs as in bench_norms.py. Prints a table of ms/step and ours/torch_bn ratios and,
last (but see --precision), exactly

    ratio train_step ours/torch_bn worst = X

with X the largest ratio over our five layers, every batch size and mode timed (with both
modes, a line per mode comes before it). `--precision both` times every network in float32 and
under bf16 autocast with channels-last (what `--cpu-bf16` does in the training scripts), and prints
after that line, last, `ratio train_step bf16/fp32 median = Y` (Y: the median over the networks,
batch sizes and modes of bf16 time / float32 time; below 1 is faster). Run it alone: on a
shared machine the absolute times move; the ratios, from one run, move less.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from common.cli import HelpFormatter, positive_int
from common.device import autocast_context, keep_freed_memory
from q4_normalization.norms import clip_rho_, param_groups
from q4_normalization.resnet import ResNet

REFERENCE = "torch_bn"
OURS = ("bn", "in", "bin", "ln", "gn")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--batch-sizes", type=positive_int, nargs="+", default=[128, 8],
                        help="batch sizes")
    parser.add_argument("--steps", type=positive_int, default=20, help="timed steps per network")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed steps first (the compilation happens there)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="device")
    parser.add_argument("--mode", default=None, choices=["eager", "compiled", "both"],
                        help="eager steps, steps under torch.compile (the CPU recipe's mode), or both "
                             "(default eager)")
    parser.add_argument("--compile", action="store_true", help="the same as --mode both")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "both"],
                        help="float32 steps, bf16 autocast + channels-last steps, or both (default fp32)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch CPU threads (default: torch's)")
    parser.add_argument("--allocator", default="keep", choices=["keep", "system"],
                        help="keep: glibc keeps freed memory (no random page faults); system: as is")
    return parser.parse_args(argv)


class TrainStep:
    """One network with its optimizer; calling it takes one training step on (images, labels)."""

    def __init__(self, norm: str, device: torch.device, compile_model: bool, bf16: bool = False):
        torch.manual_seed(0)
        self.model = ResNet(n=2, r=10, norm=norm).to(device).train()
        self.bf16 = bf16
        if bf16:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.forward = torch.compile(self.model) if compile_model else self.model
        self.optimizer = torch.optim.SGD(param_groups(self.model, 5e-4), lr=0.1, momentum=0.9)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        if self.bf16:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast_context(images.device, self.bf16):
            logits = self.forward(images)
        F.cross_entropy(logits.float(), labels).backward()
        self.optimizer.step()
        clip_rho_(self.model)


def time_in_turn(steps: dict[str, TrainStep], images: torch.Tensor, labels: torch.Tensor,
                 reps: int, warmup: int) -> dict[str, float]:
    """Median seconds of one step of each network, the networks taking their steps in turn."""
    sync = torch.cuda.synchronize if images.is_cuda else (lambda: None)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for rep in range(warmup + reps):
        for name, step in steps.items():
            sync()
            start = time.perf_counter()
            step(images, labels)
            sync()
            if rep >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    kept = args.allocator == "keep" and keep_freed_memory()
    allocator = "glibc keeps freed memory" if kept else "system malloc"
    device = torch.device(args.device)
    mode_arg = args.mode or ("both" if args.compile else "eager")
    modes = ["eager", "compiled"] if mode_arg == "both" else [mode_arg]
    print(f"ResNet-14 training step ({device}, {torch.get_num_threads()} threads, {allocator}), "
          f"median of {args.steps} after {args.warmup} warm-up")
    precisions = ["fp32", "bf16"] if args.precision == "both" else [args.precision]
    print(f"{'batch':>5} {'mode':<9} {'precision':<9} {'norm':<9} {'ms/step':>9} {'ours/torch_bn':>14}")
    ratios: dict[str, list[float]] = {mode: [] for mode in modes}
    bf16_ratios: list[float] = []
    for batch_size in args.batch_sizes:
        generator = torch.Generator().manual_seed(0)
        images = torch.randn(batch_size, 3, 32, 32, generator=generator).to(device)
        labels = torch.randint(0, 10, (batch_size,), generator=generator).to(device)
        for mode in modes:
            timed: dict[str, dict[str, float]] = {}
            for precision in precisions:
                if mode == "compiled":
                    # Six networks per batch size share ResNet.forward: start each group from a clean
                    # cache so that none of them runs into the recompilation limit and falls back to eager.
                    torch._dynamo.reset()
                steps = {name: TrainStep(name, device, mode == "compiled", precision == "bf16")
                         for name in (REFERENCE, *OURS)}
                seconds = timed[precision] = time_in_turn(steps, images, labels, args.steps, args.warmup)
                for name, value in seconds.items():
                    ratio = value / seconds[REFERENCE]
                    if name != REFERENCE:
                        ratios[mode].append(ratio)
                    print(f"{batch_size:>5} {mode:<9} {precision:<9} {name:<9} {1e3 * value:9.2f} "
                          f"{ratio:14.2f}")
            if len(timed) == 2:
                bf16_ratios += [timed["bf16"][name] / timed["fp32"][name] for name in timed["fp32"]]
    for mode in modes if len(modes) > 1 else ():
        print(f"ratio train_step ours/torch_bn worst {mode} = {max(ratios[mode]):.2f}")
    print(f"ratio train_step ours/torch_bn worst = {max(max(values) for values in ratios.values()):.2f}")
    if bf16_ratios:
        print(f"ratio train_step bf16/fp32 median = {statistics.median(bf16_ratios):.2f}")


if __name__ == "__main__":
    main()
