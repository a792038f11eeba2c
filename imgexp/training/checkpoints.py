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

While the head trains on stored features the model before it is frozen, so the
best and backup files hold the head alone (`.head.` in their names: a few KB
where the whole model's weights take MB, written 1-2 times an epoch), and the
frozen part is written once per run beside them (FROZEN_PART_WEIGHTS, marked
with its weights' key): a resumed run takes its frozen weights from that file,
not from rebuilding it, unless its frozen part holds them already.
"""

import logging
import math
import re
import warnings
from pathlib import Path

import h5py
import keras
import numpy as np

from imgexp import safe_write
from imgexp.data.run_cache import RunCache
from imgexp.models.backbones import split_at_backbone
from imgexp.models.identity import weights_key
from imgexp.run_folder import (BEST_WEIGHTS, FROZEN_PART_WEIGHTS, HEAD_BEST_WEIGHTS, HISTORY_FILE, MAXIMIZE, best_row,
                               read_history)

log = logging.getLogger(__name__)

BACKUP_NAME = re.compile(r"^epoch-(\d+)(\.head)?\.weights\.h5$")
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
    (also those trained before a resume: history.csv holds them), written to `path`."""

    def __init__(self, run_dir: Path, path: Path, monitor: str):
        super().__init__()
        self.run_dir, self.path, self.monitor = run_dir, path, monitor
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
            save_weights(self.model, self.path, self.run_dir)


class EpochBackup(keras.callbacks.Callback):
    """`folder/epoch-<n>.weights.h5` after each epoch: the model's weights and its optimizer's state
    (Keras keeps both in one .weights.h5) after n epochs of this phase's numbering;
    `epoch-<n>.head.weights.h5` when the model being fit is the head alone."""

    def __init__(self, run_dir: Path, folder: Path, head_only: bool = False):
        super().__init__()
        self.run_dir, self.folder, self.kind = run_dir, folder, ".head" if head_only else ""

    def on_epoch_end(self, epoch, logs=None):
        save_weights(self.model, self.folder / f"epoch-{epoch + 1:04d}{self.kind}.weights.h5", self.run_dir)
        for old in backups(self.folder)[BACKUPS_KEPT:]:
            old.unlink(missing_ok=True)


def head_of(model: keras.Model, optimizer: bool = False) -> keras.Model:
    """The head of a backbone model (sharing its layers); compiled with `model`'s optimizer when
    `optimizer`, so that a head-only file's optimizer state goes into it."""
    head = split_at_backbone(model)[1]
    if optimizer and model.optimizer is not None:
        head.compile(optimizer=model.optimizer, loss=model.loss)
    return head


FROZEN_FILE = "frozen part file"  # the RunCache kind: FROZEN_PART_WEIGHTS' bytes, by the weights they hold
DIGEST_ATTRIBUTE = "imgexp_weights_key"  # in FROZEN_PART_WEIGHTS: imgexp.models.identity.weights_key


def save_frozen_part(model: keras.Model, run_dir: Path, frozen_weights: str, cache: RunCache | None = None) -> None:
    """The weights of everything before the head, which the head-only files go with, marked with
    `frozen_weights` (their weights_key, so that load_head_file can tell a frozen part that holds
    them already). Keras takes 0.13 s to write a MobileNetV2's, so the file's bytes are kept in
    `cache` and the runs after the first that freeze the same weights write those (0.01 s)."""
    path = run_dir / FROZEN_PART_WEIGHTS
    written = cache.lookup(FROZEN_FILE, frozen_weights) if cache is not None else None
    if written is not None:
        safe_write.write_bytes(path, written, run_dir)
        return

    def write(temp: Path) -> None:
        split_at_backbone(model)[0].save_weights(temp)
        with h5py.File(temp, "a") as file:  # fixed-length bytes: marked_weights knows their size before reading
            file.attrs[DIGEST_ATTRIBUTE] = np.bytes_(frozen_weights)

    safe_write.write_with(path, write, run_dir)
    if cache is not None:
        cache.put(FROZEN_FILE, frozen_weights, path.read_bytes())


MARK_BYTES = 64  # a weights_key is 32 hex digits; a longer mark is not imgexp's


def marked_weights(path: Path) -> str | None:
    """The weights_key a frozen part's file is marked with, or None: unmarked, not readable, or a
    mark that is not one (its type and size are checked before it is read: a run folder may come
    from anyone)."""
    try:
        with h5py.File(path, "r") as file:
            if DIGEST_ATTRIBUTE not in file.attrs:
                return None
            mark = file.attrs.get_id(DIGEST_ATTRIBUTE)
            if mark.dtype.kind != "S" or mark.dtype.itemsize > MARK_BYTES or mark.shape not in ((), None):
                return None
            return bytes(file.attrs[DIGEST_ATTRIBUTE]).decode("ascii", errors="replace")
    except (OSError, KeyError, TypeError, ValueError):
        return None


def load_head_file(model: keras.Model, path: Path, run_dir: Path, optimizer: bool = False) -> None:
    """A head-only file into `model`, after the frozen part's weights it was trained with (unless the
    model's frozen part holds them already: loading them takes a MobileNetV2 0.19 s, telling 0.04 s)."""
    frozen = split_at_backbone(model)[0]
    if marked_weights(run_dir / FROZEN_PART_WEIGHTS) != weights_key(frozen):
        frozen.load_weights(run_dir / FROZEN_PART_WEIGHTS)
    load_model_weights(head_of(model, optimizer), path)


def best_weights_file(run_dir: Path) -> Path:
    """The file that holds the best epoch's weights: the head's of a phase on stored features when
    present (it is newer), else the whole model's (which may not exist yet)."""
    head_best = run_dir / HEAD_BEST_WEIGHTS
    return head_best if head_best.exists() else run_dir / BEST_WEIGHTS


def load_best(model: keras.Model, run_dir: Path) -> None:
    """The best epoch's weights into `model` (best_weights_file)."""
    path = best_weights_file(run_dir)
    if path == run_dir / HEAD_BEST_WEIGHTS:
        load_head_file(model, path, run_dir)
    else:
        load_model_weights(model, path)


def settle_head_best(model: keras.Model, run_dir: Path) -> None:
    """After a head phase on stored features: its best as whole-model weights in BEST_WEIGHTS, which the
    fine-tuning phase compares with and replaces. The model keeps its own weights and optimizer."""
    path = run_dir / HEAD_BEST_WEIGHTS
    if not path.exists():
        return
    head = head_of(model)
    current = head.get_weights()
    load_model_weights(head, path)  # uncompiled: the optimizer's state is not touched
    save_weights(model, run_dir / BEST_WEIGHTS, run_dir)
    head.set_weights(current)
    path.unlink()  # after the whole file is written: a kill between leaves two files with the same best


def backups(folder: Path) -> list[Path]:
    """The backups in `folder`, newest first."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if BACKUP_NAME.match(p.name)]
    return sorted(found, key=lambda p: int(BACKUP_NAME.match(p.name).group(1)), reverse=True)


def restore_backup(model: keras.Model, folder: Path, run_dir: Path) -> int | None:
    """Load the newest backup that reads back into the compiled `model`; the epochs it had done, or None."""
    for path in backups(folder):
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)  # so its state has somewhere to go
        found = BACKUP_NAME.match(path.name)
        try:
            if found.group(2):
                load_head_file(model, path, run_dir, optimizer=True)
            else:
                model.load_weights(path)
        except Exception as err:  # h5py's OSError, or Keras' ValueError for a file of another shape
            log.warning("%s cannot be read (%s); trying an earlier backup", path, str(err).splitlines()[0])
            continue
        return int(found.group(1))
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
