"""The output layer and loss for a number of classes."""

from dataclasses import dataclass

import keras

from imgexp.errors import UserError


@dataclass(frozen=True)
class Head:
    units: int
    activation: str
    loss: str

    def layer(self) -> keras.layers.Dense:
        # float32 output keeps probabilities and the loss exact under mixed precision.
        return keras.layers.Dense(self.units, activation=self.activation, dtype="float32", name="predictions")


def choose_head(num_classes: int, head: str = "auto") -> Head:
    """One sigmoid unit + binary cross-entropy for 2 classes (auto), else softmax."""
    if head == "sigmoid" or (head == "auto" and num_classes == 2):
        if num_classes != 2:
            raise UserError(f"model.head=sigmoid needs exactly 2 classes, the data has {num_classes}; use auto or softmax")
        return Head(1, "sigmoid", "binary_crossentropy")
    return Head(num_classes, "softmax", "sparse_categorical_crossentropy")
