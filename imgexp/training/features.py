"""Frozen-backbone features, computed once: the head trains on them instead of on images.

While a backbone is frozen and the images are not augmented, everything before the head (resizing,
the backbone's preprocessing, the backbone, its pooling) is a fixed function of the image. So it runs
once per image, and the head (Dropout, Dense) trains on the stored features: the same layers of the
same model, so the run's checkpoints, metrics and model.keras are the whole model's, evaluated on
images. The features are keyed by what determines them (the frozen part's weights and layout, the
input and image sizes, the precision, the data), kept in the owner's RunCache and, for a search, on disk in
its folder (written whole or not at all), so every trial, recycled worker and local worker of a
search shares them. `trainer.feature_cache=off` trains on images as before.
"""

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from imgexp import safe_write
from imgexp.data.cache_choice import available_memory_bytes
from imgexp.data.pipeline import EpochCounter, PREFETCH_BATCHES, shuffled_values
from imgexp.data.run_cache import RunCache
from imgexp.data.source import ImageSource, Split
from imgexp.models.backbones import split_at_backbone
from imgexp.models.identity import weights_key

log = logging.getLogger(__name__)

FEATURES_DIR = "features"  # in a search folder: features/<key>/{train,validation}.npy
FEATURES = "features"  # the RunCache kind; cache.passes["features"] counts the frozen part's passes over a split


@dataclass
class HeadTraining:
    """What the head phase trains instead of the whole model: `head` (sharing the whole model's
    Dropout and Dense layers) on `train` and `validation` datasets of stored features."""

    head: keras.Model
    train: tf.data.Dataset
    validation: tf.data.Dataset
    epochs: EpochCounter
    steps: int  # batches in an epoch of `train`, which repeats without end
    frozen_weights: str  # imgexp.models.identity.weights_key of the frozen part

    def compile_arguments(self) -> dict:
        """model.compile's for the head, beside its loss and optimizer: an epoch's steps run as one call
        of the train step (a head's step takes ~1 ms; Keras' call of it as much again)."""
        return {"steps_per_execution": self.steps}

    def fit_arguments(self) -> dict:
        """model.fit's, beside the data: the length of an epoch of the repeated training batches. Told
        it, Keras makes one iterator for the whole fit, where a finite dataset gets a new one every
        epoch (10-15 ms an epoch of 1,000 features here); and it counts exactly one optimizer
        iteration per batch (on a dataset of unknown length, Keras' last step of each epoch meets
        its end and still counts one, which moves Adam's bias correction and makes every later step
        differ from the run on images). The validation batches stay finite: with several steps to an
        execution, Keras 3.15 evaluates `steps_per_execution` batches of a repeated dataset, whatever
        `validation_steps` says."""
        return {"steps_per_epoch": self.steps}


def feature_key(frozen_weights: str, image_size: tuple[int, int], data: str) -> str:
    """What determines the features: the frozen part's layers and weights (backbone, weights file or
    seed, input size, preprocessing, precision: imgexp.models.identity.weights_key), the image size
    and the data (its listing and content fingerprint)."""
    return hashlib.blake2b(f"{frozen_weights}|{image_size}|{data}".encode(), digest_size=16).hexdigest()


def compute(frozen: keras.Model, split: Split, image_size: tuple[int, int], batch_size: int) -> np.ndarray:
    """The frozen part's output for every image of `split`, in its order, as float32."""
    from imgexp.data.pipeline import make_dataset

    ds = make_dataset(split, image_size, batch_size, training=False)
    # As a graph, the way model.fit runs the frozen part when it trains on images: measured equal to
    # the train step's output, where an eager call differs by up to 3e-5 in float32 (a MobileNetV2).
    # Traced once for any batch size (the last batch is smaller), as fit traces its step.
    forward = tf.function(lambda x: frozen(x, training=False), input_signature=[ds.element_spec[0]])
    return np.concatenate([np.asarray(forward(x), np.float32) for x, _ in ds])


def read_stored(folder: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Features another trial or worker stored; None when absent or unreadable (then they are computed again)."""
    try:
        return tuple(np.load(folder / f"{name}.npy", allow_pickle=False) for name in ("train", "validation"))
    except (OSError, ValueError) as err:
        if (folder / "train.npy").exists():
            log.warning("%s cannot be read (%s); computing the features again", folder, err)
        return None


def stored_features(key: str, frozen: keras.Model, source: ImageSource, image_size: tuple[int, int],
                    batch_size: int, folder: Path | None, cache: RunCache) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) features for `key`: from `cache`, from `folder` (a search's), or computed."""
    stored = folder / FEATURES_DIR / key if folder is not None else None
    found = cache.lookup(FEATURES, key)
    if found is not None:  # on disk too, unless this owner had them before the search folder did
        write = stored is not None and not (stored / "validation.npy").is_file()
    elif stored is not None and (found := read_stored(stored)) is not None:
        log.info("frozen-backbone features: reused from %s", stored)
        write = False
    else:  # absent, or damaged on disk: computed, and stored for the search's other processes
        found = tuple(compute(frozen, split, image_size, batch_size) for split in (source.train, source.validation))
        cache.passes[FEATURES] += 2
        log.info("frozen-backbone features: computed once for %d + %d images (%s); the head trains on them",
                 len(source.train), len(source.validation), key[:12])
        write = stored is not None
    if write:
        for name, values in zip(("train", "validation"), found):  # each file whole or not at all (safe_write)
            safe_write.write_with(stored / f"{name}.npy", lambda temp, v=values: np.save(temp, v), folder)
    return cache.put(FEATURES, key, found)


def head_datasets(features: tuple[np.ndarray, np.ndarray], source: ImageSource, batch_size: int,
                  seed: int) -> tuple[tf.data.Dataset, tf.data.Dataset, EpochCounter, int]:
    """Training batches in the order the image pipeline would give them (from seed and epoch), repeated
    without end, validation batches in the split's order, and the batches in an epoch of training."""
    train_features, validation_features = features
    counter = EpochCounter()
    train = shuffled_values(train_features, source.train.labels, seed, counter)
    train = train.batch(batch_size).map(lambda x, y, s: (x, y)).repeat().prefetch(PREFETCH_BATCHES)
    validation = tf.data.Dataset.from_tensor_slices((validation_features, source.validation.labels))
    validation = validation.batch(batch_size).prefetch(PREFETCH_BATCHES)
    return train, validation, counter, -(-len(train_features) // batch_size)


def head_training(model: keras.Model, source: ImageSource, image_size: tuple[int, int], batch_size: int, seed: int,
                  data: str, ram_share: float, folder: Path | None, augmentation: str | None,
                  replicas: int, cache: RunCache) -> HeadTraining | None:
    """The head on stored features while the backbone is frozen, or None: a model without a frozen
    backbone (silently), or with one that cannot use them (one log line: augmented images, several
    replicas, or features larger than the memory `dataset.cache_ram_share` allows)."""
    parts = split_at_backbone(model)
    if parts is None or parts[0].trainable_weights:
        return None
    frozen, head = parts
    if augmentation is not None:
        log.info("trainer.feature_cache: augmentation=%s draws every image anew each epoch, so the frozen backbone "
                 "runs on each of them; with augmentation=none (or every transform at 0) its features are computed "
                 "once and the head trains on them", augmentation)
        return None
    if replicas > 1:
        log.info("trainer.feature_cache: off under a %d-replica strategy; the backbone runs on every image", replicas)
        return None
    needed = (len(source.train) + len(source.validation)) * int(np.prod(frozen.output.shape[1:])) * 4
    allowed = int(ram_share * available_memory_bytes())
    if needed > allowed:
        log.info("trainer.feature_cache: the features take %.0f MB, more than the %.0f MB dataset.cache_ram_share "
                 "allows; the frozen backbone runs on every image each epoch", needed / 2**20, allowed / 2**20)
        return None
    frozen_weights = weights_key(frozen)
    key = feature_key(frozen_weights, image_size, data)
    features = stored_features(key, frozen, source, image_size, batch_size, folder, cache)
    return HeadTraining(head, *head_datasets(features, source, batch_size, seed), frozen_weights)
