"""Models for the transfer study: a backbone that is kept between stages and a `head` (one Linear
layer) that is replaced when the number of classes changes.

    net = MODELS["resnet18"](num_classes=100)      # train on CIFAR-100 ...
    source_head = replace_head(net, 10)            # ... keep the backbone, new 10-way head

`resnet18` is the CIFAR variant of ResNet-18 (He et al., 2016): a 3x3 stride-1 stem and no
max-pool, so a 32x32 image reaches the last stage at 4x4 (the ImageNet stem, 7x7 stride 2 plus a
max-pool, would shrink it to 1x1). `smallcnn` is a three-block CNN for CPU runs and `--smoke`.

    python -m q2_transfer.models      # prints each model's parameter count
"""

from __future__ import annotations

import torch
from torch import nn


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
    """`head(backbone(x))`. Everything but `head` is the backbone that carries over between tasks."""

    def __init__(self, backbone: nn.Module, head: nn.Linear):
        super().__init__()
        self.backbone = backbone
        self.head = head

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def resnet18(num_classes: int) -> TransferNet:
    backbone = ResNetBackbone((2, 2, 2, 2))
    return TransferNet(backbone, nn.Linear(backbone.out_features, num_classes))


def smallcnn(num_classes: int) -> TransferNet:
    backbone = SmallCNNBackbone()
    return TransferNet(backbone, nn.Linear(backbone.out_features, num_classes))


MODELS = {"resnet18": resnet18, "smallcnn": smallcnn}


def replace_head(net: TransferNet, num_classes: int) -> nn.Linear:
    """Give `net` a freshly initialised Linear head with `num_classes` outputs, on the old head's
    device and dtype, and return the old head (detached from `net`, weights untouched) so the
    source task can still be evaluated later with the new backbone."""
    old = net.head
    net.head = nn.Linear(old.in_features, num_classes).to(device=old.weight.device, dtype=old.weight.dtype)
    return old


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


if __name__ == "__main__":
    for name in sorted(MODELS):
        model = MODELS[name](10)
        print(f"{name:<10} backbone {count_parameters(model.backbone):>10,}  head(10) "
              f"{count_parameters(model.head):>6,}")
