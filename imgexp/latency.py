"""Latency per image at batch 1: what one prediction costs on this machine, the same way for every runtime."""

import statistics
import time
from collections.abc import Callable

WARMUP_CALLS = 3  # the first calls trace, allocate and fill caches
TIMED_SECONDS = 0.1  # a short loop: a tenth of a second of extra work per trial
MIN_CALLS, MAX_CALLS = 5, 50


def batch1_latency_ms(predict_one: Callable[[], object]) -> float:
    """Median milliseconds of `predict_one()` after warm-up, over at least MIN_CALLS calls and about
    TIMED_SECONDS of calls (MAX_CALLS at most): the median, because this machine is noisy."""
    for _ in range(WARMUP_CALLS):
        predict_one()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < MAX_CALLS and (len(times) < MIN_CALLS or time.perf_counter() - started < TIMED_SECONDS):
        begin = time.perf_counter()
        predict_one()
        times.append(time.perf_counter() - begin)
    return round(statistics.median(times) * 1000, 3)


def keras_latency_ms(model, image) -> float:
    """A Keras model's latency at batch 1 as a compiled call, the way a served or exported model runs:
    an eager call adds ~3 ms of Python per call here, whatever the model, and would hide its cost."""
    import tensorflow as tf

    call = tf.function(lambda x: model(x, training=False), autograph=False)
    return batch1_latency_ms(lambda: call(image))
