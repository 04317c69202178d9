"""What a question-6 run logs about its final model, shared by train.py and resnet34_features.py:
the confusion matrix (PNG in the run folder, `wandb.plot.confusion_matrix` in W&B), the best and
worst class, and sample test predictions (a PNG grid locally plus a CSV, a `wandb.Table` of
`wandb.Image`s with predicted and true labels in W&B).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from common.atomic import atomic_write_text
from common.metrics import accuracy, best_and_worst_class, confusion_matrix


def confusion_figure(matrix: np.ndarray, class_names: Sequence[str], title: str = "", ax: Any = None):
    """Heat map of a confusion matrix (rows: true class, columns: prediction) with the counts
    written in the cells. Returns the figure (a new one unless `ax` is given)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix)
    figure = None
    if ax is None:
        figure, ax = plt.subplots(figsize=(6.2, 5.4))
    ax.imshow(matrix, cmap="Blues")
    ticks = range(len(class_names))
    ax.set_xticks(ticks, labels=list(class_names), rotation=60, ha="right", fontsize=7)
    ax.set_yticks(ticks, labels=list(class_names), fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=6,
                    color="white" if matrix[i, j] > threshold else "black")
    return figure if figure is not None else ax.figure


def sample_grid_figure(images: torch.Tensor, predictions: Sequence[int], labels: Sequence[int],
                       class_names: Sequence[str], columns: int = 8):
    """uint8 (N, 3, H, W) images in a grid, each titled 'pred / true' (green when right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(1, -(-len(images) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.8 * rows), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= len(images):
            continue
        ax.imshow(images[index].permute(1, 2, 0).cpu().numpy())
        right = predictions[index] == labels[index]
        ax.set_title(f"{class_names[predictions[index]]}\n/ {class_names[labels[index]]}", fontsize=7,
                     color="green" if right else "red")
    figure.suptitle("sample test predictions: predicted / true", fontsize=9)
    return figure


def sample_indices(count: int, num_samples: int, seed: int) -> torch.Tensor:
    """A seeded random choice of test examples to show (the same ones for every run)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(count, generator=generator)[:num_samples].sort().values


def log_final_results(run: Any, y_true: torch.Tensor, y_pred: torch.Tensor, images: torch.Tensor,
                      class_names: Sequence[str], title: str, num_samples: int = 32,
                      seed: int = 0) -> dict[str, Any]:
    """Log the confusion matrix and sample predictions of the final model to `run`, and return
    the summary entries: test accuracy, confusion matrix, per-class accuracy, best/worst class."""
    import matplotlib.pyplot as plt

    y_true, y_pred = torch.as_tensor(y_true).cpu(), torch.as_tensor(y_pred).cpu()
    names = list(class_names)
    matrix = confusion_matrix(y_true, y_pred, len(names))
    classes = best_and_worst_class(matrix, names)
    figure = confusion_figure(matrix, names, title)
    run.image("confusion_matrix", figure)
    plt.close(figure)
    run.wandb_log(lambda wandb: {"confusion_matrix_plot": wandb.plot.confusion_matrix(
        y_true=y_true.tolist(), preds=y_pred.tolist(), class_names=names)})

    chosen = sample_indices(len(y_true), num_samples, seed)
    shown, predicted, truth = images[chosen].cpu(), y_pred[chosen].tolist(), y_true[chosen].tolist()
    figure = sample_grid_figure(shown, predicted, truth, names)
    run.image("sample_predictions", figure)
    plt.close(figure)
    if getattr(run, "active", False):
        lines = ["index,prediction,truth,correct"]
        lines += [f"{i},{names[p]},{names[t]},{p == t}" for i, p, t in zip(chosen.tolist(), predicted, truth)]
        atomic_write_text(run.dir / "tables" / "sample_predictions.csv", "\n".join(lines) + "\n")

    def sample_table(wandb):
        rows = [[int(i), wandb.Image(image.permute(1, 2, 0).numpy()), names[p], names[t], p == t]
                for i, image, p, t in zip(chosen.tolist(), shown, predicted, truth)]
        return {"sample_predictions_table": wandb.Table(
            columns=["index", "image", "prediction", "truth", "correct"], data=rows)}

    run.wandb_log(sample_table)
    return {"test_accuracy": accuracy(y_true, y_pred), "test_size": int(len(y_true)),
            "class_names": names, "confusion_matrix": matrix.tolist(), **classes}
