"""The active-learning network: two convolutions, dropout, two fully connected layers.

    model = Net(in_channels=3, image_size=32, num_classes=10)
    log_probs = model(images)                     # (B, C) log-softmax, trained with NLL loss
    embedding = model.features(images)            # (B, 128): what Core-set measures distances in
    probs = model.stochastic_pred(images, 10)     # (B, C) mean of 10 MC-dropout predictions
    per_sample = model.mc_probabilities(images, 10)   # (10, B, C), for BALD

The layout is the report's `Net` (the PyTorch MNIST example's network): conv 3x3 (32) -> ReLU ->
conv 3x3 (64) -> ReLU -> max-pool 2 -> channel dropout 0.25 -> fc 128 -> ReLU -> dropout 0.5 ->
fc C -> log-softmax, sized here for `image_size` x `image_size` images with `in_channels`
channels. Departures from the report's code, each a bug fix:
- the ReLU after the second convolution, which the report's `forward` dropped (the MNIST
  example it copied has it);
- plain `Dropout` on the 128 hidden units: the report used `Dropout2d` there, which on a 2-D
  (batch, features) input does not drop features independently;
- `stochastic_pred` keeps exactly the training-time dropout layers on, instead of adding an extra
  dropout after the first convolution that the network was never trained with.
- `features` (the Core-set embedding) is the hidden layer after its ReLU, the representation the
  classifier reads; the report's `get_features` took it before the ReLU.

Running `python -m q3_active_learning.model` prints the parameter count for CIFAR-10 and
Flowers102 at 32x32.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from common.metrics import count_parameters


class Net(nn.Module):
    """Convolutions, dropout and fully connected layers with a log-softmax output.

    width: channels of the first convolution (the second has twice as many); the report's 32.
    hidden: size of the hidden fully connected layer, which is also the embedding size.
    conv_dropout: channel-dropout rate after the convolutions; dropout: rate on the hidden layer.
    """

    def __init__(self, in_channels: int = 3, image_size: int = 32, num_classes: int = 10,
                 width: int = 32, hidden: int = 128, conv_dropout: float = 0.25,
                 dropout: float = 0.5) -> None:
        super().__init__()
        side = (image_size - 4) // 2  # two unpadded 3x3 convolutions, then a 2x2 max-pool
        if side < 1:
            raise ValueError(f"image_size must be at least 6, got {image_size}")
        self.conv1 = nn.Conv2d(in_channels, width, 3)
        self.conv2 = nn.Conv2d(width, 2 * width, 3)
        self.fc1 = nn.Linear(2 * width * side * side, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)
        self.conv_dropout, self.dropout = conv_dropout, dropout

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The deterministic convolutional part (no dropout in it), (B, 2*width, side, side)."""
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        return F.max_pool2d(x, 2)

    def head(self, maps: torch.Tensor, stochastic: bool) -> torch.Tensor:
        """Dropout and the fully connected layers on the trunk's output; log-probabilities.
        `stochastic` switches both dropout layers on, whatever the module's mode."""
        x = F.dropout2d(maps, self.conv_dropout, training=stochastic)
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        x = F.dropout(x, self.dropout, training=stochastic)
        return F.log_softmax(self.fc2(x), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x), stochastic=self.training)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding Core-set works in: the hidden layer's activations (after the ReLU,
        before the classifier), with dropout off."""
        return F.relu(self.fc1(torch.flatten(self.trunk(x), 1)))

    def mc_probabilities(self, x: torch.Tensor, samples: int) -> torch.Tensor:
        """(samples, B, C) class probabilities, each from an independent dropout mask (MC
        dropout). The convolutions hold no dropout, so they run once and only the head is
        sampled: the same distribution as `samples` full forward passes, at a fraction of the cost."""
        if samples < 1:
            raise ValueError(f"samples must be positive, got {samples}")
        maps = self.trunk(x)
        return torch.stack([self.head(maps, stochastic=True).exp() for _ in range(samples)])

    def stochastic_pred(self, x: torch.Tensor, samples: int = 10) -> torch.Tensor:
        """(B, C) mean MC-dropout probabilities over `samples` passes with dropout kept on."""
        return self.mc_probabilities(x, samples).mean(dim=0)


if __name__ == "__main__":
    for name, classes in (("cifar10", 10), ("flowers102", 102)):
        print(f"{name:<11} Net(32x32, {classes:>3} classes): "
              f"{count_parameters(Net(num_classes=classes)):,} parameters")
