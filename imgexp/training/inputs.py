"""A run's data: its images (decoded once where `dataset.cache` says so) and its tf.data pipelines."""

import dataclasses
import logging
from dataclasses import dataclass

import tensorflow as tf

from imgexp.config import Config
from imgexp.data.augment import RandomAffine
from imgexp.data.checks import handle_duplicates, report_class_balance
from imgexp.data.cache_choice import MEMORY, available_memory_bytes, choose_cache
from imgexp.data.in_memory import in_memory, is_decoded
from imgexp.data.load import BUILT_IN, ListingRequest, load_source
from imgexp.data.pipeline import EpochCounter, make_dataset
from imgexp.data.source import ImageSource

log = logging.getLogger(__name__)


def image_count(source: ImageSource) -> int:
    return sum(len(split) for split in source.splits().values())


def listing_request(cfg: Config) -> ListingRequest:
    ds = cfg.dataset
    catalogue = ds.name not in BUILT_IN
    return ListingRequest(ds.name, ds.path, ds.validation_split, cfg.trainer.seed, ds.on_bad_image.value,
                          ds.test_split, ds.images, ds.file_column, ds.label_column,
                          tuple(ds.image_size) if catalogue else None, ds.data_dir, ds.cache_ram_share,
                          ds.max_image_pixels)


def dataset_key(cfg: Config) -> tuple:
    """What decides a run's images: the listing, the duplicates policy and the image size."""
    return (listing_request(cfg), cfg.dataset.on_duplicate.value, tuple(cfg.dataset.image_size))


_listings: dict[ListingRequest, ImageSource] = {}


def checked_listing(cfg: Config) -> ImageSource:
    """The dataset's files (or in-memory images) and labels, listed once per process, with
    duplicates across splits handled as `dataset.on_duplicate` says and the class balance logged."""
    request = listing_request(cfg)
    if request not in _listings:  # a folder's headers are read once per search, not once per trial
        _listings[request] = load_source(request)
    ds = cfg.dataset
    source = handle_duplicates(_listings[request], request.root, ds.on_duplicate.value)
    report_class_balance(source, ds.small_class_share)
    return source


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
    listing = checked_listing(cfg)
    cache = ds.cache
    if cache == "auto" and is_decoded(key):
        cache = MEMORY  # decided and decoded by an earlier run in this process
    elif cache == "auto":
        images = image_count(listing)
        choice = choose_cache(images, size, ds.cache_ram_share, available_memory_bytes())
        log.info(choice.describe(images, size))
        cache = choice.cache
    if cache != MEMORY:
        return listing, cache, listing
    return in_memory(key, listing, size, ds.on_bad_image.value == "skip"), MEMORY, listing


@dataclass
class Inputs:
    """A run's pipelines, and the counter that tells the training pipeline which epoch it serves."""

    train: tf.data.Dataset
    validation: tf.data.Dataset
    epochs: EpochCounter


def augmenter_of(cfg: Config) -> RandomAffine:
    aug = {k: v for k, v in dataclasses.asdict(cfg.augmentation).items() if k != "name"}
    return RandomAffine(**{**aug, "fill_mode": cfg.augmentation.fill_mode.value})


def make_datasets(cfg: Config, source: ImageSource, cache: str | None) -> Inputs:
    """Training and validation pipelines; images already in memory need no tf.data cache."""
    ds = cfg.dataset
    augmenter = augmenter_of(cfg)
    common = dict(image_size=tuple(ds.image_size), batch_size=ds.batch_size,
                  cache=None if cache == MEMORY else cache, seed=cfg.trainer.seed,
                  skip_bad=ds.on_bad_image.value == "skip", autotune=ds.autotune)
    counter = EpochCounter()
    train_ds = make_dataset(source.train, training=True, augmenter=augmenter, cache_name="train", epochs=counter,
                            **common)
    val_ds = make_dataset(source.validation, training=False, cache_name="validation", **common)
    return Inputs(train_ds, val_ds, counter)
