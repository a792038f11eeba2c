"""The per-epoch history a run keeps in history.csv (Keras CSVLogger, appended across resumes)."""

import csv
import math
from pathlib import Path

MAXIMIZE = {"val_accuracy": True, "val_loss": False}


def read_history(path: Path) -> list[dict[str, float]]:
    """Rows by epoch (0-based, as Keras logs them); a re-run epoch keeps its last row. A row cut short
    (a process killed mid-write, or another trial's file read while it is written) is skipped."""
    if not path.exists():
        return []
    rows = {}
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            try:
                rows[int(r["epoch"])] = {k: float(v) for k, v in r.items() if v != ""}
            except (TypeError, ValueError):  # a missing field reads as None
                continue
    return [rows[e] for e in sorted(rows)]


def best_row(history: list[dict[str, float]], monitor: str) -> dict[str, float] | None:
    """The row with the best monitored value (the first, on ties; NaN never), or None."""
    rows = [r for r in history if monitor in r and not math.isnan(r[monitor]) and not math.isnan(r.get("loss", 0.0))]
    if not rows:
        return None
    pick = max if MAXIMIZE[monitor] else min
    return pick(rows, key=lambda r: r[monitor])
