"""One experiment: data -> model -> fit -> evaluate -> artifacts.

The one path every single run, multirun job and tuner trial goes through: a
validated config in, metrics out, everything else written into `run_dir`.
"""

import dataclasses
import hashlib
import json
import logging
import math
import re
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from imgexp.config import Config, FeatureCache
from imgexp.data.run_cache import RunCache
from imgexp.data.source import ImageSource
from imgexp.errors import Interrupted, UserError
from imgexp.models import build_model
from imgexp.models.head import Head, choose_head
from imgexp.latency import keras_latency_ms
from imgexp.keras_compat import without_training_state
from imgexp.models.serving import with_raw_image_input
from imgexp import safe_write
from imgexp.folder_lock import FolderLock
from imgexp.run_context import RunContext
from imgexp.run_folder import (BACKUP_DIR, CHECKPOINTS_DIR, CONFUSION_FILE, CONFUSION_PLOT, FAILED_FILE, HISTORY_FILE,
                               LABELS_FILE, METRICS_FILE, MODEL_FILE, PRUNED_FILE, PROVENANCE_FILE, REPORT_FILE,
                               TENSORBOARD_DIR, best_row, is_finished, read_history, read_json, write_json)
from imgexp.tracking.artifacts import write_classification_report
from imgexp.tracking.hparams import session_name
from imgexp.tracking.plots import confusion_counts, draw_run_plots
from imgexp.tracking.provenance import finish_provenance, record_data
from imgexp.tracking.tensorboard import TensorBoardRecorder
from imgexp.training.checkpoints import best_weights_file, load_best
from imgexp.training.continuation import Continuation, save_last_state, start_from_parent
from imgexp.training.device import resolve_trainer
from imgexp.training.evaluation import balanced_accuracy, predict_split
from imgexp.training.fit import TrainingPlan, train
from imgexp.training.features import HeadTraining, head_training
from imgexp.training.inputs import augmenter_of, dataset_key, listing_request, load_images, make_datasets
from imgexp.training.pruning import make_pruner
from imgexp.training.pruning_rules import pruned_decision
from imgexp.training.shared_backbone import shareable, shared_backbone
from imgexp.training.strategy import distribution_strategy

log = logging.getLogger(__name__)


@contextmanager
def runtime_settings(cfg: Config):
    """Seeds, determinism and precision for one run; the precision policy is restored after."""
    keras.utils.set_random_seed(cfg.trainer.seed)
    if cfg.trainer.deterministic:
        tf.config.experimental.enable_op_determinism()
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(cfg.trainer.precision.value)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def model_options(cfg: Config) -> dict:
    """The `model.*` keys as builder arguments (plain values, enums as strings)."""
    options = {k: getattr(v, "value", v) for k, v in dataclasses.asdict(cfg.model).items() if k != "name"}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in options.items()}


def class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """scikit-learn's "balanced" weights: n_images / (n_classes * images of the class)."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    log.info("class weights (trainer.class_weight=balanced): %s",
             ", ".join(f"{int(c)} {w:.3g}" for c, w in zip(present, weights)))
    return {int(c): float(w) for c, w in zip(present, weights)} | {c: 1.0 for c in range(num_classes) if c not in present}


def save_model(model: keras.Model, image_size: tuple[int, int], run_dir: Path) -> keras.Model:
    """model.keras for inference (no optimizer state), written whole or not at all; returns the model
    it holds (raw images in)."""
    served = with_raw_image_input(model, image_size)
    with without_training_state(model):
        safe_write.write_with(run_dir / MODEL_FILE, lambda temp: served.save(temp), run_dir)
    return served


LATENCY = "latency"  # the RunCache kind: milliseconds per image of an architecture


# Layer settings that change training, not what a prediction computes (Dropout passes its input on).
TRAINING_ONLY = re.compile(r"^(rate|seed|noise_shape|trainable|name|.*_(regularizer|initializer|constraint))$")


def inference_config(config: object) -> object:
    """A model's config without TRAINING_ONLY settings, at every depth."""
    if isinstance(config, dict):
        return {k: inference_config(v) for k, v in config.items() if not TRAINING_ONLY.match(str(k))}
    if isinstance(config, (list, tuple)):
        return [inference_config(v) for v in config]
    return config


def architecture(model: keras.Model) -> list:
    """Its layers in order (nested models as nested lists), each as its class, inference settings and dtype."""
    return [architecture(layer) if isinstance(layer, keras.Model)
            else [type(layer).__name__, inference_config(layer.get_config()), layer.dtype_policy.name]
            for layer in model.layers]


def architecture_key(model: keras.Model) -> str:
    """What a model's speed depends on: its layers, their inference settings, dtypes and shapes (not
    its weights, layer names, dropout rates or regularizers). imgexp's models are chains of layers
    (a backbone's branches are the same for every trial that builds it), so the order is the network."""
    text = json.dumps(architecture(model), sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def deployment_cost(served: keras.Model, image_size: tuple[int, int], run_dir: Path,
                    cache: RunCache) -> dict[str, float]:
    """What the model costs where it will run: model.keras' size, and Keras' latency per image at
    batch 1 on this machine (imgexp.compare --pareto latency_ms ranks runs by both), measured once
    per architecture by the runs of one owner (a search's trials that differ in a learning rate
    run the same network: tracing and timing it again would only add noise and a second per trial)."""
    latency = cache.get(LATENCY, (architecture_key(served), image_size),
                        lambda: keras_latency_ms(served, tf.zeros((1, *image_size, 3), tf.float32)))
    return {"model_bytes": (run_dir / MODEL_FILE).stat().st_size, "latency_ms": latency}


def reused_parts(cfg: Config, context: RunContext, fresh: bool) -> dict:
    """The builder arguments of what this run takes from the runs before it: the frozen backbone of a
    run that starts afresh and never trains it (imgexp.training.shared_backbone)."""
    return {"backbone": shared_backbone(cfg, context.cache)} if fresh and shareable(cfg) else {}


def drop_unreadable_best(model: keras.Model, run_dir: Path) -> bool:
    """A resumed run whose best checkpoint does not read back (a disk error, a copy cut short) cannot
    pick its best epoch: its training state is dropped, with one log line, and it trains again from
    the start (the same epochs, from the same seed) instead of failing at the end."""
    path = best_weights_file(run_dir)
    if not path.exists():
        return False
    initial = model.get_weights()
    try:
        load_best(model, run_dir)
        return False
    except Exception as err:  # h5py's OSError for a cut file, Keras' ValueError for another shape
        log.warning("%s cannot be read (%s); training this run again from its first epoch",
                    path, str(err).splitlines()[0])
        for name in (CHECKPOINTS_DIR, BACKUP_DIR):
            shutil.rmtree(run_dir / name, ignore_errors=True)
        for name in (HISTORY_FILE, PRUNED_FILE):
            (run_dir / name).unlink(missing_ok=True)
        return True
    finally:
        model.set_weights(initial)


def run_experiment(cfg: Config, run_dir: Path, hparams: dict, context: RunContext) -> dict[str, float]:
    """Train, evaluate and save one model; return its metrics (also in metrics.json).

    `context` says how the run takes part in what started it: the search or sweep it is
    compared with, the Hyperband parent it continues, what it keeps and draws, and
    what it may reuse from the runs before it (imgexp.run_context).
    """
    with FolderLock(run_dir, "run"):  # one process at a time writes a run folder
        try:
            return locked_run(cfg, run_dir, hparams, context)
        except KeyboardInterrupt as err:
            if isinstance(err, Interrupted):
                raise
            done, total = len(read_history(run_dir / HISTORY_FILE)), cfg.trainer.epochs + cfg.trainer.fine_tune_epochs
            raise Interrupted(f"at epoch {min(done + 1, total)}/{total}" if done else "before its first epoch") from None


def locked_run(cfg: Config, run_dir: Path, hparams: dict, context: RunContext) -> dict[str, float]:
    started = time.perf_counter()
    phase, continuation = context.stopwatch.phase, context.continuation
    cfg = dataclasses.replace(cfg, trainer=resolve_trainer(cfg.trainer))  # precision=auto -> what runs here
    hparams = {**hparams, "trainer.precision": cfg.trainer.precision.value}
    safe_write.remove_leftovers(run_dir)
    (run_dir / FAILED_FILE).unlink(missing_ok=True)  # an earlier attempt's failure; this one starts over
    if is_finished(run_dir):
        raise UserError(f"{run_dir} already holds a finished run ({METRICS_FILE}); choose another hydra.run.dir")
    image_size = tuple(cfg.dataset.image_size)
    recorder = TensorBoardRecorder(run_dir / TENSORBOARD_DIR)
    resumed = bool(read_history(run_dir / HISTORY_FILE))
    if resumed:
        log.info("resuming the interrupted run in %s", run_dir)
    else:  # first thing, so a run that fails at any point shows in the HParams table
        recorder.start_session(hparams, session_name=session_name(run_dir))
    with runtime_settings(cfg):
        try:
            with phase("data"):
                source, cache, listing = load_images(cfg, context.cache)
                record_data(run_dir, listing, listing_request(cfg).root, resumed, recorder, context.cache.hashes)
                inputs = make_datasets(cfg, source, cache, context.cache)
            head = choose_head(source.num_classes, cfg.model.head.value)
            strategy = distribution_strategy(cfg.trainer.strategy)
            with strategy.scope():  # the model's variables live on the strategy's devices
                with phase("model"):
                    model = build_model(cfg.model.name, image_size, source.num_classes, **model_options(cfg),
                                        **reused_parts(cfg, context, fresh=not resumed and continuation is None))
                    if resumed and drop_unreadable_best(model, run_dir):
                        resumed = False  # trains from its first epoch (a continued trial copies its parent's rows again)
                    elif not resumed:
                        recorder.image("augmented_training_samples", inputs.sample_grid(),
                                       "a training batch after augmentation")
                    steps = math.ceil(len(source.train) / cfg.dataset.batch_size)
                    weights = class_weights(source.train.labels, source.num_classes) if cfg.trainer.class_weight else None
                    parent_optimizer = start_from_parent(model, continuation, run_dir, resumed) if continuation else None
                    pruner = make_pruner(cfg, run_dir, context.cohort)
                fit_seconds = 0.0
                with phase("train"):  # compiling, stored features and model.fit
                    if not pruned_decision(run_dir):  # a pruned run resumed after its decision trains no further
                        plan = TrainingPlan(steps, weights, callbacks=(pruner,) if pruner else (),
                                            initial_epoch=continuation.initial_epoch if continuation else 0,
                                            optimizer_state=parent_optimizer,
                                            head_on_features=features_for(cfg, model, source, run_dir, context,
                                                                          strategy.num_replicas_in_sync),
                                            cache=context.cache)
                        fit_seconds = train(model, cfg, head, inputs, run_dir, plan)
                    if context.keep_last_weights:
                        save_last_state(model, run_dir)
            with phase("evaluate"):
                metrics = evaluate_best(model, cfg, head, source, inputs.validation, run_dir, recorder, context.plots)
            with phase("save"):
                served = save_model(model, image_size, run_dir)
            with phase("latency"):
                metrics.update(deployment_cost(served, image_size, run_dir, context.cache))
            metrics.update(replicas=strategy.num_replicas_in_sync, precision=cfg.trainer.precision.value,
                           cache=cache or "none", **how_it_ended(run_dir, continuation))
            recorder.scalars({"pruned": float(metrics["status"] == "pruned"), "epochs_run": metrics["epochs_run"]}, 0)
        except BaseException:
            recorder.end_session(success=False)
            recorder.close()
            raise
        finish_provenance(run_dir)
        metrics["seconds"] = round(time.perf_counter() - started, 2)
        metrics["fit_seconds"] = round(fit_seconds, 2)  # of this process; a resumed run counts its own part
        metrics["phase_seconds"] = context.stopwatch.rounded()  # where this process's time went (README: Searching)
        write_json(run_dir / METRICS_FILE, metrics, run_dir)  # last: the run is finished
        recorder.end_session(success=True)
        recorder.close()
    for leftover in (CHECKPOINTS_DIR, BACKUP_DIR):  # model.keras holds the best weights now
        shutil.rmtree(run_dir / leftover, ignore_errors=True)
    log.info("val_accuracy=%.4f val_loss=%.4f (best epoch %d of %d); model in %s",
             metrics["val_accuracy"], metrics["val_loss"], metrics["best_epoch"], metrics["epochs_run"],
             run_dir / MODEL_FILE)
    return metrics


def features_for(cfg: Config, model: keras.Model, source: ImageSource, run_dir: Path, context: RunContext,
                 replicas: int) -> Callable[[], HeadTraining | None] | None:
    """How a phase with a frozen backbone gets its head's training on stored features (kept in the
    owner's cache, and shared through the search or sweep folder), or None with `trainer.feature_cache=off`."""
    if cfg.trainer.feature_cache is FeatureCache.off:
        return None
    dataset_cfg = cfg.dataset
    data = f"{dataset_key(cfg)!r}|{((read_json(run_dir / PROVENANCE_FILE) or {}).get('data') or {}).get('sha256')}"
    augmented = None if augmenter_of(cfg).is_identity else cfg.augmentation.name
    return lambda: head_training(model, source, tuple(dataset_cfg.image_size), dataset_cfg.batch_size,
                                 cfg.trainer.seed, data, dataset_cfg.cache_ram_share, context.cohort, augmented,
                                 replicas, context.cache)


def how_it_ended(run_dir: Path, continuation: Continuation | None) -> dict:
    """How the run ended (finished, or pruned at an epoch and why), which trial it continued, and the
    epochs it trained itself (a continued trial's history starts with its parent's)."""
    decision = pruned_decision(run_dir)
    found = {"status": "pruned", "pruned_at_epoch": decision["epoch"], "pruned_reason": decision["reason"]} \
        if decision else {"status": "finished"}
    if continuation is not None:
        found["continued_from"] = continuation.parent_trial
    history = read_history(run_dir / HISTORY_FILE)
    found["epochs_trained"] = sum(r["epoch"] >= (continuation.initial_epoch if continuation else 0) for r in history)
    return found


def evaluate_best(model: keras.Model, cfg: Config, head: Head, source: ImageSource, val_ds: tf.data.Dataset,
                  run_dir: Path, recorder: TensorBoardRecorder, plots: bool) -> dict[str, float]:
    """Restore the best epoch, evaluate it on validation, write its labels, reports and plots."""
    history = read_history(run_dir / HISTORY_FILE)
    monitor = cfg.trainer.monitor.value
    best = best_row(history, monitor)
    if best is None:
        raise UserError(f"training diverged (the loss became NaN by epoch {len(history)}); lower optimizer.lr")
    if any(math.isnan(r.get("loss", 0.0)) for r in history):
        log.warning("the loss became NaN and training stopped; keeping the best epoch before it")
    if not best_weights_file(run_dir).exists():
        raise UserError(f"{run_dir}: no best checkpoint beside its history.csv; choose another hydra.run.dir")
    load_best(model, run_dir)

    y_true, y_pred, val_loss = predict_split(model, val_ds, head)
    metrics = {
        "val_accuracy": float(np.mean(y_true == y_pred)),
        "val_balanced_accuracy": balanced_accuracy(y_true, y_pred),
        "val_loss": val_loss,
        "train_accuracy": best["accuracy"],
        "train_loss": best["loss"],
        "best_epoch": int(best["epoch"]) + 1,
        "epochs_run": len(history),
        "num_params": int(model.count_params()),
    }
    write_json(run_dir / LABELS_FILE, source.class_names, run_dir)
    confusion_counts(y_true, y_pred, source.class_names, run_dir / CONFUSION_FILE)
    write_classification_report(y_true, y_pred, source.class_names, run_dir / REPORT_FILE)
    if plots:
        draw_run_plots(run_dir)
        recorder.png("confusion_matrix", run_dir / CONFUSION_PLOT)
    recorder.scalars({f"best/{m}": metrics[m] for m in ("val_accuracy", "val_balanced_accuracy", "val_loss")},
                     step=metrics["best_epoch"])
    return metrics
