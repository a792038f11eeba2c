"""A run's data: its images (decoded once where `dataset.cache` says so) and its tf.data pipelines."""

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from imgexp.config import Config
from imgexp.data.augment import RandomAffine
from imgexp.data.checks import handle_duplicates, report_class_balance
from imgexp.data.cache_choice import MEMORY, available_memory_bytes, choose_cache
from imgexp.data.in_memory import DECODED, in_memory
from imgexp.data.load import BUILT_IN, ListingRequest, load_source
from imgexp.data.pipeline import EpochCounter, make_dataset
from imgexp.data.run_cache import RunCache, array_bytes
from imgexp.data.source import ImageSource
from imgexp.tracking.tensorboard import image_grid, png_bytes

log = logging.getLogger(__name__)


def image_count(source: ImageSource) -> int:
    return sum(len(split) for split in source.splits().values())


def listing_request(cfg: Config) -> ListingRequest:
    dataset_cfg = cfg.dataset
    catalogue = dataset_cfg.name not in BUILT_IN
    return ListingRequest(dataset_cfg.name, dataset_cfg.path, dataset_cfg.validation_split, cfg.trainer.seed,
                          dataset_cfg.on_bad_image.value, dataset_cfg.test_split, dataset_cfg.images,
                          dataset_cfg.file_column, dataset_cfg.label_column,
                          tuple(dataset_cfg.image_size) if catalogue else None, dataset_cfg.data_dir,
                          dataset_cfg.cache_ram_share, dataset_cfg.max_image_pixels)


def dataset_key(cfg: Config) -> tuple:
    """What decides a run's images: the listing, the duplicates policy and the image size."""
    return (listing_request(cfg), cfg.dataset.on_duplicate.value, tuple(cfg.dataset.image_size))


LISTING = "listing"  # the RunCache kind


def checked_listing(cfg: Config, cache: RunCache) -> ImageSource:
    """The dataset's files (or in-memory images) and labels, listed once per owner (a folder's headers
    are read once per search, not once per trial), with duplicates across splits handled as
    `dataset.on_duplicate` says and the class balance logged."""
    request = listing_request(cfg)
    listed = cache.get(LISTING, request, lambda: load_source(request))
    dataset_cfg = cfg.dataset
    source = handle_duplicates(listed, request.root, dataset_cfg.on_duplicate.value, cache.hashes)
    report_class_balance(source, dataset_cfg.small_class_share)
    return source


def load_images(cfg: Config, cache: RunCache) -> tuple[ImageSource, str | None, ImageSource]:
    """The dataset's images, the cache the tf.data pipeline still applies ("memory": none needed),
    and the dataset as listed (file names: what the run's records describe).

    `dataset.cache=memory` decodes once per owner and every later run (a search's
    trials) reuses the arrays; `auto` does so when they fit in `dataset.cache_ram_share`
    of the available memory, and streams from disk otherwise.
    """
    dataset_cfg = cfg.dataset
    size = tuple(dataset_cfg.image_size)
    key = dataset_key(cfg)
    listing = checked_listing(cfg, cache)
    kept = dataset_cfg.cache
    if kept == "auto" and cache.has(DECODED, key):
        kept = MEMORY  # decided and decoded by an earlier run of the same owner
    elif kept == "auto":
        images = image_count(listing)
        choice = choose_cache(images, size, dataset_cfg.cache_ram_share, available_memory_bytes())
        log.info(choice.describe(images, size))
        kept = choice.cache
    if kept != MEMORY:
        return listing, kept, listing
    return in_memory(key, listing, size, dataset_cfg.on_bad_image.value == "skip", cache), MEMORY, listing


@dataclass
class Inputs:
    """A run's pipelines, and the counter that tells the training pipeline which epoch it serves.

    The runs of one owner with the same data and pipeline settings share one Inputs (make_datasets):
    each fit sets the counter to its first epoch, and every draw follows from (seed, epoch), so a
    shared pipeline gives each run what a new one would, without tracing its functions again."""

    train: tf.data.Dataset
    validation: tf.data.Dataset
    epochs: EpochCounter
    first_batch: np.ndarray | None = None
    sample_png: bytes | None = None

    def sample_images(self) -> np.ndarray:
        """The images of the first training batch (of epoch 0), taken once."""
        if self.first_batch is None:
            self.epochs.set(0)
            self.first_batch = next(iter(self.train))[0].numpy()
        return self.first_batch

    def sample_grid(self) -> bytes:
        """sample_images() tiled into one PNG, encoded once (0.12 s for 16 photos of 128 px)."""
        if self.sample_png is None:
            self.sample_png = png_bytes(image_grid(self.sample_images()))
        return self.sample_png


def augmenter_of(cfg: Config) -> RandomAffine:
    aug = {k: v for k, v in dataclasses.asdict(cfg.augmentation).items() if k != "name"}
    return RandomAffine(**{**aug, "fill_mode": cfg.augmentation.fill_mode.value})


PIPELINES = "pipelines"  # the RunCache kind


def make_datasets(cfg: Config, source: ImageSource, cache: str | None, run_cache: RunCache) -> Inputs:
    """Training and validation pipelines, made once per owner for the same data and settings; images
    already in memory need no tf.data cache."""
    dataset_cfg = cfg.dataset
    key = (dataset_key(cfg), repr(cfg.augmentation), dataset_cfg.batch_size, cfg.trainer.seed, cache,
           dataset_cfg.autotune)  # dataset_key holds the listing (on_bad_image too) and the image size
    return run_cache.get(PIPELINES, key, lambda: new_datasets(cfg, source, cache),
                         size=array_bytes(source) if cache == MEMORY else 0)  # tf.data holds a copy of the arrays


def new_datasets(cfg: Config, source: ImageSource, cache: str | None) -> Inputs:
    dataset_cfg = cfg.dataset
    augmenter = augmenter_of(cfg)
    common = dict(image_size=tuple(dataset_cfg.image_size), batch_size=dataset_cfg.batch_size,
                  cache=None if cache == MEMORY else cache, seed=cfg.trainer.seed,
                  skip_bad=dataset_cfg.on_bad_image.value == "skip", autotune=dataset_cfg.autotune)
    counter = EpochCounter()
    train_ds = make_dataset(source.train, training=True, augmenter=augmenter, cache_name="train", epochs=counter,
                            **common)
    val_ds = make_dataset(source.validation, training=False, cache_name="validation", **common)
    return Inputs(train_ds, val_ds, counter)
