"""The tutorial's training curves and a confusion matrix, as PNG files."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402


def plot_history(history: list[dict[str, float]], path: Path) -> None:
    """Accuracy and loss per epoch, training vs validation, side by side."""
    epochs = [int(r["epoch"]) + 1 for r in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("accuracy", "loss")):
        ax.plot(epochs, [r.get(metric, np.nan) for r in history], "o-", label=f"Training {metric}")
        ax.plot(epochs, [r.get(f"val_{metric}", np.nan) for r in history], "o-", label=f"Validation {metric}")
        ax.set_title(f"Training and validation {metric}")
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str], path: Path) -> None:
    size = max(4.0, 0.5 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, labels=list(range(len(class_names))), display_labels=class_names,
        ax=ax, colorbar=False, xticks_rotation="vertical",
    )
    ax.set_title("Confusion matrix (validation)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
