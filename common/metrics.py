"""Classification metrics taking tensors, arrays or lists, and a model's size (count_parameters).
Written with numpy and tested against scikit-learn's (tests/test_common_metrics.py): importing
scikit-learn costs every short run about a second."""

from __future__ import annotations

from typing import Sequence

import numpy as np


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
    """Macro and micro F1 over the classes 0..num_classes-1 (default: the labels that occur in
    either), a class without true or predicted samples scoring 0 (scikit-learn's
    `zero_division=0`). For single-label multi-class data micro-F1 equals accuracy, since every
    wrong prediction is one false positive and one false negative."""
    y_true, y_pred = _as_numpy(y_true).ravel(), _as_numpy(y_pred).ravel()
    labels = np.arange(num_classes) if num_classes is not None else np.union1d(y_true, y_pred)
    true_positives = np.array([np.sum((y_true == label) & (y_pred == label)) for label in labels])
    # per class 2 TP / (2 TP + FP + FN) = 2 TP / (predicted + true)
    counts = np.array([np.sum(y_pred == label) + np.sum(y_true == label) for label in labels])
    per_class = np.divide(2 * true_positives, counts, out=np.zeros(len(labels)), where=counts > 0)
    total = counts.sum()
    return {"macro_f1": float(per_class.mean()) if len(labels) else 0.0,
            "micro_f1": float(2 * true_positives.sum() / total) if total else 0.0}


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts; rows are true classes, columns predictions. Pairs with a
    label outside 0..num_classes-1 are not counted."""
    y_true = _as_numpy(y_true).ravel().astype(np.int64)
    y_pred = _as_numpy(y_pred).ravel().astype(np.int64)
    keep = (y_true >= 0) & (y_true < num_classes) & (y_pred >= 0) & (y_pred < num_classes)
    cells = np.bincount(num_classes * y_true[keep] + y_pred[keep], minlength=num_classes * num_classes)
    return cells.reshape(num_classes, num_classes)


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
