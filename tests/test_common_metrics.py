"""common.metrics against hand-computed numbers and scikit-learn's metrics."""

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


@pytest.mark.parametrize("num_classes, high", [(10, 10), (10, 4), (None, 7)])
def test_f1_and_confusion_matrix_agree_with_scikit_learn(num_classes, high):
    # high < num_classes: classes with neither true nor predicted samples (F1 0, scikit-learn's
    # zero_division=0); None: the labels present in either array.
    from sklearn import metrics as skm

    rng = np.random.default_rng(0)
    for size in (1, 13, 500):
        y_true, y_pred = rng.integers(0, high, size), rng.integers(0, high, size)
        y_pred[: size // 2] = y_true[: size // 2]  # better than chance
        labels = list(range(num_classes)) if num_classes else None
        scores = f1_scores(torch.from_numpy(y_true), y_pred, num_classes)
        for average in ("macro", "micro"):
            expected = skm.f1_score(y_true, y_pred, labels=labels, average=average, zero_division=0)
            assert scores[f"{average}_f1"] == pytest.approx(expected, abs=1e-12)
        n = num_classes or high
        assert (confusion_matrix(y_true, y_pred, n) == skm.confusion_matrix(y_true, y_pred,
                                                                             labels=list(range(n)))).all()


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
