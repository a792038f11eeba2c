"""The tf.data input pipeline: decode in parallel, resize, cache, batch, augment, prefetch.

Files stream from disk (a folder larger than RAM works when `cache` is null or
a file); augmentation runs on whole batches with one affine resampling each.
Images leave the pipeline as float32 in [0, 255]: scaling and each backbone's
own preprocessing live inside the model, so a saved model takes raw pixels.
"""

import os

import tensorflow as tf

from imgexp.data.augment import RandomAffine
from imgexp.data.source import Split

AUTOTUNE = tf.data.AUTOTUNE
SHUFFLE_BUFFER = 10_000  # decoded images held for shuffling after a cache
PREFETCH_BATCHES = 2  # without autotuning: one batch being trained on, one ready


def parallel_calls(autotune: bool) -> int:
    """tf.data's tuned parallelism, or one call per core this process may run on."""
    return AUTOTUNE if autotune else len(os.sched_getaffinity(0))


def decode_image(path: tf.Tensor) -> tf.Tensor:
    """Any JPEG/PNG/GIF/BMP, whatever its name or mode (gray, RGBA), as uint8 RGB."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def resize(image: tf.Tensor, size: tuple[int, int]) -> tf.Tensor:
    """Bilinear resize (as the model's own Resizing layer does), back to uint8 to cache small.

    An image already at `size` passes untouched: resizing costs as much as decoding.
    """

    def resized() -> tf.Tensor:
        scaled = tf.image.resize(image, size, method="bilinear")
        return tf.cast(tf.clip_by_value(tf.round(scaled), 0, 255), tf.uint8)

    already = tf.reduce_all(tf.shape(image)[:2] == tf.constant(size))
    return tf.cond(already, lambda: tf.identity(image), resized)


def decoded_images(split: Split, size: tuple[int, int], shuffle_seed: int | None, skip_bad: bool,
                   calls: int = AUTOTUNE) -> tf.data.Dataset:
    """(uint8 image, label) pairs at `size`, from memory or decoded from files."""
    if split.images is not None:
        ds = tf.data.Dataset.from_tensor_slices((split.images, split.labels))
        return ds.map(lambda x, y: (resize(x, size), y), num_parallel_calls=calls)
    ds = tf.data.Dataset.from_tensor_slices((split.paths, split.labels))
    if shuffle_seed is not None:  # shuffle cheap file names, before decoding
        ds = ds.shuffle(len(split), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda p, y: (resize(decode_image(p), size), y), num_parallel_calls=calls)
    if skip_bad:
        # Headers were checked up front; this catches files corrupt past their header.
        ds = ds.ignore_errors(log_warning=True)
    return ds


def make_dataset(
    split: Split,
    image_size: tuple[int, int],
    batch_size: int,
    *,
    training: bool,
    augmenter: RandomAffine | None = None,
    cache: str | None = None,
    cache_name: str = "train",
    seed: int = 0,
    skip_bad: bool = True,
    autotune: bool = False,
) -> tf.data.Dataset:
    """Batches of (float32 images in [0, 255], int32 labels).

    Training batches are shuffled (seeded, new order each epoch) and augmented.
    `cache` is "memory", a file prefix, or None to decode every epoch.
    `autotune=False` (as `dataset.autotune`) keeps tf.data's autotuning off: one
    map call per core and PREFETCH_BATCHES prefetched, no tuning started at each epoch.
    """
    size = (int(image_size[0]), int(image_size[1]))
    calls = parallel_calls(autotune)
    shuffle_files_first = training and cache is None and split.paths is not None
    ds = decoded_images(split, size, seed if shuffle_files_first else None, skip_bad, calls)
    if cache is not None:
        ds = ds.cache("" if cache == "memory" else f"{cache}.{cache_name}")
    if training and not shuffle_files_first:
        ds = ds.shuffle(min(len(split), SHUFFLE_BUFFER), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    to_float = lambda x: tf.cast(x, tf.float32)  # noqa: E731
    if training and augmenter is not None and not augmenter.is_identity:
        seeds = tf.data.Dataset.random(seed=seed).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda batch, s: (augmenter(to_float(batch[0]), seed=s), batch[1]), num_parallel_calls=calls
        )
    else:
        ds = ds.map(lambda x, y: (to_float(x), y), num_parallel_calls=calls)
    if autotune:
        return ds.prefetch(AUTOTUNE)
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(PREFETCH_BATCHES).with_options(options)
