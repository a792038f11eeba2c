"""Model registry: a name from `model=` -> a builder of a Keras classifier.

Every builder takes plain values and returns a model whose input is a batch of
float32 RGB pixels in [0, 255] at the dataset's image size; rescaling or the
backbone's own preprocess_input is inside the model.
"""

from collections.abc import Callable

import keras

from imgexp.models import backbones, cnn

BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "cnn": cnn.build,
    **{name: backbones.builder(name) for name in backbones.BACKBONES},
}


def build_model(name: str, image_size: tuple[int, int], num_classes: int, **options) -> keras.Model:
    """The classifier `name` with options from its config group (`model.*` keys)."""
    return BUILDERS[name](image_size=image_size, num_classes=num_classes, **options)
