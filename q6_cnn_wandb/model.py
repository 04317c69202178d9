"""The CNN of question 6: LeNet-5 as in PyTorch's CIFAR-10 tutorial, and its parameter table.

The assignment's diagram of the layer widths is not available, so the network is the one of the
"Training a classifier" tutorial (pytorch.org/tutorials/beginner/blitz/cifar10_tutorial.html):

    conv1 3->6 5x5, ReLU, max-pool 2 -> conv2 6->16 5x5, ReLU, max-pool 2 -> flatten (16*5*5)
    -> fc1 400->120, ReLU -> fc2 120->84, ReLU -> fc3 84->10

Every width is a constructor argument (and a flag of train.py). The default has 62,006
parameters: 456 + 2,416 + 48,120 + 10,164 + 850.

    python q6_cnn_wandb/model.py            # prints the parameter table of the default network
    python q6_cnn_wandb/model.py --conv1 32 --conv2 64 --fc1 256 --fc2 128

`parameter_table(model, input_shape)` runs one forward pass with hooks on every leaf module, so
the table's sizes and counts always describe the module as built, never numbers typed in.
"""

from __future__ import annotations

import argparse
from collections import OrderedDict
from typing import NamedTuple, Sequence

import torch
from torch import nn

from common.cli import HelpFormatter


class LeNet5(nn.Module):
    """Two 5x5 convolutions with ReLU and 2x2 max-pooling, then three fully connected layers.

    Every operation is its own module (no functional ReLU or pooling in `forward`), so that the
    parameter table lists the whole network in order."""

    def __init__(self, conv1: int = 6, conv2: int = 16, fc1: int = 120, fc2: int = 84,
                 num_classes: int = 10, in_channels: int = 3, image_size: int = 32,
                 kernel_size: int = 5) -> None:
        super().__init__()
        self.features = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(in_channels, conv1, kernel_size)),
            ("relu1", nn.ReLU()),
            ("pool1", nn.MaxPool2d(2)),
            ("conv2", nn.Conv2d(conv1, conv2, kernel_size)),
            ("relu2", nn.ReLU()),
            ("pool2", nn.MaxPool2d(2)),
        ]))
        # Spatial side after conv (no padding) -> pool -> conv -> pool: 32 -> 28 -> 14 -> 10 -> 5.
        side = ((image_size - kernel_size + 1) // 2 - kernel_size + 1) // 2
        if side < 1:
            raise ValueError(f"image_size {image_size} is too small for two {kernel_size}x{kernel_size} "
                             f"convolutions with 2x2 pooling")
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(OrderedDict([
            ("fc1", nn.Linear(conv2 * side * side, fc1)),
            ("relu3", nn.ReLU()),
            ("fc2", nn.Linear(fc1, fc2)),
            ("relu4", nn.ReLU()),
            ("fc3", nn.Linear(fc2, num_classes)),
        ]))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.features(images)))


class LayerRow(NamedTuple):
    """One row of the parameter table: sizes exclude the batch dimension."""

    layer: str
    input_size: tuple[int, ...]
    output_size: tuple[int, ...]
    params: int


def parameter_table(model: nn.Module, input_shape: Sequence[int]) -> list[LayerRow]:
    """(layer, input size, output size, number of parameters) for every leaf module, in the
    order the forward pass calls them, measured with forward hooks on one zero input of shape
    (1, *input_shape). A module called twice is listed twice but its parameters counted once.
    Parameters held directly by a non-leaf module (none in LeNet5) are not listed."""
    rows: list[LayerRow] = []
    counted: set[int] = set()
    handles = []

    def hook(name: str):
        def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            params = 0
            if id(module) not in counted:
                counted.add(id(module))
                params = sum(p.numel() for p in module.parameters(recurse=False))
            rows.append(LayerRow(name, tuple(inputs[0].shape[1:]), tuple(output.shape[1:]), params))
        return record

    for name, module in model.named_modules():
        if name and not any(True for _ in module.children()):
            handles.append(module.register_forward_hook(hook(name)))
    was_training = model.training
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return rows


def format_size(size: Sequence[int]) -> str:
    """(16, 5, 5) -> '16x5x5'."""
    return "x".join(str(s) for s in size)


def format_table(rows: Sequence[LayerRow]) -> str:
    """The parameter table as fixed-width text with a total line."""
    lines = [f"{'layer':<22}{'input':>12}{'output':>12}{'params':>10}", "-" * 56]
    lines += [f"{row.layer:<22}{format_size(row.input_size):>12}{format_size(row.output_size):>12}"
              f"{row.params:>10,}" for row in rows]
    lines += ["-" * 56, f"{'total':<46}{sum(row.params for row in rows):>10,}"]
    return "\n".join(lines)


def add_width_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--conv1 --conv2 --fc1 --fc2: the layer widths (defaults: the tutorial's LeNet-5)."""
    group = parser.add_argument_group("network widths")
    group.add_argument("--conv1", type=int, default=6, help="channels of the first 5x5 convolution")
    group.add_argument("--conv2", type=int, default=16, help="channels of the second 5x5 convolution")
    group.add_argument("--fc1", type=int, default=120, help="units of the first fully connected layer")
    group.add_argument("--fc2", type=int, default=84, help="units of the second fully connected layer")
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    add_width_args(parser)
    return parser.parse_args(argv)


def main(argv=None) -> list[LayerRow]:
    args = parse_args(argv)
    model = LeNet5(args.conv1, args.conv2, args.fc1, args.fc2)
    rows = parameter_table(model, (3, 32, 32))
    print(format_table(rows))
    return rows


if __name__ == "__main__":
    main()
