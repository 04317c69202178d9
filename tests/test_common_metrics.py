"""common.metrics against hand-computed numbers."""

import numpy as np
import pytest
import torch

from common.metrics import accuracy, best_and_worst_class, confusion_matrix, count_parameters, f1_scores

Y_TRUE = [0, 0, 1, 1, 2, 2]
Y_PRED = [0, 1, 1, 1, 2, 0]


def test_accuracy_by_hand():
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)
    assert accuracy(torch.tensor(Y_TRUE), torch.tensor(Y_PRED)) == pytest.approx(4 / 6)


def test_f1_by_hand():
    # class 0: tp 1, fp 1, fn 1 -> F1 1/2; class 1: tp 2, fp 1, fn 0 -> 4/5; class 2: tp 1, fp 0,
    # fn 1 -> 2/3. Macro = mean; micro = accuracy for single-label data.
    scores = f1_scores(Y_TRUE, Y_PRED)
    assert scores["macro_f1"] == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    assert scores["micro_f1"] == pytest.approx(4 / 6)


def test_confusion_matrix_rows_are_true_classes():
    expected = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    matrix = confusion_matrix(Y_TRUE, Y_PRED, 3)
    assert (matrix == expected).all() and matrix.sum() == len(Y_TRUE)
    assert confusion_matrix([0], [0], 4).shape == (4, 4)  # unseen classes still get rows


def test_best_and_worst_class():
    result = best_and_worst_class(confusion_matrix(Y_TRUE, Y_PRED, 3), ["cat", "dog", "ship"])
    assert result["best_class"] == "dog" and result["best_class_accuracy"] == 1.0
    assert result["worst_class"] == "cat" and result["worst_class_accuracy"] == 0.5  # first of ties



def test_count_parameters_counts_trainable_weights():
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Conv2d(2, 4, 3))
    # By hand: Linear 3*2 + 2 = 8, Conv2d 2*4*3*3 + 4 = 76.
    assert count_parameters(model) == 84
    model[1].bias.requires_grad_(False)
    assert count_parameters(model) == 80
