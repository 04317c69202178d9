"""Models for the transfer study: a backbone carried over between stages and one Linear head per
task.

    net = TransferNet(BACKBONES["resnet18"](), {"CIFAR100": 100, "CIFAR10": 10})
    net.for_task("CIFAR100")    # train this first, then net.for_task("CIFAR10") on the same backbone

`resnet18` is the CIFAR variant of ResNet-18 (He et al., 2016): a 3x3 stride-1 stem and no
max-pool, so a 32x32 image reaches the last stage at 4x4 (the ImageNet stem, 7x7 stride 2 plus a
max-pool, would shrink it to 1x1). `smallcnn` is a three-block CNN for CPU runs and `--smoke`.

    python -m q2_transfer.models      # prints each model's parameter count
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from common.metrics import count_parameters


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1 projection) shortcut."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNetBackbone(nn.Module):
    """CIFAR ResNet feature extractor: 3x3 stem, four stages, global average pool -> (N, 512)."""

    def __init__(self, blocks_per_stage: tuple[int, ...] = (2, 2, 2, 2), width: int = 64):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, stride=1, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        stages, in_channels = [], width
        for index, count in enumerate(blocks_per_stage):
            channels = width * 2 ** index
            blocks = []
            for block in range(count):
                blocks.append(BasicBlock(in_channels, channels, stride=2 if index > 0 and block == 0 else 1))
                in_channels = channels
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_features = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(x)))


class SmallCNNBackbone(nn.Module):
    """Three conv-BN-ReLU-maxpool blocks (32, 64, 128 channels), global average pool -> (N, 128)."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128)):
        super().__init__()
        layers, in_channels = [], 3
        for channels in widths:
            layers += [nn.Conv2d(in_channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            in_channels = channels
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_features = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class TransferNet(nn.Module):
    """A backbone shared by every task and one Linear head per task. `for_task(tag)` is that task's
    network (backbone, then its head), sharing this module's parameters: training it leaves the
    other heads as they were, so the source head survives fine-tuning on the target task."""

    def __init__(self, backbone: nn.Module, num_classes: Mapping[str, int]):
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleDict({tag: nn.Linear(backbone.out_features, count)
                                    for tag, count in num_classes.items()})

    def for_task(self, tag: str) -> nn.Sequential:
        return nn.Sequential(self.backbone, self.heads[tag])


BACKBONES = {"resnet18": ResNetBackbone, "smallcnn": SmallCNNBackbone}


if __name__ == "__main__":
    for name in sorted(BACKBONES):
        backbone = BACKBONES[name]()
        print(f"{name:<10} backbone {count_parameters(backbone):>10,}  head(10) "
              f"{count_parameters(TransferNet(backbone, {'CIFAR10': 10}).heads):>6,}")
