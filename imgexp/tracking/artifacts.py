"""The classification report a finished run (or an evaluation) leaves beside its model."""

from pathlib import Path

from imgexp import safe_write

import numpy as np
from sklearn.metrics import classification_report


def write_classification_report(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str], path: Path) -> str:
    report = classification_report(
        y_true, y_pred, labels=list(range(len(class_names))), target_names=class_names, digits=4, zero_division=0
    )
    safe_write.write_text(path, report)
    return report
