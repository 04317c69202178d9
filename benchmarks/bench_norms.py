"""Forward + backward time of each from-scratch normalization layer against its torch twin.

    python benchmarks/bench_norms.py                     # 128x16x32x32, CPU, default threads
    python benchmarks/bench_norms.py --device cuda --shape 128 64 16 16

Pairs, timed in the same process, interleaved, on the same input and output gradient:

    bn   q4_normalization.norms.BatchNorm2d     vs  nn.BatchNorm2d (train mode)
    in   q4_normalization.norms.InstanceNorm2d  vs  nn.InstanceNorm2d(affine=True)
    ln   q4_normalization.norms.LayerNorm2d     vs  nn.LayerNorm([C, H, W])
    gn   q4_normalization.norms.GroupNorm2d(16) vs  nn.GroupNorm(16, C)
    bin  q4_normalization.norms.BatchInstanceNorm2d vs the same formula from torch's
         F.batch_norm and F.instance_norm (torch has no BIN layer); informational only, it is
         not part of the worst ratio because the reference is itself a composition.

torch's LayerNorm([C, H, W]) has an elementwise affine over (C, H, W) where ours is per channel
(as in the report); the normalisation work is the same, the affine is a little cheaper for ours.

Each timing is the median over `--reps` repetitions (after `--warmup` untimed ones) of one
forward + backward pass; the two layers of a pair alternate, so that load from other processes
hits both alike. Prints one line per layer and, last, exactly

    ratio norm_fwd_bwd worst ours/torch = X

with X the largest ours/torch ratio over bn, in, ln and gn (target: X <= 1.5). On a shared
machine the numbers move; run it a few times and alone. When other processes hold the cores, a
multi-threaded op waits for a descheduled worker thread (a few ms each time), which penalises the
layer made of more ops (ours); `--threads 1` removes those stalls and gives steadier ratios.

Allocation noise: every pass allocates output and gradient buffers of the input's size (8 MB at
the default shape). glibc serves such requests with fresh mmap()ed pages and gives freed ones
back to the OS, so at random one call or another pays ~2048 page faults (1-2 ms, on either side).
By default (`--allocator keep`) the script asks glibc, through mallopt(), to keep freed memory
in the heap, which removes those faults for both layers alike and leaves the cost of the
arithmetic and memory traffic; `--allocator system` leaves malloc as it is. Removing the faults
makes ours/torch larger, not smaller: they add the same time to both sides.
Before the last line, an informational line times a whole ResNet-14 forward + backward (batch N,
3x32x32) with our GroupNorm against the same network with nn.GroupNorm: what the layer's speed
means for a training step, where the convolutions dominate (`--resnet-reps 0` skips it).
Runtime: about 10-20 s on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from common.cli import HelpFormatter, positive_int
from common.device import keep_freed_memory
from q4_normalization.norms import NORMS, GroupNorm2d
from q4_normalization.resnet import ResNet


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--shape", type=int, nargs=4, default=[128, 16, 32, 32], metavar=("N", "C", "H", "W"),
                        help="input shape")
    parser.add_argument("--groups", type=int, default=16, help="GroupNorm groups")
    parser.add_argument("--reps", type=int, default=20, help="timed repetitions per layer")
    parser.add_argument("--warmup", type=int, default=5, help="untimed repetitions first")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="device")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--resnet-reps", type=int, default=10,
                        help="timed ResNet-14 steps with each GroupNorm (0: skip that comparison)")
    parser.add_argument("--allocator", default="keep", choices=["keep", "system"],
                        help="keep: glibc keeps freed memory (no random page faults); system: as is")
    return parser.parse_args(argv)


class TorchBatchInstance(nn.Module):
    """BIN from torch's fused kernels, as the reference for ours."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.rho = nn.Parameter(torch.ones(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x):
        shape = (1, -1, 1, 1)
        x_bn = F.batch_norm(x, self.running_mean, self.running_var, training=True)
        x_in = F.instance_norm(x)
        rho = self.rho.view(shape)
        return (rho * x_bn + (1 - rho) * x_in) * self.weight.view(shape) + self.bias.view(shape)


def time_pair(ours: nn.Module, ref: nn.Module, x: torch.Tensor, dy: torch.Tensor,
              reps: int, warmup: int) -> tuple[float, float]:
    """Median seconds of one forward+backward of each layer, alternating the two."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)

    def once(layer):
        x.grad = None
        layer.zero_grad(set_to_none=True)
        sync()
        start = time.perf_counter()
        layer(x).backward(dy)
        sync()
        return time.perf_counter() - start

    for _ in range(warmup):
        once(ours), once(ref)
    ours_times, ref_times = [], []
    for _ in range(reps):
        ours_times.append(once(ours))
        ref_times.append(once(ref))
    return statistics.median(ours_times), statistics.median(ref_times)


def resnet_pair(groups: int) -> tuple[nn.Module, nn.Module]:
    """ResNet-14 with our GroupNorm, and the same network (same weights) with nn.GroupNorm."""
    ours = ResNet(n=2, r=10, norm="gn", groups=groups)
    ref = ResNet(n=2, r=10, norm="gn", groups=groups)
    ref.load_state_dict(ours.state_dict())
    for module in list(ref.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, GroupNorm2d):
                twin = nn.GroupNorm(child.groups, child.num_channels, eps=child.eps)
                twin.load_state_dict(child.state_dict())
                setattr(module, name, twin)
    return ours, ref


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    allocator = "glibc keeps freed memory" if args.allocator == "keep" and keep_freed_memory() else "system malloc"
    device = torch.device(args.device)
    n, c, h, w = args.shape
    torch.manual_seed(0)
    x = torch.randn(n, c, h, w, device=device, requires_grad=True)
    dy = torch.randn(n, c, h, w, device=device)
    pairs = {
        "bn": (NORMS["bn"](c), nn.BatchNorm2d(c)),
        "in": (NORMS["in"](c), nn.InstanceNorm2d(c, affine=True)),
        "ln": (NORMS["ln"](c), nn.LayerNorm([c, h, w])),
        "gn": (NORMS["gn"](c, groups=args.groups), nn.GroupNorm(args.groups, c)),
        "bin": (NORMS["bin"](c), TorchBatchInstance(c)),
    }
    print(f"normalization forward+backward on {n}x{c}x{h}x{w} ({device}, "
          f"{torch.get_num_threads()} threads, {allocator}), median of {args.reps} after {args.warmup} warm-up")
    print(f"{'layer':<6} {'ours ms':>9} {'torch ms':>9} {'ours/torch':>11}")
    ratios = {}
    for name, (ours, ref) in pairs.items():
        ours.to(device).train()
        ref.to(device).train()
        t_ours, t_ref = time_pair(ours, ref, x, dy, args.reps, args.warmup)
        ratios[name] = t_ours / t_ref
        note = "  (reference is a composition; not in the worst ratio)" if name == "bin" else ""
        print(f"{name:<6} {1e3 * t_ours:9.2f} {1e3 * t_ref:9.2f} {ratios[name]:11.2f}{note}")
    if args.resnet_reps > 0:
        # What the layer costs in the study's network: a whole forward + backward of ResNet-14.
        ours, ref = (model.to(device).train() for model in resnet_pair(args.groups))
        images = torch.randn(n, 3, 32, 32, device=device)
        dlogits = torch.randn(n, 10, device=device)
        t_ours, t_ref = time_pair(ours, ref, images, dlogits, args.resnet_reps, 2)
        print(f"resnet-14 with gn, batch {n}: {1e3 * t_ours:.1f} ms ours, {1e3 * t_ref:.1f} ms with nn.GroupNorm, "
              f"ours/torch {t_ours / t_ref:.2f} (informational)")
    worst = max(ratio for name, ratio in ratios.items() if name != "bin")
    print(f"ratio norm_fwd_bwd worst ours/torch = {worst:.2f}")


if __name__ == "__main__":
    main()
