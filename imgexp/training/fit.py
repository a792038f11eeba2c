"""Compile and fit: one phase, or head-then-fine-tune for a backbone.

Every phase resumes where a killed process left it (BackupAndRestore), appends
to history.csv and keeps the best weights so far in checkpoints/, judged
against every earlier epoch, also those from before a resume.
"""

import time
import warnings
from pathlib import Path

import keras
import tensorflow as tf

from imgexp.config import Config
from imgexp.models.backbones import set_backbone_trainable
from imgexp.models.head import Head
from imgexp.run_folder import BACKUP_DIR, BEST_WEIGHTS, HEAD_PHASE_WEIGHTS, HISTORY_FILE, TENSORBOARD_DIR
from imgexp.training.continuation import restore_optimizer
from imgexp.training.history import MAXIMIZE, best_row, read_history
from imgexp.training.optimizers import build_optimizer
from imgexp.training.pruning import pruned_decision


def compile_model(model: keras.Model, cfg: Config, head: Head, steps_per_epoch: int, epochs: int, lr_scale: float = 1.0) -> None:
    model.compile(
        optimizer=build_optimizer(cfg.optimizer, steps_per_epoch, epochs, lr_scale),
        loss=head.loss,
        metrics=["accuracy"],
        jit_compile=cfg.trainer.jit_compile,  # resolved by training/device.py: off on a CPU
    )


class EpochStats(keras.callbacks.Callback):
    """Adds `epoch_seconds` (training + validation wall time) and `learning_rate` to each epoch's logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self.started
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


def callbacks(cfg: Config, run_dir: Path, phase: str) -> list[keras.callbacks.Callback]:
    monitor = cfg.trainer.monitor.value
    mode = "max" if MAXIMIZE[monitor] else "min"
    best = best_row(read_history(run_dir / HISTORY_FILE), monitor)
    (run_dir / BEST_WEIGHTS).parent.mkdir(parents=True, exist_ok=True)
    found = [
        EpochStats(),  # first, so the callbacks after it log what it adds
        keras.callbacks.BackupAndRestore(str(run_dir / BACKUP_DIR / phase)),
        keras.callbacks.CSVLogger(str(run_dir / HISTORY_FILE), append=True),
        keras.callbacks.ModelCheckpoint(
            str(run_dir / BEST_WEIGHTS), monitor=monitor, mode=mode, save_best_only=True,
            save_weights_only=True, initial_value_threshold=best[monitor] if best else None,
        ),
        keras.callbacks.TensorBoard(str(run_dir / TENSORBOARD_DIR), write_graph=False, profile_batch=0),
        keras.callbacks.TerminateOnNaN(),
    ]
    if cfg.trainer.early_stopping_patience > 0:
        found.append(keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=cfg.trainer.early_stopping_patience))
    return found


def fit_phase(model, cfg: Config, train_ds: tf.data.Dataset, val_ds: tf.data.Dataset, run_dir: Path,
              phase: str, initial_epoch: int, epochs: int, class_weight: dict[int, float] | None,
              extra_callbacks: list[keras.callbacks.Callback]) -> float:
    """Seconds spent inside model.fit."""
    started = time.perf_counter()
    with warnings.catch_warnings():
        # Files are checked by their headers only, so a streamed pipeline skips what fails to decode
        # (reported by name) and its length is unknown; Keras then says "Your input ran out of data"
        # at the end of every first epoch. imgexp never sets steps_per_epoch: nothing is wrong.
        warnings.filterwarnings("ignore", message="Your input ran out of data", category=UserWarning)
        model.fit(
            train_ds, validation_data=val_ds, initial_epoch=initial_epoch, epochs=epochs,
            callbacks=[*callbacks(cfg, run_dir, phase), *extra_callbacks], verbose=cfg.trainer.verbose,
            shuffle=False,  # the tf.data pipeline shuffles
            class_weight=class_weight,
        )
    return time.perf_counter() - started


def train(model: keras.Model, cfg: Config, head: Head, train_ds: tf.data.Dataset, val_ds: tf.data.Dataset,
          run_dir: Path, steps: int, class_weight: dict[int, float] | None = None,
          extra_callbacks: tuple[keras.callbacks.Callback, ...] = (), initial_epoch: int = 0,
          optimizer_state: list | None = None) -> float:
    """Fit `model` as the trainer config says; the best weights end up in BEST_WEIGHTS.

    `steps` is the number of batches per epoch (for learning-rate schedules); `class_weight`
    weighs each class's loss (trainer.class_weight); `extra_callbacks` (the pruner) stop it early;
    `initial_epoch` > 0 goes on from a parent trial's epochs (Hyperband), with its `optimizer_state`.
    Returns the seconds spent inside model.fit.
    """
    tr = cfg.trainer
    if tr.fine_tune_epochs == 0:
        compile_model(model, cfg, head, steps, tr.epochs)
        if optimizer_state is not None:
            restore_optimizer(model, optimizer_state)
        return fit_phase(model, cfg, train_ds, val_ds, run_dir, "train", initial_epoch, tr.epochs, class_weight,
                         list(extra_callbacks))

    # Phase 1: the new head on a frozen backbone. Its end is marked on disk, so a
    # resumed run does not train the head again.
    seconds = 0.0
    head_done = run_dir / HEAD_PHASE_WEIGHTS
    set_backbone_trainable(model, False)
    compile_model(model, cfg, head, steps, tr.epochs)
    if head_done.exists():
        model.load_weights(head_done)
    else:
        seconds += fit_phase(model, cfg, train_ds, val_ds, run_dir, "head", 0, tr.epochs, class_weight,
                             list(extra_callbacks))
        model.save_weights(head_done)
    if pruned_decision(run_dir):
        return seconds  # stopped in the head phase: no fine-tuning

    # Phase 2: unfreeze from model.fine_tune_at, at a lower learning rate.
    set_backbone_trainable(model, True, cfg.model.fine_tune_at)
    compile_model(model, cfg, head, steps, tr.fine_tune_epochs, lr_scale=tr.fine_tune_lr_factor)
    done = len(read_history(run_dir / HISTORY_FILE))
    return seconds + fit_phase(model, cfg, train_ds, val_ds, run_dir, "fine_tune", done, done + tr.fine_tune_epochs,
                               class_weight, list(extra_callbacks))
