"""ResNet-(6n+2) for 32x32 images (He et al., 2016, section 4.2), with a pluggable normalization.

    python q4_normalization/resnet.py            # parameter counts for n=2, r=10, every norm
    python q4_normalization/resnet.py --n 3      # ResNet-20

Layout: a 3x3 convolution with 16 filters, three stages of n basic blocks with 16, 32 and 64
filters (feature maps 32x32, 16x16, 8x8; the first block of stages 2 and 3 has stride 2), global
average pooling and a fully connected layer with r outputs. A basic block is

    conv3x3 -> norm -> ReLU -> conv3x3 -> norm -> (+ shortcut) -> ReLU

so a normalization sits just before every activation, as in the report. Weighted layers on the
main path: 1 + 2n * 3 + 1 = 6n + 2 (n=2: ResNet-14).

Shortcut: option A of the paper (identity; where the shape changes, subsample by 2 and pad the new
channels with zeros). It is parameter-free, so the network has exactly 6n+2 weighted layers and the
normalizations are the only difference between variants; it is also the paper's CIFAR choice.

The normalization comes from `q4_normalization.norms.NORMS`; `nn` means no normalization. The
convolutions keep their bias only when there is no normalization (a following norm would cancel
it). Weights: Kaiming-normal (fan_out) for convolutions, torch's default for the classifier.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn

from common.cli import HelpFormatter
from common.metrics import count_parameters
from q4_normalization.norms import NORMS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--n", type=int, default=2, help="blocks per stage (depth 6n+2)")
    parser.add_argument("--r", type=int, default=10, help="number of outputs")
    parser.add_argument("--groups", type=int, default=16, help="GroupNorm groups")
    return parser.parse_args(argv)


class ZeroPadShortcut(nn.Module):
    """Option-A shortcut: identity, or stride-2 subsampling with zero-padded extra channels."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.stride = stride
        self.extra = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]
        if self.extra:
            x = F.pad(x, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
        return x


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, norm: str, groups: int):
        super().__init__()
        bias = norm == "nn"
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=bias)
        self.norm1 = NORMS[norm](out_channels, groups=groups)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=bias)
        self.norm2 = NORMS[norm](out_channels, groups=groups)
        self.shortcut = ZeroPadShortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In-place ReLUs: every input is a fresh tensor no other op reads afterwards.
        out = F.relu(self.norm1(self.conv1(x)), inplace=True)
        out = self.norm2(self.conv2(out))
        return F.relu(out + self.shortcut(x), inplace=True)


class ResNet(nn.Module):
    """ResNet-(6n+2): depth 6n+2, widths 16/32/64, r outputs, normalization `norm`."""

    def __init__(self, n: int = 2, r: int = 10, norm: str = "bn", groups: int = 16, in_channels: int = 3):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; choose one of {', '.join(sorted(NORMS))}")
        self.depth = 6 * n + 2
        bias = norm == "nn"
        self.conv = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=bias)
        self.norm = NORMS[norm](16, groups=groups)
        stages, width = [], 16
        for stage, out_width in enumerate((16, 32, 64)):
            blocks = []
            for i in range(n):
                stride = 2 if (stage > 0 and i == 0) else 1
                blocks.append(BasicBlock(width, out_width, stride, norm, groups))
                width = out_width
            stages.append(nn.Sequential(*blocks))
        self.stage1, self.stage2, self.stage3 = stages
        self.fc = nn.Linear(64, r)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.norm(self.conv(x)), inplace=True)
        x = self.stage3(self.stage2(self.stage1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def main(argv=None):
    args = parse_args(argv)
    print(f"ResNet-{6 * args.n + 2} (n={args.n}, r={args.r}, GroupNorm groups={args.groups})")
    print(f"{'norm':<10} {'parameters':>11} {'norm params':>12}")
    for name in sorted(NORMS):
        model = ResNet(args.n, args.r, name, args.groups)
        norm_params = sum(count_parameters(m) for m in model.modules()
                          if not isinstance(m, (nn.Conv2d, nn.Linear)) and not list(m.children()))
        print(f"{name:<10} {count_parameters(model):>11,} {norm_params:>12,}")


if __name__ == "__main__":
    main()
