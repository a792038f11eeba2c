"""One frozen backbone for every run of an owner that keeps it frozen from start to end.

A head search on a frozen MobileNetV2 builds the same backbone in every trial (0.4-0.7 s each, from the
same weights file), and nothing a frozen run does changes it. So the runs of one owner (a search, a
sweep) that start afresh with `model.trainable=false`, no fine-tuning and one device take it from
the owner's RunCache. Building it draws Python's random numbers (Keras seeds each initializer from them), so
the cache keeps where that state stood after the build, keyed by where it stood before: the head is
then initialised from the same draws as in a run that built its backbone itself, and a trial run
again alone gives the same result. A resumed or continued run loads files into its model, so it
builds a backbone of its own.
"""

import hashlib
import random
from pathlib import Path

import keras
import numpy as np

from imgexp.config import Config, Strategy
from imgexp.data.run_cache import RunCache
from imgexp.models.backbones import BACKBONES, load_backbone

BACKBONE = "backbone"  # the RunCache kind; cache.passes["backbone"] counts the backbones really built


def shareable(cfg: Config) -> bool:
    """The run trains a backbone's head and never the backbone itself, on one device (each run under
    `trainer.strategy=mirrored` makes its own MirroredStrategy, and a variable belongs to the strategy
    it was made under)."""
    return (cfg.model.name in BACKBONES and not cfg.model.trainable and cfg.trainer.fine_tune_epochs == 0
            and cfg.trainer.strategy is Strategy.default)


def weights_state(weights: str | None) -> tuple | None:
    """What tells one weights file from another, or the same file rewritten: its size and change time."""
    if weights in (None, "imagenet"):
        return None
    stat = Path(weights).stat()
    return stat.st_size, stat.st_mtime_ns


def random_state_key() -> str:
    return hashlib.blake2b(repr(random.getstate()).encode(), digest_size=16).hexdigest()


def shared_backbone(cfg: Config, cache: RunCache) -> keras.Model:
    """The frozen backbone of `cfg`'s model from `cache`, built the first time; Python's random state
    is left where building it would have left it."""
    model = cfg.model
    input_size = tuple(model.input_size or cfg.dataset.image_size)
    key = (model.name, input_size, model.weights, weights_state(model.weights),
           keras.mixed_precision.global_policy().name, random_state_key())
    found = cache.lookup(BACKBONE, key)
    if found is None:
        backbone = load_backbone(model.name, input_size, model.weights)
        cache.passes[BACKBONE] += 1
        size = sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize for w in backbone.weights)
        found = cache.put(BACKBONE, key, (backbone, random.getstate()), size=size)
    backbone, state_after = found
    random.setstate(state_after)
    return backbone
