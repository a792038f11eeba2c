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


def decoded_images(split: Split, size: tuple[int, int], skip_bad: bool, calls: int = AUTOTUNE) -> tf.data.Dataset:
    """(uint8 image, label) pairs at `size`, from memory or decoded from files, in the split's order."""
    if split.images is not None:
        ds = tf.data.Dataset.from_tensor_slices((split.images, split.labels))
        return ds.map(lambda x, y: (resize(x, size), y), num_parallel_calls=calls)
    ds = tf.data.Dataset.from_tensor_slices((split.paths, split.labels))
    return decode_files(ds, size, skip_bad, calls)


def decode_files(ds: tf.data.Dataset, size: tuple[int, int], skip_bad: bool, calls: int) -> tf.data.Dataset:
    """(path, label, ...) elements -> (uint8 image at `size`, label, ...)."""
    ds = ds.map(lambda p, *rest: (resize(decode_image(p), size), *rest), num_parallel_calls=calls)
    if skip_bad:
        # Headers were checked up front; this catches files corrupt past their header.
        ds = ds.ignore_errors(log_warning=True)
    return ds


class EpochCounter:
    """Which epoch the next pass over a training pipeline is.

    Each pass takes the counter's value as it starts and moves it on, and draws
    its order and its augmentation from (seed, that epoch) with stateless ops.
    So epoch 5 shuffles and augments the same whether this process trained
    epochs 0-4 or resumed a run killed after them: the trainer sets the counter
    to the first epoch of every fit (imgexp.training.fit).
    """

    def __init__(self):
        self.variable = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch_counter")

    def set(self, epoch: int) -> None:
        self.variable.assign(epoch)

    def take(self) -> tf.Tensor:
        return self.variable.assign_add(1) - 1


def epoch_order(n: int, key: tf.Tensor) -> tf.Tensor:
    """A permutation of 0..n-1 that depends only on `key`."""
    return tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=key)


def with_draw_seeds(ds: tf.data.Dataset, key: tf.Tensor) -> tf.data.Dataset:
    """(image, label) -> (image, label, seed): a stateless seed per position in the epoch, from which a
    batch's augmentation is drawn (the seed of its first image)."""
    return ds.enumerate().map(lambda i, xy: (*xy, tf.random.experimental.stateless_fold_in(key, i)))


def pass_key(seed: int, counter: EpochCounter) -> tf.Tensor:
    """The key of the pass starting now: (seed, its epoch)."""
    return tf.stack([tf.constant(seed, tf.int64), counter.take()])


def shuffled_values(values, labels, seed: int, counter: EpochCounter) -> tf.data.Dataset:
    """(value, label, draw seed) for one epoch per pass, the values taken in the order drawn from
    (seed, epoch): images, file names, or a frozen backbone's features (training/features.py)."""
    values, labels = tf.constant(values), tf.constant(labels)
    count = len(labels)

    def one_epoch(_):
        key = pass_key(seed, counter)
        order = tf.data.Dataset.from_tensor_slices(epoch_order(count, key))
        return with_draw_seeds(order.map(lambda i: (tf.gather(values, i), tf.gather(labels, i))), key)

    return tf.data.Dataset.range(1).flat_map(one_epoch)


def shuffled_epochs(split: Split, size: tuple[int, int], seed: int, counter: EpochCounter, cache: str | None,
                    cache_name: str, skip_bad: bool, calls: int) -> tf.data.Dataset:
    """(uint8 image, label, draw seed) for one epoch per pass, in an order drawn from (seed, epoch)."""
    if split.images is not None:  # in memory: gather the images in the epoch's order
        return shuffled_values(split.images, split.labels, seed, counter).map(
            lambda x, y, s: (resize(x, size), y, s), num_parallel_calls=calls)
    if cache is None:  # stream from disk: shuffle the cheap file names, then decode
        return decode_files(shuffled_values(split.paths, split.labels, seed, counter), size, skip_bad, calls)
    # A tf.data file cache is read in its own order: shuffle blocks of SHUFFLE_BUFFER images as they come.
    cached = decoded_images(split, size, skip_bad, calls).cache("" if cache == "memory" else f"{cache}.{cache_name}")

    def one_epoch(_):
        key = pass_key(seed, counter)
        blocks = cached.batch(SHUFFLE_BUFFER).enumerate().map(
            lambda b, xy: permuted(xy, tf.random.experimental.stateless_fold_in(key, b)))
        return with_draw_seeds(blocks.unbatch(), key)

    return tf.data.Dataset.range(1).flat_map(one_epoch)


def permuted(xy: tuple[tf.Tensor, tf.Tensor], key: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    order = epoch_order(tf.shape(xy[1], out_type=tf.int64)[0], key)
    return tf.gather(xy[0], order), tf.gather(xy[1], order)


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
    epochs: EpochCounter | None = None,
) -> tf.data.Dataset:
    """Batches of (float32 images in [0, 255], int32 labels).

    Training batches are shuffled and augmented with draws that follow from (seed,
    epoch), the epoch read from `epochs` (a new counter when none is given).
    `cache` is "memory", a file prefix, or None to decode every epoch.
    `autotune=False` (as `dataset.autotune`) keeps tf.data's autotuning off: one
    map call per core and PREFETCH_BATCHES prefetched, no tuning started at each epoch.
    """
    size = (int(image_size[0]), int(image_size[1]))
    calls = parallel_calls(autotune)
    to_float = lambda x: tf.cast(x, tf.float32)  # noqa: E731
    if training:
        ds = shuffled_epochs(split, size, seed, epochs or EpochCounter(), cache, cache_name, skip_bad, calls)
        ds = ds.batch(batch_size)
        if augmenter is not None and not augmenter.is_identity:
            ds = ds.map(lambda x, y, s: (augmenter(to_float(x), seed=s[0]), y), num_parallel_calls=calls)
        else:
            ds = ds.map(lambda x, y, s: (to_float(x), y), num_parallel_calls=calls)
        if split.images is not None or not skip_bad:  # nothing can be dropped: Keras may know the epoch's length
            ds = ds.apply(tf.data.experimental.assert_cardinality(-(-len(split) // batch_size)))
    else:
        ds = decoded_images(split, size, skip_bad, calls)
        if cache is not None:
            ds = ds.cache("" if cache == "memory" else f"{cache}.{cache_name}")
        ds = ds.batch(batch_size).map(lambda x, y: (to_float(x), y), num_parallel_calls=calls)
    if autotune:
        return ds.prefetch(AUTOTUNE)
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(PREFETCH_BATCHES).with_options(options)
