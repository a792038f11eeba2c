"""The tutorial's training curves and a confusion matrix, as PNG files.

Figures are drawn with matplotlib's object API (no pyplot state, nothing
kept between runs) and a fixed layout. A search's trials skip them (0.4 s a
trial); `draw_run_plots` draws them later from the files the run keeps.
"""

import csv
import json
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import confusion_matrix

from imgexp import safe_write
from imgexp.run_folder import CONFUSION_FILE, CONFUSION_PLOT, HISTORY_FILE, HISTORY_PLOT, LABELS_FILE
from imgexp.run_folder import read_history


def save(fig: Figure, path: Path) -> None:
    safe_write.write_with(path, lambda temp: FigureCanvasAgg(fig).print_png(str(temp)))


def plot_history(history: list[dict[str, float]], path: Path) -> None:
    """Accuracy and loss per epoch, training vs validation, side by side."""
    epochs = [int(r["epoch"]) + 1 for r in history]
    fig = Figure(figsize=(10, 4), dpi=100)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.9, wspace=0.2)
    for ax, metric in zip(fig.subplots(1, 2), ("accuracy", "loss")):
        ax.plot(epochs, [r.get(metric, np.nan) for r in history], "o-", label=f"Training {metric}")
        ax.plot(epochs, [r.get(f"val_{metric}", np.nan) for r in history], "o-", label=f"Validation {metric}")
        ax.set_title(f"Training and validation {metric}")
        ax.set_xlabel("epoch")
        ax.legend()
    save(fig, path)


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str], path: Path) -> np.ndarray:
    """scikit-learn's confusion matrix (true classes as rows), also written as CSV to `path`."""
    matrix = confusion_matrix(y_true, y_pred, labels=list(range(len(class_names))))
    safe_write.write_csv(path, [["true \\ predicted", *class_names],
                                *([name, *row] for name, row in zip(class_names, matrix.tolist()))])
    return matrix


def read_confusion_counts(path: Path) -> np.ndarray:
    with path.open(newline="") as f:
        return np.array([[int(v) for v in row[1:]] for row in list(csv.reader(f))[1:]])


def plot_confusion_matrix(matrix: np.ndarray, class_names: list[str], path: Path) -> None:
    """Counts in the cells, true classes as rows."""
    n = len(class_names)
    size = max(4.0, 0.5 * n + 2)
    fig = Figure(figsize=(size, size), dpi=100)
    fig.subplots_adjust(left=0.18, right=0.97, bottom=0.18, top=0.93)
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    ax.set(xticks=range(n), yticks=range(n), xlabel="Predicted label", ylabel="True label",
           title="Confusion matrix (validation)")
    ax.set_xticklabels(class_names, rotation=90)
    ax.set_yticklabels(class_names)
    if n <= 30:  # beyond that the counts would be unreadable
        threshold = matrix.max() / 2 if matrix.size else 0
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", color="white" if count > threshold else "black")
    save(fig, path)


def draw_run_plots(run_dir: Path) -> None:
    """history.png and confusion_matrix.png of a finished run folder, from its history.csv and counts."""
    plot_history(read_history(run_dir / HISTORY_FILE), run_dir / HISTORY_PLOT)
    if (run_dir / CONFUSION_FILE).is_file():
        class_names = json.loads((run_dir / LABELS_FILE).read_text())
        plot_confusion_matrix(read_confusion_counts(run_dir / CONFUSION_FILE), class_names, run_dir / CONFUSION_PLOT)
