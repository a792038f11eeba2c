"""What tells one model's weights from another's: the layout of its layers and a digest of every weight."""

import hashlib

import keras
import numpy as np


def weights_digest(model: keras.Model) -> str:
    """A hash of every weight of `model`, in order, with its path, dtype and shape."""
    digest = hashlib.blake2b(digest_size=16)
    for weight in model.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(weight))
        digest.update(f"{weight.path}:{value.dtype}:{value.shape};".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def layout(model: keras.Model) -> str:
    """Its layers in order, each as its name, class and precision, with the model's input and output shapes."""
    layers = [(layer.name, type(layer).__name__, layer.dtype_policy.name) for layer in model.layers]
    return f"{layers!r}|{model.input.shape}|{model.output.shape}"


def weights_key(model: keras.Model) -> str:
    """Equal for two models only when they hold the same weights in the same layout."""
    return hashlib.blake2b(f"{layout(model)}|{weights_digest(model)}".encode(), digest_size=16).hexdigest()
