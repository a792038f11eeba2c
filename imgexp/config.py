"""Structured-config schema: every key, its type and its default.

Hydra merges the YAML files in `conf/` onto these dataclasses, so an unknown
key or a value of the wrong type fails at start, naming the key. `validate`
adds the checks a type cannot express (ranges, paths that must exist).
Nothing here imports TensorFlow: `--help` and `--cfg job` stay fast.
"""

import importlib.util
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from imgexp.errors import UserError


class OnBadImage(str, Enum):
    skip = "skip"
    error = "error"


class OnDuplicate(str, Enum):
    warn = "warn"
    error = "error"
    drop_from_eval = "drop_from_eval"  # leave validation/test images that are also in train out of evaluation


class ClassWeight(str, Enum):
    balanced = "balanced"  # scikit-learn's: n_samples / (n_classes * count of the class)


class FillMode(str, Enum):
    nearest = "nearest"
    reflect = "reflect"
    wrap = "wrap"
    constant = "constant"


class Head(str, Enum):
    auto = "auto"  # sigmoid + binary cross-entropy for 2 classes, softmax otherwise
    sigmoid = "sigmoid"
    softmax = "softmax"


class Schedule(str, Enum):
    constant = "constant"
    cosine = "cosine"
    exponential = "exponential"


class Precision(str, Enum):
    auto = "auto"  # by device: mixed_bfloat16 on bfloat16 CPUs and GPUs, mixed_float16 on older GPUs, else float32
    float32 = "float32"
    mixed_float16 = "mixed_float16"
    mixed_bfloat16 = "mixed_bfloat16"


class FeatureCache(str, Enum):
    auto = "auto"  # a frozen backbone's features are computed once when the images are not augmented
    off = "off"  # the backbone runs on every image in every epoch


class Monitor(str, Enum):
    val_accuracy = "val_accuracy"
    val_loss = "val_loss"


@dataclass
class DatasetConfig:
    name: str = MISSING  # digits | folder | csv, or (dataset=tfds) a TensorFlow Datasets name: tf_flowers
    path: Optional[str] = None  # folder: PATH/train/<class>/* or PATH/<class>/*; csv: the labels CSV
    image_size: List[int] = field(default_factory=lambda: [32, 32])  # [height, width]
    batch_size: int = 32
    validation_split: float = 0.2  # used when there is no PATH/validation/ (or split column)
    test_split: float = 0.0  # folder, csv: a seeded share carved out as the test split where none is given
    images: Optional[str] = None  # csv: the folder its file names are relative to; null: the CSV's folder
    file_column: Optional[str] = None  # csv: null guesses filename, file, image, image_id or path
    label_column: Optional[str] = None  # csv: null guesses label, class or category
    data_dir: Optional[str] = None  # tfds: where prepared datasets are; null: TFDS' default
    cache: Optional[str] = "auto"  # auto (memory when it fits) | memory | a file path | null (stream from disk)
    cache_ram_share: float = 0.5  # auto: keep decoded images in memory up to this share of the available RAM
    on_bad_image: OnBadImage = OnBadImage.skip
    max_image_pixels: int = 60_000_000  # width x height from the header; larger files are bad images (bombs)
    on_duplicate: OnDuplicate = OnDuplicate.warn  # the same image (content) in train and validation/test
    small_class_share: float = 0.1  # warn about a training class smaller than this share of the largest
    # tf.data's autotuning of map parallelism and prefetch. Off (default): one map call per core, 2 batches
    # prefetched. On, the tuning started anew with each epoch's iterator stalled the start of some epochs
    # by ~0.5 s (float32 epochs 7.5-10.1 s instead of 7.8-8.1 s; experiments/pipeline/RESULTS.md).
    autotune: bool = False


@dataclass
class AugmentationConfig:
    """Random affine transforms with ImageDataGenerator's meaning and units."""

    name: str = MISSING
    rotation: float = 0.0  # degrees, uniform in [-rotation, rotation]
    width_shift: float = 0.0  # fraction of the width
    height_shift: float = 0.0  # fraction of the height
    shear: float = 0.0  # degrees (ImageDataGenerator's shear_range), not a fraction
    zoom: float = 0.0  # zoom factor drawn per axis in [1 - zoom, 1 + zoom]
    horizontal_flip: bool = False
    vertical_flip: bool = False
    fill_mode: FillMode = FillMode.nearest


@dataclass
class ModelConfig:
    name: str = MISSING
    dropout: float = 0.5
    l1: float = 0.0  # L1 weight penalty on the head's Dense layer (and the CNN's Conv/Dense layers)
    l2: float = 0.0  # L2 weight penalty, likewise: the tutorial's other fine-tuning technique beside dropout
    head: Head = Head.auto
    weights: Optional[str] = None  # null (random init) | a weights file | imagenet (backbones)


@dataclass
class CNNConfig(ModelConfig):
    """The tutorial's network: Conv-Pool blocks, Flatten, Dropout, Dense."""

    filters: List[int] = field(default_factory=lambda: [32, 64, 128])
    kernel_size: int = 3
    dense_units: int = 512


@dataclass
class BackboneConfig(ModelConfig):
    """A keras.applications backbone with a new classification head."""

    weights: Optional[str] = "imagenet"
    trainable: bool = True  # train the backbone (False freezes it)
    fine_tune_at: int = 0  # backbone layers below this index stay frozen
    input_size: Optional[List[int]] = None  # [h, w] fed to the backbone; null = dataset.image_size
    dropout: float = 0.2


@dataclass
class OptimizerConfig:
    name: str = MISSING
    lr: float = 1e-3
    weight_decay: Optional[float] = None  # decoupled weight decay
    schedule: Schedule = Schedule.constant
    decay_rate: float = 0.9  # exponential schedule: factor per epoch
    momentum: float = 0.0  # sgd, rmsprop
    nesterov: bool = False  # sgd


class Strategy(str, Enum):
    default = "default"  # one device
    mirrored = "mirrored"  # tf.distribute.MirroredStrategy over the visible GPUs (or logical CPUs)
    # No multi_worker_mirrored: Keras 3's model.fit fails under it (keras-team/keras#20585).


@dataclass
class TrainerConfig:
    epochs: int = 20
    early_stopping_patience: int = 5  # epochs without improvement; 0 = off
    monitor: Monitor = Monitor.val_accuracy  # picks the best epoch / checkpoint
    precision: Precision = Precision.auto
    jit_compile: Optional[bool] = None  # XLA; null: off on a CPU (3x slower for the CNN here), Keras decides on a GPU
    seed: int = 42
    deterministic: bool = False  # tf.config.experimental.enable_op_determinism
    class_weight: Optional[ClassWeight] = None  # balanced: weigh the loss against class imbalance
    fine_tune_epochs: int = 0  # > 0: head first, then unfreeze from model.fine_tune_at
    fine_tune_lr_factor: float = 0.1  # learning rate multiplier for the fine-tune phase
    feature_cache: FeatureCache = FeatureCache.auto  # frozen backbone: train the head on features computed once
    verbose: int = 2  # Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch
    strategy: Strategy = Strategy.default  # mirrored: data parallel over this machine's devices


class PrunerName(str, Enum):
    none = "none"
    median = "median"
    asha = "asha"


@dataclass
class PrunerConfig:
    """Stop losing trials of a search or multirun sweep early (imgexp.training.pruning)."""

    name: PrunerName = PrunerName.none
    # What the rule compares. val_loss, not the objective: near chance level val_accuracy ties and jumps,
    # while val_loss already shows which trials learn (experiments/search_efficiency/RESULTS.md).
    monitor: Monitor = Monitor.val_loss
    warmup_epochs: int = 2  # median: no decision before this epoch
    min_trials: int = 3  # other trials that must have reached the epoch (median) or rung (asha) first
    min_epochs: int = 2  # asha: the first rung (at epoch 1 most trials still sit at chance level)
    factor: int = 3  # asha: rungs at min_epochs * factor^k; the top 1/factor go on


class TunerName(str, Enum):
    random = "random"
    bayesian = "bayesian"
    hyperband = "hyperband"
    grid = "grid"


@dataclass
class TunerConfig:
    """A KerasTuner oracle; its trials are ordinary runs."""

    name: TunerName = MISSING
    max_trials: Optional[int] = 10  # random, bayesian, grid (hyperband sizes itself); null: until budget_minutes
    objective: Monitor = Monitor.val_accuracy
    executions_per_trial: int = 1  # runs per trial, seeds trainer.seed + i, metrics averaged
    seed: Optional[int] = 42  # the oracle's random seed; null: a new one each search (KerasTuner takes 0 as null)
    max_retries_per_trial: int = 0  # re-runs of a trial that raised an unexpected error
    max_consecutive_failed_trials: int = 3  # the search stops after this many failures in a row
    budget_minutes: Optional[float] = None  # no new trial starts once this much time is spent
    max_epochs: int = 10  # hyperband: most epochs a trial trains (tuner/epochs -> trainer.epochs)
    factor: int = 3  # hyperband
    continue_promoted: bool = True  # hyperband: a promoted trial goes on from its parent's last state
    num_initial_points: Optional[int] = None  # bayesian


class Role(str, Enum):
    chief = "chief"
    worker = "worker"


@dataclass
class DistributedConfig:
    """KerasTuner's chief/worker mode: one chief holds the oracle, workers run trials."""

    role: Optional[Role] = None  # chief | worker; null: one process (or local_workers)
    address: Optional[str] = None  # HOST:PORT the chief listens on and workers connect to
    tuner_id: Optional[str] = None  # a worker's name; null: worker-<hostname>. A restarted worker
    #                                 with the same name takes over its unfinished trial
    local_workers: int = 0  # > 0: a chief here and this many workers on 127.0.0.1, supervised
    max_restarts: int = 3  # local_workers: restarts of one worker that died, before the search stops
    connect_timeout: float = 300.0  # seconds a worker waits for the chief to answer
    status_every: float = 60.0  # seconds between the chief's "waiting for ..." lines
    insecure: bool = False  # true: the chief answers calls without its token (tuning/chief_auth.py); trusted networks only
    tls_cert: Optional[str] = None  # chief: its TLS certificate (PEM); with tls_key, it serves over TLS
    tls_key: Optional[str] = None  # chief: the certificate's private key (PEM)
    tls_ca: Optional[str] = None  # workers: the CA (or the chief's own certificate) to trust; TLS to the chief


@dataclass
class SearchConfig:
    name: Optional[str] = None  # the search folder's name; null: <tuner>-<search_space>
    dir: str = "outputs/search"  # a stable folder, so the same command resumes
    overwrite: bool = False  # true: start the search over
    recycle_every: int = 0  # > 0: run trials in worker processes, a fresh one every N trials
    worker: bool = False  # set by imgexp on the worker processes it starts; not for users
    distributed: DistributedConfig = field(default_factory=DistributedConfig)


@dataclass
class Config:
    dataset: DatasetConfig = MISSING
    augmentation: AugmentationConfig = MISSING
    model: ModelConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    pruner: PrunerConfig = field(default_factory=PrunerConfig)
    experiment: Optional[Any] = None
    tuner: Optional[TunerConfig] = None  # tuner=random|bayesian|hyperband|grid runs a search
    search_space: Optional[Dict[str, Any]] = None  # config key -> values or a range
    search: SearchConfig = field(default_factory=SearchConfig)


def config_path() -> str:
    """Where Hydra finds conf/: the installed package imgexp.conf (`pip install .` or `-e .`), or, when
    Python imports imgexp from a checkout (`python -m imgexp` run inside it), that checkout's conf/."""
    if importlib.util.find_spec("imgexp.conf") is not None:
        return "pkg://imgexp.conf"
    return str(Path(__file__).resolve().parent.parent / "conf")


def register_configs() -> None:
    """Register the schemas that the YAML files in conf/ extend.

    They sit at the top of the config store, in no group, so `--help` lists only real
    options; a group's YAML extends its schema with `- /NAME_schema@_here_`.
    """
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    for name, node in SCHEMAS.items():
        cs.store(name=name, node=node)


SCHEMAS = {"dataset_schema": DatasetConfig, "augmentation_schema": AugmentationConfig, "cnn_schema": CNNConfig,
           "backbone_schema": BackboneConfig, "optimizer_schema": OptimizerConfig, "trainer_schema": TrainerConfig,
           "tuner_schema": TunerConfig, "pruner_schema": PrunerConfig}


def validate(cfg: Config) -> None:
    """Check what types alone cannot; raise UserError naming the key and the fix."""
    dataset_cfg = cfg.dataset
    if len(dataset_cfg.image_size) != 2 or min(dataset_cfg.image_size) < 1:
        raise UserError(f"dataset.image_size={list(dataset_cfg.image_size)}: give [height, width], both >= 1")
    if dataset_cfg.batch_size < 1:
        raise UserError(f"dataset.batch_size={dataset_cfg.batch_size}: must be >= 1")
    if not 0.0 < dataset_cfg.validation_split < 1.0:
        raise UserError(f"dataset.validation_split={dataset_cfg.validation_split}: must be between 0 and 1")
    if not 0.0 <= dataset_cfg.test_split < 1.0 or dataset_cfg.validation_split + dataset_cfg.test_split >= 1.0:
        raise UserError(f"dataset.test_split={dataset_cfg.test_split}: must be in [0, 1), with validation_split + test_split < 1")
    if dataset_cfg.name == "folder":
        if not dataset_cfg.path:
            raise UserError("dataset=folder needs dataset.path=DIR (with DIR/<class>/ or DIR/train/<class>/ images)")
        if not Path(dataset_cfg.path).is_dir():
            raise UserError(f"dataset.path={dataset_cfg.path}: no such folder")
    if dataset_cfg.name == "csv":
        if not dataset_cfg.path or not Path(dataset_cfg.path).is_file():
            raise UserError(f"dataset.path={dataset_cfg.path}: no such file; dataset=csv reads a labels CSV "
                            "(dataset.path=labels.csv, a file column and a label column)")
        if dataset_cfg.images is not None and not Path(dataset_cfg.images).is_dir():
            raise UserError(f"dataset.images={dataset_cfg.images}: no such folder")
    if dataset_cfg.cache not in (None, "memory", "auto") and not Path(dataset_cfg.cache).parent.is_dir():
        raise UserError(f"dataset.cache={dataset_cfg.cache}: its folder does not exist; use auto, memory, null or a path in an existing folder")
    if not 0.0 < dataset_cfg.cache_ram_share <= 1.0:
        raise UserError(f"dataset.cache_ram_share={dataset_cfg.cache_ram_share}: must be in (0, 1]")
    if not 0.0 <= dataset_cfg.small_class_share <= 1.0:
        raise UserError(f"dataset.small_class_share={dataset_cfg.small_class_share}: must be in [0, 1] (0 turns the warning off)")

    aug = cfg.augmentation
    for key in ("rotation", "width_shift", "height_shift", "shear", "zoom"):
        if getattr(aug, key) < 0:
            raise UserError(f"augmentation.{key}={getattr(aug, key)}: must be >= 0")
    if aug.zoom >= 1:
        raise UserError(f"augmentation.zoom={aug.zoom}: must be < 1 (zoom factor in [1 - zoom, 1 + zoom])")

    if not 0.0 <= cfg.model.dropout < 1.0:
        raise UserError(f"model.dropout={cfg.model.dropout}: must be in [0, 1)")
    if cfg.model.l1 < 0 or cfg.model.l2 < 0:
        raise UserError(f"model.l1={cfg.model.l1}, model.l2={cfg.model.l2}: weight penalties must be >= 0")
    weights = cfg.model.weights
    if isinstance(cfg.model, BackboneConfig):
        if cfg.model.input_size is not None and (len(cfg.model.input_size) != 2 or min(cfg.model.input_size) < 1):
            raise UserError(f"model.input_size={list(cfg.model.input_size)}: give [height, width] or null")
    else:
        if weights == "imagenet":
            raise UserError(f"model.weights=imagenet: model={cfg.model.name} has no pretrained weights; use null or a weights file")
        if cfg.trainer.fine_tune_epochs > 0:
            raise UserError(f"trainer.fine_tune_epochs needs a backbone model, not model={cfg.model.name}; set it to 0")
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise UserError(f"model.weights={weights}: no such file; use null, a weights file or (backbones) imagenet")

    if cfg.optimizer.lr <= 0:
        raise UserError(f"optimizer.lr={cfg.optimizer.lr}: must be > 0")
    pr = cfg.pruner
    if pr.warmup_epochs < 1 or pr.min_epochs < 1 or pr.min_trials < 1:
        raise UserError("pruner.warmup_epochs, pruner.min_epochs and pruner.min_trials must be >= 1")
    if pr.factor < 2:
        raise UserError(f"pruner.factor={pr.factor}: must be >= 2 (the top 1/factor of a rung go on)")
    tr = cfg.trainer
    if tr.epochs < 1:
        raise UserError(f"trainer.epochs={tr.epochs}: must be >= 1")
    if tr.early_stopping_patience < 0 or tr.fine_tune_epochs < 0:
        raise UserError("trainer.early_stopping_patience and trainer.fine_tune_epochs must be >= 0")
