"""Classification metrics with scikit-learn underneath, taking tensors, arrays or lists, and a
model's size (count_parameters)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn import metrics as skm


def _as_numpy(values) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def accuracy(y_true, y_pred) -> float:
    """Fraction of exact matches."""
    y_true, y_pred = _as_numpy(y_true), _as_numpy(y_pred)
    if y_true.size == 0:
        return float("nan")
    return float((y_true == y_pred).mean())


def f1_scores(y_true, y_pred, num_classes: int | None = None) -> dict[str, float]:
    """Macro and micro F1. For single-label multi-class data micro-F1 equals accuracy, since
    every wrong prediction is one false positive and one false negative."""
    y_true, y_pred = _as_numpy(y_true), _as_numpy(y_pred)
    labels = list(range(num_classes)) if num_classes is not None else None
    return {
        "macro_f1": float(skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "micro_f1": float(skm.f1_score(y_true, y_pred, labels=labels, average="micro", zero_division=0)),
    }


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts; rows are true classes, columns predictions."""
    return skm.confusion_matrix(_as_numpy(y_true), _as_numpy(y_pred), labels=list(range(num_classes)))


def best_and_worst_class(matrix: np.ndarray, class_names: Sequence[str]) -> dict[str, object]:
    """Per-class accuracy (recall) from a confusion matrix, with the best and worst class."""
    matrix = np.asarray(matrix)
    support = matrix.sum(axis=1)
    recall = np.divide(np.diag(matrix), support, out=np.zeros(len(support)), where=support > 0)
    best, worst = int(np.argmax(recall)), int(np.argmin(recall))
    return {
        "per_class_accuracy": {name: float(r) for name, r in zip(class_names, recall)},
        "best_class": class_names[best], "best_class_accuracy": float(recall[best]),
        "worst_class": class_names[worst], "worst_class_accuracy": float(recall[worst]),
    }


def count_parameters(model) -> int:
    """Number of trainable parameters (those with requires_grad) of a torch module."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
