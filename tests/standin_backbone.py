"""Stand-ins for pretrained backbones, offline: random weights whose BatchNorm statistics are those of
real images, so that a frozen backbone gives features that differ from image to image.

A backbone built with `weights=None` and frozen keeps BatchNorm's initial statistics (mean 0,
variance 1) while its activations shrink layer after layer: a random MobileNetV2 at 32 px pools to
features of about 1e-13 for every image, on which a head learns its bias alone and every comparison
of two heads passes whatever they were trained on. One training-mode pass with momentum 0 sets each
BatchNorm layer's statistics to those of the batch (each layer sees the activations the layers before
it normalise with the statistics they just took), as ImageNet training would have.
"""

from pathlib import Path

import keras
import numpy as np

from imgexp.models.backbones import BACKBONES, preprocess_layer


def standin_weights(name: str, images: np.ndarray, path: Path, seed: int = 0) -> Path:
    """A `model.weights` file for `model=name` at the images' size: random weights (from `seed`),
    BatchNorm statistics of `images` (uint8-range RGB, N x H x W x 3)."""
    keras.utils.set_random_seed(seed)
    spec = BACKBONES[name]
    backbone = spec.constructor(include_top=False, weights=None, input_shape=images.shape[1:], pooling="avg")
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0  # the moving statistics become this batch's
    backbone(preprocess_layer(spec.preprocessing)(images.astype("float32")), training=True)
    backbone.save_weights(path)
    return path
