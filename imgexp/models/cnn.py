"""The tutorial's CNN: Rescaling, [Conv 3x3 relu + MaxPool 2] per filter count, Flatten, Dropout, Dense, head.

With filters [32, 64, 128], 512 dense units and 150x150 inputs it is the
tutorial's network exactly: 19,034,177 parameters for two classes.
"""

import keras

from imgexp.errors import UserError
from imgexp.models.head import choose_head, weight_penalty


def build(
    image_size: tuple[int, int],
    num_classes: int,
    filters: list[int] = (32, 64, 128),
    kernel_size: int = 3,
    dense_units: int = 512,
    dropout: float = 0.5,
    l1: float = 0.0,
    l2: float = 0.0,
    head: str = "auto",
    weights: str | None = None,
) -> keras.Model:
    side = min(image_size)
    for _ in filters:  # each block: a 'valid' convolution, then pooling by 2
        side = (side - kernel_size + 1) // 2
    if side < 1:
        raise UserError(
            f"dataset.image_size={list(image_size)} is too small for {len(filters)} conv blocks of "
            f"kernel {kernel_size}; use larger images or fewer model.filters"
        )
    inputs = keras.Input((*image_size, 3), name="pixels")
    x = keras.layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    for i, n in enumerate(filters):
        x = keras.layers.Conv2D(n, kernel_size, activation="relu", kernel_regularizer=weight_penalty(l1, l2),
                                name=f"conv{i + 1}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.Dense(dense_units, activation="relu", kernel_regularizer=weight_penalty(l1, l2), name="dense")(x)
    outputs = choose_head(num_classes, head).layer(weight_penalty(l1, l2))(x)
    model = keras.Model(inputs, outputs, name="cnn")
    if weights:
        try:
            model.load_weights(weights)
        except ValueError as err:
            raise UserError(f"model.weights={weights}: does not fit this CNN ({err})") from err
    return model
