"""Hyperband's promoted trials: go on from where the parent trial's training stopped, with its epochs.

KerasTuner gives a promoted trial `tuner/trial_id` (its parent in the previous
round) and `tuner/initial_epoch`; its own tuners load the parent's best checkpoint
and fit from there. imgexp trials are runs, so the run does it, and goes on from
where the parent's training stopped: its last weights (last.weights.h5, kept by
every Hyperband trial). Its best weights (model.keras) are the best so far, and
its history.csv rows up to `initial_epoch` are copied, so the trial's epochs
continue the parent's numbering.

Why the last weights and the optimizer's state, not the best weights and a new
optimizer as KerasTuner does (experiments/search_efficiency/RESULTS.md): on a
task that sits at chance for its first epochs, the best-by-val_accuracy epoch of
a parent is its first (ties keep the first), and a fresh Adam's first steps
(each weight moved by about the learning rate) knocked trained parents back to
chance; continued Hyperband then found worse models than Hyperband from scratch.
"""

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from imgexp.run_folder import (BACKUP_DIR, BEST_WEIGHTS, HISTORY_FILE, LAST_OPTIMIZER, LAST_WEIGHTS, MODEL_FILE,
                               open_run)
from imgexp.errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Continuation:
    parent_dir: Path  # the parent trial's run folder (or the same execution_i of it)
    parent_trial: str  # its trial id, for metrics.json's continued_from
    initial_epoch: int  # epochs the parent trained: this run starts with epoch initial_epoch + 1


def parent_best_weights(model: keras.Model, parent_dir: Path) -> None:
    """Load the parent's best weights (its saved model wraps the classifier in a resizing layer)."""
    path = parent_dir / MODEL_FILE
    if not path.is_file():
        raise UserError(f"{parent_dir}: the trial this one continues has no {MODEL_FILE}; the search folder must "
                        "hold every trial (a shared filesystem for workers on other machines)")
    saved = open_run(parent_dir).load_model()  # a damaged file is one line, as for the tools
    model.set_weights(saved.layers[-1].get_weights())


def copy_parent_history(parent_dir: Path, run_dir: Path, initial_epoch: int) -> None:
    with (parent_dir / HISTORY_FILE).open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["epoch"]) < initial_epoch]
    if not rows:
        return
    with (run_dir / HISTORY_FILE).open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def save_last_state(model: keras.Model, run_dir: Path) -> None:
    """The weights and optimizer state at the end of training, for a trial that continues this one."""
    model.save_weights(run_dir / LAST_WEIGHTS)
    np.savez(run_dir / LAST_OPTIMIZER, *[np.asarray(keras.ops.convert_to_numpy(v)) for v in model.optimizer.variables])


def restore_optimizer(model: keras.Model, state: list[np.ndarray]) -> None:
    """Give the compiled model's optimizer the parent's state (same network, same optimizer settings)."""
    model.optimizer.build(model.trainable_variables)
    variables = model.optimizer.variables
    if len(variables) != len(state) or any(tuple(v.shape) != s.shape for v, s in zip(variables, state)):
        log.warning("the parent trial's optimizer state does not fit this one; starting a new optimizer")
        return
    for variable, value in zip(variables, state):
        variable.assign(value)


def start_from_parent(model: keras.Model, continuation: Continuation, run_dir: Path,
                      resumed: bool) -> list[np.ndarray] | None:
    """Before fit: the parent's last weights (unless this run's own backup will restore newer ones), its
    best as the best so far, and (first start only) the parent's epochs in history.csv. Returns the
    parent's optimizer state, for `restore_optimizer` once the model is compiled."""
    if (run_dir / BACKUP_DIR).exists():
        return None  # resumed past its first epoch: BackupAndRestore restores the trial's own weights
    parent_best_weights(model, continuation.parent_dir)
    (run_dir / BEST_WEIGHTS).parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(run_dir / BEST_WEIGHTS)  # the parent's best is the best so far
    if (continuation.parent_dir / LAST_WEIGHTS).is_file():  # training goes on from where the parent stopped
        model.load_weights(continuation.parent_dir / LAST_WEIGHTS)
    if not resumed:
        copy_parent_history(continuation.parent_dir, run_dir, continuation.initial_epoch)
    log.info("continuing trial %s from epoch %d", continuation.parent_trial, continuation.initial_epoch)
    optimizer_file = continuation.parent_dir / LAST_OPTIMIZER
    if not optimizer_file.is_file():
        return None
    with np.load(optimizer_file) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]
