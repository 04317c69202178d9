"""q6_cnn_wandb: LeNet-5's parameter table against hand counts, and the two losses against values
computed by hand on hand-made logits."""

import math

import pytest
import torch
from torch import nn

from q6_cnn_wandb.model import LeNet5, parameter_table
from q6_cnn_wandb.train import (CONFIGS, LOSSES, gradient_ratio_at_uniform, parse_args,
                                uniform_prediction_loss)


def test_default_lenet_has_62006_parameters_by_hand_count():
    # weights + biases per layer: conv1 3*6*5*5 + 6 = 456, conv2 6*16*5*5 + 16 = 2,416,
    # fc1 (16*5*5)*120 + 120 = 48,120, fc2 120*84 + 84 = 10,164, fc3 84*10 + 10 = 850.
    hand = 456 + 2416 + 48120 + 10164 + 850
    assert hand == 62_006
    model = LeNet5()
    assert sum(p.numel() for p in model.parameters()) == hand
    rows = {row.layer: row for row in parameter_table(model, (3, 32, 32))}
    layers = ("features.conv1", "features.conv2", "classifier.fc1", "classifier.fc2", "classifier.fc3")
    assert [rows[name].params for name in layers] == [456, 2416, 48120, 10164, 850]
    # 32 -5+1-> 28 -pool-> 14 -5+1-> 10 -pool-> 5
    assert rows["features.conv1"].output_size == (6, 28, 28)
    assert rows["features.pool1"].output_size == (6, 14, 14)
    assert rows["features.pool2"].output_size == (16, 5, 5)
    assert rows["flatten"].output_size == (400,)
    assert rows["classifier.fc3"].input_size == (84,) and rows["classifier.fc3"].output_size == (10,)


@pytest.mark.parametrize("widths,image_size", [((6, 16, 120, 84), 32), ((8, 20, 64, 32), 32),
                                                ((3, 4, 10, 5), 36)])
def test_parameter_table_rows_match_hand_counts(widths, image_size):
    c1, c2, f1, f2 = widths
    # conv: in*out*5*5 + out, linear: in*out + out; a 5x5 convolution without padding takes 4
    # pixels off the side, a 2x2 pooling halves it: 32 -> 28 -> 14 -> 10 -> 5, 36 -> 32 -> 16 -> 12 -> 6.
    s1 = image_size - 4
    s2 = s1 // 2 - 4
    s3 = s2 // 2
    expected = [
        ("features.conv1", (3, image_size, image_size), (c1, s1, s1), 3 * c1 * 25 + c1),
        ("features.relu1", (c1, s1, s1), (c1, s1, s1), 0),
        ("features.pool1", (c1, s1, s1), (c1, s1 // 2, s1 // 2), 0),
        ("features.conv2", (c1, s1 // 2, s1 // 2), (c2, s2, s2), c1 * c2 * 25 + c2),
        ("features.relu2", (c2, s2, s2), (c2, s2, s2), 0),
        ("features.pool2", (c2, s2, s2), (c2, s3, s3), 0),
        ("flatten", (c2, s3, s3), (c2 * s3 * s3,), 0),
        ("classifier.fc1", (c2 * s3 * s3,), (f1,), c2 * s3 * s3 * f1 + f1),
        ("classifier.relu3", (f1,), (f1,), 0),
        ("classifier.fc2", (f1,), (f2,), f1 * f2 + f2),
        ("classifier.relu4", (f2,), (f2,), 0),
        ("classifier.fc3", (f2,), (10,), f2 * 10 + 10),
    ]
    model = LeNet5(*widths, image_size=image_size)
    assert [tuple(row) for row in parameter_table(model, (3, image_size, image_size))] == expected
    # The hand counts cover every parameter of the module, so the table misses none.
    assert sum(row[3] for row in expected) == sum(p.numel() for p in model.parameters())


def test_parameter_table_counts_a_reused_module_once():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, nn.ReLU(), shared)  # the same weights applied twice
    rows = parameter_table(model, (4,))
    assert [row.params for row in rows] == [20, 0, 0]
    assert sum(row.params for row in rows) == sum(p.numel() for p in model.parameters()) == 20


def test_losses_on_hand_made_logits():
    # Row 1: logits ln(1, 2, 1) -> softmax (1/4, 1/2, 1/4), target 1.
    #   CE = -ln(1/2) = ln 2;  squared error, mean over 3 classes: (1/16 + 1/4 + 1/16) / 3 = 1/8.
    # Row 2: logits (0, 0, 0) -> (1/3, 1/3, 1/3), target 0.
    #   CE = ln 3;  squared error: ((2/3)^2 + 2 (1/3)^2) / 3 = 2/9.
    logits = torch.tensor([[0.0, math.log(2.0), 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    targets = torch.tensor([1, 0])
    assert LOSSES["ce"](logits, targets).item() == pytest.approx((math.log(2) + math.log(3)) / 2, abs=1e-12)
    assert LOSSES["mse"](logits, targets).item() == pytest.approx((1 / 8 + 2 / 9) / 2, abs=1e-12)


def test_uniform_prediction_loss_and_gradient_ratio_by_hand():
    # Uniform p = 1/10 against a one-hot target: ((0.9)^2 + 9 * 0.01) / 10 = 0.09; CE = ln 10.
    assert uniform_prediction_loss("mse", 10) == pytest.approx(0.09)
    assert uniform_prediction_loss("ce", 10) == pytest.approx(math.log(10))
    uniform = torch.zeros(3, 10)
    assert LOSSES["mse"](uniform, torch.tensor([0, 4, 9])).item() == pytest.approx(0.09)
    # At the uniform prediction the squared error's logit gradient is 2/K^2 times the CE's.
    assert gradient_ratio_at_uniform(10) == pytest.approx(2 / 100)
    assert gradient_ratio_at_uniform(4) == pytest.approx(2 / 16)


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_configurations_carry_the_assignment_hyper_parameters(config):
    args = parse_args(["--config", str(config)])
    expected = {1: ("sgd", "ce", 0.001, 0.9), 2: ("adam", "ce", 0.01, None),
                3: ("sgd", "mse", 0.001, 0.9), 4: ("adam", "mse", 0.01, None)}[config]
    assert (args.optimizer, args.loss, args.lr, args.momentum) == expected
    assert args.epochs == 20 and args.dataset == "cifar10"


def test_config_contradicting_an_explicit_flag_is_an_argument_error():
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--config", "1", "--loss", "mse"])
    assert exit_info.value.code == 2
