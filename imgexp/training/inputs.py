"""A run's data: its images (decoded once where `dataset.cache` says so) and its tf.data pipelines."""

import dataclasses
import logging

import tensorflow as tf

from imgexp.config import Config
from imgexp.data.augment import RandomAffine
from imgexp.data.cache_choice import MEMORY, available_memory_bytes, choose_cache
from imgexp.data.in_memory import in_memory, is_decoded, listed
from imgexp.data.load import load_source
from imgexp.data.pipeline import make_dataset
from imgexp.data.source import ImageSource

log = logging.getLogger(__name__)


def image_count(source: ImageSource) -> int:
    return len(source.train) + len(source.validation) + (len(source.test) if source.test is not None else 0)


def dataset_key(cfg: Config) -> tuple:
    ds = cfg.dataset
    return (ds.name, ds.path, ds.validation_split, cfg.trainer.seed, ds.on_bad_image.value, tuple(ds.image_size))


def load_images(cfg: Config) -> tuple[ImageSource, str | None, ImageSource]:
    """The dataset's images, the cache the tf.data pipeline still applies ("memory": none needed),
    and the dataset as listed (file names: what the run's records describe).

    `dataset.cache=memory` decodes once per process and every later run (a search's
    trials) reuses the arrays; `auto` does so when they fit in `dataset.cache_ram_share`
    of the available memory, and streams from disk otherwise.
    """
    ds = cfg.dataset
    size = tuple(ds.image_size)
    key = dataset_key(cfg)
    settings = key[:-1]
    cache = ds.cache
    source = None
    if cache == "auto" and is_decoded(key):
        cache = MEMORY  # decided and decoded by an earlier run in this process
    elif cache == "auto":
        source = load_source(*settings)  # file names only: cheap
        images = image_count(source)
        choice = choose_cache(images, size, ds.cache_ram_share, available_memory_bytes())
        log.info(choice.describe(images, size))
        cache = choice.cache
    if cache != MEMORY:
        source = source or load_source(*settings)
        return source, cache, source
    first_listing = source
    decoded = in_memory(key, lambda: first_listing or load_source(*settings), size, ds.on_bad_image.value == "skip")
    return decoded, MEMORY, listed(key)


def make_datasets(cfg: Config, source: ImageSource, cache: str | None) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """Training and validation pipelines; images already in memory need no tf.data cache."""
    ds = cfg.dataset
    aug = {k: v for k, v in dataclasses.asdict(cfg.augmentation).items() if k != "name"}
    augmenter = RandomAffine(**{**aug, "fill_mode": cfg.augmentation.fill_mode.value})
    common = dict(image_size=tuple(ds.image_size), batch_size=ds.batch_size,
                  cache=None if cache == MEMORY else cache, seed=cfg.trainer.seed,
                  skip_bad=ds.on_bad_image.value == "skip")
    train_ds = make_dataset(source.train, training=True, augmenter=augmenter, cache_name="train", **common)
    val_ds = make_dataset(source.validation, training=False, cache_name="validation", **common)
    return train_ds, val_ds
