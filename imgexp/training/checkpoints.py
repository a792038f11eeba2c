"""What a run keeps while it trains, so a kill at any moment loses at most the epoch in progress.

Each epoch ends in this order (the callbacks' order in training/fit.py):

1. its row in history.csv (`HistoryLog`: the file is rewritten whole, atomically),
2. the best weights so far if this epoch is better (`BestWeights`),
3. the backup of the whole training state (`EpochBackup`): weights with the
   optimizer's state, named by the epochs done. This is the commit point: a
   resumed run goes on from the newest backup that reads back, and history.csv
   is cut back to the epochs before it, so an epoch half-recorded when the
   process died is simply trained again.

Every file goes through imgexp.safe_write (temporary file, fsync, rename), so a
reader never meets half a file; a backup that still does not read (a disk
error, a copy cut short) is skipped with one log line and the one before it
is used.
"""

import logging
import math
import re
import warnings
from pathlib import Path

import keras

from imgexp import safe_write
from imgexp.run_folder import HISTORY_FILE, MAXIMIZE, best_row, read_history

log = logging.getLogger(__name__)

BACKUP_NAME = re.compile(r"^epoch-(\d+)\.weights\.h5$")
BACKUPS_KEPT = 2  # the newest, and the one before it in case the newest cannot be read


def write_history(run_dir: Path, rows: list[dict[str, float]]) -> None:
    """history.csv in CSVLogger's layout: `epoch` first, then the other keys in sorted order."""
    keys = sorted({k for r in rows for k in r} - {"epoch"})
    table = [["epoch", *keys], *([int(r["epoch"]), *(r.get(k, "") for k in keys)] for r in rows)]
    safe_write.write_csv(run_dir / HISTORY_FILE, table, run_dir)


def keep_history_before(run_dir: Path, epoch: int) -> None:
    """Cut history.csv back to the epochs before `epoch` (those a resume does not train again)."""
    if (run_dir / HISTORY_FILE).exists():  # rewritten also when nothing is cut: a torn last line goes
        write_history(run_dir, [r for r in read_history(run_dir / HISTORY_FILE) if r["epoch"] < epoch])


class HistoryLog(keras.callbacks.Callback):
    """history.csv, one row per epoch, rewritten whole each epoch (other trials' pruners read it live)."""

    def __init__(self, run_dir: Path):
        super().__init__()
        self.run_dir = run_dir

    def on_epoch_end(self, epoch, logs=None):
        rows = [r for r in read_history(self.run_dir / HISTORY_FILE) if r["epoch"] != epoch]
        row = {"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}}
        write_history(self.run_dir, sorted([*rows, row], key=lambda r: r["epoch"]))


def save_weights(model: keras.Model, path: Path, root: Path) -> None:
    """`model.save_weights`, whole or not at all."""
    safe_write.write_with(path, lambda temp: model.save_weights(temp), root)


def load_model_weights(model: keras.Model, path: Path) -> None:
    """The model's weights from a .weights.h5. A file saved in the other phase of two-phase training
    holds that phase's optimizer; Keras then warns that it skips it, which is what is wanted here
    (the optimizer state that matters comes from a backup, restore_backup)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(path)


class BestWeights(keras.callbacks.Callback):
    """The best epoch's weights by `monitor`, judged against every earlier epoch of the run
    (also those trained before a resume: history.csv holds them)."""

    def __init__(self, run_dir: Path, path: Path, monitor: str, whole: keras.Model | None = None):
        super().__init__()
        self.run_dir, self.path, self.monitor, self.whole = run_dir, path, monitor, whole
        self.maximize = MAXIMIZE[monitor]
        best = best_row(read_history(run_dir / HISTORY_FILE), monitor)
        self.best = best[monitor] if best else None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or math.isnan(float(value)):
            return
        value = float(value)
        if self.best is None or (value > self.best if self.maximize else value < self.best):
            self.best = value
            save_weights(self.whole or self.model, self.path, self.run_dir)


class EpochBackup(keras.callbacks.Callback):
    """`folder/epoch-<n>.weights.h5` after each epoch: the model's weights and its optimizer's state
    (Keras keeps both in one .weights.h5) after n epochs of this phase's numbering.

    `whole` (here and in BestWeights): the model whose weights are saved when the one being fit is
    its head alone (training/features.py); both share the head's layers and the optimizer."""

    def __init__(self, run_dir: Path, folder: Path, whole: keras.Model | None = None):
        super().__init__()
        self.run_dir, self.folder, self.whole = run_dir, folder, whole

    def on_epoch_end(self, epoch, logs=None):
        save_weights(self.whole or self.model, self.folder / f"epoch-{epoch + 1:04d}.weights.h5", self.run_dir)
        for old in backups(self.folder)[BACKUPS_KEPT:]:
            old.unlink(missing_ok=True)


def backups(folder: Path) -> list[Path]:
    """The backups in `folder`, newest first."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if BACKUP_NAME.match(p.name)]
    return sorted(found, key=lambda p: int(BACKUP_NAME.match(p.name).group(1)), reverse=True)


def restore_backup(model: keras.Model, folder: Path) -> int | None:
    """Load the newest backup that reads back into the compiled `model`; the epochs it had done, or None."""
    for path in backups(folder):
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)  # so its state has somewhere to go
        try:
            model.load_weights(path)
        except Exception as err:  # h5py's OSError, or Keras' ValueError for a file of another shape
            log.warning("%s cannot be read (%s); trying an earlier backup", path, str(err).splitlines()[0])
            continue
        return int(BACKUP_NAME.match(path.name).group(1))
    return None


def has_backup(folder: Path) -> bool:
    return bool(backups(folder))


class HistoryEarlyStopping(keras.callbacks.Callback):
    """Keras' EarlyStopping (no improvement of `monitor` for `patience` epochs), counted from
    history.csv so that a resumed run stops at the same epoch as one never interrupted."""

    def __init__(self, run_dir: Path, monitor: str, patience: int):
        super().__init__()
        self.run_dir, self.monitor, self.patience = run_dir, monitor, patience

    def on_epoch_end(self, epoch, logs=None):
        best = best_row(read_history(self.run_dir / HISTORY_FILE), self.monitor)  # HistoryLog wrote this epoch
        if best is not None and epoch - int(best["epoch"]) >= self.patience:
            self.model.stop_training = True
