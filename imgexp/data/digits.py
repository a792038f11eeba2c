"""scikit-learn's bundled 8x8 digits as RGB images: a dataset that needs no download."""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from imgexp.data.source import ImageSource, Split


def load_digits_source(validation_split: float, seed: int) -> ImageSource:
    """1797 digits, 10 classes, stratified seeded train/validation split.

    Images stay 8x8 here (uint8 RGB); the pipeline resizes them to the run's size.
    """
    digits = load_digits()
    gray = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)  # pixel values are 0..16
    rgb = np.repeat(gray[..., None], 3, axis=-1)
    labels = digits.target.astype(np.int32)
    x_train, x_val, y_train, y_val = train_test_split(
        rgb, labels, test_size=validation_split, stratify=labels, random_state=seed
    )
    return ImageSource(
        class_names=[str(d) for d in range(10)],
        train=Split(labels=y_train, images=x_train),
        validation=Split(labels=y_val, images=x_val),
    )
