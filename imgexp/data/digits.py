"""scikit-learn's bundled 8x8 digits as RGB images: a dataset that needs no download."""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from imgexp.data.source import ImageSource, Split


def load_digits_source(validation_split: float, seed: int) -> ImageSource:
    """1797 digits, 10 classes, stratified seeded train/validation split.

    Images stay 8x8 here (uint8 RGB); the pipeline resizes them to the run's size. Each image is named
    by its index in scikit-learn's array (`#1234`), so split.csv says which digit went where.
    """
    digits = load_digits()
    gray = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)  # pixel values are 0..16
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    labels = digits.target.astype(np.int32)
    train, val = train_test_split(np.arange(len(labels)), test_size=validation_split, stratify=labels,
                                  random_state=seed)
    pick = lambda idx: Split(labels=labels[idx], images=rgb[idx], ids=[f"#{i}" for i in idx])  # noqa: E731
    return ImageSource(class_names=[str(d) for d in range(10)], train=pick(train), validation=pick(val))
