"""Compile and fit: one phase, or head-then-fine-tune for a backbone.

Every phase resumes where a killed process left it (its newest backup, see
training/checkpoints.py), keeps history.csv and the best weights so far in
checkpoints/, judged against every earlier epoch, also those from before a
resume. Each epoch's random draws follow from (seed, epoch), so with
`trainer.deterministic=true` a resumed run ends as the run never stopped.
"""

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras

from imgexp.config import Config
from imgexp.data.run_cache import RunCache
from imgexp.models.backbones import set_backbone_trainable
from imgexp.models.head import Head
from imgexp.run_folder import (BACKUP_DIR, BEST_WEIGHTS, HEAD_BEST_WEIGHTS, HEAD_PHASE_FILE, HEAD_PHASE_WEIGHTS,
                               HISTORY_FILE, TENSORBOARD_DIR, best_row, read_history, read_json, write_json)
from imgexp.training.checkpoints import (BestWeights, EpochBackup, HistoryEarlyStopping, HistoryLog,
                                         keep_history_before, load_model_weights, restore_backup, save_frozen_part,
                                         save_weights, settle_head_best)
from imgexp.training.continuation import restore_optimizer
from imgexp.training.features import HeadTraining
from imgexp.training.inputs import Inputs
from imgexp.training.optimizers import build_optimizer
from imgexp.training.pruning_rules import pruned_decision
from imgexp.training.reproducible import EpochDraws


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


def callbacks(cfg: Config, run_dir: Path, phase: str, whole: keras.Model | None = None) -> list[keras.callbacks.Callback]:
    """In the order each epoch's records are made: its row, then the best weights, then the backup
    (the commit point: a resume starts after the newest backup). `whole`: the model the head being
    fit on stored features belongs to (its Dropout seeds are numbered in it); the best and backup
    files then hold the head alone (training/checkpoints.py)."""
    monitor = cfg.trainer.monitor.value
    head_only = whole is not None
    found = [
        EpochStats(),  # first, so the callbacks after it log what it adds
        EpochDraws(cfg.trainer.seed, whole),
        HistoryLog(run_dir),
        BestWeights(run_dir, run_dir / (HEAD_BEST_WEIGHTS if head_only else BEST_WEIGHTS), monitor),
        EpochBackup(run_dir, run_dir / BACKUP_DIR / phase, head_only),
        keras.callbacks.TensorBoard(str(run_dir / TENSORBOARD_DIR), write_graph=False, profile_batch=0),
        keras.callbacks.TerminateOnNaN(),
    ]
    if cfg.trainer.early_stopping_patience > 0:
        found.append(HistoryEarlyStopping(run_dir, monitor, cfg.trainer.early_stopping_patience))
    return found


def stopped_before(history: list[dict[str, float]], cfg: Config) -> bool:
    """Training had already stopped by itself (NaN loss, early stopping) when the process died."""
    if not history:
        return False
    if math.isnan(history[-1].get("loss", 0.0)):
        return True
    patience = cfg.trainer.early_stopping_patience
    best = best_row(history, cfg.trainer.monitor.value)
    return patience > 0 and best is not None and history[-1]["epoch"] - best["epoch"] >= patience


@dataclass
class TrainingPlan:
    """How one run trains beyond its config: `steps` batches per epoch (for learning-rate schedules),
    `class_weight` (trainer.class_weight), `callbacks` that may stop it early (the pruner), the
    `initial_epoch` and `optimizer_state` a continued Hyperband trial takes from its parent, and
    `head_on_features`, which gives the head's training on stored features for a phase whose backbone
    is frozen (or None: images), called once the phase's backup is restored. The next thing a run's
    training needs is a field here."""

    steps: int
    class_weight: dict[int, float] | None = None
    callbacks: tuple[keras.callbacks.Callback, ...] = ()
    initial_epoch: int = 0
    optimizer_state: list | None = None
    head_on_features: Callable[[], HeadTraining | None] | None = None
    cache: RunCache | None = None  # the owner's, for what a run writes like the run before it

    def features(self) -> HeadTraining | None:
        return self.head_on_features() if self.head_on_features else None


def fit_phase(model, cfg: Config, inputs: Inputs, run_dir: Path, phase: str, first_epoch: int, epochs: int,
              plan: TrainingPlan, try_features: bool = False) -> float:
    """Fit epochs first_epoch..epochs-1 of a phase, from its newest backup if it has one; seconds in model.fit.

    With `try_features` and a frozen backbone whose features can be stored (plan.features()), the
    head alone is fit on them, and its epochs keep the head's weights alone."""
    restored = restore_backup(model, run_dir / BACKUP_DIR / phase, run_dir)
    start = first_epoch if restored is None else restored
    keep_history_before(run_dir, start)  # what was recorded after the backup is trained again
    if start >= epochs or (restored is not None and stopped_before(read_history(run_dir / HISTORY_FILE), cfg)):
        return 0.0
    # After the restore: the features are those of the frozen weights the run's files go with.
    on_features = plan.features() if try_features else None
    fitted, data, whole, lengths = model, inputs, None, {}
    if on_features is not None:
        fitted, data, whole, lengths = on_features.head, on_features, model, on_features.fit_arguments()
        fitted.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"],  # one optimizer for both
                       jit_compile=cfg.trainer.jit_compile, **on_features.compile_arguments())
        save_frozen_part(model, run_dir, on_features.frozen_weights, plan.cache)  # before the first head-only file
    data.epochs.set(start)
    started = time.perf_counter()
    with warnings.catch_warnings():
        # Files are checked by their headers only, so a streamed pipeline skips what fails to decode
        # (reported by name) and its length is unknown; Keras then says "Your input ran out of data"
        # at the end of every first epoch. imgexp never sets steps_per_epoch: nothing is wrong.
        warnings.filterwarnings("ignore", message="Your input ran out of data", category=UserWarning)
        fitted.fit(
            data.train, validation_data=data.validation, initial_epoch=start, epochs=epochs,
            callbacks=[*callbacks(cfg, run_dir, phase, whole), *plan.callbacks], verbose=cfg.trainer.verbose,
            shuffle=False,  # the tf.data pipeline shuffles
            class_weight=plan.class_weight, **lengths,
        )
    return time.perf_counter() - started


def train(model: keras.Model, cfg: Config, head: Head, inputs: Inputs, run_dir: Path, plan: TrainingPlan) -> float:
    """Fit `model` as the trainer config and `plan` say; the best weights end up in BEST_WEIGHTS.
    Returns the seconds spent inside model.fit."""
    tr = cfg.trainer
    steps, initial_epoch, optimizer_state = plan.steps, plan.initial_epoch, plan.optimizer_state
    if tr.fine_tune_epochs == 0:
        compile_model(model, cfg, head, steps, tr.epochs)
        if optimizer_state is not None:
            restore_optimizer(model, optimizer_state)
        return fit_phase(model, cfg, inputs, run_dir, "train", initial_epoch, tr.epochs, plan, try_features=True)

    # Phase 1: the new head on a frozen backbone. Its end is marked on disk, so a
    # resumed run does not train the head again. A continued Hyperband trial goes on in the
    # phase and epoch where its parent stopped, with that phase's optimizer state.
    seconds = 0.0
    head_done = run_dir / HEAD_PHASE_WEIGHTS
    set_backbone_trainable(model, False)
    compile_model(model, cfg, head, steps, tr.epochs)
    if head_done.exists():
        load_model_weights(model, head_done)
    else:
        head_epochs = tr.epochs  # a parent that stopped after the head phase: this trial goes on fine-tuning
        if initial_epoch < tr.epochs:  # not continued, or the parent stopped in the head phase
            if optimizer_state is not None and initial_epoch > 0:
                restore_optimizer(model, optimizer_state)
            seconds += fit_phase(model, cfg, inputs, run_dir, "head", initial_epoch, tr.epochs, plan,
                                 try_features=True)
            head_epochs = len(read_history(run_dir / HISTORY_FILE))  # fewer when it stopped early
            settle_head_best(model, run_dir)  # the fine-tuning phase compares with it as a whole model
        write_json(run_dir / HEAD_PHASE_FILE, {"epochs": head_epochs}, run_dir)
        save_weights(model, head_done, run_dir)  # after the epoch count: together they mark the phase done
    if pruned_decision(run_dir):
        return seconds  # stopped in the head phase: no fine-tuning

    # Phase 2: unfreeze from model.fine_tune_at, at a lower learning rate.
    set_backbone_trainable(model, True, cfg.model.fine_tune_at)
    compile_model(model, cfg, head, steps, tr.fine_tune_epochs, lr_scale=tr.fine_tune_lr_factor)
    done = (read_json(run_dir / HEAD_PHASE_FILE) or {}).get("epochs", tr.epochs)  # where phase 2 starts
    if optimizer_state is not None and initial_epoch > done:  # the parent was fine-tuning already
        restore_optimizer(model, optimizer_state)
    return seconds + fit_phase(model, cfg, inputs, run_dir, "fine_tune", max(done, initial_epoch),
                               done + tr.fine_tune_epochs, plan)
