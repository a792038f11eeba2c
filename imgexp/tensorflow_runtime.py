"""TensorFlow for this process: imported once, without the C++ start-up lines nobody can act on.

TensorFlow 2.21 logs through absl before absl is initialised, and such lines
go to stderr whatever TF_CPP_MIN_LOG_LEVEL says: the oneDNN notice, "Could not
find cuda drivers" and, on a machine without a GPU, an E-level "failed call to
cuInit". imgexp catches what the import and the device probe write on the
native stderr, drops those lines and passes every other one on. Setting
TF_CPP_MIN_LOG_LEVEL=0 (or 1) shows them all again.
"""

import logging
import os
import re
import sys
import tempfile
from contextlib import contextmanager
from types import ModuleType

log = logging.getLogger(__name__)

# Start-up lines of a CPU-only TensorFlow that say nothing a user can act on.
START_UP_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|^[IW]\d{4} "  # absl INFO and WARNING lines: TF_CPP_MIN_LOG_LEVEL=2 means not to show them
    r"|cuda_platform\.cc:\d+\] failed call to cuInit"  # no GPU here; the run logs the device and precision it uses
    r"|^To enable the following instructions: .* rebuild TensorFlow"  # cpu_feature_guard's second line
    r"|^INFO: Created TensorFlow Lite XNNPACK delegate for CPU"  # LiteRT's interpreter, at its first run
    r"|^fully_quantize: \d+, inference_type: \d+"  # the TFLite quantizer's summary of what it was asked
)


def without_noise(lines: list[str]) -> list[str]:
    return [line for line in lines if not START_UP_NOISE.search(line)]


def wants_native_logs() -> bool:
    return os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2").strip() in ("0", "1")


@contextmanager
def native_stderr_captured():
    """Redirect file descriptor 2 (where C++ writes) into a temporary file; yield a reader of it."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        lines: list[str] = []
        try:
            yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines.extend(capture.read().decode(errors="replace").splitlines())


@contextmanager
def absl_warnings_dropped():
    """A block whose Python-side absl warnings are advice imgexp has taken (HDF5 is legacy, for a
    user who chose .h5; the TFLite converter's trackable_obj advice, see deploy/tflite.py)."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        yield
    finally:
        absl.setLevel(level)


@contextmanager
def native_noise_dropped():
    """Run a block whose C++ code may print start-up noise; pass on every other line it writes."""
    if wants_native_logs():
        yield
        return
    try:
        with native_stderr_captured() as lines:
            yield
    finally:
        for line in without_noise(lines):
            print(line, file=sys.stderr)


def import_tensorflow() -> ModuleType:
    """`import tensorflow` and its device probe, with the start-up noise left out."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # every entry point: the tools too
    if "tensorflow" in sys.modules or wants_native_logs():
        import tensorflow as tf

        return tf
    try:
        with native_stderr_captured() as lines:
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")  # CUDA initialises here: its lines are caught too
    finally:  # also when the import fails: its own lines may say why
        for line in without_noise(lines):
            print(line, file=sys.stderr)
    log.debug("TensorFlow %s, GPUs: %s", tf.__version__, [gpu.name for gpu in gpus] or "none")
    return tf
