"""A dataset of the TensorFlow Datasets catalogue (`dataset=tfds dataset.name=tf_flowers`), an optional extra.

The images are read once, resized to the run's image size and held in memory as
uint8 (they must fit in dataset.cache_ram_share of the available memory). The
catalogue's own validation and test splits are used where it has them; the rest
is carved from train by dataset.validation_split and dataset.test_split, seeded.
Nothing is downloaded where a dataset is already prepared in dataset.data_dir.
"""

import logging

import numpy as np

from imgexp.data.cache_choice import available_memory_bytes
from imgexp.data.source import ImageSource, Split
from imgexp.errors import UserError

log = logging.getLogger(__name__)

SPLIT_NAMES = {"validation": ("validation", "val"), "test": ("test",)}


def import_tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise UserError("dataset=tfds needs TensorFlow Datasets: pip install 'imgexp[tfds]' "
                        "(tensorflow-datasets), then run the command again") from None
    return tfds


def tfds_is_mocked() -> bool:
    """Inside `tfds.testing.mock_data` nothing is prepared, yet every split reads (made-up examples)."""
    import tensorflow_datasets as tfds

    return tfds.core.dataset_builder.DatasetBuilder.as_dataset.__module__.startswith("tensorflow_datasets.testing")


def check_download_possible(name: str, data_dir: str | None) -> None:
    """A dataset not prepared in data_dir must be downloaded: say at once when that cannot be (TFDS itself
    retries for minutes). The download goes through a proxy when one is set."""
    import os
    import socket
    from urllib.parse import urlparse

    proxy = next((os.environ[v] for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy") if os.environ.get(v)),
                 None)
    host, port = (urlparse(proxy).hostname, urlparse(proxy).port or 80) if proxy else ("storage.googleapis.com", 443)
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as err:
        raise UserError(f"dataset.name={name}: cannot be read from dataset.data_dir={data_dir} (not prepared there) "
                        f"and not downloaded here ({host}:{port}: {err.strerror or err}); prepare it where there is "
                        "a network (tfds build NAME) and copy its folder into dataset.data_dir") from None


def read_split(tfds, name: str, split: str, data_dir: str | None, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    import tensorflow as tf

    try:
        ds = tfds.load(name, split=split, data_dir=data_dir, as_supervised=True, shuffle_files=False)
    except Exception as err:  # TFDS raises its own errors, and plain ones for a failed download
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "not found" in first.lower() and type(err).__name__ == "DatasetNotFoundError":
            raise UserError(f"dataset.name={name}: not in the TensorFlow Datasets catalogue ({first[:200]})") from None
        raise UserError(f"dataset.name={name}: cannot be read from dataset.data_dir={data_dir} and not downloaded here "
                        f"({type(err).__name__}: {first[:200]}); prepare it where there is a network "
                        "(tfds build NAME) and copy its folder into dataset.data_dir") from None
    resize = lambda x, y: (tf.cast(tf.clip_by_value(tf.round(tf.image.resize(x, size)), 0, 255), tf.uint8), y)  # noqa: E731
    images, labels = [], []
    for x, y in ds.map(resize).batch(256):
        images.append(x.numpy())
        labels.append(y.numpy())
    return np.concatenate(images), np.concatenate(labels).astype(np.int32)


def load_tfds_source(request) -> ImageSource:
    from imgexp.data.folder import carve_splits

    tfds = import_tfds()
    name, size = request.name, tuple(request.image_size)
    builder = tfds.builder(name, data_dir=request.data_dir)
    if not builder.is_prepared() and not tfds_is_mocked():
        check_download_possible(name, request.data_dir)
    builder_info = builder.info
    available = set(builder_info.splits) or {"train"}  # a mocked catalogue lists no splits
    count = sum(builder_info.splits[s].num_examples for s in builder_info.splits) if builder_info.splits else 0
    needed = count * size[0] * size[1] * 3
    if needed > request.ram_share * available_memory_bytes():
        raise UserError(f"dataset.name={name}: {count:,} images at {size[0]}x{size[1]} take {needed / 2**20:,.0f} MB, "
                        "more than dataset.cache_ram_share of the memory; use a smaller dataset.image_size")
    label = builder_info.features["label"] if "label" in builder_info.features else None
    class_names = list(label.names) if label is not None and hasattr(label, "names") else None
    splits = {}
    for split, names in {"train": ("train",), **SPLIT_NAMES}.items():
        found = next((n for n in names if n in available), None)
        if found:
            images, labels = read_split(tfds, name, found, request.data_dir, size)
            splits[split] = Split(labels=labels, images=images, ids=[f"{found}#{i}" for i in range(len(labels))])
    if "train" not in splits:
        raise UserError(f"dataset.name={name}: has no train split (it has {', '.join(sorted(available))})")
    class_names = class_names or [str(c) for c in range(int(splits["train"].labels.max()) + 1)]
    train, validation, test = carve_splits(splits["train"], splits.get("validation"), splits.get("test"), request)
    return ImageSource(class_names=class_names, train=train, validation=validation, test=test)
