"""Decoded images kept in memory for the runs of one owner (`dataset.cache=memory`).

A search runs many trials on the same data: the first trial that asks for a
dataset at an image size decodes and resizes it, every later one reuses the
arrays from the owner's RunCache. `cache.passes["decode"]` counts the real decodes.
"""

from collections.abc import Hashable

import numpy as np
import tensorflow as tf

from imgexp.data.pipeline import decoded_images
from imgexp.data.run_cache import RunCache
from imgexp.data.source import ImageSource, Split

DECODED = "decoded"  # the RunCache kind


def to_memory(split: Split, size: tuple[int, int], skip_bad: bool) -> Split:
    """Every image of the split decoded and resized to `size`, as uint8 arrays."""
    images, labels = [], []
    for batch_images, batch_labels in decoded_images(split, size, skip_bad).batch(256).prefetch(2):
        images.append(batch_images.numpy())
        labels.append(batch_labels.numpy())
    if not images:
        return Split(labels=np.zeros(0, np.int32), images=np.zeros((0, *size, 3), np.uint8))
    return Split(labels=np.concatenate(labels), images=np.concatenate(images))


def decode_all(source: ImageSource, size: tuple[int, int], skip_bad: bool, cache: RunCache) -> ImageSource:
    cache.passes["decode"] += 1
    with tf.device("/CPU:0"):
        return ImageSource(
            class_names=source.class_names,
            train=to_memory(source.train, size, skip_bad),
            validation=to_memory(source.validation, size, skip_bad),
            test=to_memory(source.test, size, skip_bad) if source.test is not None else None,
        )


def in_memory(key: Hashable, source: ImageSource, size: tuple[int, int], skip_bad: bool,
              cache: RunCache) -> ImageSource:
    """`source`'s images decoded at `size`, once per owner for this `key` (dataset settings + size)."""
    return cache.get(DECODED, key, lambda: decode_all(source, size, skip_bad, cache))
