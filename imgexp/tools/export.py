"""Write a finished run's model in another format, checked against the original.

    python -m imgexp.export RUN_DIR --format keras|savedmodel|tflite|h5 [--output PATH]

Every export is loaded back and run on the same sample images as the Keras
model; the largest difference in probability is printed against a stated
tolerance, and a mismatch fails the command. `h5` is there because the
tutorial saves `image_classifier.h5`. The TFLite model takes images already
resized to the run's training size (TFLite wants fixed spatial sizes).
SavedModel and TFLite exports of a mixed-precision run compute in float32
(TFLite has no bfloat16 kernels) and are checked against that float32 model.
"""

import argparse
import logging
import sys
from contextlib import contextmanager
from pathlib import Path

from imgexp import safe_write
from imgexp.errors import UserError
from imgexp.run_folder import EXPORT_DIR, MODEL_FILE, open_run, trained_image_size
from imgexp.tools.cli import run_tool

FORMATS = {"keras": MODEL_FILE, "h5": "model.h5", "savedmodel": "saved_model", "tflite": "model.tflite"}
TOLERANCE = 1e-4  # largest allowed |probability difference| against the Keras model
SAMPLES = 8


def sample_images(size: tuple[int, int]):
    import numpy as np

    return np.random.default_rng(0).integers(0, 256, (SAMPLES, *size, 3)).astype("float32")


def export_tflite(model, size: tuple[int, int], path: Path):
    import numpy as np
    import tensorflow as tf

    signature = tf.TensorSpec([None, *size, 3], tf.float32, name="image")
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(signature)
    safe_write.write_bytes(path, tf.lite.TFLiteConverter.from_concrete_functions([function], model).convert())

    def predict(x):
        # LiteRT's interpreter: what runs the model on a phone or a board (tf.lite.Interpreter is deprecated).
        from ai_edge_litert.interpreter import Interpreter

        from imgexp.tensorflow_runtime import native_noise_dropped

        with native_noise_dropped():
            interpreter = Interpreter(model_path=str(path))
            interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], list(x.shape))
            interpreter.allocate_tensors()
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
            interpreter.invoke()
            return np.asarray(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))

    return predict


def all_layers(model):
    """Every layer, nested models' layers included (Keras' own walk, `_flatten_layers`, is private)."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from all_layers(layer)


def in_float32(model):
    """The same network and weights computing in float32 (a mixed-precision run's model otherwise
    computes in bfloat16 or float16); a float32 model comes back as it is."""
    import keras

    if all(layer.dtype_policy.name == "float32" for layer in all_layers(model)):
        return model

    def float32_policies(node):
        if isinstance(node, dict):
            if node.get("class_name") == "DTypePolicy":
                return {**node, "config": {**node["config"], "name": "float32"}}
            return {key: float32_policies(value) for key, value in node.items()}
        if isinstance(node, list):
            return [float32_policies(value) for value in node]
        return node

    clone = keras.saving.deserialize_keras_object(float32_policies(keras.saving.serialize_keras_object(model)))
    clone.set_weights(model.get_weights())
    return clone


@contextmanager
def absl_quiet():
    """Keras' absl warnings about the legacy HDF5 format, for a user who chose that format."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        yield
    finally:
        absl.setLevel(level)


def export(run_dir: Path, fmt: str, output: Path | None) -> tuple[Path, float]:
    """Write the export; return its path and its largest difference from the Keras model."""
    import numpy as np

    from imgexp.tensorflow_runtime import import_tensorflow

    tf = import_tensorflow()
    import keras

    run = open_run(run_dir)
    path = output or run_dir / EXPORT_DIR / FORMATS[fmt]
    root = run_dir if output is None else path.parent  # a link out of the run folder is never written through
    if path.exists() or path.is_symlink():  # a dangling link does not `exist`: it is refused too
        raise UserError(f"{path} exists already; remove it or choose another --output")
    path = safe_write.checked_target(path, root)
    model = run.load_model()
    size = trained_image_size(model)
    if fmt in ("savedmodel", "tflite"):
        model = in_float32(model)  # TFLite has no bfloat16 kernels; a SavedModel may run where none are fast
    if fmt in ("keras", "h5"):
        if fmt == "keras":
            safe_write.copy_file(run.model_path, path, root)
        else:
            with absl_quiet():  # "HDF5 is legacy" (asked for) and "not compiled" (a model for inference)
                safe_write.write_with(path, lambda temp: model.save(temp), root)
        with absl_quiet():
            reloaded = keras.models.load_model(path)
        predict = lambda x: reloaded.predict(x, verbose=0)  # noqa: E731
    elif fmt == "savedmodel":
        # Not model.export(): its `serve` endpoint ran the nested classifier with dropout
        # active here (a different answer on every call). training=False, said explicitly.
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint("serve", lambda x: model(x, training=False),
                             input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="image")])
        safe_write.write_folder_with(path, lambda temp: archive.write_out(str(temp), verbose=False), root)
        reloaded = tf.saved_model.load(str(path))  # kept referenced: its variables live with it
        predict = reloaded.serve
    else:
        predict = export_tflite(model, size, path)
    images = sample_images(size)
    expected = model.predict(images, verbose=0)
    got = np.asarray(predict(images))
    return path, float(np.max(np.abs(got - expected)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m imgexp.export", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run, multirun job, trial or a search's best/")
    parser.add_argument("--format", choices=list(FORMATS), default="keras")
    parser.add_argument("--output", type=Path, help="where to write (default RUN_DIR/export/...)")
    args = parser.parse_args(argv)
    return run_tool("imgexp.export", lambda: export_and_check(args.run_dir, args.format, args.output))


def export_and_check(run_dir: Path, fmt: str, output: Path | None) -> int:
    """Export, print the check's verdict; exit code 1 on a mismatch."""
    path, difference = export(run_dir, fmt, output)
    verdict = "OK" if difference <= TOLERANCE else "MISMATCH"
    print(f"wrote {path}; loaded back, its probabilities on {SAMPLES} sample images differ from the Keras "
          f"model's by at most {difference:.2e} (tolerance {TOLERANCE:.0e}): {verdict}")
    return 0 if verdict == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
