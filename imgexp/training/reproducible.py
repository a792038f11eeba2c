"""Random draws that follow from (seed, epoch), so that a resumed run is the run it resumes.

The input pipeline draws each epoch's order and augmentation from (seed, epoch)
(imgexp.data.pipeline.EpochCounter). What is left is the model's own random
layers (Dropout): their seed generators count draws within the process and are
not saved with the weights, so at the start of every epoch they are set to a
state made of the run's seed, the layer's place and the epoch's number.
"""

import keras
import numpy as np

from imgexp.keras_compat import seed_generator_states

GOLDEN = 0x9E3779B9  # spreads consecutive epochs over the seed space


def epoch_seed(seed: int, index: int, epoch: int) -> int:
    return (seed * 1_000_003 + index * 7_919 + epoch * GOLDEN) % 2**31


class EpochDraws(keras.callbacks.Callback):
    """At each epoch's start: every seed generator of the model at (seed, its index, epoch), 0 draws."""

    def __init__(self, seed: int, whole: keras.Model | None = None):
        super().__init__()
        self.seed, self.whole = seed, whole  # whole: numbered as in the whole model when its head alone is fit

    def on_epoch_begin(self, epoch, logs=None):
        for index, state in enumerate(seed_generator_states(self.whole or self.model)):
            state.assign(np.array([epoch_seed(self.seed, index, epoch), 0], dtype=state.dtype))
