"""The output layer and loss for a number of classes."""

from dataclasses import dataclass

import keras

from imgexp.errors import UserError


@dataclass(frozen=True)
class Head:
    units: int
    activation: str
    loss: str

    def layer(self, regularizer: keras.regularizers.Regularizer | None = None) -> keras.layers.Dense:
        # float32 output keeps probabilities and the loss exact under mixed precision.
        return keras.layers.Dense(self.units, activation=self.activation, dtype="float32", name="predictions",
                                  kernel_regularizer=regularizer)


def weight_penalty(l1: float, l2: float) -> keras.regularizers.Regularizer | None:
    """model.l1 / model.l2 as a Keras kernel regularizer (None when both are 0)."""
    return keras.regularizers.L1L2(l1=l1, l2=l2) if l1 or l2 else None


def choose_head(num_classes: int, head: str = "auto") -> Head:
    """One sigmoid unit + binary cross-entropy for 2 classes (auto), else softmax."""
    if head == "sigmoid" or (head == "auto" and num_classes == 2):
        if num_classes != 2:
            raise UserError(f"model.head=sigmoid needs exactly 2 classes, the data has {num_classes}; use auto or softmax")
        return Head(1, "sigmoid", "binary_crossentropy")
    return Head(num_classes, "softmax", "sparse_categorical_crossentropy")
