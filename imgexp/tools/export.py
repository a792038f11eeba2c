"""Write a finished run's model for where it will run, and check it there on the run's own images.

    python -m imgexp.export RUN_DIR --format keras|h5|savedmodel|tflite|tfjs [--output PATH]
    python -m imgexp.export RUN_DIR --format tflite --quantize none|float16|dynamic|int8

Every export is run by the runtime that will run it (Keras, TensorFlow, LiteRT's interpreter, TF.js in
Node on its CPU and WASM backends) on the run's validation images, beside the Keras model: one table of
size, accuracy, top-1 agreement, largest probability difference and latency per image at batch 1, the
same figures in manifest.json beside the export. A float export that differs beyond its tolerance, or
a quantized one that loses more than --max-accuracy-drop points, fails the command (exit code 1).

Every format takes raw pixels (0-255, RGB): resizing and preprocessing are inside the model. The
SavedModel and TF.js models take any image size; TFLite takes the run's training size (it wants fixed
spatial sizes); int8 is full-integer (int8 input and output, its scale and zero point in the model),
calibrated on images of the run's training split. `tfjs` writes a web page beside model.json.
"""

import sys
import tempfile
from pathlib import Path

from imgexp import safe_write
from imgexp.deploy.checks import MAX_ACCURACY_DROP, TFJS_TOLERANCE, TOLERANCE, check, print_checks
from imgexp.deploy.tfjs import LABELS, PAGE, node_modules
from imgexp.deploy.tflite import CALIBRATION_IMAGES, FILE_NAMES, QUANTIZATIONS
from imgexp.errors import UserError
from imgexp.run_folder import EXPORT_DIR, MODEL_FILE, FinishedRun, open_run, read_json, trained_image_size
from imgexp.tools.cli import OneLineParser, run_tool

FORMATS = {"keras": MODEL_FILE, "h5": "model.h5", "savedmodel": "saved_model", "tflite": FILE_NAMES["none"],
           "tfjs": "tfjs"}
MANIFEST = "manifest.json"
CHECK_IMAGES = 500  # validation images each export is checked on (--images)
SEED = 0  # which training images calibrate an int8 model


def as_arrays(split, size: tuple[int, int]):
    """(float32 images in [0, 255] at `size`, labels): what training and evaluation fed the model."""
    import numpy as np

    from imgexp.data.pipeline import make_dataset

    batches = list(make_dataset(split, size, 64, training=False).as_numpy_iterator())
    if not batches:
        raise UserError("no images to check the export on; give --folder DIR")
    return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])


def split_images(run: FinishedRun, name: str, folder: Path | None, limit: int, size: tuple[int, int]):
    """Up to `limit` images of the run's `name` split (or of --folder), a seeded choice when there are more."""
    import numpy as np

    from imgexp.run_data import folder_split, run_split

    if folder is not None:
        split = folder_split(folder, run.class_names)
    else:
        try:
            split = run_split(run, name)
        except UserError as err:  # the data moved, changed or is elsewhere on this machine
            raise UserError(f"{err}; or check on a folder of class sub-folders with --folder DIR") from err
    if len(split) > limit:
        split = split.subset(np.sort(np.random.default_rng(SEED).choice(len(split), limit, replace=False)))
    return as_arrays(split, size)


def folder_bytes(path: Path, leave_out: tuple[str, ...] = ()) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.name not in leave_out)


def write_saved_model(model, path: Path, root: Path | None) -> None:
    """Not model.export(): its `serve` endpoint ran the nested classifier with dropout active (a
    different answer on every call) and does not convert to TF.js. training=False, said explicitly."""
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda x: model(x, training=False),
                         input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="image")])
    safe_write.write_folder_with(path, lambda temp: archive.write_out(str(temp), verbose=False), root)


def export_keras(run: FinishedRun, model, path: Path, root: Path, images, fmt: str):
    import keras

    from imgexp.latency import keras_latency_ms
    from imgexp.tensorflow_runtime import absl_warnings_dropped

    if fmt == "keras":
        safe_write.copy_file(run.model_path, path, root)
    else:
        with absl_warnings_dropped():  # "HDF5 is legacy" (asked for) and "not compiled" (a model for inference)
            safe_write.write_with(path, lambda temp: model.save(temp), root)
    with absl_warnings_dropped():
        reloaded = keras.models.load_model(path)
    return [(f"Keras {keras.__version__}", reloaded.predict(images, verbose=0), keras_latency_ms(reloaded, images[:1]))]


def export_savedmodel(model32, path: Path, root: Path, images):
    import numpy as np
    import tensorflow as tf

    from imgexp.latency import batch1_latency_ms

    write_saved_model(model32, path, root)
    reloaded = tf.saved_model.load(str(path))  # kept referenced: its variables live with it
    one = tf.constant(images[:1])
    got = np.concatenate([reloaded.serve(images[i:i + 64]).numpy() for i in range(0, len(images), 64)])
    return [(f"TensorFlow {tf.__version__}", got, batch1_latency_ms(lambda: reloaded.serve(one)))]


def export_tflite(model32, path: Path, root: Path, images, quantize: str, calibration):
    from importlib.metadata import version

    from imgexp.deploy.tflite import LiteRTModel, convert
    from imgexp.latency import batch1_latency_ms

    size = images.shape[1:3]
    safe_write.write_bytes(path, convert(model32, size, quantize, calibration), root)
    litert = LiteRTModel(path)
    got = litert.predict(images)
    one = images[:1]
    return [(f"LiteRT {version('ai-edge-litert')}", got,
             batch1_latency_ms(lambda: litert.run(one)))]


def export_tfjs(run: FinishedRun, model32, path: Path, root: Path, images, converter, modules: Path):
    from imgexp.deploy.tfjs import run_in_node, write_tfjs
    from imgexp.deploy.tfjs_compat import TESTED_VERSION

    with tempfile.TemporaryDirectory(prefix="imgexp-savedmodel-") as tmp:
        write_saved_model(model32, Path(tmp) / "saved_model", None)
        write_tfjs(Path(tmp) / "saved_model", path, run.class_names, root, converter)
    found = run_in_node(path, images, modules)
    return [(f"TF.js {TESTED_VERSION} {backend}", probs, latency) for backend, (probs, latency) in found.items()]


def output_path(run_dir: Path, fmt: str, quantize: str, output: Path | None) -> tuple[Path, Path]:
    """(where the export goes, the folder it may not leave); an existing target is refused."""
    name = FILE_NAMES[quantize] if fmt == "tflite" else FORMATS[fmt]
    path = output or run_dir / EXPORT_DIR / name
    root = run_dir if output is None else path.parent  # a link out of the run folder is never written through
    if path.exists() or path.is_symlink():  # a dangling link does not `exist`: it is refused too
        raise UserError(f"{path} exists already; remove it or choose another --output")
    return safe_write.checked_target(path, root), root


def export(run_dir: Path, fmt: str, output: Path | None, quantize: str = "none",
           max_accuracy_drop: float = MAX_ACCURACY_DROP, limit: int = CHECK_IMAGES, folder: Path | None = None):
    """Write the export, run it on the check images; return its path, the checks and the reference."""
    if quantize != "none" and fmt != "tflite":
        raise UserError(f"--quantize {quantize}: only --format tflite is quantized; drop --quantize or use tflite")
    if limit < 1:
        raise UserError(f"--images {limit}: give at least 1")
    if fmt == "tfjs":  # what the export and its check need, asked before anything is written
        from imgexp.deploy.tfjs_compat import check_installed, saved_model_converter

        check_installed()
        modules = node_modules()
    run = open_run(run_dir)
    path, root = output_path(run_dir, fmt, quantize, output)

    from imgexp.tensorflow_runtime import import_tensorflow

    import_tensorflow()  # before the TF.js converter imports it, so its start-up noise is left out
    from imgexp.deploy.checks import Reference
    from imgexp.deploy.float32 import in_float32
    from imgexp.latency import keras_latency_ms

    model = run.load_model()
    size = trained_image_size(model)
    images, labels = split_images(run, "validation", folder, limit, size)
    model32 = in_float32(model)
    reference = Reference(labels, model.predict(images, verbose=0), model32.predict(images, verbose=0),
                          keras_latency_ms(model, images[:1]), run.model_path.stat().st_size)
    if fmt in ("keras", "h5"):
        results = export_keras(run, model, path, root, images, fmt)
    elif fmt == "savedmodel":
        results = export_savedmodel(model32, path, root, images)
    elif fmt == "tflite":  # int8 is calibrated on training images: the validation ones judge it
        calibration = split_images(run, "train", folder, CALIBRATION_IMAGES, size)[0] if quantize == "int8" else None
        results = export_tflite(model32, path, root, images, quantize, calibration)
    else:
        results = export_tfjs(run, model32, path, root, images, saved_model_converter(), modules)
    size_bytes = folder_bytes(path, leave_out=(PAGE, LABELS))
    checks = [check(path.name, runtime, size_bytes, probs, latency, reference,
                    converted_from_float32=fmt not in ("keras", "h5"), quantized=quantize != "none",
                    tolerance=TFJS_TOLERANCE if fmt == "tfjs" else TOLERANCE, max_accuracy_drop=max_accuracy_drop)
              for runtime, probs, latency in results]
    write_manifest(path, root, checks, reference, len(labels))
    return path, checks, reference


def write_manifest(path: Path, root: Path, checks, reference, images: int) -> None:
    """manifest.json beside the export: every export of this folder, by name, with its figures."""
    manifest_path = path.parent / MANIFEST
    manifest = read_json(manifest_path) if manifest_path.is_file() and not manifest_path.is_symlink() else None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("exports"), dict):
        manifest = {"exports": {}}
    manifest["keras"] = {"accuracy": reference.keras_accuracy, "latency_ms": reference.keras_latency_ms}
    manifest["exports"][path.name] = {"checked_on_images": images, "checks": [c.as_dict() for c in checks]}
    safe_write.write_json(manifest_path, manifest, root)


def export_and_check(run_dir: Path, fmt: str, output: Path | None, quantize: str = "none",
                     max_accuracy_drop: float = MAX_ACCURACY_DROP, limit: int = CHECK_IMAGES,
                     folder: Path | None = None) -> int:
    """Export, print the table; exit code 1 when an export fails its check."""
    path, checks, reference = export(run_dir, fmt, output, quantize, max_accuracy_drop, limit, folder)
    print_checks(checks, reference, len(reference.labels))
    ok = all(c.verdict == "OK" for c in checks)
    print(f"wrote {path} ({'checked: OK' if ok else 'FAILED its check'}); figures in {path.parent / MANIFEST}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m imgexp.export", description=__doc__.splitlines()[0],
                                     epilog="Formats: keras, h5 (the tutorial's .h5), savedmodel (TensorFlow "
                                            "Serving), tflite (LiteRT), tfjs (a web page with TensorFlow.js).")
    parser.add_argument("run_dir", type=Path, help="a run, multirun job, trial or a search's best/")
    parser.add_argument("--format", choices=list(FORMATS), default="keras")
    parser.add_argument("--quantize", choices=QUANTIZATIONS, default="none",
                        help="tflite: float16 halves the weights, dynamic stores them as int8, int8 is "
                             "full-integer (calibrated on the run's training images)")
    parser.add_argument("--output", type=Path, help="where to write (default RUN_DIR/export/...)")
    parser.add_argument("--max-accuracy-drop", type=float, default=MAX_ACCURACY_DROP,
                        help=f"points of validation accuracy a quantized export may lose (default {MAX_ACCURACY_DROP:g})")
    parser.add_argument("--images", type=int, default=CHECK_IMAGES,
                        help=f"validation images to check on (default {CHECK_IMAGES}; a seeded choice of more)")
    parser.add_argument("--folder", type=Path, help="check (and calibrate) on DIR/<class>/* instead of the run's data")
    args = parser.parse_args(argv)
    return run_tool("imgexp.export", lambda: export_and_check(args.run_dir, args.format, args.output, args.quantize,
                                                        args.max_accuracy_drop, args.images, args.folder))


if __name__ == "__main__":
    sys.exit(main())
