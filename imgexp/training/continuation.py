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

import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from imgexp import safe_write
from imgexp.run_folder import (BACKUP_DIR, BEST_WEIGHTS, HISTORY_FILE, LAST_OPTIMIZER, LAST_WEIGHTS, MODEL_FILE,
                               open_run, read_history)
from imgexp.training.checkpoints import has_backup, load_model_weights, save_weights, write_history
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
    rows = [r for r in read_history(parent_dir / HISTORY_FILE) if r["epoch"] < initial_epoch]
    if rows:
        write_history(run_dir, rows)


def save_last_state(model: keras.Model, run_dir: Path) -> None:
    """The weights and optimizer state at the end of training, for a trial that continues this one."""
    save_weights(model, run_dir / LAST_WEIGHTS, run_dir)
    state = [np.asarray(keras.ops.convert_to_numpy(v)) for v in model.optimizer.variables]
    safe_write.write_with(run_dir / LAST_OPTIMIZER, lambda temp: np.savez(temp, *state), run_dir)


def parent_optimizer_state(path: Path) -> list[np.ndarray] | None:
    """The parent's saved optimizer state, or None (missing, or damaged: said in one log line)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as saved:
            return [saved[f"arr_{i}"] for i in range(len(saved.files))]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        log.warning("%s cannot be read (%s); this trial starts a new optimizer", path, err)
        return None


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
    if any(has_backup(phase) for phase in (run_dir / BACKUP_DIR).glob("*")):
        return None  # resumed past its first epoch: its own backup restores the trial's weights
    parent_best_weights(model, continuation.parent_dir)
    save_weights(model, run_dir / BEST_WEIGHTS, run_dir)  # the parent's best is the best so far
    if not resumed:
        copy_parent_history(continuation.parent_dir, run_dir, continuation.initial_epoch)
    log.info("continuing trial %s from epoch %d", continuation.parent_trial, continuation.initial_epoch)
    last = continuation.parent_dir / LAST_WEIGHTS
    if not last.is_file():
        return None
    try:  # training goes on from where the parent stopped
        load_model_weights(model, last)
    except Exception as err:  # h5py's OSError for a cut file
        log.warning("%s cannot be read (%s); this trial goes on from its parent's best weights instead",
                    last, str(err).splitlines()[0])
        parent_best_weights(model, continuation.parent_dir)
        return None
    return parent_optimizer_state(continuation.parent_dir / LAST_OPTIMIZER)
