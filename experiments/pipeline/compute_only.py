"""Is the epoch-to-epoch bimodality in the model's own compute? The tutorial CNN, model.fit on in-memory
arrays (no decoding, no augmentation), 16 epochs in each precision; images/s of epochs 2+.

    python experiments/pipeline/compute_only.py [--precision float32] [--epochs 16]

Environment variables (TF_ENABLE_ONEDNN_OPTS, TF_NUM_INTEROP_THREADS, ...) pass through, so variants of the
float32 runtime can be compared by running this script once per variant, rounds interleaved.
"""
import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from imgexp.tensorflow_runtime import import_tensorflow

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


parser = argparse.ArgumentParser()
parser.add_argument("--precision", action="append", choices=["float32", "mixed_bfloat16"])
parser.add_argument("--epochs", type=int, default=16)
args = parser.parse_args()

for precision in args.precision or ["float32", "mixed_bfloat16"]:
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(0)
    model = build_model("cnn", (150, 150), 2)
    model.compile(optimizer="adam", loss="binary_crossentropy", jit_compile=False)
    x = np.random.default_rng(0).integers(0, 256, (320, 150, 150, 3)).astype("float32")
    y = np.zeros(320, "int32")
    times.clear()
    model.fit(x, y, batch_size=32, epochs=args.epochs, verbose=0, callbacks=[EpochTimer()])
    t = times[1:]
    print(precision, "img/s per epoch:", [round(320 / s) for s in t], "max/median", round(max(t) / statistics.median(t), 2))
    keras.mixed_precision.set_global_policy("float32")
