"""A model's predictions over a split, and the metrics of them: what a run reports for its best epoch and
`python -m imgexp.evaluate` for any split or folder."""

import warnings

import keras
import numpy as np
import tensorflow as tf

from imgexp.models.head import Head

def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in `y_true` (scikit-learn's balanced_accuracy_score)."""
    from sklearn.metrics import balanced_accuracy_score

    with warnings.catch_warnings():  # predictions of a class absent from y_true are just errors here
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(y_true, y_pred))


PREDICT_CHUNK_BYTES = 64 * 2**20  # images per model call: an eager call costs ~1 ms per layer whatever its size


def predict_split(model: keras.Model, batches: tf.data.Dataset, head: Head) -> tuple[np.ndarray, np.ndarray, float]:
    """(true labels, predicted labels, mean loss) in one pass over `batches`, in calls of up to
    PREDICT_CHUNK_BYTES of images (the validation split of a small search in one or two)."""
    shape = batches.element_spec[0].shape[1:]
    if shape.is_fully_defined():  # images of one size (not a tool's raw images of any size)
        batches = batches.rebatch(max(1, PREDICT_CHUNK_BYTES // (4 * shape.num_elements())))
    labels, probabilities = [], []
    for images, y in batches:
        labels.append(y.numpy())
        # A plain call, not predict_on_batch: under MirroredStrategy Keras 3.15's predict_on_batch
        # hands every replica the whole batch and returns their outputs stacked (2x the rows).
        probabilities.append(np.asarray(model(images, training=False)))
    y_true, probs = np.concatenate(labels), np.concatenate(probabilities)
    targets = y_true[:, None] if head.units == 1 else y_true  # binary cross-entropy wants equal ranks
    loss = float(np.mean(keras.losses.get(head.loss)(targets, probs)))
    y_pred = (probs[:, 0] > 0.5).astype(int) if head.units == 1 else probs.argmax(axis=1)
    return y_true, y_pred, loss
