"""`trainer.strategy`: on which devices one run trains.

`mirrored` is tf.distribute.MirroredStrategy over every visible GPU (or, with
none, every logical CPU device): a copy of the model per device, gradients
summed across them, and each batch of `dataset.batch_size` images split among
them. MultiWorkerMirroredStrategy (one run over several machines) is not
offered: Keras 3's `model.fit` fails under it (keras-team/keras#20585). Spread
trials over machines instead (search.distributed).
"""

import logging

import tensorflow as tf

from imgexp.config import Strategy

log = logging.getLogger(__name__)
# MirroredStrategy logs every all-reduce at INFO; say which devices once, here, instead.
logging.getLogger("tensorflow").setLevel(logging.WARNING)


def training_devices() -> list[str]:
    """The devices MirroredStrategy should use: the GPUs, else the (logical) CPUs."""
    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]


def distribution_strategy(strategy: Strategy) -> tf.distribute.Strategy:
    if strategy is Strategy.mirrored:
        devices = training_devices()
        log.info("training on %d devices with MirroredStrategy: %s", len(devices), ", ".join(devices))
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()  # TensorFlow's default: this process's first device
