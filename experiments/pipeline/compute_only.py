"""Is the epoch-to-epoch bimodality in the model's own compute? The tutorial CNN, model.fit on in-memory
arrays (no decoding, no augmentation), 16 epochs in each precision; images/s of epochs 2+.

    python experiments/pipeline/compute_only.py
"""
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from imgexp.tensorflow_runtime import import_tensorflow  # noqa: E402

import_tensorflow()
import keras  # noqa: E402
import numpy as np  # noqa: E402

from imgexp.models import build_model  # noqa: E402

times: list[float] = []


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        times.append(time.perf_counter() - self.started)


for precision in ("float32", "mixed_bfloat16"):
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    model = build_model("cnn", (150, 150), 2)
    model.compile(optimizer="adam", loss="binary_crossentropy", jit_compile=False)
    x = np.random.default_rng(0).integers(0, 256, (320, 150, 150, 3)).astype("float32")
    y = np.zeros(320, "int32")
    times.clear()
    model.fit(x, y, batch_size=32, epochs=16, verbose=0, callbacks=[EpochTimer()])
    t = times[1:]
    print(precision, "img/s per epoch:", [round(320 / s) for s in t], "max/median", round(max(t) / statistics.median(t), 2))
    keras.mixed_precision.set_global_policy("float32")
