"""Keys that only some options read, and the rule that a key set but not read is said, never ignored.

Every schema key is read by every option of its group unless it is listed in
READERS with the condition under which the run reads it. A key that the user
set (on the command line or in an experiment file: its value differs from what
the chosen options alone give) while the run does not read it is refused in
one line naming what would read it; in a sweep or a search, where a key may
apply to some jobs only, the others say so once in their log.
tests/test_config_use.py checks every entry, and that every schema key is
either listed here or in ALWAYS_READ.
"""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from imgexp.config import Config

PATH_DATASETS = ("folder", "csv")  # the datasets that read dataset.path (and test_split)


@dataclass(frozen=True)
class Reader:
    key: str  # a dotted config key
    reads: Callable[[Config], bool]  # whether a run with this config reads the key
    reader: str  # what would read it, as the user writes it
    on: tuple[str, ...]  # overrides under which it is read (for the tests)
    off: tuple[str, ...]  # overrides under which it is not


def transforms_on(c: Config) -> bool:
    aug = c.augmentation
    return any([aug.rotation, aug.width_shift, aug.height_shift, aug.shear, aug.zoom, aug.horizontal_flip,
                aug.vertical_flip])


def name(node) -> str:
    return getattr(node.name, "value", node.name)


READERS = (
    Reader("dataset.path", lambda c: c.dataset.name in PATH_DATASETS, "dataset=folder (or dataset=csv)",
           on=("dataset=folder",), off=("dataset=digits",)),
    Reader("dataset.test_split", lambda c: c.dataset.name != "digits", "dataset=folder, csv or tfds",
           on=("dataset=folder",), off=("dataset=digits",)),
    *(Reader(f"dataset.{key}", lambda c: c.dataset.name == "csv", "dataset=csv", on=("dataset=csv",),
             off=("dataset=folder",)) for key in ("images", "file_column", "label_column")),
    Reader("dataset.data_dir", lambda c: c.dataset.name not in ("digits", "folder", "csv"),
           "dataset=tfds dataset.name=...", on=("dataset=tfds", "dataset.name=tf_flowers"), off=("dataset=digits",)),
    Reader("dataset.cache_ram_share", lambda c: c.dataset.cache == "auto", "dataset.cache=auto",
           on=("dataset.cache=auto",), off=("dataset.cache=memory",)),
    Reader("augmentation.fill_mode", transforms_on, "a non-zero transform (e.g. augmentation=basic)",
           on=("augmentation=basic",), off=("augmentation=none",)),
    Reader("optimizer.momentum", lambda c: name(c.optimizer) in ("sgd", "rmsprop"), "optimizer=sgd or optimizer=rmsprop",
           on=("optimizer=sgd",), off=("optimizer=adam",)),
    Reader("optimizer.nesterov", lambda c: name(c.optimizer) == "sgd", "optimizer=sgd",
           on=("optimizer=sgd",), off=("optimizer=rmsprop",)),
    Reader("optimizer.decay_rate", lambda c: c.optimizer.schedule.value == "exponential",
           "optimizer.schedule=exponential", on=("optimizer.schedule=exponential",), off=("optimizer.schedule=cosine",)),
    Reader("trainer.fine_tune_lr_factor", lambda c: c.trainer.fine_tune_epochs > 0, "trainer.fine_tune_epochs > 0",
           on=("model=mobilenetv2", "model.weights=null", "trainer.fine_tune_epochs=1"), off=()),
    Reader("model.fine_tune_at", lambda c: getattr(c.model, "trainable", True) or c.trainer.fine_tune_epochs > 0,
           "model.trainable=true or trainer.fine_tune_epochs > 0",
           on=("model=mobilenetv2", "model.weights=null"),
           off=("model=mobilenetv2", "model.weights=null", "model.trainable=false")),
    Reader("trainer.feature_cache", lambda c: name(c.model) != "cnn", "a backbone (model=mobilenetv2, ...)",
           on=("model=mobilenetv2", "model.weights=null"), off=("model=cnn",)),
    Reader("pruner.monitor", lambda c: c.pruner.name.value != "none", "pruner=median or pruner=asha",
           on=("pruner=median",), off=("pruner=none",)),
    Reader("pruner.min_trials", lambda c: c.pruner.name.value != "none", "pruner=median or pruner=asha",
           on=("pruner=asha",), off=("pruner=none",)),
    Reader("pruner.warmup_epochs", lambda c: c.pruner.name.value == "median", "pruner=median",
           on=("pruner=median",), off=("pruner=asha",)),
    Reader("pruner.min_epochs", lambda c: c.pruner.name.value == "asha", "pruner=asha",
           on=("pruner=asha",), off=("pruner=median",)),
    Reader("pruner.factor", lambda c: c.pruner.name.value == "asha", "pruner=asha",
           on=("pruner=asha",), off=("pruner=median",)),
    Reader("tuner.max_trials", lambda c: c.tuner is not None and c.tuner.name.value != "hyperband",
           "tuner=random, bayesian or grid (Hyperband sizes itself from tuner.max_epochs and tuner.factor)",
           on=("tuner=random",), off=("tuner=hyperband",)),
    Reader("tuner.num_initial_points", lambda c: c.tuner is not None and c.tuner.name.value == "bayesian",
           "tuner=bayesian", on=("tuner=bayesian",), off=("tuner=random",)),
    *(Reader(f"tuner.{key}", lambda c: c.tuner is not None and c.tuner.name.value == "hyperband", "tuner=hyperband",
             on=("tuner=hyperband",), off=("tuner=random",))
      for key in ("max_epochs", "factor", "continue_promoted")),
    *(Reader(f"search.{key}", lambda c: c.tuner is not None, "a search (tuner=... search_space=...)",
             on=("tuner=random", "search_space=cnn"), off=())
      for key in ("name", "dir", "overwrite", "recycle_every")),
)

# Read by every option of their group (or by the run whatever it is).
ALWAYS_READ = {
    "dataset": {"name", "image_size", "batch_size", "validation_split", "cache", "on_bad_image", "on_duplicate",
                "max_image_pixels",
                "small_class_share", "autotune"},
    "augmentation": {"name", "rotation", "width_shift", "height_shift", "shear", "zoom", "horizontal_flip",
                     "vertical_flip"},
    "model": {"name", "dropout", "l1", "l2", "head", "weights", "filters", "kernel_size", "dense_units", "trainable",
              "input_size"},
    "optimizer": {"name", "lr", "weight_decay", "schedule"},
    "trainer": {"epochs", "early_stopping_patience", "monitor", "precision", "jit_compile", "seed", "deterministic",
                "class_weight", "fine_tune_epochs", "verbose", "strategy"},
    "pruner": {"name"},
    "tuner": {"name", "objective", "executions_per_trial", "seed", "max_retries_per_trial",
              "max_consecutive_failed_trials", "budget_minutes"},
    "search": {"worker", "distributed"},  # search.distributed without a search is refused by the app itself
}


def value_at(cfg: Config, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        if node is None:
            return None
        node = getattr(node, part, None)
    return node


def shown(value: Any) -> str:
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(shown(v) for v in value) + "]"
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def unread_settings(cfg: Config, reference) -> list[str]:
    """One sentence per key that `cfg` sets (it differs from `reference`, the DictConfig of the same options
    with nothing set) and does not read."""
    from omegaconf import OmegaConf

    found = []
    for entry in READERS:
        value = value_at(cfg, entry.key)
        if entry.reads(cfg) or value == OmegaConf.select(reference, entry.key, default=None, throw_on_missing=False):
            continue
        found.append(f"{entry.key}={shown(value)} is not read by this run; it is read by {entry.reader}: "
                     f"add that, or drop {entry.key}")
    return found


GROUPS = ("dataset", "augmentation", "model", "optimizer", "trainer", "pruner", "tuner")


def option_overrides(choices: dict[str, Any]) -> list[str]:
    """The group choices alone (`model=resnet50 ...`): composed, they give each key's value when nothing is set."""
    return [f"{group}={choices[group]}" for group in GROUPS if choices.get(group)]


def schema_keys() -> dict[str, set[str]]:
    """Every key of every group's schema (the union over a group's options)."""
    from imgexp.config import (AugmentationConfig, BackboneConfig, CNNConfig, DatasetConfig, OptimizerConfig,
                               PrunerConfig, SearchConfig, TrainerConfig, TunerConfig)

    fields = lambda *classes: {f.name for c in classes for f in dataclasses.fields(c)}  # noqa: E731
    return {"dataset": fields(DatasetConfig), "augmentation": fields(AugmentationConfig),
            "model": fields(CNNConfig, BackboneConfig), "optimizer": fields(OptimizerConfig),
            "trainer": fields(TrainerConfig), "pruner": fields(PrunerConfig), "tuner": fields(TunerConfig),
            "search": fields(SearchConfig)}
